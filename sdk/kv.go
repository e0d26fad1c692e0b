package sdk

import (
	"errors"
	"fmt"
	"strings"

	"github.com/crosscast/crosscast/sdk/wire"
)

// The kv capability's operations and results.
type (
	KVOp     = wire.KVOp
	KVResult = wire.KVResult
	KVEntry  = wire.KVEntry
)

// The kinds of KVOp.
const (
	KVGet            = wire.KVGet
	KVPut            = wire.KVPut
	KVDelete         = wire.KVDelete
	KVCompareAndSwap = wire.KVCompareAndSwap
	KVList           = wire.KVList
)

// ErrKVConflict is returned by KV.Do when a compare-and-swap did not hold: nothing of the request was written.
var ErrKVConflict = errors.New("kv: compare-and-swap failed")

// KV is the plugin's key-value store (request "kv" in Manifest.Capabilities; the operator sets a quota). Each
// workspace has its own space, per plugin: a call made for a workspace sees only that workspace's keys. It is
// durable: a write returns once it is on disk.
var KV kvStore

type kvStore struct{}

// Get returns key's value and whether it exists.
func (kvStore) Get(key string) ([]byte, bool, error) {
	res, err := KV.Do(KVOp{Kind: KVGet, Key: key})
	if err != nil {
		return nil, false, err
	}
	return res[0].Value, res[0].OK, nil
}

// Put sets key to value.
func (kvStore) Put(key string, value []byte) error {
	_, err := KV.Do(KVOp{Kind: KVPut, Key: key, Value: value})
	return err
}

// Delete removes key; a missing key is not an error.
func (kvStore) Delete(key string) error {
	_, err := KV.Do(KVOp{Kind: KVDelete, Key: key})
	return err
}

// CompareAndSwap sets key to value if it holds old now, or, with old == nil, if it does not exist; swapped says
// whether it did. Use it for counters and leases that several instances of the plugin share.
func (kvStore) CompareAndSwap(key string, old, value []byte) (swapped bool, err error) {
	_, err = KV.Do(KVOp{Kind: KVCompareAndSwap, Key: key, Value: value, ExpectPresent: old != nil, Expect: old})
	if err == ErrKVConflict {
		return false, nil
	}
	return err == nil, err
}

// List returns up to limit entries whose keys start with prefix, in key order, after the key after ("" for the
// first page); next is the after of the following page, "" at the end.
func (kvStore) List(prefix, after string, limit int) (entries []KVEntry, next string, err error) {
	if limit < 0 {
		limit = 0
	}
	res, err := KV.Do(KVOp{Kind: KVList, Key: prefix, After: after, Limit: uint32(limit)})
	if err != nil {
		return nil, "", err
	}
	return res[0].Entries, res[0].Next, nil
}

// Do runs ops as one transaction: each sees the writes of those before it, and all writes land together. When a
// compare-and-swap fails, nothing is written and Do returns ErrKVConflict with the results up to that operation.
func (kvStore) Do(ops ...KVOp) ([]KVResult, error) {
	if len(ops) == 0 {
		return nil, nil
	}
	q := wire.KVRequest{Ops: ops}
	r, err := callCapability(capKV, callKV, q.Encode)
	if err != nil {
		return nil, err
	}
	a, err := wire.DecodeKVAnswer(r)
	if err != nil {
		return nil, err
	}
	for i, res := range a.Results {
		if i < len(ops) && ops[i].Kind == KVCompareAndSwap && !res.OK {
			return a.Results, ErrKVConflict
		}
	}
	if len(a.Results) != len(ops) {
		return a.Results, fmt.Errorf("kv: the host answered %d of %d operations", len(a.Results), len(ops))
	}
	return a.Results, nil
}

// IsKVQuotaExceeded reports whether err is the host's refusal of a write that would take the space over its
// quota (nothing of that request was written): make room, or ask the operator for a bigger kv_quota.
func IsKVQuotaExceeded(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "kv: quota")
}
