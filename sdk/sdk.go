package sdk

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/crosscast/crosscast/sdk/wire"
)

// ABIVersion is the plugin ABI this SDK implements.
const ABIVersion = 1

// Kind is what a plugin is for.
type Kind string

// The plugin kinds.
const (
	KindChannel   Kind = "channel"
	KindScorer    Kind = "scorer"
	KindConnector Kind = "connector"
)

// Manifest describes a plugin to the host, which reads it at load.
type Manifest struct {
	ID      string `json:"id"`
	Version string `json:"version"` // semver
	Kind    Kind   `json:"kind"`
	ABI     int    `json:"abi"`
	// Capabilities are the host functions the plugin needs ("http", "smtp", "kv", "secrets", "metrics"); the
	// operator grants them in HCL. Logging needs no grant.
	Capabilities []string `json:"capabilities,omitempty"`
	// OptionalCapabilities are host functions only some configurations use (email-smtp fetches Amazon SNS
	// certificates with "http" only when it reads SES events). The plugin gets each one the operator grants; one not
	// granted is no error at load, and calling it returns an error saying it is not granted.
	OptionalCapabilities []string `json:"optional_capabilities,omitempty"`
	// Config describes the plugin's `config { }` block; the host validates the operator's block against it.
	Config []ConfigField `json:"config,omitempty"`
	// SelfTests are sends the host runs, with the operator's configuration, every time it loads or reloads the
	// plugin; a mismatch stops the load (a reload keeps the previous version). Prefer cases that need no network:
	// validation of addresses, payload building. Self-tests are for channels only, for now.
	SelfTests []SelfTest `json:"self_tests,omitempty"`
	// Receives is set by RegisterChannel when the channel implements Receiver: the host serves
	// /hooks/{workspace}/{plugin} only for channels that receive. Leave it alone.
	Receives bool `json:"receives,omitempty"`
	// Metrics are the plugin's own metrics, recorded with Count and Observe (capability "metrics").
	Metrics []Metric `json:"metrics,omitempty"`
	// Channel describes a channel's messages to the campaign engine: where they go and the content fields a
	// campaign fills in. Channels only; without it, messages go to the contact's email under email consent, and
	// any content field is passed through.
	Channel *ChannelSpec `json:"channel,omitempty"`
}

// ChannelSpec is what a channel declares about its messages.
type ChannelSpec struct {
	// Address is the contact field a message's To is taken from: "email", "phone", or "none" when the plugin's
	// own configuration says where messages go (a webhook's URL).
	Address string `json:"address"`
	// Consent is the consent channel the engine checks before sending ("email", "sms", ...); empty: none is
	// checked (only for channels that are not marketing, such as an internal webhook).
	Consent string `json:"consent,omitempty"`
	// Fields are the content fields a campaign fills in (each a Liquid template), in the order an editor shows
	// them; empty: any field is accepted.
	Fields []ContentField `json:"fields,omitempty"`
}

// ContentField is one content field of a channel's messages.
type ContentField struct {
	Name        string `json:"name"`
	Required    bool   `json:"required,omitempty"`
	Description string `json:"description,omitempty"`
	// SingleLine makes the variables the field shows one line each (their CR and LF become spaces), for a field
	// read line by line, such as email headers: a contact's attribute then cannot add a line of its own.
	SingleLine bool `json:"single_line,omitempty"`
}

// SelfTest is one send and the status expected for each of its messages.
type SelfTest struct {
	Name     string            `json:"name"`
	Messages []SelfTestMessage `json:"messages"`
	// Want lists the expected status of each message, in order: "delivered", "accepted", "retry" or "failed".
	Want []string `json:"want"`
}

// SelfTestMessage is a message of a self-test.
type SelfTestMessage struct {
	ID     string            `json:"id"`
	To     string            `json:"to"`
	Fields map[string]string `json:"fields,omitempty"`
}

// ConfigField is one attribute of a plugin's config block.
type ConfigField struct {
	Name     string `json:"name"`
	Type     string `json:"type"` // string, number, bool, list(string), map(string)
	Required bool   `json:"required,omitempty"`
	// Secret fields (type string) are not passed to Configure: the plugin reads them with Secret, and the host
	// never logs them and masks them in the plugin's log lines. They need the "secrets" capability.
	Secret      bool   `json:"secret,omitempty"`
	Description string `json:"description,omitempty"`
}

// The message types a channel handles, from the shared wire package.
type (
	Message = wire.Message
	Result  = wire.Result
	Status  = wire.Status
)

// The per-message outcomes a channel reports.
const (
	Delivered = wire.StatusDelivered
	Accepted  = wire.StatusAccepted
	Retry     = wire.StatusRetry
	Failed    = wire.StatusFailed
)

// Call is what the host tells a plugin about the call in progress.
type Call struct {
	// Now is the host's clock. Use it, not time.Now, for anything that matters: it is the same for every item of a
	// batch and tests can fix it.
	Now time.Time
	// Workspace is the workspace the call is made for: capabilities such as KV act in its space. For send, it is
	// the workspace of the batch's messages ("" if they were to differ).
	Workspace string
}

