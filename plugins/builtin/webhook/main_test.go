package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/crosscast/crosscast/sdk"
	"github.com/crosscast/crosscast/sdk/plugintest"
	"github.com/crosscast/crosscast/sdk/wire"
)

const hookURL = "https://hooks.example.com/crosscast"

func host(t *testing.T, responses ...plugintest.Response) *plugintest.Host {
	return plugintest.New(t, plugintest.Options{Config: `url = "` + hookURL + `"
secret = "whsec_0123456789abcdef"`, Grants: plugintest.Grants{HTTPHosts: []string{"https://hooks.example.com"}}, HTTP: responses})
}

func msg(id, payload string) sdk.Message {
	return sdk.Message{ID: id, IdempotencyKey: "key-" + id, Fields: wire.PairsOf(map[string]string{"payload": payload})}
}

func TestPostsSignedJSON(t *testing.T) {
	h := host(t, plugintest.Response{Method: "POST", URL: hookURL, Status: 204, Repeat: true})
	res := h.Send(msg("m1", `{"event":"welcome","contact":"ana@example.com"}`))
	if len(res) != 1 || res[0].Status != sdk.Delivered {
		t.Fatalf("results %+v", res)
	}
	reqs := h.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	if r.Method != "POST" || r.URL != hookURL || r.Body != `{"event":"welcome","contact":"ana@example.com"}` ||
		r.Header["Content-Type"] != "application/json" || r.Header["Idempotency-Key"] != "key-m1" || r.Header["X-Crosscast-Message-Id"] != "m1" {
		t.Fatalf("request %+v", r)
	}
	// The receiver's check, as docs/channels/webhook.md shows it.
	sig := r.Header["X-Crosscast-Signature"]
	ts, v1, ok := strings.Cut(strings.TrimPrefix(sig, "t="), ",v1=")
	if !ok || ts != strconv.FormatInt(plugintest.DefaultNow.Unix(), 10) || v1 != Sign([]byte("whsec_0123456789abcdef"), ts, []byte(r.Body)) {
		t.Fatalf("signature %q", sig)
	}
	if v1 == Sign([]byte("whsec_0123456789abcdef"), ts, []byte(r.Body+" ")) {
		t.Fatal("the signature does not cover the body")
	}
	for _, line := range h.Logs() {
		if strings.Contains(line, "whsec_0123456789abcdef") {
			t.Fatalf("the secret is in a log line: %s", line)
		}
	}
}

func TestAnswersAndBadPayloads(t *testing.T) {
	for _, tt := range []struct {
		name   string
		resp   plugintest.Response
		want   sdk.Status
		detail string
	}{
		{"created", plugintest.Response{Status: 201}, sdk.Delivered, ""},
		{"server error", plugintest.Response{Status: 503, Body: "maintenance"}, sdk.Retry, "HTTP 503: maintenance"},
		{"rate limited", plugintest.Response{Status: 429}, sdk.Retry, "HTTP 429"},
		{"timeout", plugintest.Response{Status: 408}, sdk.Retry, "HTTP 408"},
		{"refused", plugintest.Response{Status: 422, Body: `{"error":"unknown event"}`}, sdk.Failed, `HTTP 422: {"error":"unknown event"}`},
		{"gone", plugintest.Response{Status: 404}, sdk.Failed, "HTTP 404"},
		{"connection refused", plugintest.Response{Err: "connection refused"}, sdk.Retry, "connection refused"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.resp.Method, tt.resp.URL = "POST", hookURL
			h := host(t, tt.resp)
			res := h.Send(msg("m1", `{"a":1}`))
			if len(res) != 1 || res[0].Status != tt.want || !strings.Contains(res[0].Error, tt.detail) {
				t.Fatalf("result %+v, want %v with %q", res, tt.want, tt.detail)
			}
		})
	}
	h := host(t)
	res := h.Send(msg("bad", `{"a":`), msg("empty", ``))
	if res[0].Status != sdk.Failed || res[1].Status != sdk.Failed || len(h.Requests()) != 0 {
		t.Fatalf("bad payloads: %+v, %d requests", res, len(h.Requests()))
	}
}

func TestConfigIsChecked(t *testing.T) {
	for _, cfg := range []string{`url = "ftp://x.example.com"
secret = "whsec_0123456789abcdef"`, `url = "` + hookURL + `"`} {
		if _, err := plugintest.Load(t, plugintest.Options{Config: cfg, Grants: plugintest.Grants{HTTPHosts: []string{"https://hooks.example.com"}}}); err == nil {
			t.Errorf("config %q loaded", cfg)
		}
	}
}
