package admin_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/crosscast/crosscast/admin"
	"github.com/crosscast/crosscast/core/metrics"
)

func TestTagScript(t *testing.T) {
	f := newFixture(t)
	want, err := os.ReadFile("static/t.js")
	if err != nil {
		t.Fatal(err)
	}
	get := func(t *testing.T, method string, header map[string]string) (*http.Response, []byte) {
		t.Helper()
		req := httptest.NewRequest(method, "/t.js", nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := f.srv.App().Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	plain, _ := get(t, http.MethodGet, nil)
	gz, _ := get(t, http.MethodGet, map[string]string{"Accept-Encoding": "gzip, deflate, br"})
	plainTag, gzTag := plain.Header.Get("ETag"), gz.Header.Get("ETag")
	if !strings.HasPrefix(plainTag, `"`) || !strings.HasSuffix(plainTag, `"`) || len(plainTag) < 10 || plainTag == gzTag {
		t.Fatalf("ETags: plain %s, gzip %s; want two distinct strong tags", plainTag, gzTag)
	}

	tests := []struct {
		name     string
		method   string
		header   map[string]string
		status   int
		encoding string // Content-Encoding
		body     bool   // the full script (decoded) is in the body
	}{
		{name: "plain", method: "GET", status: 200, body: true},
		{name: "gzip", method: "GET", header: map[string]string{"Accept-Encoding": "gzip"}, status: 200, encoding: "gzip", body: true},
		{name: "gzip refused with q=0", method: "GET", header: map[string]string{"Accept-Encoding": "gzip;q=0, br"}, status: 200, body: true},
		{name: "cross-origin page", method: "GET", header: map[string]string{"Origin": "https://shop.example", "Sec-Fetch-Dest": "script"}, status: 200, body: true},
		{name: "current plain copy", method: "GET", header: map[string]string{"If-None-Match": plainTag}, status: 304},
		{name: "current gzip copy", method: "GET", header: map[string]string{"If-None-Match": gzTag, "Accept-Encoding": "gzip"}, status: 304},
		{name: "weak form and a list", method: "GET", header: map[string]string{"If-None-Match": `"old", W/` + plainTag}, status: 304},
		{name: "any", method: "GET", header: map[string]string{"If-None-Match": "*"}, status: 304},
		{name: "stale copy", method: "GET", header: map[string]string{"If-None-Match": `"0123456789abcdef"`}, status: 200, body: true},
		{name: "head", method: "HEAD", status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, tt.method, tt.header)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			for k, v := range map[string]string{
				"Content-Type":                "application/javascript; charset=utf-8",
				"Cache-Control":               "public, max-age=300",
				"Access-Control-Allow-Origin": "*",
				"Content-Encoding":            tt.encoding,
				"Vary":                        "Accept-Encoding",
				"X-Content-Type-Options":      "nosniff",
			} {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			if tag := resp.Header.Get("ETag"); tag != plainTag && tag != gzTag {
				t.Errorf("ETag %q is neither of the script's", tag)
			}
			if !tt.body {
				if len(body) != 0 {
					t.Errorf("body of %d bytes, want none", len(body))
				}
				return
			}
			if tt.encoding == "gzip" {
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(body, want) {
				t.Errorf("body is not admin/static/t.js (%d bytes, want %d)", len(body), len(want))
			}
		})
	}

	t.Run("other methods", func(t *testing.T) {
		resp, _ := get(t, http.MethodPost, nil)
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("POST /t.js: %d, want 405", resp.StatusCode)
		}
	})
}

func TestTagScriptStaysSmallAndPlain(t *testing.T) {
	src, err := os.ReadFile("static/t.js")
	if err != nil {
		t.Fatal(err)
	}
	// The tag runs on every page of every site that embeds it, under strict CSPs: no code from strings.
	for _, banned := range []string{"eval(", "new Function", "document.write", "innerHTML", "import("} {
		if bytes.Contains(src, []byte(banned)) {
			t.Errorf("t.js uses %s", banned)
		}
	}
	if len(src) > 12<<10 {
		t.Errorf("t.js is %d bytes; keep it under 12 KiB unminified (docs/tag.md)", len(src))
	}
}

func TestTrackingSnippet(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name   string
		url    string
		token  string
		status int
		code   string
	}{
		{name: "no token", url: "/api/v1/workspaces/acme/tracking-snippet", status: 401, code: "unauthorized"},
		{name: "viewer may not", url: "/api/v1/workspaces/acme/tracking-snippet", token: "acme-viewer", status: 403, code: "forbidden"},
		{name: "other workspace is invisible", url: "/api/v1/workspaces/globex/tracking-snippet", token: "acme-admin", status: 404, code: "not_found"},
		{name: "unknown workspace", url: "/api/v1/workspaces/nope/tracking-snippet", token: "owner", status: 404, code: "not_found"},
		{name: "admin of the workspace", url: "/api/v1/workspaces/acme/tracking-snippet", token: "acme-admin", status: 200},
		{name: "owner", url: "/api/v1/workspaces/globex/tracking-snippet", token: "owner", status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, data := f.do(t, http.MethodGet, tt.url, tt.token, "")
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, data)
			}
			if tt.code != "" {
				if code := errorBody(t, data); code != tt.code {
					t.Fatalf("code %q, want %q", code, tt.code)
				}
				return
			}
			ws := strings.Split(tt.url, "/")[4]
			_, wdata := f.do(t, http.MethodGet, "/api/v1/workspaces/"+ws, "owner", "")
			var w struct {
				WriteKey string `json:"write_key"`
			}
			if err := json.Unmarshal(wdata, &w); err != nil || w.WriteKey == "" {
				t.Fatalf("workspace: %v %s", err, wdata)
			}
			checkSnippet(t, data, "http://example.com", w.WriteKey)
		})
	}
}

