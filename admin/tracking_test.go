package admin_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crosscast/crosscast/admin"
	"github.com/crosscast/crosscast/core/auth"
	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/events"
	"github.com/crosscast/crosscast/core/metrics"
	"github.com/crosscast/crosscast/core/store"
	"github.com/crosscast/crosscast/core/workspaces"
	"github.com/hashicorp/go-hclog"
)

// Write keys of the tracking fixture's workspaces, one per IP setting.
const (
	keyStore     = "wk_track_store_0123456789"
	keyAnonymize = "wk_track_anon_0123456789"
	keyDrop      = "wk_track_drop_0123456789"
)

// trackingFixture is a server with only what the tracking API needs, over a real store (fsync on) in a temp dir:
// workspace "store" keeps IPs, "anon" anonymises them, "drop" drops them.
type trackingFixture struct {
	srv      *admin.Server
	contacts *contacts.Service
	reg      *metrics.Registry
}

func newTrackingFixture(t testing.TB) *trackingFixture {
	t.Helper()
	return newTrackingFixtureWith(t, admin.Options{MaxBody: 4 << 20})
}

// newTrackingFixtureWith builds the fixture's server with opts.
func newTrackingFixtureWith(t testing.TB, opts admin.Options) *trackingFixture {
	t.Helper()
	level := hclog.Debug
	if _, bench := t.(*testing.B); bench {
		level = hclog.Warn
	}
	log := hclog.New(&hclog.LoggerOptions{Output: t.Output(), Level: level})
	reg := metrics.NewRegistry()
	st, err := store.Open(context.Background(), store.Options{Dir: t.TempDir(), Fsync: true, Logger: log, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ws := workspaces.NewService(st, log, nil)
	for _, w := range []struct{ id, key, ip string }{{"store", keyStore, ""}, {"anon", keyAnonymize, "anonymize"}, {"drop", keyDrop, "drop"}} {
		if _, err := ws.Create(context.Background(), workspaces.CreateInput{ID: w.id, WriteKey: w.key}); err != nil {
			t.Fatal(err)
		}
		if w.ip != "" {
			if _, err := ws.Update(context.Background(), w.id, workspaces.UpdateInput{Settings: &workspaces.Settings{IP: w.ip}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	settings := func(ctx context.Context, id string) (contacts.Settings, error) {
		w, err := ws.Get(ctx, id)
		if err != nil {
			return contacts.Settings{}, err
		}
		return contacts.Settings{Channels: w.Settings.Channels, PII: w.Settings.PII, IP: contacts.IPMode(w.Settings.IP)}, nil
	}
	f := &trackingFixture{contacts: contacts.NewService(st, settings, nil, log, nil), reg: reg}
	f.srv = admin.New(admin.Deps{
		Workspaces: ws, Auth: auth.NewService(st, bootstrap, log, nil), Store: st, Contacts: f.contacts, WriteKeys: st,
		Metrics: reg, Logger: log, Version: "test",
	}, opts)
	f.srv.SetReady(true)
	return f
}

// trackReq is one request to the tracking API.
type trackReq struct {
	method, path string
	header       map[string]string
	body         string
}

// trackingBasic is the Authorization header Segment libraries send: Basic with the write key as username.
func trackingBasic(key string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(key+":"))
}

func (f *trackingFixture) send(t testing.TB, r trackReq) (*http.Response, []byte) {
	t.Helper()
	resp, data, err := f.try(r)
	if err != nil {
		t.Fatal(err)
	}
	return resp, data
}

// try is send for goroutines other than the test's, which must not call t.Fatal.
func (f *trackingFixture) try(r trackReq) (*http.Response, []byte, error) {
	if r.method == "" {
		r.method = http.MethodPost
	}
	req := httptest.NewRequest(r.method, r.path, strings.NewReader(r.body))
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	resp, err := f.srv.App().Test(req, -1)
	if err != nil {
		return nil, nil, err
	}
	data, err := io.ReadAll(resp.Body)
	return resp, data, err
}

// contact returns the contact with userID in workspace ws, failing if there is none.
func (f *trackingFixture) contact(t *testing.T, ws, userID string) contacts.Contact {
	t.Helper()
	cs, _, err := f.contacts.List(context.Background(), ws, contacts.Filter{UserID: userID})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 {
		t.Fatalf("%d contacts with user id %q in %s, want 1", len(cs), userID, ws)
	}
	return cs[0]
}

// anonymous returns the contact seen with anonymous id a, failing if there is none.
func (f *trackingFixture) anonymous(t *testing.T, ws, a string) contacts.Contact {
	t.Helper()
	cs, _, err := f.contacts.List(context.Background(), ws, contacts.Filter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if slices.Contains(c.AnonymousIDs, a) {
			return c
		}
	}
	t.Fatalf("no contact with anonymous id %q in %s", a, ws)
	return contacts.Contact{}
}

// events returns the stored events of a contact, oldest first.
func (f *trackingFixture) events(t *testing.T, ws string, c contacts.Contact) []events.Event {
	t.Helper()
	evs, _, err := f.contacts.Events(context.Background(), ws, c.ID, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(evs)
	return evs
}

// absent fails if any contact holds userID.
func (f *trackingFixture) absent(t *testing.T, ws, userID string) {
	t.Helper()
	cs, _, err := f.contacts.List(context.Background(), ws, contacts.Filter{UserID: userID})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 0 {
		t.Fatalf("user %q was stored in %s", userID, ws)
	}
}

// trackingContext decodes an event's context.
func trackingContext(t *testing.T, e events.Event) map[string]any {
	t.Helper()
	if e.Context == nil {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(e.Context, &m); err != nil {
		t.Fatalf("context %s: %v", e.Context, err)
	}
	return m
}

// nodeBatch is what analytics-node's publisher (packages/node/src/plugins/segmentio/publisher.ts) posts: Basic auth,
// JSON, {"batch", "sentAt"}, each event with messageId, timestamp, context.library, integrations and _metadata.
func nodeBatch(user string) trackReq {
	now := time.Now().UTC()
	ts := func(d time.Duration) string { return now.Add(d).Format("2006-01-02T15:04:05.000Z") }
	return trackReq{path: "/v1/batch", header: map[string]string{
		"Content-Type": "application/json", "Authorization": trackingBasic(keyStore), "User-Agent": "analytics-node-next/latest",
	}, body: fmt.Sprintf(`{"batch":[
		{"type":"identify","traits":{"email":"%[1]s@example.com","plan":"pro","seats":12},"userId":"%[1]s","messageId":"node-next-1741089595000-%[1]s-1","timestamp":"%[2]s","context":{"library":{"name":"@segment/analytics-node","version":"2.2.0"}},"integrations":{},"_metadata":{"nodeVersion":"22.3.0","jsRuntime":"node"}},
		{"type":"track","event":"Order Completed","properties":{"total":42.5,"currency":"EUR"},"userId":"%[1]s","messageId":"node-next-1741089595001-%[1]s-2","timestamp":"%[3]s","context":{"library":{"name":"@segment/analytics-node","version":"2.2.0"}},"integrations":{},"_metadata":{"nodeVersion":"22.3.0","jsRuntime":"node"}},
		{"type":"group","groupId":"acme-inc","traits":{"name":"Acme"},"userId":"%[1]s","messageId":"node-next-1741089595002-%[1]s-3","timestamp":"%[3]s","context":{"library":{"name":"@segment/analytics-node","version":"2.2.0"}},"integrations":{},"_metadata":{"nodeVersion":"22.3.0","jsRuntime":"node"}}
	],"sentAt":"%[4]s"}`, user, ts(-3*time.Second), ts(-2*time.Second), ts(-time.Second))}
}

// ajsCall is what analytics.js's segmentio plugin (packages/browser/src/plugins/segmentio/index.ts, normalize.ts,
// fetch-dispatcher.ts) posts for one call: to {apiHost}/{first letter of the type}, Content-Type text/plain, the
// write key and sentAt in the body, context.page, userAgent, locale, library and campaign, userId null until known.
func ajsCall(path, typ, anon, extra string) trackReq {
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	return trackReq{path: path, header: map[string]string{"Content-Type": "text/plain", "Origin": "https://shop.example"},
		body: `{"type":"` + typ + `",` + extra + `"context":{"page":{"path":"/spring","referrer":"https://news.example/","search":"?utm_source=newsletter&utm_campaign=spring","title":"Spring sale","url":"https://shop.example/spring?utm_source=newsletter&utm_campaign=spring"},"userAgent":"Mozilla/5.0 (X11; Linux x86_64)","locale":"fr-FR","library":{"name":"analytics.js","version":"next-1.72.0"},"campaign":{"source":"newsletter","name":"spring"}},` +
			`"integrations":{},"messageId":"ajs-next-` + anon + `-` + typ + `","anonymousId":"` + anon + `","userId":null,"timestamp":"` + now + `","writeKey":"` + keyStore + `","sentAt":"` + now + `","_metadata":{"bundled":["Segment.io"],"unbundled":[],"bundledIds":[]}}`}
}

func TestTrackingScenarios(t *testing.T) {
	json1 := map[string]string{"Content-Type": "application/json", "Authorization": trackingBasic(keyStore)}
	bigProps := `{"blob":"` + strings.Repeat("x", events.MaxEventBytes) + `"}`
	tests := []struct {
		name       string
		req        trackReq
		wantStatus int
		wantCode   string   // API error code for 4xx
		want       []string // substrings of the answer
		check      func(t *testing.T, f *trackingFixture)
	}{
		{"identify with Basic auth", trackReq{path: "/v1/identify", header: json1,
			body: `{"userId":"sc-identify","traits":{"email":"Sc.Identify@Example.com","age":41},"context":{"timezone":"Europe/Paris"}}`},
			200, "", []string{`{"success":true}`}, func(t *testing.T, f *trackingFixture) {
				c := f.contact(t, "store", "sc-identify")
				if c.Email != "sc.identify@example.com" || c.Timezone != "Europe/Paris" {
					t.Errorf("contact %+v", c)
				}
				if evs := f.events(t, "store", c); len(evs) != 1 || evs[0].Type != events.Identify || !strings.HasPrefix(evs[0].MessageID, "cc-") {
					t.Errorf("events %+v", evs)
				}
			}},
		{"track with the write key in a text/plain body", trackReq{path: "/v1/track", header: map[string]string{"Content-Type": "text/plain"},
			body: `{"userId":"sc-track","event":"Signed Up","properties":{"plan":"pro"},"writeKey":"` + keyStore + `"}`},
			200, "", []string{`"success":true`}, func(t *testing.T, f *trackingFixture) {
				evs := f.events(t, "store", f.contact(t, "store", "sc-track"))
				if len(evs) != 1 || evs[0].Name != "Signed Up" || string(evs[0].Properties) != `{"plan":"pro"}` {
					t.Errorf("events %+v", evs)
				}
			}},
		{"numeric userId", trackReq{path: "/v1/track", header: json1, body: `{"userId":90210,"event":"Numbered"}`},
			200, "", nil, func(t *testing.T, f *trackingFixture) { f.contact(t, "store", "90210") }},
		{"analytics.js page on /v1/p", ajsCall("/v1/p", "page", "sc-ajs-page", `"name":"Spring sale","properties":{"path":"/spring"},`),
			200, "", nil, func(t *testing.T, f *trackingFixture) {
				c := f.anonymous(t, "store", "sc-ajs-page")
				evs := f.events(t, "store", c)
				if len(evs) != 1 || evs[0].Type != events.Page || evs[0].Name != "Spring sale" || evs[0].MessageID != "ajs-next-sc-ajs-page-page" {
					t.Fatalf("events %+v", evs)
				}
				ctx := trackingContext(t, evs[0])
				page, _ := ctx["page"].(map[string]any)
				campaign, _ := ctx["campaign"].(map[string]any)
				if page["url"] == nil || campaign["source"] != "newsletter" || ctx["userAgent"] == nil || ctx["ip"] != "0.0.0.0" {
					t.Errorf("context %v", ctx)
				}
				if c.Locale == "" {
					t.Errorf("locale not filled from context: %+v", c)
				}
			}},
		{"analytics.js track on /v1/t", ajsCall("/v1/t", "track", "sc-ajs-track", `"event":"Added to Cart","properties":{"sku":"A1"},`),
			200, "", nil, func(t *testing.T, f *trackingFixture) {
				if evs := f.events(t, "store", f.anonymous(t, "store", "sc-ajs-track")); len(evs) != 1 || evs[0].Name != "Added to Cart" {
					t.Errorf("events %+v", evs)
				}
			}},
		{"analytics.js identify on /v1/i", ajsCall("/v1/i", "identify", "sc-ajs-identify", `"traits":{"email":"ajs@example.com"},`),
			200, "", nil, func(t *testing.T, f *trackingFixture) {
				if c := f.anonymous(t, "store", "sc-ajs-identify"); c.Email != "ajs@example.com" {
					t.Errorf("contact %+v", c)
				}
			}},
		{"screen", trackReq{path: "/v1/screen", header: json1, body: `{"anonymousId":"sc-screen","name":"Settings"}`},
			200, "", nil, func(t *testing.T, f *trackingFixture) {
				if evs := f.events(t, "store", f.anonymous(t, "store", "sc-screen")); len(evs) != 1 || evs[0].Type != events.Screen || evs[0].Name != "Settings" {
					t.Errorf("events %+v", evs)
				}
			}},
		{"group on /v1/g", trackReq{path: "/v1/g", header: json1, body: `{"userId":"sc-group","groupId":"g-1","traits":{"name":"Initech"}}`},
			200, "", nil, func(t *testing.T, f *trackingFixture) {
				if evs := f.events(t, "store", f.contact(t, "store", "sc-group")); len(evs) != 1 || evs[0].GroupID != "g-1" || string(evs[0].Traits) != `{"name":"Initech"}` {
					t.Errorf("events %+v", evs)
				}
			}},
		{"alias links an anonymous visitor", trackReq{path: "/v1/alias", header: json1, body: `{"previousId":"sc-alias-anon","userId":"sc-alias"}`},
			200, "", nil, func(t *testing.T, f *trackingFixture) {
				c := f.contact(t, "store", "sc-alias")
				if !slices.Contains(c.AnonymousIDs, "sc-alias-anon") {
					t.Errorf("contact %+v", c)
				}
				if evs := f.events(t, "store", c); len(evs) != 1 || evs[0].Type != events.Alias || evs[0].PreviousID != "sc-alias-anon" {
					t.Errorf("events %+v", evs)
				}
			}},
		{"analytics-node batch", nodeBatch("sc-node"), 200, "", []string{`{"success":true}`}, func(t *testing.T, f *trackingFixture) {
			c := f.contact(t, "store", "sc-node")
			if c.Email != "sc-node@example.com" {
				t.Errorf("contact %+v", c)
			}
			evs := f.events(t, "store", c)
			if len(evs) != 3 || evs[0].Type != events.Identify || evs[1].Name != "Order Completed" || evs[2].GroupID != "acme-inc" {
				t.Fatalf("events %+v", evs)
			}
			for _, e := range evs {
				if e.SentAt.IsZero() || e.OriginalTimestamp.IsZero() || e.Timestamp.After(e.ReceivedAt) {
					t.Errorf("times of %s: %+v", e.MessageID, e)
				}
			}
		}},
		{"analytics.js batching on /v1/b", trackReq{path: "/v1/b", header: map[string]string{"Content-Type": "text/plain"},
			body: `{"writeKey":"` + keyStore + `","batch":[{"type":"track","event":"Viewed","anonymousId":"sc-ajs-b","userId":null,"writeKey":"` + keyStore + `","messageId":"ajs-next-b1","context":{"userAgent":"Mozilla/5.0"}},{"type":"page","anonymousId":"sc-ajs-b","writeKey":"` + keyStore + `","messageId":"ajs-next-b2"}],"sentAt":"` + time.Now().UTC().Format(time.RFC3339Nano) + `"}`},
			200, "", nil, func(t *testing.T, f *trackingFixture) {
				if evs := f.events(t, "store", f.anonymous(t, "store", "sc-ajs-b")); len(evs) != 2 {
					t.Errorf("events %+v", evs)
				}
			}},
		{"Bearer header with the key in the body (Segment OAuth shape)", trackReq{path: "/v1/track",
			header: map[string]string{"Authorization": "Bearer some-access-token"},
			body:   `{"userId":"sc-bearer","event":"e","writeKey":"` + keyStore + `"}`}, 200, "", nil,
			func(t *testing.T, f *trackingFixture) { f.contact(t, "store", "sc-bearer") }},
		{"Basic auth without the colon", trackReq{path: "/v1/track",
			header: map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(keyStore))},
			body:   `{"userId":"sc-nocolon","event":"e"}`}, 200, "", nil,
			func(t *testing.T, f *trackingFixture) { f.contact(t, "store", "sc-nocolon") }},
		{"empty batch", trackReq{path: "/v1/batch", header: json1, body: `{"batch":[]}`}, 200, "", []string{`{"success":true}`}, nil},
		{"future timestamp clamped with a warning", trackReq{path: "/v1/track", header: json1,
			body: `{"userId":"sc-future","event":"e","timestamp":"2999-01-01T00:00:00Z"}`}, 200, "", []string{`"success":true`, `"warnings":["timestamp: is more than 5m0s after`},
			func(t *testing.T, f *trackingFixture) {
				e := f.events(t, "store", f.contact(t, "store", "sc-future"))[0]
				if !e.Timestamp.Equal(e.ReceivedAt) || e.OriginalTimestamp.Year() != 2999 {
					t.Errorf("event %+v", e)
				}
			}},

		{"wrong Basic key", trackReq{path: "/v1/track", header: map[string]string{"Authorization": trackingBasic("wk_nobody_0123456789abc")},
			body: `{"userId":"sc-401a","event":"e"}`}, 401, "unauthorized", []string{"unknown write key"}, nil},
		{"no key at all", trackReq{path: "/v1/track", body: `{"userId":"sc-401b","event":"e"}`}, 401, "unauthorized", []string{"Basic auth", "writeKey"}, nil},
		{"wrong key in the body", trackReq{path: "/v1/batch", body: `{"writeKey":"wk_nobody_0123456789abc","batch":[]}`}, 401, "unauthorized", nil, nil},
		{"malformed key", trackReq{path: "/v1/page", body: `{"writeKey":"short","anonymousId":"a"}`}, 401, "unauthorized", nil, nil},
		{"unreadable Basic header", trackReq{path: "/v1/page", header: map[string]string{"Authorization": "Basic !!!"}, body: `{"anonymousId":"a"}`}, 401, "unauthorized", nil, nil},
		{"a wrong Basic key is not saved by a right body key", trackReq{path: "/v1/track", header: map[string]string{"Authorization": trackingBasic("wk_nobody_0123456789abc")},
			body: `{"userId":"sc-401c","event":"e","writeKey":"` + keyStore + `"}`}, 401, "unauthorized", nil,
			func(t *testing.T, f *trackingFixture) { f.absent(t, "store", "sc-401c") }},
		{"invalid call without a key is 401, not 400", trackReq{path: "/v1/track", body: `{"event":"e"}`}, 401, "unauthorized", nil, nil},

		{"malformed JSON with its position", trackReq{path: "/v1/track", header: json1, body: "{\n  \"userId\": \"u\",,\n}"},
			400, "malformed_json", []string{`"line":2`, `"column":`}, nil},
		{"body not an object", trackReq{path: "/v1/batch", header: json1, body: `[{"type":"track"}]`}, 400, "malformed_json", []string{"JSON object"}, nil},
		{"empty body", trackReq{path: "/v1/identify", header: json1}, 400, "malformed_json", []string{"empty"}, nil},
		{"missing userId and anonymousId", trackReq{path: "/v1/track", header: json1, body: `{"event":"e"}`},
			400, "validation_failed", []string{`"field":"userId"`, "userId or an anonymousId"}, nil},
		{"alias needs previousId", trackReq{path: "/v1/alias", header: json1, body: `{"userId":"u"}`}, 400, "validation_failed", []string{`"field":"previousId"`}, nil},
		{"group needs groupId", trackReq{path: "/v1/group", header: json1, body: `{"userId":"u"}`}, 400, "validation_failed", []string{`"field":"groupId"`}, nil},
		{"properties must be an object", trackReq{path: "/v1/track", header: json1, body: `{"userId":"u","event":"e","properties":[1]}`},
			400, "validation_failed", []string{`"field":"properties"`}, nil},
		{"type of another endpoint", trackReq{path: "/v1/track", header: json1, body: `{"type":"page","userId":"u"}`}, 400, "validation_failed", []string{`"field":"type"`}, nil},
		{"invalid batch stores nothing and lists every problem", trackReq{path: "/v1/batch", header: json1, body: `{"batch":[
			{"type":"track","event":"fine","userId":"sc-partial"},
			{"type":"track","event":"no ids"},
			{"type":"launch","userId":"sc-partial"},
			{"type":"identify","userId":"sc-partial","traits":"x"}]}`},
			400, "validation_failed", []string{`"field":"batch.1.userId"`, `"field":"batch.2.type"`, `unknown type \"launch\"`, `"field":"batch.3.traits"`},
			func(t *testing.T, f *trackingFixture) { f.absent(t, "store", "sc-partial") }},
		{"one event of a batch over 32 KB", trackReq{path: "/v1/batch", header: json1,
			body: `{"batch":[{"type":"track","event":"ok","userId":"sc-bigitem"},{"type":"track","event":"big","userId":"sc-bigitem","properties":` + bigProps + `}]}`},
			400, "validation_failed", []string{`"field":"batch.1"`, "at most 32768 bytes"}, func(t *testing.T, f *trackingFixture) { f.absent(t, "store", "sc-bigitem") }},
		{"batch over 500 KB", trackReq{path: "/v1/batch", header: json1,
			body: `{"batch":[` + strings.TrimSuffix(strings.Repeat(`{"type":"track","event":"e","userId":"sc-bigbatch","properties":{"p":"`+strings.Repeat("y", 20<<10)+`"}},`, 26), ",") + `]}`},
			413, "body_too_large", nil, func(t *testing.T, f *trackingFixture) { f.absent(t, "store", "sc-bigbatch") }},
		{"single call over 32 KB", trackReq{path: "/v1/track", header: json1, body: `{"userId":"sc-bigone","event":"e","properties":` + bigProps + `}`},
			413, "body_too_large", nil, func(t *testing.T, f *trackingFixture) { f.absent(t, "store", "sc-bigone") }},
		{"unsupported Content-Encoding", trackReq{path: "/v1/track", header: map[string]string{"Authorization": trackingBasic(keyStore), "Content-Encoding": "br"},
			body: `{"userId":"u","event":"e"}`}, 415, "bad_request", []string{"gzip"}, nil},
		{"not gzip although it says so", trackReq{path: "/v1/track", header: map[string]string{"Authorization": trackingBasic(keyStore), "Content-Encoding": "gzip"},
			body: `{"userId":"u","event":"e"}`}, 400, "malformed_json", []string{"gzip"}, nil},
		{"GET is not allowed", trackReq{method: "GET", path: "/v1/track"}, 405, "method_not_allowed", []string{"OPTIONS, POST"}, nil},
	}
	f := newTrackingFixture(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, data := f.send(t, tt.req)
			t.Logf("%d %s", resp.StatusCode, data)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.wantStatus, data)
			}
			if tt.wantCode != "" {
				if code := errorBody(t, data); code != tt.wantCode {
					t.Fatalf("code %q, want %q: %s", code, tt.wantCode, data)
				}
			}
			for _, w := range tt.want {
				if !strings.Contains(string(data), w) {
					t.Errorf("answer lacks %q: %s", w, data)
				}
			}
			if tt.check != nil {
				tt.check(t, f)
			}
		})
	}
}

func TestTrackingCORS(t *testing.T) {
	f := newTrackingFixture(t)
	t.Run("preflight", func(t *testing.T) {
		for _, path := range []string{"/v1/track", "/v1/t", "/v1/batch", "/v1/b"} {
			resp, data := f.send(t, trackReq{method: "OPTIONS", path: path, header: map[string]string{
				"Origin": "https://shop.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,authorization",
			}})
			if resp.StatusCode != 204 {
				t.Fatalf("%s: status %d: %s", path, resp.StatusCode, data)
			}
			for h, want := range map[string]string{
				"Access-Control-Allow-Origin":  "https://shop.example",
				"Access-Control-Allow-Methods": "POST, OPTIONS",
				"Access-Control-Allow-Headers": "Content-Type, Authorization",
				"Access-Control-Max-Age":       "86400",
			} {
				if got := resp.Header.Get(h); got != want {
					t.Errorf("%s: %s = %q, want %q", path, h, got, want)
				}
			}
			if !strings.Contains(resp.Header.Get("Vary"), "Origin") {
				t.Errorf("%s: Vary %q", path, resp.Header.Get("Vary"))
			}
		}
	})
	for _, tt := range []struct {
		name   string
		req    trackReq
		status int
	}{
		{"on success", ajsCall("/v1/t", "track", "cors-ok", `"event":"e",`), 200},
		{"on an error, so that the page can read it", trackReq{path: "/v1/t", header: map[string]string{"Origin": "https://shop.example"}, body: `{"event":"e"}`}, 401},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, data := f.send(t, tt.req)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d: %s", resp.StatusCode, data)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "https://shop.example" {
				t.Fatalf("Access-Control-Allow-Origin %q", got)
			}
		})
	}
}

