package admin_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

type outboxPage struct {
	Items []struct {
		Key     string            `json:"key"`
		ID      string            `json:"id"`
		To      string            `json:"to"`
		Fields  map[string]string `json:"fields"`
		Headers map[string]string `json:"headers"`
	} `json:"items"`
	Next string `json:"next"`
}

// A fresh install can send without any provider: a test send through the bundled capture channel lands in the
// workspace's outbox, which lists newest first, pages, stays per workspace, and can be cleared.
func TestTestSendAndOutbox(t *testing.T) {
	f := newFixture(t)
	var ids []string
	for i := 1; i <= 3; i++ {
		resp, body := f.do(t, "POST", "/api/v1/workspaces/acme/channels/capture/test", "acme-admin",
			fmt.Sprintf(`{"to":"ana%d@example.com","fields":{"subject":"Hello %d"}}`, i, i))
		var r struct {
			ID         string `json:"id"`
			Status     string `json:"status"`
			ProviderID string `json:"provider_id"`
		}
		if resp.StatusCode != 200 || json.Unmarshal(body, &r) != nil || r.Status != "delivered" || !strings.HasPrefix(r.ProviderID, "msg/") {
			t.Fatalf("test send %d: %d %s", i, resp.StatusCode, body)
		}
		ids = append(ids, r.ID)
	}
	resp, body := f.do(t, "GET", "/api/v1/workspaces/acme/outbox?limit=2", "acme-viewer", "")
	var page outboxPage
	if resp.StatusCode != 200 || json.Unmarshal(body, &page) != nil || len(page.Items) != 2 || page.Next == "" {
		t.Fatalf("first page: %d %s", resp.StatusCode, body)
	}
	if page.Items[0].ID != ids[2] || page.Items[1].ID != ids[1] || page.Items[0].Fields["subject"] != "Hello 3" || page.Items[0].To != "ana3@example.com" {
		t.Fatalf("not newest first: %s", body)
	}
	resp, body = f.do(t, "GET", "/api/v1/workspaces/acme/outbox?limit=2&cursor="+page.Next, "acme-viewer", "")
	var second outboxPage
	if resp.StatusCode != 200 || json.Unmarshal(body, &second) != nil || len(second.Items) != 1 || second.Items[0].ID != ids[0] || second.Next != "" {
		t.Fatalf("second page: %d %s", resp.StatusCode, body)
	}
	if resp, body := f.do(t, "GET", "/api/v1/workspaces/globex/outbox", "owner", ""); resp.StatusCode != 200 || !strings.Contains(string(body), `"items":[]`) {
		t.Fatalf("another workspace's outbox: %d %s", resp.StatusCode, body)
	}

	// A simulated provider webhook reports a bounce of a captured message; an unknown message is refused.
	hook := func(payload string) (int, string) {
		req, _ := http.NewRequest("POST", "/hooks/acme/capture", strings.NewReader(payload))
		req.Header.Set("Content-Type", "application/json")
		resp, err := f.srv.App().Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		_, _ = fmt.Fprint(&b, readAll(resp))
		return resp.StatusCode, b.String()
	}
	if code, body := hook(fmt.Sprintf(`{"events":[{"type":"bounced","message_id":%q,"permanent":true,"detail":"550 no such user"}]}`, ids[0])); code != 200 || body != `{"accepted":1}` {
		t.Fatalf("bounce webhook: %d %s", code, body)
	}
	if code, body := hook(`{"events":[{"type":"bounced","message_id":"forged"}]}`); code != 422 || !strings.Contains(body, "not in this workspace's outbox") {
		t.Fatalf("forged webhook: %d %s", code, body)
	}
	if code, _ := hook(`not json`); code != 400 {
		t.Fatalf("malformed webhook: %d", code)
	}
	_, metricsBody := f.do(t, "GET", "/metrics", "", "")
	if !strings.Contains(string(metricsBody), `crosscast_hook_events_total{plugin="capture",type="bounced"} 1`) {
		t.Fatalf("webhook events not counted:\n%s", metricsBody)
	}

	// Clearing needs an editor; then the outbox is empty.
	if resp, _ := f.do(t, "DELETE", "/api/v1/workspaces/acme/outbox", "acme-viewer", ""); resp.StatusCode != 403 {
		t.Fatalf("viewer cleared the outbox: %d", resp.StatusCode)
	}
	if resp, _ := f.do(t, "DELETE", "/api/v1/workspaces/acme/outbox", "acme-admin", ""); resp.StatusCode != 204 {
		t.Fatalf("clear: %d", resp.StatusCode)
	}
	if _, body := f.do(t, "GET", "/api/v1/workspaces/acme/outbox", "acme-admin", ""); !strings.Contains(string(body), `"items":[]`) {
		t.Fatalf("after clear: %s", body)
	}
}

func TestChannelEndpointsRefuse(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name, method, url, token, body string
		status                         int
		code                           string
	}{
		{"viewer cannot send", "POST", "/api/v1/workspaces/acme/channels/capture/test", "acme-viewer", `{"to":"a@b.c"}`, 403, "forbidden"},
		{"other workspace is invisible", "POST", "/api/v1/workspaces/globex/channels/capture/test", "acme-admin", `{"to":"a@b.c"}`, 404, "not_found"},
		{"unknown plugin", "POST", "/api/v1/workspaces/acme/channels/nope/test", "acme-admin", `{"to":"a@b.c"}`, 404, "not_found"},
		{"missing to", "POST", "/api/v1/workspaces/acme/channels/capture/test", "acme-admin", `{"fields":{}}`, 400, "validation_failed"},
		{"unknown field", "POST", "/api/v1/workspaces/acme/channels/capture/test", "acme-admin", `{"to":"a@b.c","cc":"x"}`, 400, "validation_failed"},
		{"outbox of a non-capture plugin", "GET", "/api/v1/workspaces/acme/outbox?plugin=null", "acme-admin", "", 400, "validation_failed"},
		{"outbox of an unknown plugin", "GET", "/api/v1/workspaces/acme/outbox?plugin=nope", "acme-admin", "", 400, "validation_failed"},
		{"bad cursor", "GET", "/api/v1/workspaces/acme/outbox?cursor=zzz", "acme-admin", "", 400, "validation_failed"},
		{"outbox of an unknown workspace", "GET", "/api/v1/workspaces/nope/outbox", "owner", "", 404, "not_found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := f.do(t, c.method, c.url, c.token, c.body)
			if resp.StatusCode != c.status || errorBody(t, body) != c.code {
				t.Fatalf("%d %s, want %d %s", resp.StatusCode, body, c.status, c.code)
			}
		})
	}
	// Hooks: an unknown workspace, an unknown plugin, and a plugin that takes no webhooks are all 404.
	for _, url := range []string{"/hooks/nope/capture", "/hooks/acme/nope", "/hooks/acme/null"} {
		req, _ := http.NewRequest("POST", url, strings.NewReader("{}"))
		resp, err := f.srv.App().Test(req, -1)
		if err != nil || resp.StatusCode != 404 {
			t.Fatalf("%s: %v %v", url, resp.StatusCode, err)
		}
	}
}

func readAll(resp *http.Response) string {
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}
