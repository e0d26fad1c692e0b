package admin_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crosscast/crosscast/admin"
	"github.com/crosscast/crosscast/core/auth"
	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/metrics"
	"github.com/crosscast/crosscast/core/segments"
	"github.com/crosscast/crosscast/core/store"
	"github.com/crosscast/crosscast/core/workspaces"
	"github.com/crosscast/crosscast/plugins/manager"
	"github.com/crosscast/crosscast/plugins/outbox"
	"github.com/hashicorp/go-hclog"
	bolt "go.etcd.io/bbolt"
)

const bootstrap = "test-bootstrap-token-0123456789abcdef"

// fixture is a server over a real store in a temp dir, with tokens of several roles.
type fixture struct {
	srv    *admin.Server
	deps   admin.Deps
	store  *store.Store
	dir    string
	tokens map[string]string // name -> bearer secret
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	level := hclog.Debug
	if _, bench := t.(*testing.B); bench {
		level = hclog.Warn // per-request logs would distort the figures
	}
	log := hclog.New(&hclog.LoggerOptions{Output: t.Output(), Level: level})
	dir := t.TempDir()
	reg := metrics.NewRegistry()
	st, err := store.Open(context.Background(), store.Options{Dir: dir, Fsync: true, Logger: log, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ws := workspaces.NewService(st, log, nil)
	if err := ws.Reconcile(context.Background(), []workspaces.Declared{{ID: "managed", Name: "From file"}}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"acme", "globex"} {
		if _, err := ws.Create(context.Background(), workspaces.CreateInput{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	as := auth.NewService(st, bootstrap, log, nil)
	f := &fixture{store: st, dir: dir, tokens: map[string]string{"owner": bootstrap}}
	owner := auth.Principal{TokenID: "bootstrap", Role: auth.RoleOwner}
	for name, in := range map[string]auth.IssueInput{
		"acme-admin":    {Name: "acme admin", Role: auth.RoleAdmin, Workspace: "acme"},
		"acme-viewer":   {Name: "acme viewer", Role: auth.RoleViewer, Workspace: "acme"},
		"global-viewer": {Name: "global viewer", Role: auth.RoleViewer},
	} {
		_, secret, err := as.Issue(context.Background(), owner, in)
		if err != nil {
			t.Fatal(err)
		}
		f.tokens[name] = secret
	}
	plugins, err := manager.New(context.Background(), manager.Options{
		CacheDir: filepath.Join(os.TempDir(), "crosscast-test-wasm-cache"), Logger: log, KV: st, Metrics: reg,
	}, manager.DefaultSpecs())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plugins.Close(context.Background()) })
	settings := func(ctx context.Context, id string) (contacts.Settings, error) {
		w, err := ws.Get(ctx, id)
		if err != nil {
			return contacts.Settings{}, err
		}
		return contacts.Settings{Channels: w.Settings.Channels, PII: w.Settings.PII, IP: contacts.IPMode(w.Settings.IP)}, nil
	}
	stream := contacts.NewStream()
	segs := segments.NewService(st, stream, log, nil)
	t.Cleanup(segs.Close) // before the store closes (cleanups run last first)
	f.deps = admin.Deps{
		Workspaces: ws, Auth: as, Store: st, Plugins: plugins, Channels: plugins, Outboxes: outbox.New(st), Hooks: plugins,
		Metrics: reg, Logger: log, Version: "test",
		Contacts: contacts.NewService(st, settings, stream, log, nil), WriteKeys: st, Segments: segs,
	}
	f.srv = admin.New(f.deps, admin.Options{MaxBody: 4096})
	f.srv.SetReady(true)
	return f
}

// reserve replaces the fixture's server by one built with opts (over the same services, with a fresh metrics
// registry: a registry refuses a second server's metrics).
func (f *fixture) reserve(opts admin.Options) {
	f.deps.Metrics = metrics.NewRegistry()
	f.srv = admin.New(f.deps, opts)
	f.srv.SetReady(true)
}

func (f *fixture) do(t *testing.T, method, url, token, body string) (*http.Response, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, url, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
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

// errorBody checks the one error shape and returns its code.
func errorBody(t *testing.T, data []byte) (code string) {
	t.Helper()
	var e struct {
		Error struct {
			Code      string           `json:"code"`
			Message   string           `json:"message"`
			Details   *json.RawMessage `json:"details"`
			RequestID string           `json:"request_id"`
		} `json:"error"`
	}
	if err := json.Unmarshal(data, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" || e.Error.RequestID == "" || e.Error.Details == nil {
		t.Fatalf("not the API error shape {code, message, details, request_id}: %s", data)
	}
	return e.Error.Code
}

func TestAPIScenarios(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		url        string
		token      string
		body       string
		wantStatus int
		wantCode   string // error code for 4xx/5xx
		want       []string
	}{
		{"healthz", "GET", "/healthz", "", "", 200, "", []string{`"status":"ok"`, `"system":"ok"`, `"workspaces":"ok"`, `"failing":0`}},
		{"readyz", "GET", "/readyz", "", "", 200, "", []string{`"ready"`}},
		{"metrics", "GET", "/metrics", "", "", 200, "", []string{"crosscast_store_commit_seconds_bucket", "go_goroutines"}},
		{"unknown route", "GET", "/nope", "", "", 404, "route_not_found", nil},
		{"unknown api route", "GET", "/api/v1/nope", "owner", "", 404, "route_not_found", nil},
		{"wrong method", "PUT", "/api/v1/workspaces/acme", "owner", `{}`, 405, "method_not_allowed", []string{"use DELETE, GET, PATCH"}},
		{"wrong method on a list", "DELETE", "/api/v1/workspaces", "owner", "", 405, "method_not_allowed", nil},
		{"missing token", "GET", "/api/v1/workspaces", "", "", 401, "unauthorized", nil},
		{"whoami", "GET", "/api/v1/whoami", "acme-admin", "", 200, "", []string{`"role":"admin"`, `"workspace":"acme"`}},
		{"list as owner", "GET", "/api/v1/workspaces", "owner", "", 200, "", []string{`"id":"acme"`, `"id":"globex"`, `"id":"managed"`, `"next":""`}},
		{"list as scoped admin sees one", "GET", "/api/v1/workspaces", "acme-admin", "", 200, "", []string{`"items":[{"id":"acme"`, `"next":""`}},
		{"list bad limit", "GET", "/api/v1/workspaces?limit=0", "owner", "", 400, "validation_failed", []string{"limit"}},
		{"get", "GET", "/api/v1/workspaces/acme", "acme-viewer", "", 200, "", []string{`"id":"acme"`, `"write_key":"wk_`}},
		{"get other workspace hidden", "GET", "/api/v1/workspaces/globex", "acme-admin", "", 404, "not_found", nil},
		{"get unknown", "GET", "/api/v1/workspaces/zzz", "owner", "", 404, "not_found", nil},
		{"create", "POST", "/api/v1/workspaces", "owner", `{"id":"initech","name":"Initech"}`, 201, "", []string{`"id":"initech"`, `"name":"Initech"`, `"write_key":"wk_`}},
		{"create by scoped admin forbidden", "POST", "/api/v1/workspaces", "acme-admin", `{"id":"x1"}`, 403, "forbidden", nil},
		{"create by global viewer forbidden", "POST", "/api/v1/workspaces", "global-viewer", `{"id":"x2"}`, 403, "forbidden", nil},
		{"create duplicate", "POST", "/api/v1/workspaces", "owner", `{"id":"acme"}`, 409, "conflict", nil},
		{"create invalid id", "POST", "/api/v1/workspaces", "owner", `{"id":"Not Valid"}`, 400, "validation_failed", []string{`"field":"id"`}},
		{"create unknown field", "POST", "/api/v1/workspaces", "owner", `{"id":"x3","nmae":"typo"}`, 400, "validation_failed", []string{`"field":"nmae"`, "unknown field"}},
		{"create wrong type", "POST", "/api/v1/workspaces", "owner", `{"id":5}`, 400, "validation_failed", []string{`"field":"id"`, "must be a string"}},
		{"create malformed json", "POST", "/api/v1/workspaces", "owner", "{\n  \"id\": \"x4\",,\n}", 400, "malformed_json", []string{`"line":2`}},
		{"create truncated json", "POST", "/api/v1/workspaces", "owner", `{"id":`, 400, "malformed_json", []string{"truncated"}},
		{"create trailing data", "POST", "/api/v1/workspaces", "owner", `{"id":"x5"} {}`, 400, "malformed_json", []string{"after the JSON value"}},
		{"create empty body", "POST", "/api/v1/workspaces", "owner", "", 400, "malformed_json", []string{"empty"}},
		{"create array body", "POST", "/api/v1/workspaces", "owner", `[1]`, 400, "malformed_json", []string{"JSON object"}},
		{"patch", "PATCH", "/api/v1/workspaces/acme", "acme-admin", `{"name":"  Acme Corp "}`, 200, "", []string{`"name":"Acme Corp"`}},
		{"patch as viewer forbidden", "PATCH", "/api/v1/workspaces/acme", "acme-viewer", `{"name":"x"}`, 403, "forbidden", nil},
		{"patch managed refused", "PATCH", "/api/v1/workspaces/managed", "owner", `{"name":"x"}`, 409, "conflict", []string{"configuration file"}},
		{"patch empty name", "PATCH", "/api/v1/workspaces/acme", "owner", `{"name":""}`, 400, "validation_failed", []string{`"field":"name"`}},
		{"rotate write key", "POST", "/api/v1/workspaces/acme/write-key/rotate", "acme-admin", "", 200, "", []string{`"write_key":"wk_`}},
		{"delete without confirm", "DELETE", "/api/v1/workspaces/globex", "owner", "", 400, "validation_failed", []string{"confirm=globex"}},
		{"delete wrong confirm", "DELETE", "/api/v1/workspaces/globex?confirm=acme", "owner", "", 400, "validation_failed", nil},
		{"delete by scoped admin forbidden", "DELETE", "/api/v1/workspaces/acme?confirm=acme", "acme-admin", "", 403, "forbidden", nil},
		{"delete managed refused", "DELETE", "/api/v1/workspaces/managed?confirm=managed", "owner", "", 409, "conflict", nil},
		{"issue token", "POST", "/api/v1/tokens", "acme-admin", `{"name":"ci","role":"editor","workspace":"acme"}`, 201, "", []string{`"secret":"cct_`, `"role":"editor"`}},
		{"issue owner by admin forbidden", "POST", "/api/v1/tokens", "acme-admin", `{"name":"x","role":"owner","workspace":"acme"}`, 403, "forbidden", nil},
		{"issue for other workspace forbidden", "POST", "/api/v1/tokens", "acme-admin", `{"name":"x","role":"viewer","workspace":"globex"}`, 403, "forbidden", nil},
		{"issue bad role", "POST", "/api/v1/tokens", "owner", `{"name":"x","role":"god"}`, 400, "validation_failed", []string{`"field":"role"`}},
		{"issue for missing workspace", "POST", "/api/v1/tokens", "owner", `{"name":"x","role":"viewer","workspace":"nope"}`, 404, "not_found", nil},
		{"list tokens hides secrets", "GET", "/api/v1/tokens", "owner", "", 200, "", []string{`"name":"acme admin"`}},
		{"list tokens as viewer forbidden", "GET", "/api/v1/tokens", "acme-viewer", "", 403, "forbidden", nil},
		{"revoke unknown", "DELETE", "/api/v1/tokens/aaaaaaaaaaaaaaaa", "owner", "", 404, "not_found", nil},
		{"list plugins", "GET", "/api/v1/plugins", "global-viewer", "", 200, "", []string{`"name":"null"`, `"kind":"channel"`, `"status":"ready"`, `"sha256":"`}},
		{"list plugins needs a server-wide token", "GET", "/api/v1/plugins", "acme-admin", "", 403, "forbidden", nil},
		{"reload plugin", "POST", "/api/v1/plugins/null/reload", "owner", "", 200, "", []string{`"name":"null"`, `"status":"ready"`}},
		{"reload unknown plugin", "POST", "/api/v1/plugins/nope/reload", "owner", "", 404, "not_found", nil},
		{"reload needs an owner", "POST", "/api/v1/plugins/null/reload", "global-viewer", "", 403, "forbidden", nil},
		{"backup forbidden for scoped admin", "GET", "/api/v1/backup", "acme-admin", "", 403, "forbidden", nil},
	}
	f := newFixture(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, data := f.do(t, tt.method, tt.url, tt.token, tt.body)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.wantStatus, data)
			}
			if resp.Header.Get("X-Request-ID") == "" {
				t.Errorf("no X-Request-ID header")
			}
			if tt.wantCode != "" {
				if code := errorBody(t, data); code != tt.wantCode {
					t.Errorf("error code %q, want %q: %s", code, tt.wantCode, data)
				}
			}
			for _, w := range tt.want {
				if !strings.Contains(string(data), w) {
					t.Errorf("body lacks %s: %s", w, data)
				}
			}
			if tt.url == "/healthz" && (strings.Contains(string(data), "acme") || strings.Contains(string(data), "globex")) {
				t.Errorf("unauthenticated healthz names client workspaces: %s", data)
			}
			if strings.Contains(string(data), "secret_sha256") || (tt.url == "/api/v1/tokens" && tt.method == "GET" && strings.Contains(string(data), "cct_")) {
				t.Errorf("a token secret or hash leaked: %s", data)
			}
		})
	}
}