func TestTrackingSnippetUsesPublicURL(t *testing.T) {
	f := newFixture(t)
	deps := f.deps
	deps.Metrics = metrics.NewRegistry() // a second server registers its metrics again
	srv := admin.New(deps, admin.Options{PublicURL: "https://track.example.com/"})
	srv.SetReady(true)
	req := httptest.NewRequest(http.MethodGet, "/api/v1/workspaces/acme/tracking-snippet", nil)
	req.Header.Set("Authorization", "Bearer "+f.tokens["acme-admin"])
	resp, err := srv.App().Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, data)
	}
	_, wdata := f.do(t, http.MethodGet, "/api/v1/workspaces/acme", "owner", "")
	var w struct {
		WriteKey string `json:"write_key"`
	}
	if err := json.Unmarshal(wdata, &w); err != nil {
		t.Fatal(err)
	}
	checkSnippet(t, data, "https://track.example.com", w.WriteKey)
}

// checkSnippet checks a tracking-snippet answer for a server reached at base.
func checkSnippet(t *testing.T, data []byte, base, writeKey string) {
	t.Helper()
	var s struct {
		Snippet       string `json:"snippet"`
		ScriptTag     string `json:"script_tag"`
		CSPHash       string `json:"csp_hash"`
		CSPScriptSrc  string `json:"csp_script_src"`
		CSPConnectSrc string `json:"csp_connect_src"`
		WriteKey      string `json:"write_key"`
		ScriptURL     string `json:"script_url"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("decoding %s: %v", data, err)
	}
	if s.WriteKey != writeKey || s.ScriptURL != base+"/t.js" {
		t.Errorf("write_key %q script_url %q, want %q and %q", s.WriteKey, s.ScriptURL, writeKey, base+"/t.js")
	}
	code, open := strings.CutPrefix(s.Snippet, "<script>")
	code, closed := strings.CutSuffix(code, "</script>")
	if !open || !closed || strings.Contains(code, "</") {
		t.Fatalf("snippet is not one inline script element: %s", s.Snippet)
	}
	for _, part := range []string{`"` + base + `"`, `"` + writeKey + `"`, `"/t.js"`, "async", "data-write-key"} {
		if !strings.Contains(code, part) {
			t.Errorf("snippet lacks %s: %s", part, code)
		}
	}
	sum := sha256.Sum256([]byte(code))
	if want := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; s.CSPHash != want {
		t.Errorf("csp_hash %s, want %s (the hash of the inline code)", s.CSPHash, want)
	}
	if s.CSPScriptSrc != base+" "+s.CSPHash || s.CSPConnectSrc != base {
		t.Errorf("csp sources: script-src %q, connect-src %q", s.CSPScriptSrc, s.CSPConnectSrc)
	}
	if want := `<script async src="` + base + `/t.js" data-write-key="` + writeKey + `"></script>`; s.ScriptTag != want {
		t.Errorf("script_tag %s, want %s", s.ScriptTag, want)
	}
}
