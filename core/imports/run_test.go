package imports_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/imports"
	"github.com/crosscast/crosscast/core/store"
	"github.com/crosscast/crosscast/core/workspaces"
	"github.com/hashicorp/go-hclog"
)

// recorder is a Reporter that keeps everything.
type recorder struct {
	mu                       sync.Mutex
	total                    int64
	created, updated, failed int64
	errors                   []string
}

func (r *recorder) SetTotal(n int64) { r.mu.Lock(); r.total = n; r.mu.Unlock() }
func (r *recorder) Add(c, u, f int64) {
	r.mu.Lock()
	r.created += c
	r.updated += u
	r.failed += f
	r.mu.Unlock()
}
func (r *recorder) RowError(line int64, column, field, message string) {
	r.mu.Lock()
	r.errors = append(r.errors, fmt.Sprintf("L%d [%s|%s] %s", line, column, field, message))
	r.mu.Unlock()
}

type world struct {
	st  *store.Store
	ws  *workspaces.Service
	svc *contacts.Service
}

func newWorld(t testing.TB) *world {
	t.Helper()
	log := hclog.New(&hclog.LoggerOptions{Name: t.Name(), Output: t.Output(), Level: hclog.Warn})
	st, err := store.Open(context.Background(), store.Options{Dir: t.TempDir(), Fsync: false, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ws := workspaces.NewService(st, log, nil)
	if _, err := ws.Create(context.Background(), workspaces.CreateInput{ID: "acme"}); err != nil {
		t.Fatal(err)
	}
	return &world{st: st, ws: ws, svc: contacts.NewService(st, nil, nil, log, nil)}
}

func (w *world) run(t *testing.T, ctx context.Context, input string, opts imports.Options, chunk int) (*recorder, error) {
	t.Helper()
	rd, err := imports.NewReader(strings.NewReader(input), opts)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	return rec, imports.Run(ctx, w.svc, "acme", rd, rec, chunk)
}

func (w *world) byEmail(t *testing.T, email string) (contacts.Contact, bool) {
	t.Helper()
	items, _, err := w.svc.List(context.Background(), "acme", contacts.Filter{Email: email})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) == 0 {
		return contacts.Contact{}, false
	}
	return items[0], true
}

func TestRunUpsertsGoodRowsAndReportsBadOnes(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	// Two contacts exist: the import updates one, and one row clashes with them.
	for _, f := range []contacts.Fields{
		{Email: ptr("old@x.io"), UserID: ptr("u1")},
		{Email: ptr("other@x.io"), UserID: ptr("u2")},
	} {
		if _, _, err := w.svc.Upsert(ctx, "acme", f, "api"); err != nil {
			t.Fatal(err)
		}
	}
	input := "E-mail,user_id,Age,tags,consent.email\n" +
		"a@x.io,,30,vip,yes\n" + // L2 created
		"not-an-email,,31,,\n" + // L3 invalid email (from the service)
		"b@x.io,,thirty-two,,\n" + // L4 invalid number (from the reader)
		"old@x.io,,40,,\n" + // L5 updated
		"c@x.io,x\n" + // L6 wrong cell count
		"old@x.io,u2,,,\n" + // L7 clash: old@x.io is u1's
		"a@x.io,,33,new,\n" + // L8 updates the row of L2
		",,,,\n" // L9 no identifier
	rec, err := w.run(t, ctx, input, imports.Options{Format: imports.CSV, Mapping: imports.Mapping{"Age": "attributes.age:number"}}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if rec.created != 1 || rec.updated != 2 || rec.failed != 5 || rec.total != 8 {
		t.Fatalf("created %d updated %d failed %d total %d; errors:\n%s", rec.created, rec.updated, rec.failed, rec.total, strings.Join(rec.errors, "\n"))
	}
	want := []string{
		`L3 [E-mail|email] "not-an-email" is not a valid email address`,
		`L4 [Age|attributes.age] "thirty-two" is not a number`,
		`L6 [|] the row has 2 cells; the header has 5`,
		`L7 [|] `,
		`L9 [|] an email, phone or user_id is needed to find or create the contact`,
	}
	if len(rec.errors) != len(want) {
		t.Fatalf("errors:\n%s", strings.Join(rec.errors, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(rec.errors[i], want[i]) {
			t.Errorf("error %d = %s, want prefix %s", i, rec.errors[i], want[i])
		}
	}
	if !strings.Contains(rec.errors[3], "conflict") {
		t.Errorf("clash error does not say conflict: %s", rec.errors[3])
	}
	a, ok := w.byEmail(t, "a@x.io")
	if !ok || a.Attributes["age"].Num != 33 || strings.Join(a.Tags, ",") != "new,vip" || a.ConsentOn("email") != contacts.Subscribed || a.Consent["email"].Source != "import" {
		t.Fatalf("a@x.io = %+v", a)
	}
	old, _ := w.byEmail(t, "old@x.io")
	if old.UserID != "u1" || old.Attributes["age"].Num != 40 {
		t.Fatalf("old@x.io = %+v (the clashing row must write nothing)", old)
	}
	// Bad rows wrote nothing.
	if _, ok := w.byEmail(t, "b@x.io"); ok {
		t.Fatalf("row with an invalid cell created a contact")
	}
	if _, ok := w.byEmail(t, "c@x.io"); ok {
		t.Fatalf("row with a wrong cell count created a contact")
	}
	if n, _ := w.svc.Count(ctx, "acme"); n != 3 {
		t.Fatalf("%d contacts, want 3", n)
	}
}

func TestRunJSONL(t *testing.T) {
	w := newWorld(t)
	input := `{"email":"a@x.io","attributes":{"plan":"pro","seats":3}}` + "\n" +
		`{"email":"b@x.io","attributes":{"x":{"y":{"z":{"w":{"v":1}}}}}}` + "\n" +
		`{"email":"a@x.io","remove_tags":["none"],"consent":{"fax":"subscribed"}}` + "\n" +
		`{"phone":"+33612345678","locale":"fr_FR"}`
	rec, err := w.run(t, context.Background(), input, imports.Options{Format: imports.JSONL}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if rec.created != 2 || rec.updated != 0 || rec.failed != 2 || rec.total != 4 {
		t.Fatalf("%+v", rec)
	}
	if !strings.HasPrefix(rec.errors[0], "L2 [|attributes] ") || !strings.HasPrefix(rec.errors[1], `L3 [|consent.fax] unknown channel "fax"`) {
		t.Fatalf("errors:\n%s", strings.Join(rec.errors, "\n"))
	}
}

func TestRunStopsWhenCancelled(t *testing.T) {
	w := newWorld(t)
	var b strings.Builder
	b.WriteString("email\n")
	for i := range 5000 {
		fmt.Fprintf(&b, "p%d@x.io\n", i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rd, err := imports.NewReader(strings.NewReader(b.String()), imports.Options{Format: imports.CSV})
	if err != nil {
		t.Fatal(err)
	}
	rep := &cancelAfter{n: 1000, cancel: cancel}
	err = imports.Run(ctx, w.svc, "acme", rd, rep, 500)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	n, _ := w.svc.Count(context.Background(), "acme")
	if rep.created < 1000 || rep.created >= 5000 || int64(n) != rep.created {
		t.Fatalf("cancelled import: %d reported, %d stored", rep.created, n)
	}
}

// cancelAfter cancels the import once n rows were created.
type cancelAfter struct {
	recorder
	n      int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Add(cr, u, f int64) {
	c.recorder.Add(cr, u, f)
	if c.created >= c.n {
		c.cancel()
	}
}

func TestRunFailsWhenTheWorkspaceIsGone(t *testing.T) {
	w := newWorld(t)
	if err := w.ws.Delete(context.Background(), "acme", "acme"); err != nil {
		t.Fatal(err)
	}
	_, err := w.run(t, context.Background(), "email\na@x.io\n", imports.Options{Format: imports.CSV}, 0)
	if err == nil || !strings.Contains(err.Error(), "workspace is gone") || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("Run = %v", err)
	}
}

// Rows before a fatal error in the input are written; the error says where reading stopped.
func TestRunKeepsRowsBeforeAFatalError(t *testing.T) {
	w := newWorld(t)
	var b strings.Builder
	b.WriteString("email,notes\na@x.io,x\nb@x.io,\"never closed\n")
	for b.Len() < 2*imports.MaxRowBytes {
		b.WriteString("c@x.io,filler filler filler\n")
	}
	rec, err := w.run(t, context.Background(), b.String(), imports.Options{Format: imports.CSV}, 0)
	if err == nil || !strings.Contains(err.Error(), "line 3: the row starting here") {
		t.Fatalf("Run = %v", err)
	}
	if rec.created != 1 {
		t.Fatalf("created %d", rec.created)
	}
}

func ptr(s string) *string { return &s }

// core/imports imports only the standard library, core/errs and core/contacts: no HTTP, no storage, no jobs.
func TestImportsDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports " "}}`, "github.com/crosscast/crosscast/core/imports").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, imp := range strings.Fields(string(out)) {
		first, _, _ := strings.Cut(imp, "/")
		if !strings.Contains(first, ".") {
			continue // standard library
		}
		if imp != "github.com/crosscast/crosscast/core/errs" && imp != "github.com/crosscast/crosscast/core/contacts" {
			t.Errorf("core/imports imports %s", imp)
		}
	}
}