// Refused deletions leave the workspace and its file in place; a confirmed one removes both and its tokens.
func TestDeleteWorkspace(t *testing.T) {
	f := newFixture(t)
	file := filepath.Join(f.dir, "workspaces", "acme.db")
	for _, url := range []string{"/api/v1/workspaces/acme", "/api/v1/workspaces/acme?confirm=ACME"} {
		if resp, data := f.do(t, "DELETE", url, "owner", ""); resp.StatusCode != 400 {
			t.Fatalf("%s: %d %s", url, resp.StatusCode, data)
		}
		if _, err := os.Stat(file); err != nil {
			t.Fatalf("refused delete removed the file: %v", err)
		}
		if resp, _ := f.do(t, "GET", "/api/v1/workspaces/acme", "owner", ""); resp.StatusCode != 200 {
			t.Fatalf("refused delete removed the workspace")
		}
	}
	if resp, data := f.do(t, "DELETE", "/api/v1/workspaces/acme?confirm=acme", "owner", ""); resp.StatusCode != 204 {
		t.Fatalf("delete: %d %s", resp.StatusCode, data)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("workspace file still there: %v", err)
	}
	if resp, _ := f.do(t, "GET", "/api/v1/workspaces/acme", "owner", ""); resp.StatusCode != 404 {
		t.Fatalf("deleted workspace still readable")
	}
	// Tokens scoped to the deleted workspace stop working.
	if resp, data := f.do(t, "GET", "/api/v1/whoami", "acme-admin", ""); resp.StatusCode != 401 {
		t.Fatalf("token of deleted workspace still authenticates: %d %s", resp.StatusCode, data)
	}
}

