package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/events"
	"github.com/hashicorp/go-hclog"
	bolt "go.etcd.io/bbolt"
)

// indexReader is what the segment index will read through contacts.Tx; the owner adds it to an interface in
// core/segments.
type indexReader interface {
	ScanEventNames(fn func(contactID string, at time.Time, name string) bool) error
	ChangeSeq() uint64
}

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

// viewIndex runs fn with the index reads of a ViewContacts transaction, reached as the segment index will reach
// them: by asserting the contacts.Tx.
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

type named struct {
	Contact string
	At      time.Time
	Name    string
}

func scanNames(t *testing.T, s *Store) []named {
	t.Helper()
	out := []named{}
	viewIndex(t, s, func(r indexReader) {
		if err := r.ScanEventNames(func(c string, at time.Time, name string) bool {
			out = append(out, named{c, at, name})
			return true
		}); err != nil {
			t.Fatalf("ScanEventNames: %v", err)
		}
	})
	return out
}

// putRawEvent writes a value under an event key by hand, as another writer might have.
func putRawEvent(t *testing.T, s *Store, contact string, at time.Time, id, value string) {
	t.Helper()
	db, err := s.Workspace("acme")
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(context.Background(), func(tx *bolt.Tx) error {
		return tx.Bucket(bucketEvents).Put(eventKey(contact, at, id), []byte(value))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestScanEventNames(t *testing.T) {
	at := func(s int) time.Time { return fixedTime.Add(time.Duration(s) * time.Second) }
	for _, tc := range []struct {
		name   string
		events []events.Event
		raw    []named // hand-written values: Name holds the whole JSON value
		want   []named
	}{
		{name: "no events", want: []named{}},
		{
			name: "plain names, in contact then time order",
			events: []events.Event{
				testEvent("c2", "m1", events.Track, "Order Completed", at(1)),
				testEvent("c1", "m2", events.Track, "Signed Up", at(5)),
				testEvent("c1", "m3", events.Track, "Order Completed", at(2)),
			},
			want: []named{{"c1", at(2), "Order Completed"}, {"c1", at(5), "Signed Up"}, {"c2", at(1), "Order Completed"}},
		},
		{
			name: "escaped and unicode names",
			events: []events.Event{
				testEvent("c1", "m\"1\\", events.Track, `say "hi" \ <b>&`, at(1)),
				testEvent("c1", "m2", events.Track, "café ☕ 注文 \U0001F600", at(2)),
				testEvent("c1", "m3", events.Track, "tab\tnew\nline\u2028sep\x01", at(3)),
				testEvent("c1", "m4", events.Track, "bad utf8 \xff", at(4)),
			},
			want: []named{
				{"c1", at(1), `say "hi" \ <b>&`}, {"c1", at(2), "café ☕ 注文 \U0001F600"},
				{"c1", at(3), "tab\tnew\nline\u2028sep\x01"}, {"c1", at(4), "bad utf8 \uFFFD"},
			},
		},
		{
			name: "other types skipped",
			events: []events.Event{
				testEvent("c1", "m1", events.Page, "Pricing", at(1)),
				testEvent("c1", "m2", events.Identify, "", at(2)),
				testEvent("c1", "m3", events.Track, "Kept", at(3)),
				testEvent("c1", "m4", events.Screen, "Home", at(4)),
				testEvent("c1", "m5", events.Alias, "", at(5)),
			},
			want: []named{{"c1", at(3), "Kept"}},
		},
		{
			name: "values not in Encode's form are decoded in full",
			raw: []named{
				{"c1", at(1), `{"type":"track","message_id":"r1","name":"Other Order","timestamp":"2025-03-14T15:09:27Z"}`},
				{"c1", at(2), `{"message_id":"r2","type":"track","timestamp":"2025-03-14T15:09:28Z","name":"Name Last"}`},
				{"c1", at(3), `{ "message_id": "r3", "type": "track", "name": "Spaced \u00e9" }`},
				{"c1", at(4), `{"message_id":"r4","type":"page","name":"Not Track"}`},
				{"c1", at(5), `{"name":"Page First","type":"page","message_id":"r5"}`},
				{"c1", at(6), `{"message_id":"r6","type":"track"}`},
				{"c1", at(7), `{"message_id":"r\u0037","type":"tr\u0061ck","name":"Escaped \/ Type"}`},
			},
			want: []named{
				{"c1", at(1), "Other Order"}, {"c1", at(2), "Name Last"}, {"c1", at(3), "Spaced é"},
				{"c1", at(6), ""}, {"c1", at(7), "Escaped / Type"},
			},
		},
		{
			name: "times from the key, extremes clamped",
			events: []events.Event{
				testEvent("c1", "m1", events.Track, "Old", time.Date(1200, 1, 1, 0, 0, 0, 0, time.UTC)),
				testEvent("c1", "m2", events.Track, "Future", time.Date(9000, 1, 1, 0, 0, 0, 0, time.UTC)),
				testEvent("c1", "m3", events.Track, "Nanos", time.Date(2025, 3, 14, 15, 9, 26, 123456789, time.FixedZone("x", 3600))),
			},
			want: []named{
				{"c1", time.Unix(0, -1<<63).UTC(), "Old"},
				{"c1", time.Date(2025, 3, 14, 14, 9, 26, 123456789, time.UTC), "Nanos"},
				{"c1", time.Unix(0, 1<<63-1).UTC(), "Future"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := segStore(t)
			if len(tc.events) > 0 {
				putTestEvents(t, s, tc.events...)
			}
			for i, r := range tc.raw {
				putRawEvent(t, s, r.Contact, r.At, fmt.Sprintf("raw%d", i), r.Name)
			}
			if got := scanNames(t, s); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

func TestScanEventNamesStopsAndReportsCorruption(t *testing.T) {
	s := segStore(t)
	putTestEvents(t, s, testEvent("c1", "m1", events.Track, "A", fixedTime), testEvent("c1", "m2", events.Track, "B", fixedTime.Add(1)))
	n := 0
	viewIndex(t, s, func(r indexReader) {
		if err := r.ScanEventNames(func(string, time.Time, string) bool { n++; return false }); err != nil {
			t.Fatal(err)
		}
	})
	if n != 1 {
		t.Errorf("fn called %d times after returning false, want 1", n)
	}

	for _, tc := range []struct{ name, value, wantErr string }{
		{"value not JSON", `{"message_id":"x","type":"track","name":"unterminated`, "decoding event"},
		{"value empty", ``, "decoding event"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := segStore(t)
			putRawEvent(t, s, "c1", fixedTime, "bad", tc.value)
			viewIndex(t, s, func(r indexReader) {
				err := r.ScanEventNames(func(string, time.Time, string) bool { return true })
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("got %v, want an error containing %q", err, tc.wantErr)
				}
			})
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

// BenchmarkScanEventNames walks 1M stored events (90% track, names from a plan of 50, 1000 contacts), as the
// segment index does at start-up.
func BenchmarkScanEventNames(b *testing.B) {
	const total, chunk = 1_000_000, 20_000
	ctx := context.Background()
	s, err := Open(ctx, Options{Dir: b.TempDir(), Fsync: false, Logger: hclog.NewNullLogger()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	if err := s.CreateWorkspace(ctx, testWorkspace("acme")); err != nil {
		b.Fatal(err)
	}
	props := []byte(`{"order_id":"o-123456","total":129.5,"currency":"EUR","items":[{"sku":"A-1","qty":2}]}`)
	for start := 0; start < total; start += chunk {
		err := s.UpdateContacts(ctx, "acme", func(tx contacts.Tx) error {
			for i := start; i < start+chunk; i++ {
				typ := events.Track
				if i%10 == 0 {
					typ = events.Page
				}
				e := events.Event{
					MessageID: fmt.Sprintf("msg-%08d", i), Type: typ, Name: fmt.Sprintf("Event Name %02d", i%50),
					ContactID: fmt.Sprintf("%026d", i%1000), UserID: fmt.Sprintf("user-%d", i%1000), Properties: props,
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
	for _, mode := range []string{"fast path", "encoding/json"} {
		b.Run(mode, func(b *testing.B) {
			b.ReportAllocs()
			var n int
			for b.Loop() {
				n = 0
				err := s.ViewContacts(ctx, "acme", func(tx contacts.Tx) error {
					if mode == "fast path" {
						return tx.(indexReader).ScanEventNames(func(string, time.Time, string) bool { n++; return true })
					}
					// The baseline: decode every value.
					return tx.(*contactsTx).events.ForEach(func(k, v []byte) error {
						var e events.Event
						if err := json.Unmarshal(v, &e); err != nil {
							return err
						}
						if e.Type == events.Track && bytes.IndexByte(k, 0) > 0 {
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
