// Command capture is the bundled "capture" channel: it sends nothing, and keeps every message it is given in a
// per-workspace development outbox (the plugin's key-value space), which GET /api/v1/workspaces/{id}/outbox
// shows, newest first. A fresh install can run a whole campaign, and a developer can read what each contact would
// have received, without any provider.
//
// The outbox is bounded by the operator's kv_quota: when it is full, the oldest messages are dropped to make room.
// A message sent again with the same idempotency key is not stored twice; it gets the first copy's provider id.
//
// Its webhook, POST /hooks/{workspace}/capture, plays the provider's part: a JSON body
// {"events":[{"type":"bounced","message_id":"m1","permanent":true,"detail":"550 no such user"}]} reports events
// about captured messages, so bounce, complaint and reply handling can be tried without a provider. Events about
// messages the outbox does not hold are refused (422), so the hook cannot be used to forge events about anything
// else; still, it has no authentication: it is a development channel.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/crosscast/crosscast/sdk"
)

func main() {}

func init() {
	sdk.RegisterChannel(sdk.Manifest{
		ID: "capture", Version: "1.0.0",
		Capabilities: []string{"kv", "metrics"},
		Metrics: []sdk.Metric{
			{Name: "capture_messages_total", Type: "counter", Help: "Messages kept in a development outbox."},
			{Name: "capture_evicted_total", Type: "counter", Help: "Old messages dropped from a full development outbox."},
		},
		// It stands in for an email channel in development: the contact's email, under email consent, any field.
		Channel: &sdk.ChannelSpec{Address: "email", Consent: "email"},
	}, &channel{})
}

// Key layout of the plugin's space (one per workspace):
//
//	msg/<unix millis, 16 digits>/<message id>  -> JSON Record (oldest first in key order)
//	id/<idempotency key or message id>    -> the msg/ key of the message's first copy
//	mid/<message id>                      -> the msg/ key (the webhook finds messages by id)
const (
	msgPrefix = "msg/"
	idPrefix  = "id/"
	midPrefix = "mid/"
	// evictBatch is how many of the oldest messages go at once when the outbox is full.
	evictBatch = 100
)

// Record is one captured message, as the outbox API shows it.
type Record struct {
	ID             string            `json:"id"`
	IdempotencyKey string            `json:"idempotency_key,omitempty"`
	ContactID      string            `json:"contact_id,omitempty"`
	To             string            `json:"to"`
	Fields         map[string]string `json:"fields,omitempty"`
	Headers        map[string]string `json:"headers,omitempty"`
	CapturedAt     string            `json:"captured_at"` // RFC 3339, the host's clock
}

type channel struct{}

func (c *channel) Configure(map[string]any) error { return nil }

// msgKey sorts oldest first: list order is byte order, and the time is zero-padded.
func msgKey(call sdk.Call, id string) string {
	return fmt.Sprintf("%s%016d/%s", msgPrefix, max(call.Now.UnixMilli(), 0), id)
}

func dedupeKey(m sdk.Message) string {
	if m.IdempotencyKey != "" {
		return idPrefix + m.IdempotencyKey
	}
	return idPrefix + m.ID
}

// Send keeps each message in the outbox and reports it delivered; a repeat of an already captured message reports
// the first copy.
func (c *channel) Send(call sdk.Call, msgs []sdk.Message) ([]sdk.Result, error) {
	// A kv request holds at most 1,000 operations and each new message takes 3: store the batch in chunks. A
	// chunk that fails fails the batch, and the messages of the chunks already stored are found again by their
	// idempotency keys when the host retries.
	results := make([]sdk.Result, 0, len(msgs))
	for len(msgs) > 0 {
		n := min(len(msgs), chunkMessages)
		part, err := c.sendChunk(call, msgs[:n])
		if err != nil {
			return nil, err
		}
		results = append(results, part...)
		msgs = msgs[n:]
	}
	return results, nil
}