// Channel is a message channel: it sends rendered messages to the outside world.
type Channel interface {
	// Configure receives the plugin's config block (already checked against Manifest.Config), once per instance
	// before any Send. Return an error to refuse it.
	Configure(config map[string]any) error
	// Send sends a batch and returns one result per message, matched by Message.ID. A message without a result
	// counts as a retryable failure. Return an error only when the whole batch failed.
	Send(call Call, msgs []Message) ([]Result, error)
}

// Entry point ids of ABI v1 (sdk/ABI.md).
const (
	EntryManifest  = 1
	EntryConfigure = 2
	EntrySend      = 16
	EntryReceive   = 17
	EntryScore     = 32
	EntryInbound   = 48
	EntryOutbound  = 49
)

// plugin is the registered implementation. A plugin module holds exactly one: one of channel, scorer and
// connector is set.
type plugin struct {
	manifest  Manifest
	channel   Channel
	scorer    Scorer
	connector Connector
}

// configure runs the implementation's Configure.
func (p *plugin) configure(cfg map[string]any) error {
	switch {
	case p.channel != nil:
		return p.channel.Configure(cfg)
	case p.scorer != nil:
		return p.scorer.Configure(cfg)
	case p.connector != nil:
		return p.connector.Configure(cfg)
	}
	return errors.New("no implementation registered")
}

// registered is set once, from the plugin's init function, before the host calls anything.
var registered *plugin

// RegisterChannel registers the plugin's channel implementation. Call it exactly once, from an init function. A
// channel that also implements Receiver receives its provider's webhooks (Manifest.Receives is set for it).
func RegisterChannel(m Manifest, c Channel) {
	m.Kind, m.ABI = KindChannel, ABIVersion
	_, m.Receives = c.(Receiver)
	register(&plugin{manifest: m, channel: c})
}

// register makes p the plugin's implementation.
func register(p *plugin) {
	if registered != nil {
		panic("sdk: a plugin registers exactly one implementation")
	}
	registered = p
}

// Output status bytes (sdk/ABI.md).
const (
	statusOK    = 0
	statusError = 1
)

// dispatch runs one entry point and returns the output, status byte first. It never panics: a panic in plugin
// code becomes an error output, so the instance stays usable.
func dispatch(p *plugin, entry uint32, input []byte, out *wire.Writer) (result []byte) {
	out.Reset()
	defer func() {
		if r := recover(); r != nil {
			result = errorOutput(out, fmt.Errorf("plugin panicked: %v", r))
		}
	}()
	if p == nil {
		return errorOutput(out, errors.New("no implementation registered: call sdk.RegisterChannel, sdk.RegisterScorer or sdk.RegisterConnector from an init function"))
	}
	out.U8(statusOK)
	switch entry {
	case EntryManifest:
		data, err := json.Marshal(p.manifest)
		if err != nil {
			return errorOutput(out, err)
		}
		return append(out.Bytes(), data...)
	case EntryConfigure:
		cfg := map[string]any{}
		if len(input) > 0 {
			if err := json.Unmarshal(input, &cfg); err != nil {
				return errorOutput(out, fmt.Errorf("decoding config: %w", err))
			}
		}
		if err := p.configure(cfg); err != nil {
			return errorOutput(out, err)
		}
		return out.Bytes()
	case EntrySend:
		if p.channel == nil {
			return errorOutput(out, errors.New("this plugin is not a channel"))
		}
		req, err := wire.DecodeSendRequest(input)
		if err != nil {
			return errorOutput(out, err)
		}
		results, err := p.channel.Send(Call{Now: timeOf(req.NowUnixMilli), Workspace: batchWorkspace(req.Messages)}, req.Messages)
		if err != nil {
			return errorOutput(out, err)
		}
		resp := wire.SendResponse{Results: results}
		resp.Encode(out)
		return out.Bytes()
	case EntryReceive:
		return receive(p, input, out)
	case EntryScore:
		return score(p, input, out)
	case EntryInbound:
		return inbound(p, input, out)
	case EntryOutbound:
		return outbound(p, input, out)
	}
	return errorOutput(out, fmt.Errorf("unknown entry point %d", entry))
}

// batchWorkspace is the workspace of every message of a batch, or "" when they differ.
func batchWorkspace(msgs []Message) string {
	if len(msgs) == 0 {
		return ""
	}
	ws := msgs[0].Workspace
	for i := range msgs {
		if msgs[i].Workspace != ws {
			return ""
		}
	}
	return ws
}

// hookCall is the Call of a request that came through a hook.
func hookCall(req *HookRequest) Call {
	return Call{Now: timeOf(req.NowUnixMilli), Workspace: req.Workspace}
}

// timeOf is the time of a request's NowUnixMilli.
func timeOf(unixMilli int64) time.Time { return time.UnixMilli(unixMilli) }

func errorOutput(out *wire.Writer, err error) []byte {
	out.Reset()
	out.U8(statusError)
	msg := err.Error()
	if len(msg) > 4096 {
		msg = msg[:4096]
	}
	return append(out.Bytes(), msg...)
}
