package segments_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/events"
	"github.com/crosscast/crosscast/core/segments"
	"github.com/crosscast/crosscast/core/segments/index"
	"github.com/crosscast/crosscast/core/segments/internal/synth"
	"github.com/crosscast/crosscast/core/segments/rule"
	"github.com/crosscast/crosscast/core/store"
	"github.com/crosscast/crosscast/core/workspaces"
	"github.com/hashicorp/go-hclog"
)

// BenchmarkRebuild measures issue 5's start-up goal (rebuild <= 5 s for 1M contacts and ~10M events) on a real
// store: a workspace file filled with CROSSCAST_BENCH_CONTACTS contacts (default 1,000,000) and about
// CROSSCAST_BENCH_EVENTS_PER_CONTACT track events each (default 10), and five saved segments whose recorded members
// match the data (as after a clean shutdown). Run:
//
//	go test -run '^$' -bench BenchmarkRebuild -benchtime 2x -timeout 60m ./core/segments/
//
// Filling takes minutes, so the filled data dir is cached between runs in
// $TMPDIR/crosscast-bench-segments-<version>-<contacts>x<events per contact>: it is reused when its "complete"
// marker file is there, and filled again (after removing what is there) when it is not. Delete the directory to
// start afresh; bump rebuildDataVersion when the generated data changes. The file is read warm (it is in the page
// cache after the fill or the previous run): a first start after a reboot reads it from the disk too.
//
// This is an external test (package segments_test): core/store imports core/segments, so the package's own tests
// cannot open a store. Service.Start is the start-up path (Service.space, then Service.build) with nothing else:
//
//   - start: a fresh Service's Start, the whole rebuild, b.N times; s/rebuild, and heap-MiB, the Go heap the
//     rebuilt index holds (after a GC).
//   - phases: the same work done step by step, on one goroutine, with the calls build makes when it cannot load
//     in parallel (ViewContacts, tx.Scan and Load, the RebuildTx's ScanTrackEvents and LoadEvents, PutSegments,
//     StoredMembers compared with the index (Sort)), each timed; and the two scans alone (decoding without loading), to
//     split store from index. start is shorter than their sum: it loads contacts and events on three goroutines.
func BenchmarkRebuild(b *testing.B) {
	g := synth.New()
	dir := rebuildData(b, g)
	ctx := context.Background()
	log := hclog.NewNullLogger()
	st, err := store.Open(ctx, store.Options{Dir: dir, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	clock := func() time.Time { return rebuildNow }
	var stats index.Stats
	b.Run("start", func(b *testing.B) {
		var before, after runtime.MemStats
		for range b.N {
			b.StopTimer()
			runtime.GC()
			runtime.ReadMemStats(&before)
			ss := segments.NewService(st, nil, log, clock)
			b.StartTimer()
			if err := ss.Start(ctx, []string{rebuildWS}); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			runtime.GC()
			runtime.ReadMemStats(&after) // the Service, alive until Close, holds the index
			ss.Close()
			b.StartTimer()
		}
		b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/rebuild")
		b.ReportMetric((float64(after.HeapInuse)-float64(before.HeapInuse))/(1<<20), "heap-MiB")
		n, e := storeCounts(b, st) // the store's counts (the Service does not expose its index)
		b.ReportMetric(float64(n), "contacts")
		b.ReportMetric(float64(e), "events")
	})
	b.Run("phases", func(b *testing.B) {
		var sum [6]time.Duration
		for range b.N {
			b.StopTimer()
			runtime.GC()
			b.StartTimer()
			var t [6]time.Duration
			ix := index.New(nil)
			began := time.Now()
			err := st.ViewContacts(ctx, rebuildWS, func(tx contacts.Tx) error {
				rt := tx.(segments.RebuildTx)
				ix.SetSeq(rt.ChangeSeq())
				ix.Grow(tx.Count())
				if err := tx.Scan("", func(c contacts.Contact) bool { ix.Load(c); return true }); err != nil {
					return err
				}
				t[0] = time.Since(began)
				began = time.Now()
				names, err := rt.TrackEventNames()
				if err != nil {
					return err
				}
				xlate := ix.EventCodes(names)
				var codes []uint32
				return rt.ScanTrackEvents(func(id string, at []int64, stored []uint32) bool {
					codes = codes[:0]
					for _, c := range stored {
						codes = append(codes, xlate[c])
					}
					ix.LoadEvents(id, at, codes)
					return true
				})
			})
			if err != nil {
				b.Fatal(err)
			}
			t[1] = time.Since(began)
			began = time.Now()
			list, err := st.ListSegments(ctx, rebuildWS)
			if err != nil {
				b.Fatal(err)
			}
			defs := make([]index.Def, len(list))
			for i, s := range list {
				n, err := rule.Parse(s.Rule)
				if err != nil {
					b.Fatal(err)
				}
				defs[i] = index.Def{ID: s.ID, Name: s.Name, Rule: n}
			}
			ix.PutSegments(ctx, defs, rebuildNow)
			t[2] = time.Since(began)
			began = time.Now()
			diff := 0
			for _, s := range list {
				var stored []string
				if err := st.StoredMembers(ctx, rebuildWS, s.ID, func(id string, _ time.Time) bool { stored = append(stored, id); return true }); err != nil {
					b.Fatal(err)
				}
				left, kept := ix.Sort(s.ID, stored)
				n, _ := ix.Count(s.ID)
				diff += len(left) + n - kept
			}
			t[3] = time.Since(began)
			if diff != 0 {
				b.Fatalf("%d recorded memberships differ from the rebuilt index", diff)
			}
			stats = ix.Stats()
			// The scans alone: what reading and decoding the store costs without the index.
			b.StopTimer()
			runtime.GC()
			b.StartTimer()
			err = st.ViewContacts(ctx, rebuildWS, func(tx contacts.Tx) error {
				began = time.Now()
				if err := tx.Scan("", func(contacts.Contact) bool { return true }); err != nil {
					return err
				}
				t[4] = time.Since(began)
				began = time.Now()
				err := tx.(segments.RebuildTx).ScanTrackEvents(func(string, []int64, []uint32) bool { return true })
				t[5] = time.Since(began)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
			for i := range t {
				sum[i] += t[i]
			}
		}
		for i, name := range []string{"contacts-s", "events-s", "segments-s", "members-s", "scan-contacts-only-s", "scan-events-only-s"} {
			b.ReportMetric(sum[i].Seconds()/float64(b.N), name)
		}
		b.ReportMetric(float64(stats.Contacts), "contacts")
		b.ReportMetric(float64(stats.Events), "events")
		b.ReportMetric(float64(stats.Bytes)/(1<<20), "stats-MiB")
	})
}

func storeCounts(b *testing.B, st *store.Store) (n, e int) {
	err := st.ViewContacts(context.Background(), rebuildWS, func(tx contacts.Tx) error {
		n, e = tx.Count(), tx.EventCount()
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return n, e
}

// rebuildDataVersion names the generated data: change it when the synth package or the fill changes, so that old caches are not reused.
const rebuildDataVersion = "v3"

const rebuildWS = "bench"

var rebuildNow = synth.Now

// The five saved segments: the goals' two rules, a tag and consent rule, a window on the most common event, and a
// reference to another segment.
var rebuildSegments = []struct{ name, rule string }{
	{"FR paying recent", `country = "FR" and plan in ["pro", "team"] and signed_up_at within 365d`},
	{"FR paying buyers", `country = "FR" and plan in ["pro", "team"] and signed_up_at within 365d and performed("Order Completed", within: 30d, count >= 2)`},
	{"VIP subscribed", `has_tag("vip") and subscribed("email")`},
	{"Active this week", `performed("Page Viewed", within: 7d)`},
	{"VIP lapsed", `in_segment("VIP subscribed") and not performed("Order Completed", within: 90d)`},
}

// rebuildData returns the filled data dir, filling it first if the cache is absent or incomplete.
func rebuildData(b *testing.B, g synth.Gen) string {
	b.Helper()
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("crosscast-bench-segments-%s-%dx%s", rebuildDataVersion, g.N,
		strconv.FormatFloat(g.PerContact, 'f', -1, 64)))
	marker := filepath.Join(dir, "complete")
	if _, err := os.Stat(marker); err == nil {
		b.Logf("reusing the data dir %s", dir)
		return dir
	}
	if err := os.RemoveAll(dir); err != nil {
		b.Fatal(err)
	}
	began := time.Now()
	if err := fillRebuildData(dir, g); err != nil {
		b.Fatalf("filling %s: %v", dir, err)
	}
	if err := os.WriteFile(marker, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	b.Logf("filled the data dir %s in %s", dir, time.Since(began).Round(time.Second))
	return dir
}

// fillBatch is one write transaction of the fill: about rebuildTxRecords contacts and events, encoded beforehand.
type fillBatch struct {
	people []contacts.Contact
	evs    []events.Event
	data   [][]byte
}

// rebuildTxRecords is the number of records (contacts and events) written per transaction.
const rebuildTxRecords = 20_000

func fillRebuildData(dir string, g synth.Gen) error {
	ctx := context.Background()
	log := hclog.NewNullLogger()
	st, err := store.Open(ctx, store.Options{Dir: dir, Logger: log}) // no fsync: the data is disposable
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }()
	if _, err := workspaces.NewService(st, log, nil).Create(ctx, workspaces.CreateInput{ID: rebuildWS}); err != nil {
		return err
	}
	// One goroutine generates and encodes, this one writes: straight through store transactions, in contact id
	// order (ids grow with the sign-up time), so that every B+tree is appended to.
	batches := make(chan fillBatch, 2)
	errc := make(chan error, 1)
	go func() {
		defer close(batches)
		var cur fillBatch
		var buf []synth.Event
		var msg uint64
		for i := range g.N {
			var c contacts.Contact
			c, buf = g.Contact(i, buf)
			// Names make the stored profiles as large as real ones (the index does not read them).
			c.Attributes["first_name"] = contacts.StringValue("Camille")
			c.Attributes["last_name"] = contacts.StringValue("Martin")
			cur.people = append(cur.people, c)
			anon := fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", uint32(i), i>>16&0xffff, i&0xfff, (i*7)&0xfff, uint64(i)*2654435761&0xffffffffffff)
			for k, re := range buf {
				msg++
				at := time.Unix(0, re.At).UTC()
				e := events.Event{MessageID: fmt.Sprintf("00000000-0000-4000-8000-%012x", msg), Type: events.Track,
					Name: synth.EventNames[re.Name], ContactID: c.ID, AnonymousID: anon, Properties: synth.Properties(i, k, re),
					Context: rebuildContext(c.Locale), Timestamp: at, ReceivedAt: at.Add(150 * time.Millisecond)}
				data, err := events.Encode(e)
				if err != nil {
					errc <- err
					return
				}
				cur.evs = append(cur.evs, e)
				cur.data = append(cur.data, data)
			}
			if len(cur.people)+len(cur.evs) >= rebuildTxRecords {
				batches <- cur
				cur = fillBatch{}
			}
		}
		if len(cur.people) > 0 {
			batches <- cur
		}
	}()
	for batch := range batches {
		err := st.UpdateContacts(ctx, rebuildWS, func(tx contacts.Tx) error {
			for _, c := range batch.people {
				if err := tx.Put(c); err != nil {
					return err
				}
			}
			for i, e := range batch.evs {
				if err := tx.PutEvent(e, batch.data[i]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	select {
	case err := <-errc:
		return err
	default:
	}
	for k, s := range rebuildSegments {
		n, err := rule.Parse(s.rule)
		if err != nil {
			return fmt.Errorf("%s: %w", s.rule, err)
		}
		now := rebuildNow.Add(time.Duration(k) * time.Millisecond) // ids in creation order
		seg := segments.Segment{ID: "seg_" + contacts.NewID(now), Name: s.name, Type: segments.TypeRule, Rule: rule.Format(n),
			CreatedAt: now, UpdatedAt: now}
		if err := st.PutSegment(ctx, rebuildWS, seg); err != nil {
			return err
		}
	}
	// A first start records every member (transitions with the reason "start"), as a running server would have:
	// the starts measured then find the records in step.
	ss := segments.NewService(st, nil, log, func() time.Time { return rebuildNow })
	err = ss.Start(ctx, []string{rebuildWS})
	ss.Close()
	return err
}

// rebuildContext is a track call's context as a browser library sends it (without the user agent, which real
// calls carry: events are about a third smaller than analytics.js's).
func rebuildContext(locale string) []byte {
	return []byte(`{"library":{"name":"analytics.js","version":"5.2.0"},"locale":"` + locale + `","ip":"203.0.113.0"}`)
}
