// Package outbox reads and clears the development outboxes that the bundled capture channel
// (plugins/builtin/capture) keeps in its key-value spaces, one per workspace, for the API. It knows the channel's
// key layout: msg/<unix millis, 16 digits>/<message id> -> the message as JSON.
//
// It imports core/store; core never imports it.
package outbox

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/store"
)

const msgPrefix = "msg/"

// Store is the part of core/store the outboxes live in.
type Store interface {
	ViewPluginKV(ctx context.Context, workspace, plugin string, fn func(*store.PluginKVTx) error) error
	DeletePluginKV(ctx context.Context, workspace, plugin string) error
}

var _ Store = (*store.Store)(nil)

// Reader reads outboxes from a store.
type Reader struct {
	st Store
}

// New returns a Reader over st.
func New(st Store) *Reader { return &Reader{st: st} }

// Outbox returns up to limit captured messages, newest first, older than cursor (a key from a previous page, ""
// for the newest), and the cursor of the next page ("" at the end). Each item is the captured record with its
// "key" added.
func (r *Reader) Outbox(ctx context.Context, workspace, plugin, cursor string, limit int) ([]json.RawMessage, string, error) {
	if cursor != "" && !strings.HasPrefix(cursor, msgPrefix) {
		return nil, "", errs.Invalid("cursor", "is not a cursor of this list")
	}
	var items []json.RawMessage
	next := ""
	err := r.st.ViewPluginKV(ctx, workspace, plugin, func(tx *store.PluginKVTx) error {
		items, next = nil, ""
		last := ""
		return tx.ScanReverse(msgPrefix, cursor, func(key string, value []byte) bool {
			if len(items) == limit {
				next = last
				return false
			}
			items = append(items, withKey(key, value))
			last = key
			return true
		})
	})
	return items, next, err
}

// ClearOutbox deletes every message of the outbox.
func (r *Reader) ClearOutbox(ctx context.Context, workspace, plugin string) error {
	return r.st.DeletePluginKV(ctx, workspace, plugin)
}

// withKey returns the record with "key" set; a value that is not a JSON object is shown as {"key", "raw"}.
func withKey(key string, value []byte) json.RawMessage {
	var rec map[string]json.RawMessage
	if json.Unmarshal(value, &rec) != nil || rec == nil {
		rec = map[string]json.RawMessage{"raw": mustJSON(string(value))}
	}
	rec["key"] = mustJSON(key)
	return mustJSON(rec)
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
