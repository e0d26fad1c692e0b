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
// retry with the reason: a plugin's mistake never loses a message. It sets each message's Workspace to workspace. An error means the whole batch failed (the
// plugin trapped, timed out, answered with an error, or is quarantined) and every message may be retried.
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
