package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/crosscast/crosscast/core/errs"
	"github.com/hashicorp/go-hclog"
	bolt "go.etcd.io/bbolt"
)

// kvOp is one write of a test sequence: a put, or a delete when del is set.
type kvOp struct {
	del        bool
	key, value string
}

func kvPut(key, value string) kvOp { return kvOp{key: key, value: value} }
func kvDel(key string) kvOp        { return kvOp{del: true, key: key} }

func (o kvOp) apply(t *PluginKVTx) error {
	if o.del {
		return t.Delete(o.key)
	}
	return t.Put(o.key, []byte(o.value))
}

// kvState is what a space holds, as read back through the API.
type kvState struct {
	data  map[string]string
	usage int64
	keys  int64
}

// readKV reads a whole space in a read-only transaction.
func readKV(t testing.TB, s *Store, workspace, plugin string) kvState {
	t.Helper()
	st := kvState{data: map[string]string{}}
	err := s.ViewPluginKV(context.Background(), workspace, plugin, func(tx *PluginKVTx) error {
		st.usage, st.keys = tx.Usage(), tx.Len()
		return tx.Scan("", "", func(k string, v []byte) bool {
			st.data[k] = string(v)
			return true
		})
	})
	if err != nil {
		t.Fatalf("ViewPluginKV(%q, %q): %v", workspace, plugin, err)
	}
	return st
}

// modelState is the state a space must hold after the writes that built m.
func modelState(m map[string]string) kvState {
	st := kvState{data: map[string]string{}}
	for k, v := range m {
		st.data[k] = v
		st.usage += int64(len(k) + len(v))
		st.keys++
	}
	return st
}

// storedSpace reads a space straight from the workspace's bbolt file. It fails the test if meta/usage and meta/keys
// disagree with the data bucket, and reports whether the space's buckets exist at all.
func storedSpace(t testing.TB, s *Store, workspace, plugin string) (exists bool) {
	t.Helper()
	db, err := s.Workspace(workspace)
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		top := tx.Bucket(bucketPluginKV)
		if top == nil || top.Bucket([]byte(plugin)) == nil {
			return nil
		}
		exists = true
		space := top.Bucket([]byte(plugin))
		var usage, keys uint64
		err := space.Bucket(bucketPluginKVData).ForEach(func(k, v []byte) error {
			usage += uint64(len(k) + len(v))
			keys++
			return nil
		})
		if err != nil {
			return err
		}
		meta := space.Bucket(bucketPluginKVMeta)
		gotUsage, gotKeys := meta.Get(keyPluginKVUsage), meta.Get(keyPluginKVKeys)
		if len(gotUsage) != 8 || len(gotKeys) != 8 {
			return fmt.Errorf("meta holds usage %x, keys %x: want 8 bytes each", gotUsage, gotKeys)
		}
		if u, n := binary.BigEndian.Uint64(gotUsage), binary.BigEndian.Uint64(gotKeys); u != usage || n != keys {
			return fmt.Errorf("meta says usage %d, keys %d; data holds %d bytes in %d keys", u, n, usage, keys)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("stored space %q of workspace %q: %v", plugin, workspace, err)
	}
	return exists
}

func openKVTest(t testing.TB) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	s := openTest(t, dir)
	mustCreateWorkspaces(t, s, "acme", "globex")
	return s, dir
}

