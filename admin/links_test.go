package admin_test

import (
	"fmt"
	"io"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// The links of a sent email, followed as a mail client and a browser would: the open pixel, a tracked click, the
// unsubscribe page and RFC 8058's one-click POST; forged and altered links are refused.
func TestMessageLinksOverHTTP(t *testing.T) {
	f := newCampaignFixture(t)
	f.createContact(t, `{"email":"ana@example.com","attributes":{"country":"FR"},"consent":{"email":"subscribed","sms":"subscribed"}}`)
	seg := f.createSegment(t, `{"name":"France","rule":"country = \"FR\""}`)
	c := f.createCampaign(t, fmt.Sprintf(`{"name":"Sale","audience":{"include":[%q]},"channels":[{"plugin":"capture","content":`+
		`{"subject":"Sale","html":"<body><a href=\"https://shop.example.com/sale?q=red%%20shoes&amp;x=a+b&amp;pct=50%%25\">Shop</a></body>"}}]}`, seg))
	if resp, data := f.do(t, "POST", "/api/v1/workspaces/acme/campaigns/"+c.ID+"/launch", "acme-admin", ""); resp.StatusCode != 200 {
		t.Fatalf("launch: %d %s", resp.StatusCode, data)
	}
	f.waitCampaign(t, c.ID, "completed")
	_, data := f.do(t, "GET", "/api/v1/workspaces/acme/outbox", "acme-admin", "")
	page := decode[outboxPage](t, data)
	if len(page.Items) != 1 {
		t.Fatalf("outbox %s", data)
	}
	html := page.Items[0].Fields["html"]
	find := func(re string) string {
		m := regexp.MustCompile(re).FindStringSubmatch(html)
		if m == nil {
			t.Fatalf("no %s in %s", re, html)
		}
		u, _ := url.Parse(strings.ReplaceAll(m[1], "&amp;", "&"))
		return u.RequestURI()
	}
	pixel := find(`<img src="(https://cc\.example\.com/o/[^"]+)"`)
	click := find(`<a href="(https://cc\.example\.com/c/[^"]+)"`)
	headers := page.Items[0].Headers
	if !strings.HasPrefix(headers["List-Unsubscribe"], "<https://cc.example.com/u/acme/") || headers["List-Unsubscribe-Post"] != "List-Unsubscribe=One-Click" {
		t.Fatalf("headers %v", headers)
	}
	unsubscribe := strings.TrimSuffix(strings.TrimPrefix(headers["List-Unsubscribe"], "<https://cc.example.com"), ">")

	get := func(path string) (int, string, string) {
		resp, err := f.srv.App().Test(httptest.NewRequest("GET", path, nil), -1)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Location"), string(body)
	}
	if code, _, body := get(pixel); code != 200 || !strings.HasPrefix(body, "GIF89a") {
		t.Fatalf("pixel: %d", code)
	}
	if code, loc, _ := get(click); code != 302 || loc != "https://shop.example.com/sale?q=red%20shoes&x=a+b&pct=50%25" {
		t.Fatalf("click: %d %q", code, loc)
	}
	// An open redirect is refused: the same signature for another target, or an altered signature.
	evil := strings.Split(click, "?")[0] + "?u=" + url.QueryEscape("https://evil.example.com/")
	if code, loc, body := get(evil); code != 400 || loc != "" || !strings.Contains(body, "not valid") {
		t.Fatalf("forged click: %d %q", code, loc)
	}
	if code, _, _ := get(strings.Replace(pixel, "/acme/", "/globex/", 1)); code != 404 {
		t.Fatalf("pixel of another workspace: %d", code)
	}
	code, _, body := get(unsubscribe)
	if code != 200 || !strings.Contains(body, "“Sale”") || !strings.Contains(body, `value="sms" checked`) ||
		!strings.Contains(body, `name="topic" value="newsletter" checked> The newsletter`) {
		t.Fatalf("preference page: %d %s", code, body)
	}
	req := httptest.NewRequest("POST", unsubscribe, strings.NewReader("List-Unsubscribe=One-Click"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := f.srv.App().Test(req, -1)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("one-click unsubscribe: %v %v", resp, err)
	}
	_, data = f.do(t, "GET", "/api/v1/workspaces/acme/contacts?email=ana@example.com", "acme-admin", "")
	if !strings.Contains(string(data), `"email":{"status":"unsubscribed"`) || !strings.Contains(string(data), `"sms":{"status":"subscribed"`) {
		t.Fatalf("consent after unsubscribing: %s", data)
	}
	v := f.waitCampaign(t, c.ID, "completed")
	if v.Progress.Opened != 1 || v.Progress.Clicked != 1 || v.Progress.Unsubscribed != 1 {
		t.Fatalf("engagement %+v", v.Progress)
	}
}

// A provider's bounce, through the capture channel's webhook (it plays the provider), reaches the campaign: counted,
// and the contact's email consent withdrawn.
func TestBounceThroughTheChannelWebhook(t *testing.T) {
	f := newCampaignFixture(t)
	f.createContact(t, `{"email":"ana@example.com","attributes":{"country":"FR"},"consent":{"email":"subscribed"}}`)
	seg := f.createSegment(t, `{"name":"France","rule":"country = \"FR\""}`)
	c := f.createCampaign(t, campaignBody("Bounce", seg))
	if resp, data := f.do(t, "POST", "/api/v1/workspaces/acme/campaigns/"+c.ID+"/launch", "acme-admin", ""); resp.StatusCode != 200 {
		t.Fatalf("launch: %d %s", resp.StatusCode, data)
	}
	f.waitCampaign(t, c.ID, "completed")
	_, data := f.do(t, "GET", "/api/v1/workspaces/acme/outbox", "acme-admin", "")
	page := decode[outboxPage](t, data)
	if len(page.Items) != 1 {
		t.Fatalf("outbox %s", data)
	}
	req := httptest.NewRequest("POST", "/hooks/acme/capture", strings.NewReader(
		`{"events":[{"type":"bounced","message_id":"`+page.Items[0].ID+`","permanent":true,"detail":"550 5.1.1 no such user"}]}`))
	resp, err := f.srv.App().Test(req, -1)
	if err != nil || resp.StatusCode != 200 {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("webhook: %v %v %s", resp, err, body)
	}
	_, data = f.do(t, "GET", "/api/v1/workspaces/acme/campaigns/"+c.ID+"/stats", "acme-admin", "")
	if !strings.Contains(string(data), `"bounced_hard":1`) {
		t.Fatalf("stats after the bounce: %s", data)
	}
	_, data = f.do(t, "GET", "/api/v1/workspaces/acme/contacts?email=ana@example.com", "acme-admin", "")
	if !strings.Contains(string(data), `"email":{"status":"unsubscribed"`) || !strings.Contains(string(data), `"source":"hard bounce"`) {
		t.Fatalf("consent after a hard bounce: %s", data)
	}
}