// chunkMessages is how many messages one kv request stores (3 operations each, at most 1,000 per request).
const chunkMessages = 300

func (c *channel) sendChunk(call sdk.Call, msgs []sdk.Message) ([]sdk.Result, error) {
	results := make([]sdk.Result, len(msgs))
	lookups := make([]sdk.KVOp, len(msgs))
	for i, m := range msgs {
		results[i].ID = m.ID
		lookups[i] = sdk.KVOp{Kind: sdk.KVGet, Key: dedupeKey(m)}
	}
	seen, err := sdk.KV.Do(lookups...)
	if err != nil {
		return nil, fmt.Errorf("reading the outbox: %w", err)
	}
	var writes []sdk.KVOp
	fresh := 0
	inBatch := map[string]string{}
	for i, m := range msgs {
		dk := dedupeKey(m)
		if seen[i].OK {
			results[i].Status, results[i].ProviderID = sdk.Delivered, string(seen[i].Value)
			continue
		}
		if first, ok := inBatch[dk]; ok {
			results[i].Status, results[i].ProviderID = sdk.Delivered, first
			continue
		}
		if strings.ContainsRune(m.ID, '/') || m.ID == "" {
			results[i].Status, results[i].Error = sdk.Failed, "message id must be non-empty and without '/'"
			continue
		}
		key := msgKey(call, m.ID)
		rec := appendRecord(nil, m, call.Now.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
		writes = append(writes, sdk.KVOp{Kind: sdk.KVPut, Key: key, Value: rec}, sdk.KVOp{Kind: sdk.KVPut, Key: dk, Value: []byte(key)},
			sdk.KVOp{Kind: sdk.KVPut, Key: midPrefix + m.ID, Value: []byte(key)})
		inBatch[dk] = key
		results[i].Status, results[i].ProviderID = sdk.Delivered, key
		fresh++
	}
	if len(writes) == 0 {
		return results, nil
	}
	for attempt := 0; ; attempt++ {
		_, err := sdk.KV.Do(writes...)
		if err == nil {
			break
		}
		if !sdk.IsKVQuotaExceeded(err) || attempt == 5 {
			return nil, fmt.Errorf("writing the outbox: %w", err)
		}
		if err := evictOldest(); err != nil {
			return nil, err
		}
	}
	_ = sdk.Count("capture_messages_total", float64(fresh))
	return results, nil
}

// evictOldest drops the oldest messages, and their dedupe keys, to make room.
func evictOldest() error {
	oldest, _, err := sdk.KV.List(msgPrefix, "", evictBatch)
	if err != nil {
		return fmt.Errorf("listing the outbox: %w", err)
	}
	if len(oldest) == 0 {
		return errors.New("the outbox is empty and still over its quota: raise kv_quota")
	}
	ops := make([]sdk.KVOp, 0, 2*len(oldest))
	for _, e := range oldest {
		ops = append(ops, sdk.KVOp{Kind: sdk.KVDelete, Key: e.Key})
		var rec Record
		if json.Unmarshal(e.Value, &rec) == nil {
			ops = append(ops, sdk.KVOp{Kind: sdk.KVDelete, Key: dedupeKey(sdk.Message{ID: rec.ID, IdempotencyKey: rec.IdempotencyKey})},
				sdk.KVOp{Kind: sdk.KVDelete, Key: midPrefix + rec.ID})
		}
	}
	if _, err := sdk.KV.Do(ops...); err != nil {
		return fmt.Errorf("dropping old messages: %w", err)
	}
	_ = sdk.Count("capture_evicted_total", float64(len(oldest)))
	return nil
}

// appendRecord appends m as the JSON of a Record. It is written by hand: encoding/json's reflection costs a Go
// guest about ten times more than this under the host's interruptible mode, and it ran once per message
// (docs/benchmarks.md, BenchmarkCaptureSend).
func appendRecord(b []byte, m sdk.Message, capturedAt string) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, m.ID)
	if m.IdempotencyKey != "" {
		b = append(b, `,"idempotency_key":`...)
		b = appendJSONString(b, m.IdempotencyKey)
	}
	if m.ContactID != "" {
		b = append(b, `,"contact_id":`...)
		b = appendJSONString(b, m.ContactID)
	}
	b = append(b, `,"to":`...)
	b = appendJSONString(b, m.To)
	b = appendPairs(b, "fields", m.Fields)
	b = appendPairs(b, "headers", m.Headers)
	b = append(b, `,"captured_at":`...)
	b = appendJSONString(b, capturedAt)
	return append(b, '}')
}

