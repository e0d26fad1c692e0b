package admin_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crosscast/crosscast/admin"
	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/jobs"
)

// importFixture is the API fixture with a job runner; MaxBody stays 4 KiB, so every import here is larger than
// what other routes accept.
type importFixture struct {
	*fixture
	runner *jobs.Runner
}

func newImportFixture(t testing.TB, maxImport int64) *importFixture {
	t.Helper()
	f := newFixture(t)
	runner, err := jobs.NewRunner(context.Background(), f.store, jobs.Options{Dir: filepath.Join(f.dir, "jobs")}, f.deps.Logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = runner.Close(context.Background()) })
	f.deps.Jobs = runner
	f.reserve(admin.Options{MaxBody: 4096, MaxImport: maxImport})
	return &importFixture{fixture: f, runner: runner}
}

// upload sends a body through app.Test with the given headers ("Content-Type" included).
func (f *importFixture) upload(t testing.TB, method, target, token string, body []byte, headers map[string]string) (*http.Response, []byte) {
	t.Helper()
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+f.tokens[token])
	}
	resp, err := f.srv.App().Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	return resp, data
}

func csvHeaders() map[string]string { return map[string]string{"Content-Type": "text/csv"} }

// submit posts an import and returns its job id.
func (f *importFixture) submit(t testing.TB, ws, query string, body []byte, headers map[string]string) string {
	t.Helper()
	resp, data := f.upload(t, "POST", "/api/v1/workspaces/"+ws+"/contacts/import"+query, "owner", body, headers)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("import: %d %s", resp.StatusCode, data)
	}
	var out struct {
		Job jobs.Job `json:"job"`
	}
	if err := json.Unmarshal(data, &out); err != nil || !jobs.ValidID(out.Job.ID) {
		t.Fatalf("import answer %s: %v", data, err)
	}
	if loc := resp.Header.Get("Location"); loc != "/api/v1/jobs/"+out.Job.ID {
		t.Fatalf("Location %q", loc)
	}
	return out.Job.ID
}

// waitJob polls GET /api/v1/jobs/{id} until the job is over.
func (f *importFixture) waitJob(t testing.TB, id string) jobs.Job {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		req := httptest.NewRequest("GET", "/api/v1/jobs/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+bootstrap)
		resp, err := f.srv.App().Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET job: %d %s", resp.StatusCode, data)
		}
		var j jobs.Job
		if err := json.Unmarshal(data, &j); err != nil {
			t.Fatal(err)
		}
		if j.Status.Done() {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job still %s after the deadline: %s", j.Status, data)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (f *importFixture) contactByEmail(t *testing.T, ws, email string) (contacts.Contact, bool) {
	t.Helper()
	items, _, err := f.deps.Contacts.List(context.Background(), ws, contacts.Filter{Email: email})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) == 0 {
		return contacts.Contact{}, false
	}
	return items[0], true
}