func TestTokenLifecycle(t *testing.T) {
	f := newFixture(t)
	resp, data := f.do(t, "POST", "/api/v1/tokens", "owner", `{"name":"deploy","role":"admin"}`)
	if resp.StatusCode != 201 {
		t.Fatalf("%d %s", resp.StatusCode, data)
	}
	var issued struct {
		Token  auth.Token `json:"token"`
		Secret string     `json:"secret"`
	}
	if err := json.Unmarshal(data, &issued); err != nil {
		t.Fatal(err)
	}
	f.tokens["deploy"] = issued.Secret
	if resp, data := f.do(t, "GET", "/api/v1/whoami", "deploy", ""); resp.StatusCode != 200 || !strings.Contains(string(data), issued.Token.ID) {
		t.Fatalf("new token does not authenticate: %d %s", resp.StatusCode, data)
	}
	if resp, data := f.do(t, "DELETE", "/api/v1/tokens/"+issued.Token.ID, "owner", ""); resp.StatusCode != 204 {
		t.Fatalf("revoke: %d %s", resp.StatusCode, data)
	}
	if resp, _ := f.do(t, "GET", "/api/v1/whoami", "deploy", ""); resp.StatusCode != 401 {
		t.Fatalf("revoked token still authenticates")
	}
	f.tokens["garbage"] = "cct_notatoken"
	if resp, _ := f.do(t, "GET", "/api/v1/whoami", "garbage", ""); resp.StatusCode != 401 {
		t.Fatalf("garbage token accepted")
	}
}