func TestTrackingDuplicateMessageID(t *testing.T) {
	f := newTrackingFixture(t)
	req := trackReq{path: "/v1/track", header: map[string]string{"Authorization": trackingBasic(keyStore)},
		body: `{"userId":"dup","event":"Paid","messageId":"retry-me"}`}
	for i := 0; i < 3; i++ { // a client retrying after a lost answer
		if resp, data := f.send(t, req); resp.StatusCode != 200 {
			t.Fatalf("attempt %d: %d %s", i, resp.StatusCode, data)
		}
	}
	// The same id twice in one batch, next to a new one.
	batch := trackReq{path: "/v1/batch", header: map[string]string{"Authorization": trackingBasic(keyStore)}, body: `{"batch":[
		{"type":"track","userId":"dup","event":"Paid","messageId":"retry-me"},
		{"type":"track","userId":"dup","event":"Refunded","messageId":"new-one"},
		{"type":"track","userId":"dup","event":"Refunded","messageId":"new-one"}]}`}
	if resp, data := f.send(t, batch); resp.StatusCode != 200 {
		t.Fatalf("batch: %d %s", resp.StatusCode, data)
	}
	evs := f.events(t, "store", f.contact(t, "store", "dup"))
	if len(evs) != 2 || evs[0].MessageID == evs[1].MessageID {
		t.Fatalf("events %+v, want retry-me and new-one once each", evs)
	}
	var buf bytes.Buffer
	if err := f.reg.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"crosscast_tracking_duplicates_total 4", `crosscast_tracking_events_total{type="track"} 6`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, trackingMetricLines(buf.String(), "crosscast_tracking"))
		}
	}
	// Message ids are per workspace: the same id elsewhere is a different event.
	other := req
	other.header = map[string]string{"Authorization": trackingBasic(keyDrop)}
	if resp, data := f.send(t, other); resp.StatusCode != 200 {
		t.Fatalf("other workspace: %d %s", resp.StatusCode, data)
	}
	if evs := f.events(t, "drop", f.contact(t, "drop", "dup")); len(evs) != 1 {
		t.Fatalf("other workspace events %+v", evs)
	}
}

func trackingMetricLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestTrackingClockSkew(t *testing.T) {
	f := newTrackingFixture(t)
	// A phone whose clock is 3 hours ahead queued two events 40 s and 10 s before sending them.
	phone := time.Now().UTC().Add(3 * time.Hour)
	iso := func(t time.Time) string { return t.Format("2006-01-02T15:04:05.000Z07:00") }
	body := fmt.Sprintf(`{"writeKey":%q,"sentAt":%q,"batch":[
		{"type":"track","event":"Opened","anonymousId":"skew","timestamp":%q},
		{"type":"track","event":"Tapped","anonymousId":"skew","timestamp":%q}]}`,
		keyStore, iso(phone), iso(phone.Add(-40*time.Second)), iso(phone.Add(-10*time.Second)))
	before := time.Now().UTC()
	if resp, data := f.send(t, trackReq{path: "/v1/b", header: map[string]string{"Content-Type": "application/json; charset=utf-8"}, body: body}); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, data)
	}
	after := time.Now().UTC()
	evs := f.events(t, "store", f.anonymous(t, "store", "skew"))
	if len(evs) != 2 {
		t.Fatalf("events %+v", evs)
	}
	for i, back := range []time.Duration{40 * time.Second, 10 * time.Second} {
		e := evs[i]
		if e.ReceivedAt.Before(before) || e.ReceivedAt.After(after) {
			t.Errorf("event %d received at %v, not between %v and %v", i, e.ReceivedAt, before, after)
		}
		if want := e.ReceivedAt.Add(-back); !e.Timestamp.Equal(want) {
			t.Errorf("event %d timestamp %v, want receivedAt - %s = %v", i, e.Timestamp, back, want)
		}
		if !e.SentAt.Equal(phone.Truncate(time.Millisecond)) || !e.OriginalTimestamp.Equal(phone.Add(-back).Truncate(time.Millisecond)) {
			t.Errorf("event %d client readings %v %v not kept", i, e.SentAt, e.OriginalTimestamp)
		}
	}
	// A historical import: a timestamp and no sentAt is trusted as is.
	if resp, data := f.send(t, trackReq{path: "/v1/track", header: map[string]string{"Authorization": trackingBasic(keyStore)},
		body: `{"userId":"import","event":"Legacy Order","timestamp":"2019-06-01T08:00:00Z"}`}); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, data)
	}
	if e := f.events(t, "store", f.contact(t, "store", "import"))[0]; !e.Timestamp.Equal(time.Date(2019, 6, 1, 8, 0, 0, 0, time.UTC)) {
		t.Errorf("historical timestamp %v", e.Timestamp)
	}
}