func TestImportRequestsRefused(t *testing.T) {
	f := newImportFixture(t, 1<<20)
	good := []byte("email,name\na@x.io,A\n")
	csvT := csvHeaders()
	for _, tt := range []struct {
		name    string
		url     string
		token   string
		body    []byte
		headers map[string]string
		status  int
		code    string
		want    []string
	}{
		{"viewer may not import", "/api/v1/workspaces/acme/contacts/import", "acme-viewer", good, csvT, 403, "forbidden", nil},
		{"other workspace hidden", "/api/v1/workspaces/globex/contacts/import", "acme-admin", good, csvT, 404, "not_found", nil},
		{"unknown workspace", "/api/v1/workspaces/nope/contacts/import", "owner", good, csvT, 404, "not_found", nil},
		{"no token", "/api/v1/workspaces/acme/contacts/import", "", good, csvT, 401, "unauthorized", nil},
		{"format unknown", "/api/v1/workspaces/acme/contacts/import", "owner", good, map[string]string{"Content-Type": "application/json"}, 400, "validation_failed",
			[]string{`"field":"format"`, "text/csv or application/x-ndjson"}},
		{"bad format query", "/api/v1/workspaces/acme/contacts/import?format=xlsx", "owner", good, csvT, 400, "validation_failed", []string{`"field":"format"`}},
		{"bad delimiter", "/api/v1/workspaces/acme/contacts/import?delimiter=xx", "owner", good, csvT, 400, "validation_failed", []string{`"field":"delimiter"`}},
		{"bad mapping target", "/api/v1/workspaces/acme/contacts/import?mapping=" + url.QueryEscape(`{"name":"nmae"}`), "owner", good, csvT, 400, "validation_failed",
			[]string{`"field":"mapping.name"`, `unknown target \"nmae\"`}},
		{"mapping not JSON", "/api/v1/workspaces/acme/contacts/import?mapping=email", "owner", good, csvT, 400, "validation_failed", []string{`"field":"mapping"`}},
		{"mapping names a missing column", "/api/v1/workspaces/acme/contacts/import?mapping=" + url.QueryEscape(`{"Mail":"email"}`), "owner", good, csvT, 400, "validation_failed",
			[]string{`"field":"mapping.Mail"`, `the header has no column \"Mail\"`}},
		{"mapping with JSON Lines", "/api/v1/workspaces/acme/contacts/import?format=jsonl&mapping=" + url.QueryEscape(`{"a":"email"}`), "owner", good, nil, 400, "validation_failed",
			[]string{"mapping and delimiter apply to CSV"}},
		{"empty upload", "/api/v1/workspaces/acme/contacts/import", "owner", nil, csvT, 400, "validation_failed", []string{"the upload is empty"}},
		{"no identifier column", "/api/v1/workspaces/acme/contacts/import", "owner", []byte("name,city\nA,Lyon\n"), csvT, 400, "validation_failed",
			[]string{"no column maps to email, phone or user_id"}},
		{"unknown consent channel", "/api/v1/workspaces/acme/contacts/import", "owner", []byte("email,consent.fax\na@x.io,yes\n"), csvT, 400, "validation_failed",
			[]string{`"field":"columns.consent.fax"`}},
		{"UTF-16 file", "/api/v1/workspaces/acme/contacts/import", "owner", []byte("\xFF\xFEe\x00m\x00"), csvT, 400, "validation_failed", []string{"UTF-16"}},
		{"unsupported encoding", "/api/v1/workspaces/acme/contacts/import", "owner", good, map[string]string{"Content-Type": "text/csv", "Content-Encoding": "br"}, 400, "validation_failed",
			[]string{"Content-Encoding"}},
		{"corrupt gzip", "/api/v1/workspaces/acme/contacts/import", "owner", good, map[string]string{"Content-Type": "text/csv", "Content-Encoding": "gzip"}, 400, "validation_failed",
			[]string{"not gzip data"}},
		{"truncated gzip", "/api/v1/workspaces/acme/contacts/import", "owner", truncatedGzip(), map[string]string{"Content-Type": "text/csv", "Content-Encoding": "gzip"}, 400, "validation_failed",
			[]string{"the gzip data is corrupt after"}},
		{"too large", "/api/v1/workspaces/acme/contacts/import", "owner", bytes.Repeat([]byte("x"), 1<<20+1), csvT, 413, "body_too_large", []string{"server.max_import"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, data := f.upload(t, "POST", tt.url, tt.token, tt.body, tt.headers)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, data)
			}
			if code := errorBody(t, data); code != tt.code {
				t.Fatalf("code %q, want %q: %s", code, tt.code, data)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(data), w) {
					t.Errorf("answer lacks %s: %s", w, data)
				}
			}
		})
	}
	// Nothing was queued, and no spooled upload was left behind.
	list, _, err := f.runner.List(context.Background(), "", "", 0)
	if err != nil || len(list) != 0 {
		t.Fatalf("jobs after refused imports: %+v %v", list, err)
	}
	if left, _ := filepath.Glob(filepath.Join(f.dir, "jobs", "*")); len(left) != 0 {
		t.Fatalf("files left in the jobs dir: %v", left)
	}
}

// truncatedGzip is the first half of a gzipped CSV.
func truncatedGzip() []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	for i := range 5000 {
		fmt.Fprintf(zw, "email\nz%d@example.com\n", i)
	}
	_ = zw.Close()
	return buf.Bytes()[:buf.Len()/2]
}

// badRow says what is wrong with one generated row and what the job must report for it.
type badRow struct {
	line   int64
	row    string
	email  string // an identifier the row carries, which must not exist afterwards ("" if none)
	column string
	want   string
}