func TestBackupEndpointRestores(t *testing.T) {
	f := newFixture(t)
	resp, data := f.do(t, "GET", "/api/v1/backup", "owner", "")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/gzip" {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header)
	}
	m, err := store.Restore(strings.NewReader(string(data)), t.TempDir())
	if err != nil {
		t.Fatalf("restoring the streamed backup: %v", err)
	}
	if strings.Join(m.Workspaces, ",") != "acme,globex,managed" {
		t.Fatalf("backup holds workspaces %v", m.Workspaces)
	}
}

func TestMetricsCountRequestsByRouteTemplate(t *testing.T) {
	f := newFixture(t)
	f.do(t, "GET", "/api/v1/workspaces/acme", "owner", "")
	f.do(t, "GET", "/api/v1/workspaces/globex", "owner", "")
	f.do(t, "GET", "/definitely/not/here", "", "")
	_, data := f.do(t, "GET", "/metrics", "", "")
	for _, w := range []string{
		`crosscast_http_requests_total{route="/api/v1/workspaces/:id",method="GET",status="200"} 2`,
		`crosscast_http_requests_total{route="unmatched",method="GET",status="404"} 1`,
	} {
		if !strings.Contains(string(data), w) {
			t.Errorf("metrics lack %s", w)
		}
	}
	if strings.Contains(string(data), "/definitely/not/here") {
		t.Errorf("raw paths leak into metric labels")
	}
}