func TestTrackingIP(t *testing.T) {
	f := newTrackingFixture(t)
	tests := []struct {
		key, ws string
		sent    string // context.ip sent, "" for none
		want    any    // context.ip stored, nil for none
	}{
		{keyStore, "store", "203.0.113.77", "203.0.113.77"},
		{keyStore, "store", "", "0.0.0.0"}, // app.Test's peer address
		{keyStore, "store", "not-an-ip", "0.0.0.0"},
		{keyAnonymize, "anon", "203.0.113.77", "203.0.113.0"},
		{keyAnonymize, "anon", "2001:db8:1:2:3:4:5:6", "2001:db8:1::"},
		{keyAnonymize, "anon", "", "0.0.0.0"},
		{keyDrop, "drop", "203.0.113.77", nil},
		{keyDrop, "drop", "", nil},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprintf("%s %s", tt.ws, tt.sent), func(t *testing.T) {
			user := fmt.Sprintf("ip-%d", i)
			ctx := `"context":{"locale":"en-GB"}`
			if tt.sent != "" {
				ctx = fmt.Sprintf(`"context":{"locale":"en-GB","ip":%q}`, tt.sent)
			}
			if resp, data := f.send(t, trackReq{path: "/v1/track", header: map[string]string{"Authorization": trackingBasic(tt.key)},
				body: `{"userId":"` + user + `","event":"e",` + ctx + `}`}); resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, data)
			}
			got := trackingContext(t, f.events(t, tt.ws, f.contact(t, tt.ws, user))[0])
			if got["ip"] != tt.want || got["locale"] != "en-GB" {
				t.Fatalf("context %v, want ip %v", got, tt.want)
			}
		})
	}
	// Over a real connection the peer's address is used when the call sends none.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = f.srv.Serve(ln) }()
	t.Cleanup(func() { _ = f.srv.Shutdown(context.Background()) })
	for _, tt := range []struct{ key, ws, want string }{{keyStore, "store", "127.0.0.1"}, {keyAnonymize, "anon", "127.0.0.0"}} {
		req, _ := http.NewRequest("POST", "http://"+ln.Addr().String()+"/v1/track", strings.NewReader(`{"userId":"tcp-`+tt.ws+`","event":"e"}`))
		req.Header.Set("Authorization", trackingBasic(tt.key))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if got := trackingContext(t, f.events(t, tt.ws, f.contact(t, tt.ws, "tcp-"+tt.ws))[0]); got["ip"] != tt.want {
			t.Errorf("%s: context %v, want ip %s", tt.ws, got, tt.want)
		}
	}
}