// genImport writes a CSV of n rows (UTF-8 BOM, CRLF line ends, a quoted cell with a line break every 1000 rows)
// and puts the bad rows at their lines. It returns the body and the number of good rows.
func genImport(n int, bad []badRow) ([]byte, int) {
	var b bytes.Buffer
	b.WriteString("\xEF\xBB\xBFEmail,First Name,Age,Plan,tags,consent.email\r\n")
	line := int64(2)
	next := 0
	good := 0
	for i := 0; i < n; i++ {
		if next < len(bad) && bad[next].line == line {
			b.WriteString(bad[next].row + "\r\n")
			next++
			line++
			continue
		}
		if i%1000 == 999 {
			fmt.Fprintf(&b, "user%d@example.com,\"Multi\nLine\",%d,pro,imported|batch%d,yes\r\n", i, 20+i%50, i/1000)
			line += 2
		} else {
			fmt.Fprintf(&b, "user%d@example.com,Name%d,%d,free,imported,\r\n", i, i, 20+i%50)
			line++
		}
		good++
	}
	return b.Bytes(), good
}

// A 20k-row CSV with bad rows: good rows are kept, each bad row is reported at its line with a clear message and
// writes nothing.
func TestImportCSVKeepsGoodRowsAndReportsBadOnes(t *testing.T) {
	f := newImportFixture(t, 0)
	bad := []badRow{
		{line: 5, row: "not-an-email,X,1,free,,", column: "Email", want: `"not-an-email" is not a valid email address`},
		{line: 77, row: "short@example.com,Short", email: "short@example.com", want: "the row has 2 cells; the header has 6"},
		{line: 1234, row: "latin1@example.com,Andr\xe9,1,free,,", email: "latin1@example.com", column: "First Name", want: "is not valid UTF-8 text (byte 0xE9"},
		{line: 5000, row: "age@example.com,Age,old,free,,", email: "age@example.com", column: "Age", want: `"old" is not a number`},
		{line: 9999, row: "consent@example.com,C,1,free,,maybe", email: "consent@example.com", column: "consent.email", want: `"maybe" is not a consent status`},
		{line: 15000, row: "quote@example.com,A \"B\" C,1,free,,", email: "quote@example.com", want: `bare " in non-quoted-field at line 15000`},
		{line: 19990, row: "tag@example.com,T,1,free,#bad tag,", email: "tag@example.com", column: "tags", want: `"#bad tag" is not a valid tag`},
	}
	body, good := genImport(20000, bad)
	if len(body) < 100*4096 {
		t.Fatalf("test body too small to prove max_body does not apply: %d", len(body))
	}
	id := f.submit(t, "acme", "?mapping="+url.QueryEscape(`{"Age":"attributes.age:number"}`), body, csvHeaders())
	j := f.waitJob(t, id)
	if j.Status != jobs.StatusSucceeded || j.Workspace != "acme" || j.Kind != admin.KindImport {
		t.Fatalf("job %+v", j)
	}
	if j.Total != 20000 || j.Processed != 20000 || j.Created != int64(good) || j.Updated != 0 || j.Failed != int64(len(bad)) {
		t.Fatalf("total %d processed %d created %d updated %d failed %d (want %d good, %d bad)",
			j.Total, j.Processed, j.Created, j.Updated, j.Failed, good, len(bad))
	}
	if j.ErrorCount != int64(len(bad)) || len(j.Errors) != len(bad) {
		t.Fatalf("errors %+v", j.Errors)
	}
	for i, b := range bad {
		e := j.Errors[i]
		if e.Line != b.line || e.Column != b.column || !strings.Contains(e.Message, b.want) {
			t.Errorf("error %d = %+v, want line %d column %q message containing %q", i, e, b.line, b.column, b.want)
		}
	}
	cols, _ := j.Params["columns"].(map[string]any)
	if j.Rate <= 0 || j.StartedAt.IsZero() || j.FinishedAt.IsZero() || j.Params["format"] != "csv" ||
		cols["Age"] != "attributes.age:number" || cols["Email"] != "email" || cols["First Name"] != "attributes.First Name" {
		t.Fatalf("job details: %+v", j)
	}
	// Bad rows wrote nothing; good rows are there with typed attributes, tags and consent.
	for _, b := range bad {
		if b.email == "" {
			continue
		}
		if _, ok := f.contactByEmail(t, "acme", b.email); ok {
			t.Errorf("bad row at line %d created %s", b.line, b.email)
		}
	}
	n, err := f.deps.Contacts.Count(context.Background(), "acme")
	if err != nil || n != good {
		t.Fatalf("%d contacts stored, want %d (%v)", n, good, err)
	}
	c, ok := f.contactByEmail(t, "acme", "user999@example.com")
	if !ok || c.Attributes["First Name"].Str != "Multi\nLine" || c.Attributes["age"].Num != 69 || c.Attributes["Plan"].Str != "pro" ||
		strings.Join(c.Tags, ",") != "batch0,imported" || c.ConsentOn("email") != contacts.Subscribed || c.Consent["email"].Source != "import" {
		t.Fatalf("user999 = %+v", c)
	}

	// Importing the same file again updates every good row and creates nothing.
	j2 := f.waitJob(t, f.submit(t, "acme", "?mapping="+url.QueryEscape(`{"Age":"attributes.age:number"}`), body, csvHeaders()))
	if j2.Created != 0 || j2.Updated != int64(good) || j2.Failed != int64(len(bad)) {
		t.Fatalf("second import %+v", j2)
	}
	if n, _ := f.deps.Contacts.Count(context.Background(), "acme"); n != good {
		t.Fatalf("%d contacts after the second import", n)
	}
}

