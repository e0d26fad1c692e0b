package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/events"
	"github.com/crosscast/crosscast/core/segments"
	"github.com/hashicorp/go-hclog"
	bolt "go.etcd.io/bbolt"
)

// indexReader is what the segment index reads through contacts.Tx.
type indexReader = segments.RebuildTx

func testEvent(contact, id string, typ events.Type, name string, at time.Time) events.Event {
	return events.Event{MessageID: id, Type: typ, Name: name, ContactID: contact, UserID: "u-" + contact,
		Properties: []byte(`{"name":"not this one","type":"track"}`), Timestamp: at, ReceivedAt: at}
}

func putTestEvents(t testing.TB, s *Store, es ...events.Event) {
	t.Helper()
	err := s.UpdateContacts(context.Background(), "acme", func(tx contacts.Tx) error {
		for _, e := range es {
			if err := tx.PutEvent(e, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// viewIndex runs fn with the index reads of a ViewContacts transaction, reached as the segment index reaches them:
// by asserting the contacts.Tx.
func viewIndex(t *testing.T, s *Store, fn func(r indexReader)) {
	t.Helper()
	err := s.ViewContacts(context.Background(), "acme", func(tx contacts.Tx) error {
		r, ok := tx.(indexReader)
		if !ok {
			t.Fatalf("%T does not have the index reads", tx)
		}
		fn(r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// tracked is one track event as the segment index sees it.
type tracked struct {
	At   int64
	Name string
}

// contactTracks is a contact's track events, sorted by time then name.
type contactTracks struct {
	Contact string
	Events  []tracked
}

func sortTracked(es []tracked) {
	slices.SortFunc(es, func(a, b tracked) int {
		if a.At != b.At {
			if a.At < b.At {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
}

// scanTracks collects ScanTrackEvents' output, each contact's events sorted, and checks the contacts come in id
// order, once each.
func scanTracks(t *testing.T, s *Store) []contactTracks {
	t.Helper()
	out := []contactTracks{}
	viewIndex(t, s, func(r indexReader) {
		table, err := r.TrackEventNames()
		if err != nil {
			t.Fatalf("TrackEventNames: %v", err)
		}
		if err := r.ScanTrackEvents(func(c string, at []int64, codes []uint32) bool {
			if len(at) != len(codes) {
				t.Errorf("%s: %d times and %d names", c, len(at), len(codes))
			}
			if n := len(out); n > 0 && out[n-1].Contact >= c {
				t.Errorf("contact %q after %q: not in id order", c, out[n-1].Contact)
			}
			es := make([]tracked, len(at))
			for i := range at {
				if int(codes[i]) >= len(table) {
					t.Fatalf("%s: name code %d, of %d names", c, codes[i], len(table))
				}
				es[i] = tracked{at[i], table[codes[i]]}
			}
			sortTracked(es)
			out = append(out, contactTracks{c, es})
			return true
		}); err != nil {
			t.Fatalf("ScanTrackEvents: %v", err)
		}
	})
	return out
}

// decodeTracks is the reference: every value of events/ decoded with encoding/json, the time taken from the key.
func decodeTracks(t *testing.T, db *DB) []contactTracks {
	t.Helper()
	out := []contactTracks{}
	err := db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketEvents).ForEach(func(k, v []byte) error {
			var e events.Event
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("%q: %w", k, err)
			}
			if e.Type != events.Track {
				return nil
			}
			nul := strings.IndexByte(string(k), 0)
			c := string(k[:nul])
			ev := tracked{decodeOrderedTime(k[nul+1 : nul+9]).UnixNano(), e.Name}
			if n := len(out); n > 0 && out[n-1].Contact == c {
				out[n-1].Events = append(out[n-1].Events, ev)
			} else {
				out = append(out, contactTracks{c, []tracked{ev}})
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range out {
		sortTracked(c.Events)
	}
	return out
}

func workspaceDB(t *testing.T, s *Store) *DB {
	t.Helper()
	db, err := s.Workspace("acme")
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// checkChunks checks the shape of track_events: keys <contact> NUL <uint32>, numbered from 0 without gaps, no
// chunk past trackChunkMax. It returns the number of chunks per contact.
func checkChunks(t *testing.T, db *DB) map[string]int {
	t.Helper()
	chunks := map[string]int{}
	err := db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTrackEvents).ForEach(func(k, v []byte) error {
			nul := len(k) - chunkKeySuffix
			if nul < 0 || k[nul] != 0 {
				t.Errorf("key %q is not <contact> NUL <uint32>", k)
				return nil
			}
			c, n := string(k[:nul]), binary.BigEndian.Uint32(k[nul+1:])
			if int(n) != chunks[c] {
				t.Errorf("%q: chunk %d where %d was expected", k, n, chunks[c])
			}
			chunks[c]++
			if len(v) == 0 || len(v) > trackChunkMax {
				t.Errorf("%q: chunk of %d bytes", k, len(v))
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return chunks
}

// checkDigest checks that ScanTrackEvents says what a decode of events/ says, and that track_events is well formed.
func checkDigest(t *testing.T, s *Store) map[string]int {
	t.Helper()
	db := workspaceDB(t, s)
	chunks := checkChunks(t, db)
	got, want := scanTracks(t, s), decodeTracks(t, db)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ScanTrackEvents and events/ disagree:\ngot  %v\nwant %v", got, want)
	}
	return chunks
}

// op is one write of a scenario.
type op struct {
	put        []events.Event
	raw        map[string]string // message id of an event in put -> the encoded value to store instead
	move       [2]string         // from, to
	deleteFrom string
}

func (o op) apply(tx contacts.Tx) error {
	for _, e := range o.put {
		var data []byte
		if r, ok := o.raw[e.MessageID]; ok {
			data = []byte(r)
		}
		if err := tx.PutEvent(e, data); err != nil {
			return err
		}
	}
	if o.move[0] != "" {
		if _, err := tx.MoveEvents(o.move[0], o.move[1]); err != nil {
			return err
		}
	}
	if o.deleteFrom != "" {
		if _, err := tx.DeleteEvents(o.deleteFrom); err != nil {
			return err
		}
	}
	return nil
}

// randomOps writes n random events (track and not, 60 names, times out of order) over a few contacts, moving and
// deleting now and then; contact "heavy" (never deleted) gets enough to fill several chunks.
func randomOps(seed uint64, n int) []op {
	r := rand.New(rand.NewPCG(seed, 1))
	contactIDs := []string{"a", "ab", "b", "c-0001", "c-0002", "heavy", "z", ""}
	types := []events.Type{events.Track, events.Track, events.Track, events.Page, events.Identify, events.Screen}
	var ops []op
	var cur op
	for i := range n {
		c := contactIDs[r.IntN(len(contactIDs))]
		if i%3 == 0 {
			c = "heavy"
		}
		if c == "" {
			c = "x" // the store refuses an empty contact id
		}
		at := fixedTime.Add(time.Duration(r.Int64N(1<<40)-1<<39) * time.Microsecond)
		if r.IntN(50) == 0 {
			at = time.Date(1500+r.IntN(1000), 1, 1, 0, 0, 0, 0, time.UTC)
		}
		cur.put = append(cur.put, testEvent(c, fmt.Sprintf("s%d-m%d", seed, i), types[r.IntN(len(types))],
			fmt.Sprintf("Event %d %s", r.IntN(60), strings.Repeat("é", r.IntN(3))), at))
		switch r.IntN(200) {
		case 0:
			cur.move = [2]string{contactIDs[r.IntN(len(contactIDs)-1)], contactIDs[r.IntN(len(contactIDs)-1)]}
		case 1:
			cur.deleteFrom = contactIDs[r.IntN(len(contactIDs)-3)] // never "heavy"
		}
		if cur.move[0] != "" || cur.deleteFrom != "" || r.IntN(20) == 0 {
			ops = append(ops, cur)
			cur = op{}
		}
	}
	return append(ops, cur)
}

func TestScanTrackEvents(t *testing.T) {
	at := func(s int) time.Time { return fixedTime.Add(time.Duration(s) * time.Second) }
	many := func(contact string, n int, name string) []events.Event {
		var es []events.Event
		for i := range n {
			es = append(es, testEvent(contact, fmt.Sprintf("%s-%s-%d", contact, name, i), events.Track, name, at(n-i)))
		}
		return es
	}
	for _, tc := range []struct {
		name       string
		ops        []op
		want       []contactTracks // nil: only compared with events/
		wantChunks map[string]int  // chunks per contact, when checked
	}{
		{name: "no events", want: []contactTracks{}},
		{
			name: "contacts in id order, times as stored",
			ops: []op{{put: []events.Event{
				testEvent("c2", "m1", events.Track, "Order Completed", at(1)),
				testEvent("c1", "m2", events.Track, "Signed Up", at(5)),
				testEvent("c1", "m3", events.Track, "Order Completed", at(2)),
				testEvent("c10", "m4", events.Track, "Order Completed", at(2)),
			}}},
			want: []contactTracks{
				{"c1", []tracked{{at(2).UnixNano(), "Order Completed"}, {at(5).UnixNano(), "Signed Up"}}},
				{"c10", []tracked{{at(2).UnixNano(), "Order Completed"}}},
				{"c2", []tracked{{at(1).UnixNano(), "Order Completed"}}},
			},
		},
		{
			name: "escaped and unicode names, names as stored",
			ops: []op{{put: []events.Event{
				testEvent("c1", "m\"1\\", events.Track, `say "hi" \ <b>&`, at(1)),
				testEvent("c1", "m2", events.Track, "café ☕ 注文 \U0001F600", at(2)),
				testEvent("c1", "m3", events.Track, "tab\tnew\nline\u2028sep\x01", at(3)),
				testEvent("c1", "m4", events.Track, "bad utf8 \xff", at(4)),
				testEvent("c1", "m5", events.Track, "", at(5)),
			}}},
			want: []contactTracks{{"c1", []tracked{
				{at(1).UnixNano(), `say "hi" \ <b>&`}, {at(2).UnixNano(), "café ☕ 注文 \U0001F600"},
				{at(3).UnixNano(), "tab\tnew\nline\u2028sep\x01"}, {at(4).UnixNano(), "bad utf8 \uFFFD"},
				{at(5).UnixNano(), ""},
			}}},
		},
		{
			name: "other types left out",
			ops: []op{{put: []events.Event{
				testEvent("c1", "m1", events.Page, "Pricing", at(1)),
				testEvent("c1", "m2", events.Identify, "", at(2)),
				testEvent("c1", "m3", events.Track, "Kept", at(3)),
				testEvent("c1", "m4", events.Screen, "Home", at(4)),
				testEvent("c1", "m5", events.Alias, "", at(5)),
				testEvent("c2", "m6", events.Page, "Only Pages", at(5)),
			}}},
			want: []contactTracks{{"c1", []tracked{{at(3).UnixNano(), "Kept"}}}},
		},
		{
			name: "encoded values not in Encode's form: the stored value decides",
			ops: []op{{
				put: []events.Event{
					testEvent("c1", "r1", events.Track, "ignored", at(1)),
					testEvent("c1", "r2", events.Track, "ignored", at(2)),
					testEvent("c1", "r3", events.Track, "ignored", at(3)),
					testEvent("c1", "r4", events.Track, "ignored", at(4)),
					testEvent("c1", "r7", events.Track, "ignored", at(7)),
				},
				raw: map[string]string{
					"r1": `{"type":"track","message_id":"r1","name":"Other Order","timestamp":"2025-03-14T15:09:27Z"}`,
					"r2": `{"message_id":"r2","type":"track","timestamp":"2025-03-14T15:09:28Z","name":"Name Last"}`,
					"r3": `{ "message_id": "r3", "type": "track", "name": "Spaced \u00e9" }`,
					"r4": `{"message_id":"r4","type":"page","name":"Not Track"}`,
					"r7": `{"message_id":"r\u0037","type":"tr\u0061ck","name":"Escaped \/ Type"}`,
				},
			}},
			want: []contactTracks{{"c1", []tracked{
				{at(1).UnixNano(), "Other Order"}, {at(2).UnixNano(), "Name Last"}, {at(3).UnixNano(), "Spaced é"},
				{at(7).UnixNano(), "Escaped / Type"},
			}}},
		},
		{
			name: "extreme times clamped as the events key clamps them",
			ops: []op{{put: []events.Event{
				testEvent("c1", "m1", events.Track, "Old", time.Date(1200, 1, 1, 0, 0, 0, 0, time.UTC)),
				testEvent("c1", "m2", events.Track, "Future", time.Date(9000, 1, 1, 0, 0, 0, 0, time.UTC)),
				testEvent("c1", "m3", events.Track, "Nanos", time.Date(2025, 3, 14, 15, 9, 26, 123456789, time.FixedZone("x", 3600))),
			}}},
			want: []contactTracks{{"c1", []tracked{
				{-1 << 63, "Old"}, {time.Date(2025, 3, 14, 14, 9, 26, 123456789, time.UTC).UnixNano(), "Nanos"}, {1<<63 - 1, "Future"},
			}}},
		},
		{
			name:       "a heavy contact fills several chunks, one at a time or in one transaction",
			ops:        []op{{put: many("heavy", 200, "A")}, {put: many("heavy", 300, "B")}, {put: many("light", 3, "C")}},
			wantChunks: map[string]int{"heavy": 3, "light": 1}, // 500 entries of 9 bytes: 227 to a chunk
		},
		{
			name: "move appends to the survivor's chunks and drops the merged-away contact's",
			ops: []op{
				{put: many("from", 250, "F")},
				{put: many("into", 100, "I")},
				{move: [2]string{"from", "into"}},
				{put: many("from", 1, "Again")},
			},
			wantChunks: map[string]int{"into": 2, "from": 1},
		},
		{
			name: "move to a contact without events, to itself, from a contact without events",
			ops: []op{
				{put: many("from", 5, "F")},
				{move: [2]string{"from", "fresh"}},
				{move: [2]string{"fresh", "fresh"}},
				{move: [2]string{"nobody", "fresh"}},
			},
			wantChunks: map[string]int{"fresh": 1},
		},
		{
			name: "delete drops every chunk; later events start again at chunk 0",
			ops: []op{
				{put: many("gone", 600, "G")},
				{put: many("kept", 2, "K")},
				{deleteFrom: "gone"},
				{deleteFrom: "never-stored"},
				{put: many("kept", 1, "K2")},
			},
			wantChunks: map[string]int{"kept": 1},
		},
		{
			name: "move and delete in the same transaction as puts",
			ops: []op{
				{put: many("a", 300, "A"), move: [2]string{"a", "b"}},
				{put: many("b", 1, "B"), deleteFrom: "a"},
				{put: many("a", 2, "A2"), move: [2]string{"b", "a"}, deleteFrom: "b"},
			},
			wantChunks: map[string]int{"a": 2},
		},
		{name: "random mix, seed 1", ops: randomOps(1, 3000)},
		{name: "random mix, seed 2", ops: randomOps(2, 3000)},
		{name: "random mix, seed 3, one write each", ops: func() []op {
			var out []op
			for _, o := range randomOps(3, 800) {
				for _, e := range o.put {
					out = append(out, op{put: []events.Event{e}})
				}
				out = append(out, op{move: o.move, deleteFrom: o.deleteFrom})
			}
			return out
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := segStore(t)
			for i, o := range tc.ops {
				if err := s.UpdateContacts(context.Background(), "acme", o.apply); err != nil {
					t.Fatalf("op %d: %v", i, err)
				}
			}
			chunks := checkDigest(t, s)
			if tc.want != nil {
				if got := scanTracks(t, s); !reflect.DeepEqual(got, tc.want) {
					t.Errorf("got\n%+v\nwant\n%+v", got, tc.want)
				}
			}
			if tc.wantChunks != nil && !reflect.DeepEqual(chunks, tc.wantChunks) {
				t.Errorf("chunks per contact %v, want %v", chunks, tc.wantChunks)
			}
		})
	}
}

func TestScanTrackEventsStops(t *testing.T) {
	s := segStore(t)
	var es []events.Event
	for i := range 400 { // c0 spans several chunks
		es = append(es, testEvent("c0", fmt.Sprintf("m%d", i), events.Track, "A", fixedTime.Add(time.Duration(i))))
	}
	putTestEvents(t, s, append(es, testEvent("c1", "n1", events.Track, "B", fixedTime))...)
	for _, tc := range []struct {
		name      string
		stopAfter int
		wantCalls int
		wantLast  string
	}{
		{"first contact", 1, 1, "c0"},
		{"second contact", 2, 2, "c1"},
		{"never", 100, 2, "c1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls, last, n := 0, "", 0
			viewIndex(t, s, func(r indexReader) {
				if err := r.ScanTrackEvents(func(c string, at []int64, _ []uint32) bool {
					calls, last, n = calls+1, c, len(at)
					return calls < tc.stopAfter
				}); err != nil {
					t.Fatal(err)
				}
			})
			if calls != tc.wantCalls || last != tc.wantLast {
				t.Errorf("fn called %d times, last with %q; want %d, %q", calls, last, tc.wantCalls, tc.wantLast)
			}
			if last == "c0" && n != 400 {
				t.Errorf("c0 came with %d events, want all 400 of its chunks", n)
			}
		})
	}
}

func TestTrackDigestCorruption(t *testing.T) {
	code := func(n uint32) string { return string(binary.BigEndian.AppendUint32(nil, n)) }
	ts := orderedTime(fixedTime)
	entry := string(ts[:]) + "\x01" // time and code 1 ("A")
	for _, tc := range []struct {
		name    string
		names   map[string]string // event_names rows written by hand (added to "A" -> code 1)
		chunks  map[string]string // track_events rows written by hand
		wantErr string
	}{
		{"truncated entry", nil, map[string]string{"c1\x00" + code(0): entry + string(ts[:4])}, `"c1\x00\x00\x00\x00\x00": truncated entry at byte 9`},
		{"time without code", nil, map[string]string{"c1\x00" + code(0): string(ts[:])}, "truncated entry at byte 0"},
		{"unfinished uvarint", nil, map[string]string{"c1\x00" + code(0): string(ts[:]) + "\x80\x80"}, "truncated entry"},
		{"unknown code", nil, map[string]string{"c1\x00" + code(0): string(ts[:]) + "\x07"}, "unknown event name code 7"},
		{"code past 32 bits", nil, map[string]string{"c1\x00" + code(0): string(ts[:]) + "\xff\xff\xff\xff\xff\xff\x01"}, "unknown event name code"},
		{"key without NUL and chunk number", nil, map[string]string{"c1": entry}, `corrupt track_events key "c1"`},
		{"key without NUL before the chunk number", nil, map[string]string{"c1xyz\x01": entry}, `corrupt track_events key "c1xyz\x01"`},
		{"name code not 4 bytes", map[string]string{"B": "\x01"}, nil, `corrupt event name code for "B"`},
		{"codes not dense", map[string]string{"B": code(5)}, nil, "not dense"},
		{"two names, one code", map[string]string{"B": code(1)}, nil, "not dense"},
		{"a stored name with the empty name's code", map[string]string{"B": code(0)}, nil, "not dense"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := segStore(t)
			putTestEvents(t, s, testEvent("c0", "m0", events.Track, "A", fixedTime))
			err := workspaceDB(t, s).Update(context.Background(), func(tx *bolt.Tx) error {
				for k, v := range tc.names {
					if err := tx.Bucket(bucketEventNames).Put([]byte(k), []byte(v)); err != nil {
						return err
					}
				}
				for k, v := range tc.chunks {
					if err := tx.Bucket(bucketTrackEvents).Put([]byte(k), []byte(v)); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			viewIndex(t, s, func(r indexReader) {
				err := r.ScanTrackEvents(func(string, []int64, []uint32) bool { return true })
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("got %v, want an error containing %q", err, tc.wantErr)
				}
			})
		})
	}

	// Writes that meet a corrupt chunk key fail rather than guess.
	s := segStore(t)
	err := workspaceDB(t, s).Update(context.Background(), func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTrackEvents).Put([]byte("c1\x00\x00\x00"), []byte(entry))
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		fn   func(tx contacts.Tx) error
	}{
		{"put", func(tx contacts.Tx) error {
			return tx.PutEvent(testEvent("c1", "m1", events.Track, "A", fixedTime), nil)
		}},
		{"move", func(tx contacts.Tx) error { _, err := tx.MoveEvents("c1", "c2"); return err }},
		{"delete", func(tx contacts.Tx) error { _, err := tx.DeleteEvents("c1"); return err }},
	} {
		t.Run("write: "+tc.name, func(t *testing.T) {
			err := s.UpdateContacts(context.Background(), "acme", tc.fn)
			if err == nil || !strings.Contains(err.Error(), `corrupt track_events key "c1\x00\x00\x00"`) {
				t.Errorf("got %v, want an error naming the corrupt key", err)
			}
		})
	}
}

func TestSnapshot(t *testing.T) {
	s := segStore(t)
	snap := func() uint64 {
		var n uint64
		viewIndex(t, s, func(r indexReader) { n = r.Snapshot() })
		return n
	}
	for _, tc := range []struct {
		name  string
		write func(t *testing.T)
		same  bool
	}{
		{"no write", func(*testing.T) {}, true},
		{"an event", func(t *testing.T) { putTestEvents(t, s, testEvent("c1", "m1", events.Track, "A", fixedTime)) }, false},
		{"a rolled back write", func(t *testing.T) {
			err := s.UpdateContacts(context.Background(), "acme", func(tx contacts.Tx) error {
				if err := tx.PutEvent(testEvent("c1", "m2", events.Track, "A", fixedTime), nil); err != nil {
					return err
				}
				return fmt.Errorf("roll back")
			})
			if err == nil {
				t.Fatal("the write did not fail")
			}
		}, true},
		{"a change number", func(t *testing.T) {
			err := s.UpdateContacts(context.Background(), "acme", func(tx contacts.Tx) error { _, err := tx.NextChange(); return err })
			if err != nil {
				t.Fatal(err)
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := snap()
			if again := snap(); again != before {
				t.Fatalf("two reads with no write between: Snapshot %d then %d", before, again)
			}
			tc.write(t)
			if after := snap(); (after == before) != tc.same {
				t.Errorf("Snapshot %d before, %d after; want same = %v", before, after, tc.same)
			}
		})
	}
}

// trackName agrees with encoding/json on what Encode writes.
func TestTrackNameMatchesEncode(t *testing.T) {
	names := []string{"", "a", `"`, `\`, `\"`, "\x00\x1f", "<>&", "\u2028\u2029", "é", "\xff\xfe", `\u0041`, "x\\", strings.Repeat("é\"", 100)}
	for _, typ := range []events.Type{events.Track, events.Page, events.Identify} {
		for _, name := range names {
			for _, id := range []string{"m", `m"\`, "ü"} {
				e := events.Event{MessageID: id, Type: typ, Name: name, Timestamp: fixedTime, ReceivedAt: fixedTime}
				data, err := events.Encode(e)
				if err != nil {
					t.Fatal(err)
				}
				got, track, ok := trackName(data)
				if !ok && (typ == events.Track && name != "") {
					t.Errorf("%s: Encode's output not read by the fast path", data)
					continue
				}
				if ok && track != (typ == events.Track) {
					t.Errorf("%s: track = %v", data, track)
				}
				if ok && track {
					var want events.Event
					if err := json.Unmarshal(data, &want); err != nil {
						t.Fatal(err)
					}
					if string(got) != want.Name {
						t.Errorf("%s: name %q, want %q", data, got, want.Name)
					}
				}
			}
		}
	}
}

func TestChangeSeq(t *testing.T) {
	s := segStore(t)
	viewIndex(t, s, func(r indexReader) {
		if n := r.ChangeSeq(); n != 0 {
			t.Errorf("ChangeSeq of a new file = %d, want 0", n)
		}
	})
	for _, tc := range []struct {
		name  string
		takes int
		want  uint64
	}{
		{"one", 1, 1},
		{"three more in one tx", 3, 4},
		{"none: reading does not advance", 0, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.UpdateContacts(context.Background(), "acme", func(tx contacts.Tx) error {
				for range tc.takes {
					if _, err := tx.NextChange(); err != nil {
						return err
					}
				}
				if got := tx.(indexReader).ChangeSeq(); got != tc.want {
					t.Errorf("inside the write: ChangeSeq = %d, want %d", got, tc.want)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for range 2 {
				viewIndex(t, s, func(r indexReader) {
					if got := r.ChangeSeq(); got != tc.want {
						t.Errorf("ChangeSeq = %d, want %d", got, tc.want)
					}
				})
			}
		})
	}
}

// BenchmarkScanTrackEvents walks 1M stored events (90% track, names from a plan of 50) as the segment index does at
// start-up: over 1000 contacts (900 track events each, several chunks) and over 100k contacts (9 each, one chunk).
// The baselines walk events/ as ScanEventNames did: the name read from the JSON prefix, or every value decoded.
func BenchmarkScanTrackEvents(b *testing.B) {
	const total, batch = 1_000_000, 20_000
	ctx := context.Background()
	props := []byte(`{"order_id":"o-123456","total":129.5,"currency":"EUR","items":[{"sku":"A-1","qty":2}]}`)
	for _, contactN := range []int{1000, 100_000} {
		s, err := Open(ctx, Options{Dir: b.TempDir(), Fsync: false, Logger: hclog.NewNullLogger()})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Close() })
		if err := s.CreateWorkspace(ctx, testWorkspace("acme")); err != nil {
			b.Fatal(err)
		}
		for start := 0; start < total; start += batch {
			err := s.UpdateContacts(ctx, "acme", func(tx contacts.Tx) error {
				for i := start; i < start+batch; i++ {
					typ := events.Track
					if i%10 == 0 {
						typ = events.Page
					}
					e := events.Event{
						MessageID: fmt.Sprintf("msg-%08d", i), Type: typ, Name: fmt.Sprintf("Event Name %02d", i%50),
						ContactID: fmt.Sprintf("%026d", i%contactN), UserID: fmt.Sprintf("user-%d", i%contactN), Properties: props,
						Timestamp: fixedTime.Add(time.Duration(i) * time.Second), ReceivedAt: fixedTime,
					}
					if err := tx.PutEvent(e, nil); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		for _, mode := range []string{"digest", "events fast path", "events encoding/json"} {
			b.Run(fmt.Sprintf("contacts=%d/%s", contactN, mode), func(b *testing.B) {
				b.ReportAllocs()
				var n int
				for b.Loop() {
					n = 0
					err := s.ViewContacts(ctx, "acme", func(tx contacts.Tx) error {
						switch mode {
						case "digest":
							return tx.(indexReader).ScanTrackEvents(func(_ string, at []int64, _ []uint32) bool { n += len(at); return true })
						case "events fast path":
							return tx.(*contactsTx).events.ForEach(func(k, v []byte) error {
								if _, track, ok := trackName(v); ok && track && len(k) > 9 {
									n++
								}
								return nil
							})
						}
						return tx.(*contactsTx).events.ForEach(func(k, v []byte) error {
							var e events.Event
							if err := json.Unmarshal(v, &e); err != nil {
								return err
							}
							if e.Type == events.Track && len(k) > 9 {
								n++
							}
							return nil
						})
					})
					if err != nil {
						b.Fatal(err)
					}
				}
				if n != total*9/10 {
					b.Fatalf("%d track events, want %d", n, total*9/10)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/total, "ns/event")
			})
		}
	}
}

// TestScanReadsLastSeen checks that Scan, which walks last_seen in step with contacts, gives each contact the time
// Get gives, from any starting point, with contacts seen and not seen interleaved.
func TestScanReadsLastSeen(t *testing.T) {
	s := segStore(t)
	ctx := context.Background()
	ids := []string{"a", "b", "c", "d", "e"}
	err := s.UpdateContacts(ctx, "acme", func(tx contacts.Tx) error {
		for i, id := range ids {
			if err := tx.Put(contacts.Contact{ID: id, CreatedAt: fixedTime, UpdatedAt: fixedTime}); err != nil {
				return err
			}
			if i%2 == 1 { // b and d
				if err := tx.SeenAt(id, fixedTime.Add(time.Duration(i)*time.Hour), time.Minute); err != nil {
					return err
				}
			}
		}
		return tx.SeenAt("zz-no-contact", fixedTime, time.Minute) // a last_seen key after every contact
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, after := range []string{"", "a", "b", "bb", "d", "e"} {
		t.Run("after "+after, func(t *testing.T) {
			err := s.ViewContacts(ctx, "acme", func(tx contacts.Tx) error {
				var got []string
				if err := tx.Scan(after, func(c contacts.Contact) bool {
					want, _, err := tx.Get(c.ID)
					if err != nil {
						t.Fatal(err)
					}
					if !c.LastSeenAt.Equal(want.LastSeenAt) {
						t.Errorf("%s: last seen %v by Scan, %v by Get", c.ID, c.LastSeenAt, want.LastSeenAt)
					}
					if (c.ID == "b" || c.ID == "d") == c.LastSeenAt.IsZero() {
						t.Errorf("%s: last seen %v", c.ID, c.LastSeenAt)
					}
					got = append(got, c.ID)
					return true
				}); err != nil {
					return err
				}
				var want []string
				for _, id := range ids {
					if id > after {
						want = append(want, id)
					}
				}
				if !slices.Equal(got, want) {
					t.Errorf("Scan after %q: %v, want %v", after, got, want)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
