package capability

import (
	"context"
	"errors"
	"fmt"

	"github.com/crosscast/crosscast/core/store"
	"github.com/crosscast/crosscast/plugins/runtime"
	"github.com/crosscast/crosscast/sdk/wire"
)

// KVStore keeps plugins' key-value spaces, one per plugin and workspace, in the workspace's own file (core/store).
type KVStore interface {
	UpdatePluginKV(ctx context.Context, workspace, plugin string, fn func(*store.PluginKVTx) error) error
	ViewPluginKV(ctx context.Context, workspace, plugin string, fn func(*store.PluginKVTx) error) error
}

var _ KVStore = (*store.Store)(nil)

// Limits of one kv request.
const (
	maxKVOps         = 1000
	defaultListLimit = 100
	maxListLimit     = 1000
	maxListBytes     = 4 << 20 // a list page stops early rather than answer more than this
)

// errCASFailed rolls back a request whose compare-and-swap did not hold.
var errCASFailed = errors.New("compare-and-swap failed")

// quotaError refuses a request that would take a space over its quota. Its text starts "kv: quota", which the SDK
// recognises (sdk.IsKVQuotaExceeded).
type quotaError struct{ quota, usage int64 }

func (e quotaError) Error() string {
	return fmt.Sprintf("kv: quota of %d bytes exceeded (the space would hold %d bytes): nothing was written", e.quota, e.usage)
}

// KV serves the kv import: the operations of a request run as one transaction in the space of plugin in the
// call's workspace (WithWorkspace), which may hold at most quota bytes of keys and values.
func KV(st KVStore, plugin string, quota int64) runtime.HostFunc {
	return func(ctx context.Context, b []byte, w *wire.Writer) error {
		req, err := wire.DecodeKVRequest(b)
		if err != nil {
			return errMalformed("kv", err)
		}
		ws := Workspace(ctx)
		if ws == "" {
			return errors.New("kv: this call is not made for a workspace, so there is no key-value space to use")
		}
		if len(req.Ops) > maxKVOps {
			return fmt.Errorf("kv: %d operations in one request; at most %d", len(req.Ops), maxKVOps)
		}
		writes := false
		for _, op := range req.Ops {
			writes = writes || (op.Kind != wire.KVGet && op.Kind != wire.KVList)
		}
		var ans wire.KVAnswer
		run := func(tx *store.PluginKVTx) error {
			before := tx.Usage()
			var err error
			ans.Results, err = applyKV(tx, req.Ops)
			if err != nil {
				return err
			}
			if after := tx.Usage(); after > quota && after > before {
				return quotaError{quota: quota, usage: after}
			}
			return nil
		}
		if writes {
			err = st.UpdatePluginKV(ctx, ws, plugin, run)
		} else {
			err = st.ViewPluginKV(ctx, ws, plugin, run)
		}
		var qe quotaError
		switch {
		case errors.As(err, &qe):
			return qe
		case err != nil && !errors.Is(err, errCASFailed):
			return fmt.Errorf("kv: %w", err)
		}
		ans.Encode(w)
		return nil
	}
}

// applyKV runs ops in tx and returns their results; at a failed compare-and-swap it stops with errCASFailed and
// the results so far, that one included.
func applyKV(tx *store.PluginKVTx, ops []wire.KVOp) ([]wire.KVResult, error) {
	results := make([]wire.KVResult, 0, len(ops))
	for i, op := range ops {
		var res wire.KVResult
		switch op.Kind {
		case wire.KVGet:
			res.Value, res.OK = tx.Get(op.Key)
		case wire.KVPut:
			if err := tx.Put(op.Key, op.Value); err != nil {
				return nil, fmt.Errorf("operation %d (put): %w", i, err)
			}
			res.OK = true
		case wire.KVDelete:
			if err := tx.Delete(op.Key); err != nil {
				return nil, fmt.Errorf("operation %d (delete): %w", i, err)
			}
			res.OK = true
		case wire.KVCompareAndSwap:
			cur, found := tx.Get(op.Key)
			if found != op.ExpectPresent || (found && string(cur) != string(op.Expect)) {
				return append(results, res), errCASFailed
			}
			if err := tx.Put(op.Key, op.Value); err != nil {
				return nil, fmt.Errorf("operation %d (compare-and-swap): %w", i, err)
			}
			res.OK = true
		case wire.KVList:
			limit := int(op.Limit)
			if limit == 0 {
				limit = defaultListLimit
			}
			limit = min(limit, maxListLimit)
			size := 0
			err := tx.Scan(op.Key, op.After, func(key string, value []byte) bool {
				if len(res.Entries) == limit || (size > 0 && size+len(key)+len(value) > maxListBytes) {
					res.Next = res.Entries[len(res.Entries)-1].Key
					return false
				}
				size += len(key) + len(value)
				res.Entries = append(res.Entries, wire.KVEntry{Key: key, Value: value})
				return true
			})
			if err != nil {
				return nil, fmt.Errorf("operation %d (list): %w", i, err)
			}
			res.OK = true
		default:
			return nil, fmt.Errorf("operation %d: unknown kind %d", i, op.Kind)
		}
		results = append(results, res)
	}
	return results, nil
}