func TestImportJSONLinesGzipped(t *testing.T) {
	f := newImportFixture(t, 0)
	var raw bytes.Buffer
	for i := range 3000 {
		fmt.Fprintf(&raw, `{"email":"j%d@example.com","attributes":{"score":%d,"address":{"city":"Lyon"}},"tags":["jsonl"]}`+"\n", i, i)
	}
	raw.WriteString(`{"email":"bad@example.com","attributes":{"score":1},"tgas":["x"]}` + "\n")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(raw.Bytes())
	_ = zw.Close()
	id := f.submit(t, "acme", "", gz.Bytes(), map[string]string{"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"})
	j := f.waitJob(t, id)
	if j.Status != jobs.StatusSucceeded || j.Total != 3001 || j.Created != 3000 || j.Failed != 1 ||
		len(j.Errors) != 1 || j.Errors[0].Line != 3001 || j.Errors[0].Field != "tgas" {
		t.Fatalf("job %+v", j)
	}
	c, ok := f.contactByEmail(t, "acme", "j42@example.com")
	if !ok || c.Attributes["score"].Num != 42 || c.Attributes["address.city"].Str != "Lyon" {
		t.Fatalf("j42 = %+v", c)
	}
}

func TestJobAccess(t *testing.T) {
	f := newImportFixture(t, 0)
	id := f.submit(t, "acme", "", []byte("email\nnot-an-email\nok@example.com\n"), csvHeaders())
	j := f.waitJob(t, id)
	if j.Failed != 1 || !strings.Contains(j.Errors[0].Message, `"not-an-email"`) {
		t.Fatalf("job %+v", j)
	}
	for _, tt := range []struct {
		name, method, url, token string
		status                   int
		want, absent             string
	}{
		{"owner reads", "GET", "/api/v1/jobs/" + id, "owner", 200, `not-an-email\" is not a valid email`, ""},
		{"workspace admin reads", "GET", "/api/v1/jobs/" + id, "acme-admin", 200, `"status":"succeeded"`, ""},
		{"viewer reads with values masked", "GET", "/api/v1/jobs/" + id, "acme-viewer", 200, `\"***\" is not a valid email`, "not-an-email"},
		{"other workspace's token gets 404", "GET", "/api/v1/jobs/" + id, "globex-admin", 404, "", ""},
		{"unknown job", "GET", "/api/v1/jobs/" + jobs.NewID(time.Now()), "owner", 404, "", ""},
		{"not a job id", "GET", "/api/v1/jobs/..%2f..%2fsystem.db", "owner", 404, "", ""},
		{"list a workspace's jobs", "GET", "/api/v1/workspaces/acme/jobs", "acme-viewer", 200, `"id":"` + id + `"`, "not-an-email"},
		{"list other workspace hidden", "GET", "/api/v1/workspaces/acme/jobs", "globex-admin", 404, "", ""},
		{"list is per workspace", "GET", "/api/v1/workspaces/globex/jobs", "owner", 200, `"items":[]`, ""},
		{"list bad cursor", "GET", "/api/v1/workspaces/acme/jobs?cursor=zzz", "owner", 400, "cursor", ""},
		{"viewer may not cancel", "DELETE", "/api/v1/jobs/" + id, "acme-viewer", 403, "", ""},
		{"cancel a finished job", "DELETE", "/api/v1/jobs/" + id, "acme-admin", 409, "already succeeded", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, ok := f.tokens["globex-admin"]; !ok {
				f.issue(t, "globex-admin", `{"name":"globex admin","role":"admin","workspace":"globex"}`)
			}
			resp, data := f.do(t, tt.method, tt.url, tt.token, "")
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, data)
			}
			if tt.want != "" && !strings.Contains(string(data), tt.want) {
				t.Errorf("answer lacks %s: %s", tt.want, data)
			}
			if tt.absent != "" && strings.Contains(string(data), tt.absent) {
				t.Errorf("answer shows %s: %s", tt.absent, data)
			}
		})
	}
}

