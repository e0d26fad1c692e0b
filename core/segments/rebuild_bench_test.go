package segments_test

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/events"
	"github.com/crosscast/crosscast/core/segments"
	"github.com/crosscast/crosscast/core/segments/index"
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
//   - phases: the same work done step by step with the calls build makes (ViewContacts, tx.Scan and Load, the
//     RebuildTx's ScanEventNames and LoadEvent, PutSegments, StoredMembers compared with EachMember), each timed;
//     and the two scans alone (decoding without loading), to split store from index.
func BenchmarkRebuild(b *testing.B) {
	g := newRebuildGen()
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
				if err := tx.Scan("", func(c contacts.Contact) bool { ix.Load(&c); return true }); err != nil {
					return err
				}
				t[0] = time.Since(began)
				began = time.Now()
				return rt.ScanEventNames(func(id string, at time.Time, name string) bool {
					ix.LoadEvent(id, at, name)
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
				stored := map[string]bool{}
				if err := st.StoredMembers(ctx, rebuildWS, s.ID, func(id string, _ time.Time) bool { stored[id] = true; return true }); err != nil {
					b.Fatal(err)
				}
				ix.EachMember(s.ID, func(id string) {
					if !stored[id] {
						diff++
					}
					delete(stored, id)
				})
				diff += len(stored)
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
				err := tx.(segments.RebuildTx).ScanEventNames(func(string, time.Time, string) bool { return true })
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

// rebuildDataVersion names the generated data: change it when rebuildGen changes, so that old caches are not reused.
const rebuildDataVersion = "v1"

const rebuildWS = "bench"

var rebuildNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

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
func rebuildData(b *testing.B, g rebuildGen) string {
	b.Helper()
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("crosscast-bench-segments-%s-%dx%s", rebuildDataVersion, g.n,
		strconv.FormatFloat(g.perContact, 'f', -1, 64)))
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

func fillRebuildData(dir string, g rebuildGen) error {
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
		var buf []rebuildEvent
		var msg uint64
		for i := range g.n {
			var c contacts.Contact
			c, buf = g.contact(i, buf)
			cur.people = append(cur.people, c)
			anon := fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", uint32(i), i>>16&0xffff, i&0xfff, (i*7)&0xfff, uint64(i)*2654435761&0xffffffffffff)
			for _, re := range buf {
				msg++
				e := events.Event{MessageID: fmt.Sprintf("00000000-0000-4000-8000-%012x", msg), Type: events.Track,
					Name: rebuildEventNames[re.name], ContactID: c.ID, AnonymousID: anon, Properties: re.props,
					Context: rebuildContext(c.Locale), Timestamp: re.at, ReceivedAt: re.at.Add(150 * time.Millisecond)}
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

// The generated data: as core/segments/index's BenchmarkIndexBuild's (a skewed list of 20 countries, 4 plans, age,
// a sign-up over 3 years, ltv, a city among 1000, newsletter; 10% vip; 60% subscribed to email), with properties
// on the events since these are stored.

var (
	rebuildEventNames = []string{"Page Viewed", "Product Viewed", "Order Completed", "Cart Abandoned"}
	rebuildEventShare = []float64{0.60, 0.25, 0.10, 0.05}
	rebuildCountries  = []struct {
		code, locale, tz string
		weight           float64
	}{
		{"US", "en-US", "America/New_York", 24}, {"GB", "en-GB", "Europe/London", 10}, {"FR", "fr-FR", "Europe/Paris", 9},
		{"DE", "de-DE", "Europe/Berlin", 9}, {"CA", "en-CA", "America/Toronto", 5}, {"ES", "es-ES", "Europe/Madrid", 5},
		{"IT", "it-IT", "Europe/Rome", 4}, {"NL", "nl-NL", "Europe/Amsterdam", 4}, {"BR", "pt-BR", "America/Sao_Paulo", 4},
		{"AU", "en-AU", "Australia/Sydney", 3}, {"IN", "en-IN", "Asia/Kolkata", 3}, {"BE", "fr-BE", "Europe/Brussels", 3},
		{"PL", "pl-PL", "Europe/Warsaw", 2.5}, {"SE", "sv-SE", "Europe/Stockholm", 2}, {"CH", "de-CH", "Europe/Zurich", 2},
		{"AT", "de-AT", "Europe/Vienna", 2}, {"PT", "pt-PT", "Europe/Lisbon", 2}, {"MX", "es-MX", "America/Mexico_City", 2},
		{"JP", "ja-JP", "Asia/Tokyo", 1.5}, {"IE", "en-IE", "Europe/Dublin", 1},
	}
	rebuildPlans = []string{"free", "pro", "team", "enterprise"}
)

type cumulative []float64

func newCumulative(ws []float64) cumulative {
	out := make(cumulative, len(ws))
	var sum, acc float64
	for _, w := range ws {
		sum += w
	}
	for i, w := range ws {
		acc += w / sum
		out[i] = acc
	}
	out[len(out)-1] = 1
	return out
}

func (c cumulative) pick(r *rand.Rand) int { return min(sort.SearchFloat64s(c, r.Float64()), len(c)-1) }

type rebuildGen struct {
	n                   int
	perContact          float64
	means               [4]float64
	step                int64
	country, plan, city cumulative
}

type rebuildEvent struct {
	at    time.Time
	name  int
	props []byte
}

func rebuildEnv(name string, def float64) float64 {
	if v, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil && v > 0 {
		return v
	}
	return def
}

func newRebuildGen() rebuildGen {
	g := rebuildGen{n: int(rebuildEnv("CROSSCAST_BENCH_CONTACTS", 1_000_000)),
		perContact: rebuildEnv("CROSSCAST_BENCH_EVENTS_PER_CONTACT", 10)}
	for i, share := range rebuildEventShare {
		g.means[i] = 1 / math.Log1p(1/(share*g.perContact)) // E[floor(X)] of an exponential X of mean m
	}
	g.step = (3 * 365 * 24 * time.Hour).Milliseconds() / int64(g.n)
	ws := make([]float64, len(rebuildCountries))
	for i, c := range rebuildCountries {
		ws[i] = c.weight
	}
	g.country = newCumulative(ws)
	g.plan = newCumulative([]float64{60, 25, 10, 5})
	cw := make([]float64, 1000)
	for i := range cw {
		cw[i] = 1 / math.Pow(float64(i+1), 1.05)
	}
	g.city = newCumulative(cw)
	return g
}

// rebuildID makes a contact id as contacts.NewID does, from the sign-up time and r.
func rebuildID(ms int64, r *rand.Rand) string {
	const crockford = "0123456789abcdefghjkmnpqrstvwxyz"
	hi := uint64(ms)<<16 | r.Uint64()&0xffff
	lo := r.Uint64()
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// contact returns contact i and its track events, oldest first, appended to evs[:0].
func (g rebuildGen) contact(i int, evs []rebuildEvent) (contacts.Contact, []rebuildEvent) {
	r := rand.New(rand.NewPCG(20261122, uint64(i)))
	start := rebuildNow.Add(-3 * 365 * 24 * time.Hour).UnixMilli()
	created := time.UnixMilli(start + int64(i)*g.step + r.Int64N(max(g.step/2, 1))).UTC()
	country := rebuildCountries[g.country.pick(r)]
	plan := rebuildPlans[g.plan.pick(r)]
	c := contacts.Contact{
		ID: rebuildID(created.UnixMilli(), r), Email: fmt.Sprintf("user%07d@example.com", i), Locale: country.locale,
		Timezone: country.tz, CreatedAt: created, UpdatedAt: created,
		Attributes: map[string]contacts.Value{
			"plan":         contacts.StringValue(plan),
			"signed_up_at": contacts.TimeValue(created),
			"newsletter":   contacts.BoolValue(r.IntN(3) == 0),
			"first_name":   contacts.StringValue("Camille"),
			"last_name":    contacts.StringValue("Martin"),
		},
	}
	if r.IntN(10) > 0 {
		c.Attributes["country"] = contacts.StringValue(country.code)
	}
	if r.IntN(5) > 0 {
		c.Attributes["age"] = contacts.NumberValue(float64(min(90, 18+int(r.ExpFloat64()*16))))
	}
	if r.IntN(10) < 7 {
		c.Attributes["city"] = contacts.StringValue(fmt.Sprintf("City %04d", g.city.pick(r)+1))
	}
	ltv := 0.0
	if plan != "free" {
		ltv = math.Round(math.Exp(5+1.2*r.NormFloat64())*100) / 100
	}
	c.Attributes["ltv"] = contacts.NumberValue(ltv)
	if r.IntN(10) == 0 {
		c.Tags = append(c.Tags, "vip")
	}
	if r.IntN(20) == 0 {
		c.Tags = append(c.Tags, "beta")
	}
	if r.IntN(12) == 0 {
		c.Tags = append(c.Tags, "churned")
	}
	c.Consent = map[string]contacts.Consent{}
	switch k := r.IntN(100); {
	case k < 60:
		c.Consent["email"] = contacts.Consent{Status: contacts.Subscribed, At: created, Source: "signup"}
	case k < 75:
		c.Consent["email"] = contacts.Consent{Status: contacts.Unsubscribed, At: created, Source: "link"}
	}
	if r.IntN(10) == 0 {
		c.Consent["sms"] = contacts.Consent{Status: contacts.Subscribed, At: created, Source: "signup"}
	}
	var ago time.Duration
	switch k := r.IntN(100); {
	case k < 35:
		ago = time.Duration(r.Int64N(int64(7 * 24 * time.Hour)))
	case k < 60:
		ago = 7*24*time.Hour + time.Duration(r.Int64N(int64(53*24*time.Hour)))
	default:
		ago = 60*24*time.Hour + time.Duration(r.Int64N(int64(305*24*time.Hour)))
	}
	end := rebuildNow.Add(-ago).UnixMilli()
	from := max(end-(24*time.Hour+time.Duration(r.Int64N(int64(364*24*time.Hour)))).Milliseconds(),
		rebuildNow.Add(-365*24*time.Hour).UnixMilli(), created.UnixMilli())
	if from >= end {
		from, end = created.UnixMilli(), rebuildNow.UnixMilli()
	}
	evs = evs[:0]
	if from < end {
		for name, mean := range g.means {
			k := int(r.ExpFloat64() * mean)
			if name == 2 {
				k = min(k, 20)
			}
			for range k {
				at := time.UnixMilli(from + r.Int64N(end-from)).UTC()
				var props string
				switch name {
				case 0:
					p := r.IntN(400)
					props = fmt.Sprintf(`{"path":"/blog/post-%d","url":"https://www.example.com/blog/post-%d","title":"Post %d","referrer":"https://www.google.com/"}`, p, p, p)
				case 1:
					p := r.IntN(5000)
					props = fmt.Sprintf(`{"product_id":"sku-%05d","name":"Product %d","price":%d.90,"currency":"EUR"}`, p, p, 5+r.IntN(200))
				case 2:
					props = fmt.Sprintf(`{"order_id":"ord-%d-%d","total":%d.%02d,"currency":"EUR","products":[{"product_id":"sku-%05d","quantity":%d}]}`,
						i, len(evs), 5+r.IntN(300), r.IntN(100), r.IntN(5000), 1+r.IntN(3))
				default:
					props = fmt.Sprintf(`{"cart_id":"cart-%d-%d","value":%d.90}`, i, len(evs), 10+r.IntN(250))
				}
				evs = append(evs, rebuildEvent{at: at, name: name, props: []byte(props)})
			}
		}
		slices.SortFunc(evs, func(a, b rebuildEvent) int { return cmp.Compare(a.at.UnixNano(), b.at.UnixNano()) })
	}
	if len(evs) > 0 {
		c.LastSeenAt = evs[len(evs)-1].at
	}
	return c, evs
}
