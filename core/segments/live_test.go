package segments_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/events"
	"github.com/crosscast/crosscast/core/segments"
	"github.com/crosscast/crosscast/core/store"
	"github.com/crosscast/crosscast/core/workspaces"
	"github.com/hashicorp/go-hclog"
)

// liveWorld is a real store with contacts and segments services on one change stream, a clock the test moves, and
// a listener that collects transitions.
type liveWorld struct {
	t     *testing.T
	dir   string
	log   hclog.Logger
	st    *store.Store
	cs    *contacts.Service
	ss    *segments.Service
	mu    sync.Mutex
	clock time.Time
	seen  []segments.Transition
}

func newLiveWorld(t *testing.T) *liveWorld {
	w := &liveWorld{t: t, dir: t.TempDir(), clock: now, log: hclog.New(&hclog.LoggerOptions{Output: t.Output(), Level: hclog.Warn})}
	w.open()
	if _, err := workspaces.NewService(w.st, w.log, nil).Create(context.Background(), workspaces.CreateInput{ID: "acme"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.close)
	return w
}

func (w *liveWorld) now() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.clock
}

func (w *liveWorld) advance(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.clock = w.clock.Add(d)
}

// open starts the store and services (again, after close: a restart).
func (w *liveWorld) open() {
	st, err := store.Open(context.Background(), store.Options{Dir: w.dir, Logger: w.log})
	if err != nil {
		w.t.Fatal(err)
	}
	stream := contacts.NewStream()
	w.st = st
	w.ss = segments.NewService(st, stream, w.log, w.now)
	w.cs = contacts.NewService(st, nil, stream, w.log, w.now)
	w.cs.AddExportSection(w.ss.ExportSection())
	w.ss.Subscribe(func(_ context.Context, ws string, ts []segments.Transition) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.seen = append(w.seen, ts...)
	})
}

func (w *liveWorld) close() {
	if w.st == nil {
		return
	}
	w.ss.Close()
	_ = w.st.Close()
	w.st = nil
}

// take returns and clears the transitions seen so far.
func (w *liveWorld) take() []segments.Transition {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.seen
	w.seen = nil
	return out
}