func (f *importFixture) issue(t *testing.T, name, body string) {
	t.Helper()
	resp, data := f.do(t, "POST", "/api/v1/tokens", "owner", body)
	if resp.StatusCode != 201 {
		t.Fatalf("issuing %s: %d %s", name, resp.StatusCode, data)
	}
	var out struct {
		Secret string `json:"secret"`
	}
	_ = json.Unmarshal(data, &out)
	f.tokens[name] = out.Secret
}

// An import whose workspace is deleted while it runs stops; its job record goes with the workspace (it quotes the
// workspace's data), so the job then answers 404. It never hangs and never comes back as an orphan record.
func TestImportIntoDeletedWorkspaceEndsCleanly(t *testing.T) {
	f := newImportFixture(t, 0)
	body, _ := genImport(30000, nil)
	id := f.submit(t, "globex", "", body, csvHeaders())
	if resp, data := f.do(t, "DELETE", "/api/v1/workspaces/globex?confirm=globex", "owner", ""); resp.StatusCode != 204 {
		t.Fatalf("delete: %d %s", resp.StatusCode, data)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, data := f.do(t, "GET", "/api/v1/jobs/"+id, "owner", "")
		if resp.StatusCode == http.StatusNotFound {
			break
		}
		var out struct {
			Status jobs.Status `json:"status"`
		}
		_ = json.Unmarshal(data, &out)
		if resp.StatusCode != 200 || (out.Status.Done() && out.Status != jobs.StatusFailed && out.Status != jobs.StatusSucceeded) {
			t.Fatalf("job after its workspace was deleted: %d %s", resp.StatusCode, data)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job is still visible 30 s after its workspace was deleted: %s", data)
		}
		time.Sleep(20 * time.Millisecond)
	}
	list, err := f.store.ListJobs(context.Background(), "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range list {
		if j.Workspace == "globex" {
			t.Fatalf("orphan job record: %+v", j)
		}
	}
}

func TestExport(t *testing.T) {
	f := newImportFixture(t, 0)
	body := []byte("email,phone,First Name,Age,tags,consent.sms\n" +
		"a@example.com,+33612345678,Ann,31,vip|beta,yes\n" +
		"b@example.com,,Bob,42,,\n")
	if j := f.waitJob(t, f.submit(t, "acme", "", body, csvHeaders())); j.Created != 2 {
		t.Fatalf("seed import %+v", j)
	}
	resp, data := f.do(t, "GET", "/api/v1/workspaces/acme/contacts/export", "acme-admin", "")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), `filename="contacts-acme-`) {
		t.Fatalf("csv export: %d %v %s", resp.StatusCode, resp.Header, data)
	}
	recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil || len(recs) != 3 {
		t.Fatalf("csv export: %v\n%s", err, data)
	}
	if got := strings.Join(recs[0], ","); got != "id,email,phone,user_id,timezone,locale,tags,consent.email,consent.push,consent.sms,consent.webhook,consent.whatsapp,Age,First Name" {
		t.Fatalf("header %s", got)
	}
	if !strings.Contains(string(data), "a@example.com,+33612345678,,,,beta|vip,") || !strings.Contains(string(data), ",31,Ann") {
		t.Fatalf("csv rows:\n%s", data)
	}

	// A viewer gets the workspace's PII masked; ?attributes= picks the attribute columns.
	resp, data = f.do(t, "GET", "/api/v1/workspaces/acme/contacts/export?attributes=Age", "acme-viewer", "")
	if resp.StatusCode != 200 || strings.Contains(string(data), "a@example.com") ||
		strings.SplitN(string(data), "\n", 2)[0] != "id,email,phone,user_id,timezone,locale,tags,consent.email,consent.push,consent.sms,consent.webhook,consent.whatsapp,Age" {
		t.Fatalf("viewer export: %d\n%s", resp.StatusCode, data)
	}

	resp, data = f.do(t, "GET", "/api/v1/workspaces/acme/contacts/export?format=jsonl", "owner", "")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("jsonl export: %d %v", resp.StatusCode, resp.Header)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	var emails []string
	for sc.Scan() {
		var c contacts.Contact
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("jsonl line %q: %v", sc.Text(), err)
		}
		emails = append(emails, c.Email)
	}
	if len(emails) != 2 {
		t.Fatalf("jsonl export: %s", data)
	}

	for _, tt := range []struct {
		url, token string
		status     int
	}{
		{"/api/v1/workspaces/acme/contacts/export?format=xml", "owner", 400},
		{"/api/v1/workspaces/globex/contacts/export", "acme-admin", 404},
		{"/api/v1/workspaces/nope/contacts/export", "owner", 404},
	} {
		if resp, data := f.do(t, "GET", tt.url, tt.token, ""); resp.StatusCode != tt.status {
			t.Errorf("%s: %d %s", tt.url, resp.StatusCode, data)
		}
	}
}

