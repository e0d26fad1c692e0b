package manager

import (
	"context"
	"fmt"
	"time"

	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/plugins/capability"
	"github.com/crosscast/crosscast/sdk"
	"github.com/crosscast/crosscast/sdk/wire"
)

// Send hands a batch of rendered messages of one workspace to the channel plugin name and returns one result per
// message, in the order of msgs. A message the plugin gave no result for, or an unusable one, comes back as a
// retry with the reason: a plugin's mistake never loses a message. It sets each message's Workspace to workspace.
//
// A batch larger than maxSendInput goes in several calls, so that a guest's memory need not grow with the size of
// the engine's batches (twenty 20 KB emails or five hundred: the same peak). An error means the whole batch failed
// (the plugin trapped, timed out, answered with an error, or is quarantined) and every message may be retried;
// when a call fails after earlier ones were sent, Send returns every result (theirs, and retries with the reason for
// the rest) and a *PartialError.
func (m *Manager) Send(ctx context.Context, workspace, name string, now time.Time, msgs []wire.Message) ([]wire.Result, error) {
	mp, err := m.get(name)
	if err != nil {
		return nil, err
	}
	if kind := mp.current.Load().manifest.Kind; kind != sdk.KindChannel {
		return nil, errs.Invalid("plugin", "plugin %q is a %s, not a channel", name, kind)
	}
	for i := range msgs {
		msgs[i].Workspace = workspace
	}
	out := make([]wire.Result, 0, len(msgs))
	for start := 0; start < len(msgs); {
		end, size := start, 0
		for end < len(msgs) && (end == start || size+messageSize(msgs[end]) <= maxSendInput) {
			size += messageSize(msgs[end])
			end++
		}
		results, err := m.send(ctx, workspace, name, now, msgs[start:end])
		if err != nil && start == 0 {
			return nil, err
		}
		if err != nil {
			for _, msg := range msgs[start:] {
				out = append(out, wire.Result{ID: msg.ID, Status: wire.StatusRetry, Error: fmt.Sprintf("channel %q failed: %v", name, err)})
			}
			return out, &PartialError{Err: err}
		}
		out = append(out, results...)
		start = end
	}
	return out, nil
}

// PartialError is Send's error when a call failed after earlier calls of the batch were sent: the results are all
// there, and a caller must keep them (retrying the whole batch would send the first part twice), while counting the
// batch as failed.
type PartialError struct{ Err error }

func (e *PartialError) Error() string { return "part of the batch failed: " + e.Err.Error() }
func (e *PartialError) Unwrap() error { return e.Err }

// maxSendInput bounds the encoded messages of one send call. A guest holds its input, what it decodes from it, the
// messages it builds and what it hands to the host, at the same time: 4 MiB of input leaves room in the default
// memory limit (64 MiB), where whole batches of 20 KB emails ran a guest out of memory.
const maxSendInput = 4 << 20

// messageSize is about the encoded size of m.
func messageSize(m wire.Message) int {
	n := len(m.ID) + len(m.IdempotencyKey) + len(m.Workspace) + len(m.ContactID) + len(m.To) + 64
	for _, p := range m.Fields {
		n += len(p.Key) + len(p.Value) + 8
	}
	for _, p := range m.Headers {
		n += len(p.Key) + len(p.Value) + 8
	}
	return n
}

// send makes one send call.
func (m *Manager) send(ctx context.Context, workspace, name string, now time.Time, msgs []wire.Message) ([]wire.Result, error) {
	w := wire.NewWriter(nil)
	req := wire.SendRequest{NowUnixMilli: now.UnixMilli(), Messages: msgs}
	req.Encode(w)
	out, err := m.Call(capability.WithWorkspace(ctx, workspace), name, entrySend, w.Bytes())
	if err != nil {
		return nil, err
	}
	resp, err := wire.DecodeSendResponse(out)
	if err != nil {
		return nil, fmt.Errorf("plugin %q answered send with a malformed response: %w", name, err)
	}
	return matchResults(msgs, resp.Results), nil
}

// matchResults orders results like msgs, by message id.
func matchResults(msgs []wire.Message, results []wire.Result) []wire.Result {
	byID := make(map[string]wire.Result, len(results))
	for _, r := range results {
		if _, dup := byID[r.ID]; !dup {
			byID[r.ID] = r
		}
	}
	out := make([]wire.Result, len(msgs))
	for i, msg := range msgs {
		r, ok := byID[msg.ID]
		switch {
		case !ok:
			r = wire.Result{ID: msg.ID, Status: wire.StatusRetry, Error: "the plugin returned no result for this message"}
		case !r.Status.Valid():
			r = wire.Result{ID: msg.ID, Status: wire.StatusRetry, Error: fmt.Sprintf("the plugin returned an unknown status %d", r.Status)}
		}
		out[i] = r
	}
	return out
}