func (w *liveWorld) upsert(email string, attrs map[string]any, tags ...string) contacts.Contact {
	w.t.Helper()
	uid := "u-" + email // what track calls name the contact by
	c, _, err := w.cs.Upsert(context.Background(), "acme", contacts.Fields{Email: &email, UserID: &uid, Attributes: attrs, Tags: tags}, "api")
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

func (w *liveWorld) track(email, event string, at time.Time) {
	w.t.Helper()
	_, err := w.cs.Ingest(context.Background(), "acme", []contacts.Incoming{{Event: events.Event{
		MessageID: fmt.Sprintf("%s-%s-%d", email, event, at.UnixNano()), Type: events.Track, Name: event, UserID: "u-" + email,
		Timestamp: at, ReceivedAt: at}}})
	if err != nil {
		w.t.Fatal(err)
	}
}

func (w *liveWorld) create(name, text string) segments.Counted {
	w.t.Helper()
	seg, err := w.ss.Create(context.Background(), "acme", segments.Input{Name: &name, Rule: rawRule(text)})
	if err != nil {
		w.t.Fatal(err)
	}
	return seg
}

func (w *liveWorld) count(id string) int {
	w.t.Helper()
	seg, err := w.ss.Get(context.Background(), "acme", id)
	if err != nil {
		w.t.Fatal(err)
	}
	return seg.Count
}

func describe(ts []segments.Transition) string {
	var b strings.Builder
	for _, t := range ts {
		verb := "left"
		if t.Entered {
			verb = "entered"
		}
		fmt.Fprintf(&b, "%s %s (%s); ", verb, t.Segment, t.Reason)
	}
	return b.String()
}

func TestMembershipFollowsWritesEventsAndTime(t *testing.T) {
	w := newLiveWorld(t)
	ctx := context.Background()
	ana := w.upsert("ana@example.com", map[string]any{"country": "FR"})
	w.upsert("bob@example.com", map[string]any{"country": "DE"})
	fr := w.create("France", `country = "FR"`)
	buyers := w.create("Recent buyers", `performed("Order Completed", within: 30d)`)
	both := w.create("French buyers", `in_segment("France") and in_segment("Recent buyers")`)
	if fr.Count != 1 || buyers.Count != 0 || both.Count != 0 {
		t.Fatalf("counts at creation: %d %d %d", fr.Count, buyers.Count, both.Count)
	}
	if got := describe(w.take()); got != fmt.Sprintf("entered %s (rule); ", fr.ID) {
		t.Fatalf("creation transitions: %s", got)
	}

	// An event: the count read right after the write already includes it, and both segments report the entry.
	w.track("ana@example.com", "Order Completed", now.Add(-time.Hour))
	if w.count(buyers.ID) != 1 || w.count(both.ID) != 1 {
		t.Fatalf("after the order: buyers %d, both %d", w.count(buyers.ID), w.count(both.ID))
	}
	if got, want := describe(w.take()), fmt.Sprintf("entered %s (change); entered %s (change); ", buyers.ID, both.ID); got != want {
		t.Fatalf("event transitions: %s, want %s", got, want)
	}

	// A profile write: Ana moves to Germany and leaves France and the combination.
	w.upsert("ana@example.com", map[string]any{"country": "DE"})
	if w.count(fr.ID) != 0 || w.count(both.ID) != 0 {
		t.Fatalf("after moving: france %d, both %d", w.count(fr.ID), w.count(both.ID))
	}
	w.take()

	// Time: 30 days after the order, the recheck takes Ana out of the buyers, with the reason "time".
	w.advance(30*24*time.Hour - 2*time.Hour)
	w.ss.Recheck(ctx)
	if w.count(buyers.ID) != 1 {
		t.Fatal("left the window too early")
	}
	w.advance(2 * time.Hour)
	w.ss.Recheck(ctx)
	if w.count(buyers.ID) != 0 {
		t.Fatal("still in the window after 30 days")
	}
	if got := describe(w.take()); got != fmt.Sprintf("left %s (time); ", buyers.ID) {
		t.Fatalf("time transitions: %s", got)
	}

	// The history is recorded (in the background: Close writes what is pending) and survives a restart.
	w.close()
	w.open()
	hist, _, err := w.ss.History(ctx, "acme", ana.ID, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, h := range hist {
		lines = append(lines, fmt.Sprintf("%s %v %s", h.SegmentName, h.Entered, h.Reason))
	}
	want := []string{"Recent buyers false time", "French buyers false change", "France false change",
		"French buyers true change", "Recent buyers true change", "France true rule"}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Fatalf("history newest first:\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	// Paged.
	page, next, err := w.ss.History(ctx, "acme", ana.ID, "", 4)
	if err != nil || len(page) != 4 || next == "" {
		t.Fatalf("page: %d %q %v", len(page), next, err)
	}
	rest, last, err := w.ss.History(ctx, "acme", ana.ID, next, 4)
	if err != nil || len(rest) != 2 || last != "" || rest[1].SegmentName != "France" {
		t.Fatalf("second page: %+v %q %v", rest, last, err)
	}
}

func TestStartFindsWhatChangedWhileDown(t *testing.T) {
	w := newLiveWorld(t)
	ctx := context.Background()
	w.upsert("ana@example.com", map[string]any{"country": "FR"})
	fr := w.create("France", `country = "FR"`)
	recent := w.create("Recent", `last_seen_at within 1d`)
	w.track("ana@example.com", "Page Viewed", now.Add(-time.Hour))
	if w.count(recent.ID) != 1 {
		t.Fatal("not recent")
	}
	w.close()

	// While the segments service is not running, a contact arrives and two days pass.
	st, err := store.Open(ctx, store.Options{Dir: w.dir, Logger: w.log})
	if err != nil {
		t.Fatal(err)
	}
	email := "zoe@example.com"
	if _, _, err := contacts.NewService(st, nil, nil, w.log, w.now).Upsert(ctx, "acme", contacts.Fields{Email: &email,
		Attributes: map[string]any{"country": "FR"}}, "api"); err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
	w.advance(48 * time.Hour)

	w.open()
	w.take()
	if err := w.ss.Start(ctx, []string{"acme"}); err != nil {
		t.Fatal(err)
	}
	got := w.take()
	sort.Slice(got, func(i, j int) bool { return got[i].Entered }) // segments of one millisecond come in any order
	want := fmt.Sprintf("entered %s (start); left %s (start); ", fr.ID, recent.ID)
	if describe(got) != want {
		t.Fatalf("start transitions: %s, want %s", describe(got), want)
	}
	if w.count(fr.ID) != 2 || w.count(recent.ID) != 0 {
		t.Fatalf("counts after start: %d %d", w.count(fr.ID), w.count(recent.ID))
	}
	// Recorded: the next start finds nothing new.
	w.close()
	w.open()
	if err := w.ss.Start(ctx, []string{"acme"}); err != nil {
		t.Fatal(err)
	}
	if got := w.take(); len(got) != 0 {
		t.Fatalf("second start: %s", describe(got))
	}
}

func TestStaticLists(t *testing.T) {
	w := newLiveWorld(t)
	ctx := context.Background()
	ana := w.upsert("ana@example.com", nil)
	bob := w.upsert("bob@example.com", nil, "vip")
	typ := segments.TypeStatic
	list, err := w.ss.Create(ctx, "acme", segments.Input{Name: name("Webinar"), Type: &typ})
	if err != nil || list.Type != segments.TypeStatic || list.Count != 0 {
		t.Fatalf("create list: %+v %v", list, err)
	}
	vipAttendees := w.create("VIP attendees", `in_segment("Webinar") and has_tag("vip")`)

	res, err := w.ss.EditMembers(ctx, "acme", list.ID, segments.MemberInput{Contacts: []string{ana.ID}, Emails: []string{"BOB@example.com", "nobody@example.com"}}, true)
	if err != nil || res.Changed != 2 || res.Count != 2 || len(res.NotFound) != 1 || res.NotFound[0] != "nobody@example.com" {
		t.Fatalf("add: %+v %v", res, err)
	}
	if w.count(vipAttendees.ID) != 1 {
		t.Fatal("a rule using the list did not follow it")
	}
	res, err = w.ss.EditMembers(ctx, "acme", list.ID, segments.MemberInput{Contacts: []string{bob.ID}}, false)
	if err != nil || res.Changed != 1 || res.Count != 1 || w.count(vipAttendees.ID) != 0 {
		t.Fatalf("remove: %+v %v", res, err)
	}
	// CSV: by email, with a BOM and an unknown address reported.
	res, err = w.ss.ImportMembers(ctx, "acme", list.ID, strings.NewReader("\ufeffname,email\nBob,bob@example.com\nX,x@example.com\nAna,ana@example.com\n"), true)
	if err != nil || res.Changed != 1 || res.Unchanged != 1 || res.Count != 2 || len(res.NotFound) != 1 {
		t.Fatalf("import: %+v %v", res, err)
	}
	for _, tc := range []struct {
		do   func() error
		want string
		kind error
	}{
		{func() error {
			_, err := w.ss.ImportMembers(ctx, "acme", list.ID, strings.NewReader("name,phone\nA,1\n"), true)
			return err
		}, "no id, contact_id or email column", nil},
		{func() error {
			_, err := w.ss.EditMembers(ctx, "acme", vipAttendees.ID, segments.MemberInput{Contacts: []string{ana.ID}}, true)
			return err
		}, "follows its rule", errs.ErrConflict},
		{func() error {
			_, err := w.ss.EditMembers(ctx, "acme", list.ID, segments.MemberInput{}, true)
			return err
		}, "give 1 to", nil},
		{func() error {
			_, err := w.ss.Create(ctx, "acme", segments.Input{Name: name("L2"), Type: &typ, Rule: rawRule(`has_tag("x")`)})
			return err
		}, "a static list has no rule", nil},
		{func() error {
			_, err := w.ss.Update(ctx, "acme", list.ID, segments.Input{Rule: rawRule(`has_tag("x")`)})
			return err
		}, "a static list has no rule", nil},
	} {
		err := tc.do()
		if err == nil || !strings.Contains(err.Error(), tc.want) || tc.kind != nil && !errors.Is(err, tc.kind) {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
	// The list is durable: after a restart it holds the same members.
	w.close()
	w.open()
	if w.count(list.ID) != 2 || w.count(vipAttendees.ID) != 1 {
		t.Fatalf("after restart: list %d, vip attendees %d", w.count(list.ID), w.count(vipAttendees.ID))
	}
}

func TestErasureForgetsSegmentHistory(t *testing.T) {
	w := newLiveWorld(t)
	ctx := context.Background()
	ana := w.upsert("ana@example.com", map[string]any{"country": "FR"})
	fr := w.create("France", `country = "FR"`)
	doc, err := w.cs.GDPRExport(ctx, "acme", ana.ID)
	if err != nil {
		t.Fatal(err)
	}
	sec := fmt.Sprint(doc.Sections["segments"])
	if !strings.Contains(sec, "France") || !strings.Contains(sec, "rule") {
		t.Fatalf("export section: %s", sec)
	}
	if err := w.cs.Delete(ctx, "acme", ana.ID, true, "test"); err != nil {
		t.Fatal(err)
	}
	if w.count(fr.ID) != 0 {
		t.Fatal("an erased contact stays a member")
	}
	w.close()
	w.open()
	hist, _, err := w.ss.History(ctx, "acme", ana.ID, "", 10)
	if err != nil || len(hist) != 0 {
		t.Fatalf("history after erasure: %+v %v", hist, err)
	}
}

func TestRulesAreCheckedAgainstTheAttributesKinds(t *testing.T) {
	w := newLiveWorld(t)
	w.upsert("ana@example.com", map[string]any{"country": "FR", "age": 31})
	_, err := w.ss.Create(context.Background(), "acme", segments.Input{Name: name("Odd"), Rule: rawRule(`country > 5`)})
	if err == nil || !strings.Contains(err.Error(), "'country' is text") || !strings.Contains(err.Error(), "1:") {
		t.Fatalf("country > 5: %v", err)
	}
	if _, err := w.ss.Create(context.Background(), "acme", segments.Input{Name: name("Adults"), Rule: rawRule(`age >= 18`)}); err != nil {
		t.Fatal(err)
	}
}

// movingSnapshots is a store whose read transactions never see the same state twice, as when writes commit
// between them: a start cannot load on two transactions and must load in one.
type movingSnapshots struct {
	*store.Store
	views atomic.Int64
}

// rebuildContactsTx is what the store's read transactions are.
type rebuildContactsTx interface {
	contacts.Tx
	segments.RebuildTx
}

type movingTx struct {
	rebuildContactsTx
	snapshot uint64
}

func (t movingTx) Snapshot() uint64 { return t.snapshot }

func (m *movingSnapshots) ViewContacts(ctx context.Context, ws string, fn func(contacts.Tx) error) error {
	return m.Store.ViewContacts(ctx, ws, func(tx contacts.Tx) error {
		return fn(movingTx{tx.(rebuildContactsTx), uint64(m.views.Add(1))})
	})
}

func TestStartLoadsTheSameIndexInOneTransaction(t *testing.T) {
	w := newLiveWorld(t)
	ctx := context.Background()
	for i := range 40 {
		email := fmt.Sprintf("c%02d@example.com", i)
		w.upsert(email, map[string]any{"country": []string{"FR", "DE"}[i%2], "n": i}, []string{"vip", "new"}[i%3%2])
		for k := range i % 4 {
			w.track(email, []string{"Page Viewed", "Order Completed"}[k%2], now.Add(-time.Duration(i*k)*time.Hour))
		}
	}
	var ids []string
	for _, s := range [][2]string{
		{"FR", `country = "FR"`},
		{"Buyers", `performed("Order Completed", within: 30d)`},
		{"Active", `performed("Page Viewed", count >= 2) and n > 10`},
		{"VIP FR", `has_tag("vip") and in_segment("FR")`},
	} {
		ids = append(ids, w.create(s[0], s[1]).ID)
	}
	members := func(ss *segments.Service) map[string][]string {
		out := map[string][]string{}
		for _, id := range ids {
			page, _, err := ss.Members(ctx, "acme", id, "", 100)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range page {
				out[id] = append(out[id], c.ID)
			}
		}
		return out
	}
	want := members(w.ss)
	for _, id := range ids {
		if len(want[id]) == 0 {
			t.Fatalf("segment %s has no member to compare", id)
		}
	}
	w.close()

	st, err := store.Open(ctx, store.Options{Dir: w.dir, Logger: w.log})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	for _, tt := range []struct {
		name  string
		store segments.Store
	}{
		{"two transactions", st},
		{"one transaction", &movingSnapshots{Store: st}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ss := segments.NewService(tt.store, nil, w.log, w.now)
			defer ss.Close()
			if err := ss.Start(ctx, []string{"acme"}); err != nil {
				t.Fatal(err)
			}
			if got := members(ss); !reflect.DeepEqual(got, want) {
				t.Fatalf("members after the start: %v, want %v", got, want)
			}
			if m, ok := tt.store.(*movingSnapshots); ok && m.views.Load() < 2*3+1 {
				t.Fatalf("%d read transactions: the start did not try loading in parallel before one transaction", m.views.Load())
			}
		})
	}
}