// A panicking handler answers 500 in the error shape, is counted, and the server goes on serving.
func TestPanicIsContained(t *testing.T) {
	f := newFixture(t)
	// A server wired without its workspace service: every workspace handler dereferences nil.
	deps := f.deps
	deps.Workspaces = nil
	deps.Metrics = metrics.NewRegistry()
	f.srv = admin.New(deps, admin.Options{})
	resp, data := f.do(t, "GET", "/api/v1/workspaces/acme", "owner", "")
	if resp.StatusCode != 500 || errorBody(t, data) != "internal" {
		t.Fatalf("panic answered %d %s", resp.StatusCode, data)
	}
	if strings.Contains(string(data), "nil pointer") {
		t.Errorf("panic text leaked to the client: %s", data)
	}
	if resp, _ := f.do(t, "GET", "/healthz", "", ""); resp.StatusCode != 200 {
		t.Fatalf("server unhealthy after a panic: %d", resp.StatusCode)
	}
	_, metrics := f.do(t, "GET", "/metrics", "", "")
	if !strings.Contains(string(metrics), `crosscast_http_requests_total{route="/api/v1/workspaces/:id",method="GET",status="500"} 1`) {
		t.Errorf("panicked request not counted")
	}
}

func TestReadyzFollowsLifecycle(t *testing.T) {
	f := newFixture(t)
	f.srv.SetReady(false)
	if resp, _ := f.do(t, "GET", "/readyz", "", ""); resp.StatusCode != 503 {
		t.Fatalf("not-ready server answered %d", resp.StatusCode)
	}
}

func TestHealthzFailsWhenStoreClosed(t *testing.T) {
	f := newFixture(t)
	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}
	// The probe result is cached for a second; wait it out by polling with a deadline.
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, data := f.do(t, "GET", "/healthz", "", "")
		if resp.StatusCode == 503 {
			if !strings.Contains(string(data), `"system":"failing"`) {
				t.Fatalf("503 without naming the failing file: %s", data)
			}
			// API calls against a closed store are unavailable (503), not internal errors.
			if resp, data := f.do(t, "GET", "/api/v1/workspaces/acme", "acme-admin", ""); resp.StatusCode != 503 || errorBody(t, data) != "unavailable" {
				t.Fatalf("API call on a closed store: %d %s", resp.StatusCode, data)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthz still %d after the store closed: %s", resp.StatusCode, data)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// An oversized body is refused by the HTTP server before any handler; the client still gets the JSON error shape.
// app.Test reports fasthttp's error instead of the response, so this runs over a real listener.
func TestBodyTooLargeOverTCP(t *testing.T) {
	f := newFixture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = f.srv.Serve(ln) }()
	t.Cleanup(func() { _ = f.srv.Shutdown(context.Background()) })
	body := `{"id":"big","name":"` + strings.Repeat("a", 5000) + `"}`
	req, _ := http.NewRequest("POST", "http://"+ln.Addr().String()+"/api/v1/workspaces", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+bootstrap)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 413 {
		t.Fatalf("status %d: %s", resp.StatusCode, data)
	}
	if code := errorBody(t, data); code != "body_too_large" {
		t.Fatalf("code %q", code)
	}
	if _, err := f.store.GetWorkspace(context.Background(), "big"); err == nil {
		t.Fatalf("oversized request created the workspace")
	}
}

// A backup client that stops reading must not hold up the store (workspace creation) or shutdown. Found by review:
// the backup used to stream under the store's lifecycle lock with no write deadline.
func TestStalledBackupClientHoldsNothing(t *testing.T) {
	f := newFixture(t)
	// 16 MiB of random bytes: the archive outgrows the socket buffers, so a client that never reads stalls it.
	db, err := f.store.Workspace("acme")
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(context.Background(), func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("filler"))
		if err != nil {
			return err
		}
		buf := make([]byte, 64<<10)
		for i := 0; i < 256; i++ {
			_, _ = rand.Read(buf)
			if err := b.Put([]byte(fmt.Sprint(i)), buf); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = f.srv.Serve(ln) }()
	base := "http://" + ln.Addr().String()

	stalled, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	fmt.Fprintf(stalled, "GET /api/v1/backup HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", bootstrap)

	client := &http.Client{Timeout: 10 * time.Second}
	req, _ := http.NewRequest("POST", base+"/api/v1/workspaces", strings.NewReader(`{"id":"during-backup"}`))
	req.Header.Set("Authorization", "Bearer "+bootstrap)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("creating a workspace while a backup client stalls: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("create during stalled backup: %d", resp.StatusCode)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_ = f.srv.Shutdown(ctx)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("shutdown took %v with a stalled backup client", took)
	}
	if err := f.store.Close(); err != nil {
		t.Fatalf("closing the store after shutdown: %v", err)
	}
}