func appendPairs(b []byte, name string, ps sdk.Pairs) []byte {
	if len(ps) == 0 {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':', '{')
	for i, p := range ps {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, p.Key)
		b = append(b, ':')
		b = appendJSONString(b, p.Value)
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string: quotes, backslashes and control characters escaped, and invalid
// UTF-8 replaced by U+FFFD, as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// hookEvent is one simulated provider event in the webhook's body.
type hookEvent struct {
	Type      string `json:"type"` // delivered, bounced, deferred, complained, opened, clicked, unsubscribed, replied
	MessageID string `json:"message_id"`
	Permanent bool   `json:"permanent"`
	Detail    string `json:"detail"`
}

// Receive turns a simulated provider webhook into events about captured messages.
func (c *channel) Receive(call sdk.Call, req sdk.HookRequest) (sdk.HookReply, error) {
	if req.Method != "POST" {
		return reply(405, "send the events with POST"), nil
	}
	var body struct {
		Events []hookEvent `json:"events"`
	}
	dec := json.NewDecoder(strings.NewReader(string(req.Body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return reply(400, "the body must be {\"events\":[{\"type\":..., \"message_id\":...}]}: "+err.Error()), nil
	}
	if len(body.Events) == 0 || len(body.Events) > 1000 {
		return reply(400, "send 1 to 1000 events"), nil
	}
	lookups := make([]sdk.KVOp, len(body.Events))
	for i, e := range body.Events {
		lookups[i] = sdk.KVOp{Kind: sdk.KVGet, Key: midPrefix + e.MessageID}
	}
	found, err := sdk.KV.Do(lookups...)
	if err != nil {
		return sdk.HookReply{}, fmt.Errorf("reading the outbox: %w", err)
	}
	out := sdk.HookReply{Status: 200, Headers: sdk.Pairs{{Key: "Content-Type", Value: "application/json"}}}
	for i, e := range body.Events {
		typ, ok := wireEventType(e.Type)
		if !ok {
			return reply(422, fmt.Sprintf("event %d: unknown type %q", i, e.Type)), nil
		}
		if !found[i].OK {
			return reply(422, fmt.Sprintf("event %d: message %q is not in this workspace's outbox", i, e.MessageID)), nil
		}
		var rec Record
		if v, ok, err := sdk.KV.Get(string(found[i].Value)); err == nil && ok {
			_ = json.Unmarshal(v, &rec)
		}
		out.Events = append(out.Events, sdk.ChannelEvent{
			Type: typ, MessageID: e.MessageID, ProviderID: string(found[i].Value), Address: rec.To,
			AtUnixMilli: call.Now.UnixMilli(), Permanent: e.Permanent, Detail: e.Detail,
		})
	}
	out.Body = []byte(fmt.Sprintf(`{"accepted":%d}`, len(out.Events)))
	return out, nil
}

func wireEventType(name string) (sdk.EventType, bool) {
	for t := sdk.EventDelivered; t <= sdk.EventReplied; t++ {
		if t.String() == name {
			return t, true
		}
	}
	return 0, false
}

func reply(status uint32, msg string) sdk.HookReply {
	b, _ := json.Marshal(map[string]string{"error": msg})
	return sdk.HookReply{Status: status, Headers: sdk.Pairs{{Key: "Content-Type", Value: "application/json"}}, Body: b}
}