// With bodies streaming, every route but the import keeps refusing bodies over server.max_body, whether their
// length is declared or chunked; imports take chunked uploads up to server.max_import.
func TestBodyLimitsOverTCP(t *testing.T) {
	f := newImportFixture(t, 64<<10)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = f.srv.Serve(ln) }()
	t.Cleanup(func() { _ = f.srv.Shutdown(context.Background()) })
	base := "http://" + ln.Addr().String()
	client := &http.Client{Timeout: 30 * time.Second}
	send := func(t *testing.T, method, path string, body io.Reader, size int64, contentType string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, body)
		req.ContentLength = size // -1: chunked
		req.Header.Set("Authorization", "Bearer "+bootstrap)
		req.Header.Set("Content-Type", contentType)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(data)
	}
	chunked := func(s string) io.Reader { return io.MultiReader(strings.NewReader(s)) } // hides the length
	big := `{"id":"big","name":"` + strings.Repeat("a", 5000) + `"}`
	small := `{"id":"small-chunked","name":"Small"}`
	rows := func(n int) string {
		var b strings.Builder
		b.WriteString("email\n")
		for i := range n {
			fmt.Fprintf(&b, "tcp%d@example.com\n", i)
		}
		return b.String()
	}
	for _, tt := range []struct {
		name        string
		method      string
		path        string
		body        string
		chunked     bool
		contentType string
		status      int
		want        string
	}{
		{"declared length over max_body", "POST", "/api/v1/workspaces", big, false, "application/json", 413, "server.max_body"},
		{"chunked body over max_body", "POST", "/api/v1/workspaces", big, true, "application/json", 413, "server.max_body"},
		{"chunked body within max_body", "POST", "/api/v1/workspaces", small, true, "application/json", 201, `"id":"small-chunked"`},
		{"webhook over max_body", "POST", "/hooks/acme/null", big, true, "application/json", 413, "server.max_body"},
		{"import over max_body, within max_import", "POST", "/api/v1/workspaces/acme/contacts/import", rows(2000), false, "text/csv", 202, `"status":"queued"`},
		{"chunked import over max_body", "POST", "/api/v1/workspaces/acme/contacts/import", rows(2000), true, "text/csv", 202, `"total":2000`},
		{"import over max_import", "POST", "/api/v1/workspaces/acme/contacts/import", rows(5000), false, "text/csv", 413, "server.max_import"},
		{"chunked import over max_import", "POST", "/api/v1/workspaces/acme/contacts/import", rows(5000), true, "text/csv", 413, "server.max_import"},
		{"import path in another case", "POST", "/API/V1/Workspaces/acme/Contacts/Import/", rows(2000), false, "text/csv", 202, `"status":"queued"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(tt.body)
			size := int64(len(tt.body))
			if tt.chunked {
				body, size = chunked(tt.body), -1
			}
			status, data := send(t, tt.method, tt.path, body, size, tt.contentType)
			if status != tt.status || !strings.Contains(data, tt.want) {
				t.Fatalf("status %d, want %d with %q: %s", status, tt.status, tt.want, data)
			}
			if status >= 400 && !strings.Contains(data, `"request_id"`) {
				t.Fatalf("not the error shape: %s", data)
			}
		})
	}
	if _, err := f.store.GetWorkspace(context.Background(), "big"); err == nil {
		t.Fatalf("an oversized request created a workspace")
	}
	// The server still serves on fresh connections after refusing bodies it did not read.
	if status, _ := send(t, "GET", "/api/v1/workspaces/acme", nil, 0, ""); status != 200 {
		t.Fatalf("after the refusals: %d", status)
	}
}