// X-Forwarded-For names the client only when the TCP peer is a trusted proxy: a header forged by anyone else is
// ignored, or every visitor could choose the IP stored for them.
func TestTrackingTrustedProxies(t *testing.T) {
	for _, tt := range []struct {
		name    string
		trusted []string
		want    string
	}{{"no proxy trusted", nil, "127.0.0.1"}, {"loopback proxy trusted", []string{"127.0.0.0/8"}, "203.0.113.9"}} {
		t.Run(tt.name, func(t *testing.T) {
			f := newTrackingFixtureWith(t, admin.Options{MaxBody: 4 << 20, TrustedProxies: tt.trusted})
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go func() { _ = f.srv.Serve(ln) }()
			t.Cleanup(func() { _ = f.srv.Shutdown(context.Background()) })
			req, _ := http.NewRequest("POST", "http://"+ln.Addr().String()+"/v1/track", strings.NewReader(`{"userId":"via-proxy","event":"e"}`))
			req.Header.Set("Authorization", trackingBasic(keyStore))
			req.Header.Set("X-Forwarded-For", "203.0.113.9, 10.0.0.2")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if got := trackingContext(t, f.events(t, "store", f.contact(t, "store", "via-proxy"))[0]); got["ip"] != tt.want {
				t.Errorf("context %v, want ip %s", got, tt.want)
			}
		})
	}
}