func TestPluginKVWrites(t *testing.T) {
	tests := []struct {
		name   string
		plugin string   // "" means "shop"
		txs    [][]kvOp // each slice is one UpdatePluginKV
		want   map[string]string
		// usage and keys are spelled out (not derived from want) so that the test states the accounting rule.
		usage, keys int64
	}{
		{name: "nothing", txs: nil, want: map[string]string{}},
		{name: "one put", txs: [][]kvOp{{kvPut("k", "value")}},
			want: map[string]string{"k": "value"}, usage: 6, keys: 1},
		{name: "empty value", txs: [][]kvOp{{kvPut("k", "")}},
			want: map[string]string{"k": ""}, usage: 1, keys: 1},
		{name: "overwrite longer", txs: [][]kvOp{{kvPut("k", "ab")}, {kvPut("k", "abcdef")}},
			want: map[string]string{"k": "abcdef"}, usage: 7, keys: 1},
		{name: "overwrite shorter", txs: [][]kvOp{{kvPut("k", "abcdef")}, {kvPut("k", "a")}},
			want: map[string]string{"k": "a"}, usage: 2, keys: 1},
		{name: "overwrite same size", txs: [][]kvOp{{kvPut("k", "abc")}, {kvPut("k", "xyz")}},
			want: map[string]string{"k": "xyz"}, usage: 4, keys: 1},
		{name: "overwrite in one tx", txs: [][]kvOp{{kvPut("k", "a"), kvPut("k", "abc"), kvPut("k", "ab")}},
			want: map[string]string{"k": "ab"}, usage: 3, keys: 1},
		{name: "delete", txs: [][]kvOp{{kvPut("a", "1"), kvPut("bb", "22")}, {kvDel("a")}},
			want: map[string]string{"bb": "22"}, usage: 4, keys: 1},
		{name: "delete absent", txs: [][]kvOp{{kvPut("a", "1")}, {kvDel("zz")}},
			want: map[string]string{"a": "1"}, usage: 2, keys: 1},
		{name: "delete in a space never written", txs: [][]kvOp{{kvDel("a")}}, want: map[string]string{}},
		{name: "put then delete in one tx", txs: [][]kvOp{{kvPut("a", "1"), kvPut("b", "2"), kvDel("a")}},
			want: map[string]string{"b": "2"}, usage: 2, keys: 1},
		{name: "delete then put again", txs: [][]kvOp{{kvPut("a", "1")}, {kvDel("a"), kvPut("a", "123")}},
			want: map[string]string{"a": "123"}, usage: 4, keys: 1},
		{name: "delete everything", txs: [][]kvOp{{kvPut("a", "1"), kvPut("b", "2")}, {kvDel("a"), kvDel("b"), kvDel("a")}},
			want: map[string]string{}, usage: 0, keys: 0},
		{name: "binary key and value", txs: [][]kvOp{{kvPut("\x00\xff", "\x00\x01\x02")}},
			want: map[string]string{"\x00\xff": "\x00\x01\x02"}, usage: 5, keys: 1},
		{name: "longest key and plugin name", plugin: strings.Repeat("p", maxPluginName), txs: [][]kvOp{{kvPut(strings.Repeat("k", MaxPluginKVKey), "v")}},
			want: map[string]string{strings.Repeat("k", MaxPluginKVKey): "v"}, usage: MaxPluginKVKey + 1, keys: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openKVTest(t)
			ctx := context.Background()
			plugin := tt.plugin
			if plugin == "" {
				plugin = "shop"
			}
			for i, ops := range tt.txs {
				err := s.UpdatePluginKV(ctx, "acme", plugin, func(tx *PluginKVTx) error {
					for _, op := range ops {
						if err := op.apply(tx); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					t.Fatalf("tx %d: %v", i, err)
				}
			}
			got := readKV(t, s, "acme", plugin)
			want := kvState{data: tt.want, usage: tt.usage, keys: tt.keys}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("space holds %+v, want %+v", got, want)
			}
			if model := modelState(tt.want); model.usage != tt.usage || model.keys != tt.keys {
				t.Fatalf("test case is inconsistent: want implies usage %d, keys %d", model.usage, model.keys)
			}
			storedSpace(t, s, "acme", plugin)
			for k, v := range tt.want {
				err := s.ViewPluginKV(ctx, "acme", plugin, func(tx *PluginKVTx) error {
					if got, ok := tx.Get(k); !ok || string(got) != v {
						return fmt.Errorf("Get(%q) = %q, %v; want %q, true", k, got, ok, v)
					}
					return nil
				})
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
}

func TestPluginKVGet(t *testing.T) {
	s, _ := openKVTest(t)
	ctx := context.Background()
	err := s.UpdatePluginKV(ctx, "acme", "shop", func(tx *PluginKVTx) error {
		if v, ok := tx.Get("k"); ok || v != nil {
			return fmt.Errorf("Get in an empty space = %q, %v", v, ok)
		}
		buf := []byte("first")
		if err := tx.Put("k", buf); err != nil {
			return err
		}
		copy(buf, "XXXXX") // the caller may reuse its buffer
		v, ok := tx.Get("k")
		if !ok || string(v) != "first" {
			return fmt.Errorf("Get after Put in the same tx = %q, %v; want \"first\", true", v, ok)
		}
		copy(v, "YYYYY") // the copy is the caller's
		if again, _ := tx.Get("k"); string(again) != "first" {
			return fmt.Errorf("changing Get's result changed the stored value to %q", again)
		}
		if err := tx.Put("empty", nil); err != nil {
			return err
		}
		if v, ok := tx.Get("empty"); !ok || len(v) != 0 {
			return fmt.Errorf("Get of an empty value in the same tx = %q, %v; want \"\", true", v, ok)
		}
		if err := tx.Delete("k"); err != nil {
			return err
		}
		if v, ok := tx.Get("k"); ok {
			return fmt.Errorf("Get after Delete in the same tx = %q, true", v)
		}
		return tx.Put("k", []byte("second"))
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.ViewPluginKV(ctx, "acme", "shop", func(tx *PluginKVTx) error {
		for _, c := range []struct {
			key, want string
			ok        bool
		}{{"k", "second", true}, {"empty", "", true}, {"absent", "", false}, {"", "", false},
			{strings.Repeat("k", MaxPluginKVKey+1), "", false}} {
			v, ok := tx.Get(c.key)
			if ok != c.ok || string(v) != c.want || (ok && v == nil) {
				return fmt.Errorf("Get(%.10q) = %q, %v; want %q, %v", c.key, v, ok, c.want, c.ok)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestPluginKVScan(t *testing.T) {
	s, _ := openKVTest(t)
	ctx := context.Background()
	keys := []string{"a", "a/1", "a/2", "a/3", "ab", "b", "b/1", "\xff"}
	err := s.UpdatePluginKV(ctx, "acme", "shop", func(tx *PluginKVTx) error {
		for _, k := range keys {
			if err := tx.Put(k, []byte("v:"+k)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		prefix, after string
		limit         int // fn returns false after this many keys; 0 = never
		want          []string
	}{
		{name: "all", want: keys},
		{name: "prefix", prefix: "a/", want: []string{"a/1", "a/2", "a/3"}},
		{name: "prefix that is a key", prefix: "a", want: []string{"a", "a/1", "a/2", "a/3", "ab"}},
		{name: "after a key", prefix: "a/", after: "a/1", want: []string{"a/2", "a/3"}},
		{name: "after an absent key", prefix: "a/", after: "a/15", want: []string{"a/2", "a/3"}},
		{name: "after the last key", prefix: "a/", after: "a/3", want: nil},
		{name: "after before the prefix", prefix: "b", after: "a/2", want: []string{"b", "b/1"}},
		{name: "after past the prefix", prefix: "a", after: "b", want: nil},
		{name: "after without prefix", after: "ab", want: []string{"b", "b/1", "\xff"}},
		{name: "no match", prefix: "c", want: nil},
		{name: "early stop", limit: 2, want: []string{"a", "a/1"}},
		{name: "early stop with prefix and after", prefix: "a", after: "a", limit: 1, want: []string{"a/1"}},
		{name: "high byte prefix", prefix: "\xff", want: []string{"\xff"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, mode := range []string{"view", "update"} {
				var got []string
				scan := func(tx *PluginKVTx) error {
					got = nil // an update's function may run more than once
					return tx.Scan(tt.prefix, tt.after, func(k string, v []byte) bool {
						if string(v) != "v:"+k {
							t.Errorf("%s: value of %q is %q", mode, k, v)
						}
						v[0] = 'X' // a copy: must not reach the file or the next reader
						got = append(got, k)
						return tt.limit == 0 || len(got) < tt.limit
					})
				}
				var err error
				if mode == "view" {
					err = s.ViewPluginKV(ctx, "acme", "shop", scan)
				} else {
					err = s.UpdatePluginKV(ctx, "acme", "shop", scan)
				}
				if err != nil {
					t.Fatalf("%s: %v", mode, err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("%s: Scan(%q, %q) visited %q, want %q", mode, tt.prefix, tt.after, got, tt.want)
				}
			}
		})
	}
	if got := readKV(t, s, "acme", "shop"); got.data["a"] != "v:a" {
		t.Errorf("a scan's callback changed a stored value: %q", got.data["a"])
	}
}

func TestPluginKVScanSeesWrites(t *testing.T) {
	s, _ := openKVTest(t)
	ctx := context.Background()
	err := s.UpdatePluginKV(ctx, "acme", "shop", func(tx *PluginKVTx) error {
		for i := range 200 {
			if err := tx.Put(fmt.Sprintf("q/%03d", i), []byte("v")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// One tx writes ahead of the scan, then the callback deletes every key it sees and writes ahead of the cursor
	// (over keys committed to pages, not only in-memory nodes): each live key must be visited exactly once, keys
	// added ahead must be seen, keys deleted ahead must not, and the totals must stay exact.
	var visited []string
	err = s.UpdatePluginKV(ctx, "acme", "shop", func(tx *PluginKVTx) error {
		visited = visited[:0] // fn may run more than once
		if err := tx.Put("q/050x", []byte("new")); err != nil {
			return err
		}
		if err := tx.Delete("q/100"); err != nil {
			return err
		}
		return tx.Scan("q/", "", func(k string, _ []byte) bool {
			visited = append(visited, k)
			if err := tx.Delete(k); err != nil {
				t.Error(err)
			}
			switch k {
			case "q/010": // just ahead, in the same page: seen
				if err := tx.Put("q/010a", []byte("near")); err != nil {
					t.Error(err)
				}
			case "q/011": // deleted ahead: not seen
				if err := tx.Delete("q/012"); err != nil {
					t.Error(err)
				}
			case "q/150": // past the last key: seen
				if err := tx.Put("q/zzz", []byte("tail")); err != nil {
					t.Error(err)
				}
			}
			return true
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 200 {
		if i != 100 && i != 12 {
			want = append(want, fmt.Sprintf("q/%03d", i))
		}
		switch i {
		case 10:
			want = append(want, "q/010a")
		case 50:
			want = append(want, "q/050x")
		}
	}
	want = append(want, "q/zzz")
	if !reflect.DeepEqual(visited, want) {
		t.Errorf("scan visited %d keys %q..., want %d", len(visited), visited[:min(5, len(visited))], len(want))
	}
	if got := readKV(t, s, "acme", "shop"); got.keys != 0 || got.usage != 0 || len(got.data) != 0 {
		t.Errorf("after deleting every key the space holds %+v", got)
	}
	storedSpace(t, s, "acme", "shop")
}

// TestPluginKVAccounting runs random sequences of puts, overwrites and deletes (some in transactions that fail)
// against a map, and checks the totals inside each transaction, after each commit, in the file's meta bucket, and
// after reopening the store.
func TestPluginKVAccounting(t *testing.T) {
	s, dir := openKVTest(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 11))
	model := map[string]string{}
	errAbort := errors.New("abort")
	for i := range 60 {
		n := 1 + rng.IntN(40)
		ops := make([]kvOp, n)
		for j := range ops {
			key := fmt.Sprintf("k%d", rng.IntN(30))
			if rng.IntN(3) == 0 {
				ops[j] = kvDel(key)
			} else {
				ops[j] = kvPut(key, strings.Repeat("v", rng.IntN(300)))
			}
		}
		fail := rng.IntN(5) == 0
		var next map[string]string
		err := s.UpdatePluginKV(ctx, "acme", "shop", func(tx *PluginKVTx) error {
			next = make(map[string]string, len(model))
			for k, v := range model {
				next[k] = v
			}
			for j, op := range ops {
				if err := op.apply(tx); err != nil {
					return err
				}
				if op.del {
					delete(next, op.key)
				} else {
					next[op.key] = op.value
				}
				want := modelState(next)
				if tx.Usage() != want.usage || tx.Len() != want.keys {
					return fmt.Errorf("tx %d op %d (%+v): usage %d, len %d; want %d, %d",
						i, j, op, tx.Usage(), tx.Len(), want.usage, want.keys)
				}
			}
			if fail {
				return errAbort
			}
			return nil
		})
		if fail {
			if !errors.Is(err, errAbort) {
				t.Fatalf("tx %d: got %v, want the function's error", i, err)
			}
		} else {
			if err != nil {
				t.Fatalf("tx %d: %v", i, err)
			}
			model = next
		}
		if got, want := readKV(t, s, "acme", "shop"), modelState(model); !reflect.DeepEqual(got, want) {
			t.Fatalf("after tx %d (failed: %v): space holds %d keys/%d bytes, want %d/%d",
				i, fail, got.keys, got.usage, want.keys, want.usage)
		}
		storedSpace(t, s, "acme", "shop")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir)
	if got, want := readKV(t, s, "acme", "shop"), modelState(model); !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopening: space holds %d keys/%d bytes, want %d/%d", got.keys, got.usage, want.keys, want.usage)
	}
	storedSpace(t, s, "acme", "shop")
}

func TestPluginKVRollback(t *testing.T) {
	errAbort := errors.New("abort")
	tests := []struct {
		name  string
		setup []kvOp // committed first, if any
		fn    func(tx *PluginKVTx) error
		want  error // nil: any error
	}{
		{name: "new space", fn: func(tx *PluginKVTx) error {
			if err := tx.Put("a", []byte("1")); err != nil {
				return err
			}
			return errAbort
		}, want: errAbort},
		{name: "existing space", setup: []kvOp{kvPut("a", "1"), kvPut("b", "22")}, fn: func(tx *PluginKVTx) error {
			for _, op := range []kvOp{kvPut("a", "longer"), kvDel("b"), kvPut("c", "3")} {
				if err := op.apply(tx); err != nil {
					return err
				}
			}
			return errAbort
		}, want: errAbort},
		{name: "failed put", setup: []kvOp{kvPut("a", "1")}, fn: func(tx *PluginKVTx) error {
			if err := tx.Put("b", []byte("2")); err != nil {
				return err
			}
			return tx.Put("", []byte("x"))
		}},
		{name: "panic", setup: []kvOp{kvPut("a", "1")}, fn: func(tx *PluginKVTx) error {
			if err := tx.Delete("a"); err != nil {
				return err
			}
			panic("plugin bug")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openKVTest(t)
			ctx := context.Background()
			model := map[string]string{}
			if tt.setup != nil {
				err := s.UpdatePluginKV(ctx, "acme", "shop", func(tx *PluginKVTx) error {
					for _, op := range tt.setup {
						if err := op.apply(tx); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				for _, op := range tt.setup {
					model[op.key] = op.value
				}
			}
			err := s.UpdatePluginKV(ctx, "acme", "shop", tt.fn)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("UpdatePluginKV = %v, want %v", err, tt.want)
			}
			if got, want := readKV(t, s, "acme", "shop"), modelState(model); !reflect.DeepEqual(got, want) {
				t.Errorf("after a failed tx the space holds %+v, want %+v", got, want)
			}
			if exists := storedSpace(t, s, "acme", "shop"); exists != (tt.setup != nil) {
				t.Errorf("space buckets exist: %v, want %v", exists, tt.setup != nil)
			}
		})
	}
}

// TestPluginKVReadsCreateNothing checks that reading a space never written, in either kind of transaction, leaves
// no bucket behind.
func TestPluginKVReadsCreateNothing(t *testing.T) {
	s, _ := openKVTest(t)
	ctx := context.Background()
	read := func(tx *PluginKVTx) error {
		if _, ok := tx.Get("a"); ok {
			return errors.New("found a key in an empty space")
		}
		if tx.Usage() != 0 || tx.Len() != 0 {
			return fmt.Errorf("empty space has usage %d, len %d", tx.Usage(), tx.Len())
		}
		return tx.Scan("", "", func(k string, _ []byte) bool { return false })
	}
	if err := s.ViewPluginKV(ctx, "acme", "shop", read); err != nil {
		t.Fatal(err)
	}
	err := s.UpdatePluginKV(ctx, "acme", "shop", func(tx *PluginKVTx) error {
		if err := read(tx); err != nil {
			return err
		}
		return tx.Delete("a")
	})
	if err != nil {
		t.Fatal(err)
	}
	db, _ := s.Workspace("acme")
	_ = db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketPluginKV) != nil {
			t.Errorf("reads created the %s bucket", bucketPluginKV)
		}
		return nil
	})
}

func TestPluginKVIsolation(t *testing.T) {
	s, dir := openKVTest(t)
	ctx := context.Background()
	spaces := []struct{ workspace, plugin string }{
		{"acme", "shop"}, {"acme", "crm"}, {"globex", "shop"}, {"globex", "crm"},
	}
	for _, sp := range spaces {
		err := s.UpdatePluginKV(ctx, sp.workspace, sp.plugin, func(tx *PluginKVTx) error {
			if err := tx.Put("shared", []byte(sp.workspace+"/"+sp.plugin)); err != nil {
				return err
			}
			return tx.Put("only-"+sp.plugin, []byte(sp.workspace))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	check := func(t *testing.T, s *Store) {
		t.Helper()
		for _, sp := range spaces {
			want := modelState(map[string]string{"shared": sp.workspace + "/" + sp.plugin, "only-" + sp.plugin: sp.workspace})
			if got := readKV(t, s, sp.workspace, sp.plugin); !reflect.DeepEqual(got, want) {
				t.Errorf("space %s/%s holds %+v, want %+v", sp.workspace, sp.plugin, got, want)
			}
		}
	}
	check(t, s)

	// Dropping one space leaves the other plugin's and the other workspace's intact.
	if err := s.DeletePluginKV(ctx, "acme", "shop"); err != nil {
		t.Fatal(err)
	}
	if got := readKV(t, s, "acme", "shop"); got.keys != 0 || got.usage != 0 || len(got.data) != 0 {
		t.Errorf("deleted space holds %+v", got)
	}
	spaces = spaces[1:]
	check(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check(t, openTest(t, dir))
}

func TestPluginKVDelete(t *testing.T) {
	s, _ := openKVTest(t)
	ctx := context.Background()
	if err := s.DeletePluginKV(ctx, "acme", "shop"); err != nil {
		t.Fatalf("deleting a space never written: %v", err)
	}
	fill := func(n int) {
		err := s.UpdatePluginKV(ctx, "acme", "shop", func(tx *PluginKVTx) error {
			for i := range n {
				if err := tx.Put(fmt.Sprintf("k%04d", i), []byte("value")); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	fill(1000)
	if err := s.DeletePluginKV(ctx, "acme", "shop"); err != nil {
		t.Fatal(err)
	}
	if storedSpace(t, s, "acme", "shop") {
		t.Error("space buckets remain after DeletePluginKV")
	}
	if err := s.DeletePluginKV(ctx, "acme", "shop"); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}
	// The space starts afresh: totals count only the new writes.
	fill(2)
	if got, want := readKV(t, s, "acme", "shop"), modelState(map[string]string{"k0000": "value", "k0001": "value"}); !reflect.DeepEqual(got, want) {
		t.Errorf("space written again after its deletion holds %+v, want %+v", got, want)
	}
}

func TestPluginKVErrors(t *testing.T) {
	s, _ := openKVTest(t)
	ctx := context.Background()
	nop := func(*PluginKVTx) error { return nil }
	isInvalid := func(err error) bool { var v *errs.ValidationError; return errors.As(err, &v) }

	calls := []struct {
		name string
		call func(workspace, plugin string) error
	}{
		{"UpdatePluginKV", func(w, p string) error { return s.UpdatePluginKV(ctx, w, p, nop) }},
		{"ViewPluginKV", func(w, p string) error { return s.ViewPluginKV(ctx, w, p, nop) }},
		{"DeletePluginKV", func(w, p string) error { return s.DeletePluginKV(ctx, w, p) }},
	}
	spaces := []struct {
		name, workspace, plugin string
		check                   func(error) bool
	}{
		{"unknown workspace", "initech", "shop", func(err error) bool { return errors.Is(err, errs.ErrNotFound) }},
		{"empty plugin", "acme", "", isInvalid},
		{"plugin name too long", "acme", strings.Repeat("p", maxPluginName+1), isInvalid},
		{"plugin name with slash", "acme", "a/b", isInvalid},
		{"plugin name with NUL", "acme", "a\x00b", isInvalid},
		{"longest plugin name", "acme", strings.Repeat("p", maxPluginName), func(err error) bool { return err == nil }},
	}
	for _, sp := range spaces {
		for _, c := range calls {
			t.Run(sp.name+"/"+c.name, func(t *testing.T) {
				if err := c.call(sp.workspace, sp.plugin); !sp.check(err) {
					t.Errorf("%s(%q, %.10q) = %v", c.name, sp.workspace, sp.plugin, err)
				}
			})
		}
	}

	big := make([]byte, MaxPluginKVValue+1)
	writes := []struct {
		name    string
		write   func(tx *PluginKVTx) error
		check   func(error) bool
		context string // a word the message must hold
	}{
		{"empty key", func(tx *PluginKVTx) error { return tx.Put("", []byte("v")) }, isInvalid, "key"},
		{"key too long", func(tx *PluginKVTx) error { return tx.Put(strings.Repeat("k", MaxPluginKVKey+1), nil) }, isInvalid, "key"},
		{"value too large", func(tx *PluginKVTx) error { return tx.Put("k", big) }, isInvalid, "value"},
		{"largest value", func(tx *PluginKVTx) error { return tx.Put("k", big[:MaxPluginKVValue]) }, func(err error) bool { return err == nil }, ""},
		{"delete empty key", func(tx *PluginKVTx) error { return tx.Delete("") }, isInvalid, "key"},
		{"delete key too long", func(tx *PluginKVTx) error { return tx.Delete(strings.Repeat("k", MaxPluginKVKey+1)) }, isInvalid, "key"},
	}
	for _, w := range writes {
		t.Run(w.name, func(t *testing.T) {
			var got error
			err := s.UpdatePluginKV(ctx, "acme", "limits", func(tx *PluginKVTx) error {
				got = w.write(tx)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !w.check(got) || (got != nil && !strings.Contains(got.Error(), w.context)) {
				t.Errorf("got %v", got)
			}
		})
	}
	if got := readKV(t, s, "acme", "limits"); got.keys != 1 || got.usage != 1+MaxPluginKVValue {
		t.Errorf("after the limit checks the space holds %d keys, %d bytes; want only the largest value", got.keys, got.usage)
	}

	t.Run("read-only tx", func(t *testing.T) {
		err := s.ViewPluginKV(ctx, "acme", "limits", func(tx *PluginKVTx) error {
			if err := tx.Put("k", []byte("v")); !errors.Is(err, errPluginKVReadOnly) {
				return fmt.Errorf("Put = %v, want a read-only error", err)
			}
			if err := tx.Delete("k"); !errors.Is(err, errPluginKVReadOnly) {
				return fmt.Errorf("Delete = %v, want a read-only error", err)
			}
			if err := tx.Put("new", nil); !errors.Is(err, errPluginKVReadOnly) {
				return fmt.Errorf("Put = %v, want a read-only error", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := readKV(t, s, "acme", "limits"); got.keys != 1 || len(got.data["k"]) != MaxPluginKVValue {
			t.Errorf("a read-only tx changed the space: %d keys", got.keys)
		}
	})

	t.Run("tx used after it ended", func(t *testing.T) {
		var kept *PluginKVTx
		if err := s.UpdatePluginKV(ctx, "acme", "limits", func(tx *PluginKVTx) error { kept = tx; return nil }); err != nil {
			t.Fatal(err)
		}
		if err := kept.Put("k", nil); !errors.Is(err, errPluginKVDone) {
			t.Errorf("Put = %v", err)
		}
		if err := kept.Scan("", "", func(string, []byte) bool { return true }); !errors.Is(err, errPluginKVDone) {
			t.Errorf("Scan = %v", err)
		}
		if _, ok := kept.Get("k"); ok {
			t.Error("Get found a key after the tx ended")
		}
	})

	t.Run("cancelled context", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.UpdatePluginKV(cctx, "acme", "shop", nop); !errors.Is(err, context.Canceled) {
			t.Errorf("UpdatePluginKV = %v", err)
		}
		if err := s.ViewPluginKV(cctx, "acme", "shop", nop); !errors.Is(err, context.Canceled) {
			t.Errorf("ViewPluginKV = %v", err)
		}
	})
}

// TestPluginKVConcurrentCounter increments one counter from many goroutines through the group committer, mixed
// with transactions that increment and then fail (and so must not count). Functions rerun after a neighbour's
// failure must read the counter afresh: no update is lost or counted twice.
func TestPluginKVConcurrentCounter(t *testing.T) {
	s, _ := openKVTest(t)
	ctx := context.Background()
	const workers, increments, failers = 16, 50, 4
	errAbort := errors.New("abort")
	incr := func(tx *PluginKVTx) error {
		var n uint64
		if v, ok := tx.Get("counter"); ok {
			if len(v) != 8 {
				return fmt.Errorf("counter holds %d bytes", len(v))
			}
			n = binary.BigEndian.Uint64(v)
		}
		return tx.Put("counter", binary.BigEndian.AppendUint64(nil, n+1))
	}
	var wg sync.WaitGroup
	var runs, failed atomic.Int64
	for w := range workers + failers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range increments {
				err := s.UpdatePluginKV(ctx, "acme", "counter", func(tx *PluginKVTx) error {
					runs.Add(1)
					if err := incr(tx); err != nil {
						return err
					}
					if w >= workers {
						return errAbort
					}
					return nil
				})
				switch {
				case w >= workers && errors.Is(err, errAbort):
					failed.Add(1)
				case err != nil:
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() != failers*increments {
		t.Errorf("%d failing transactions reported their error, want %d", failed.Load(), failers*increments)
	}
	got := readKV(t, s, "acme", "counter")
	if n := binary.BigEndian.Uint64([]byte(got.data["counter"])); n != workers*increments {
		t.Errorf("counter = %d after %d increments", n, workers*increments)
	}
	if got.keys != 1 || got.usage != int64(len("counter")+8) {
		t.Errorf("space holds %d keys, %d bytes; want 1, %d", got.keys, got.usage, len("counter")+8)
	}
	t.Logf("%d function runs for %d transactions", runs.Load(), (workers+failers)*increments)
}

func BenchmarkPluginKVPut(b *testing.B) {
	value := bytes.Repeat([]byte("v"), benchValueSize)
	for _, fsync := range []bool{true, false} {
		name := "fsync"
		if !fsync {
			name = "nosync"
		}
		b.Run(name, func(b *testing.B) {
			s := benchKVStore(b, fsync)
			ctx := context.Background()
			var next atomic.Uint64
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					key := fmt.Sprintf("key-%016x", next.Add(1))
					err := s.UpdatePluginKV(ctx, "bench", "shop", func(tx *PluginKVTx) error { return tx.Put(key, value) })
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			reportWrites(b)
		})
	}
}

func BenchmarkPluginKVGet(b *testing.B) {
	const keys = 10_000
	s := benchKVStore(b, false)
	ctx := context.Background()
	value := bytes.Repeat([]byte("v"), benchValueSize)
	err := s.UpdatePluginKV(ctx, "bench", "shop", func(tx *PluginKVTx) error {
		for i := range keys {
			if err := tx.Put(fmt.Sprintf("key-%016x", i), value); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	var next atomic.Uint64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			key := fmt.Sprintf("key-%016x", next.Add(1)%keys)
			err := s.ViewPluginKV(ctx, "bench", "shop", func(tx *PluginKVTx) error {
				if v, ok := tx.Get(key); !ok || len(v) != benchValueSize {
					return fmt.Errorf("Get(%q) = %d bytes, %v", key, len(v), ok)
				}
				return nil
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
}

// benchKVStore opens a store in a temp dir with one workspace, "bench".
func benchKVStore(b *testing.B, fsync bool) *Store {
	b.Helper()
	ctx := context.Background()
	s, err := Open(ctx, Options{Dir: b.TempDir(), Fsync: fsync, Logger: hclog.NewNullLogger()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	if err := s.CreateWorkspace(ctx, testWorkspace("bench")); err != nil {
		b.Fatal(err)
	}
	return s
}

func TestPluginKVScanReverse(t *testing.T) {
	s := openTest(t, t.TempDir())
	t.Cleanup(func() { _ = s.Close() })
	mustCreateWorkspaces(t, s, "acme")
	ctx := context.Background()
	keys := []string{"a", "msg/1", "msg/2", "msg/3", "msh", "\xff", "\xff\xff"}
	if err := s.UpdatePluginKV(ctx, "acme", "p", func(tx *PluginKVTx) error {
		for _, k := range keys {
			if err := tx.Put(k, []byte("v"+k)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		prefix, before string
		limit          int
		want           []string
	}{
		{"msg/", "", 0, []string{"msg/3", "msg/2", "msg/1"}},
		{"msg/", "msg/3", 0, []string{"msg/2", "msg/1"}},
		{"msg/", "msg/25", 0, []string{"msg/2", "msg/1"}},
		{"msg/", "zzz", 0, []string{"msg/3", "msg/2", "msg/1"}},
		{"msg/", "msg/", 0, nil},
		{"msg/", "a", 0, nil},
		{"msg/", "", 2, []string{"msg/3", "msg/2"}},
		{"", "", 0, []string{"\xff\xff", "\xff", "msh", "msg/3", "msg/2", "msg/1", "a"}},
		{"\xff", "", 0, []string{"\xff\xff", "\xff"}},
		{"nothing", "", 0, nil},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%q before %q", c.prefix, c.before), func(t *testing.T) {
			var got []string
			err := s.ViewPluginKV(ctx, "acme", "p", func(tx *PluginKVTx) error {
				return tx.ScanReverse(c.prefix, c.before, func(k string, v []byte) bool {
					if string(v) != "v"+k {
						t.Errorf("value of %q is %q", k, v)
					}
					got = append(got, k)
					return c.limit == 0 || len(got) < c.limit
				})
			})
			if err != nil || !slices.Equal(got, c.want) {
				t.Fatalf("got %q, %v; want %q", got, err, c.want)
			}
		})
	}
	// Deleting while scanning backwards neither skips nor repeats keys.
	var seen []string
	if err := s.UpdatePluginKV(ctx, "acme", "p", func(tx *PluginKVTx) error {
		seen = nil
		return tx.ScanReverse("msg/", "", func(k string, _ []byte) bool {
			seen = append(seen, k)
			return tx.Delete(k) == nil
		})
	}); err != nil || !slices.Equal(seen, []string{"msg/3", "msg/2", "msg/1"}) {
		t.Fatalf("deleting scan saw %q, %v", seen, err)
	}
}