func TestTrackingGzip(t *testing.T) {
	f := newTrackingFixture(t)
	gz := func(s string) string {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		_, _ = w.Write([]byte(s))
		_ = w.Close()
		return buf.String()
	}
	h := map[string]string{"Authorization": trackingBasic(keyStore), "Content-Type": "application/json", "Content-Encoding": "gzip"}
	if resp, data := f.send(t, trackReq{path: "/v1/batch", header: h, body: gz(`{"batch":[{"type":"identify","userId":"gz","traits":{"plan":"free"}}]}`)}); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, data)
	}
	f.contact(t, "store", "gz")
	// A small gzip that inflates past the limit is refused without inflating it all.
	bomb := gz(`{"batch":[{"type":"track","userId":"gz-bomb","event":"e","properties":{"p":"` + strings.Repeat("z", 10<<20) + `"}}]}`)
	if len(bomb) > events.MaxBatchBytes {
		t.Fatalf("test gzip is %d bytes", len(bomb))
	}
	resp, data := f.send(t, trackReq{path: "/v1/batch", header: h, body: bomb})
	if resp.StatusCode != 413 || errorBody(t, data) != "body_too_large" {
		t.Fatalf("%d %s", resp.StatusCode, data)
	}
	f.absent(t, "store", "gz-bomb")
}
