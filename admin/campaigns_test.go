package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crosscast/crosscast/admin"
	"github.com/crosscast/crosscast/core/campaigns"
	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/workspaces"
	"github.com/crosscast/crosscast/plugins/manager"
	"github.com/hashicorp/go-hclog"
)

// newCampaignFixture is the API fixture that also serves campaigns: a campaigns.Service over the same store and
// segments, sending through the bundled channel plugins (capture, null), with its engine running until the test
// ends.
func newCampaignFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t)
	m, ok := f.deps.Plugins.(*manager.Manager)
	if !ok {
		t.Fatalf("the fixture's plugins are a %T, not a *manager.Manager", f.deps.Plugins)
	}
	log := hclog.New(&hclog.LoggerOptions{Output: t.Output(), Level: hclog.Debug})
	svc := campaigns.NewService(f.store, f.deps.Segments, manager.Campaigns{M: m}, log, nil, campaigns.Options{Tick: 50 * time.Millisecond,
		Links: campaigns.NewLinks("https://cc.example.com", []byte("0123456789abcdef0123456789abcdef")),
		Consent: func(ctx context.Context, ws, id, channel string, st contacts.ConsentStatus, source string) error {
			_, err := f.deps.Contacts.SetConsent(ctx, ws, id, channel, st, source)
			return err
		},
		Rules: func(context.Context, string) (workspaces.CampaignRules, error) {
			return workspaces.CampaignRules{Topics: []workspaces.Topic{{ID: "newsletter", Name: "The newsletter"}}}, nil
		}})
	ctx, cancel := context.WithCancel(context.Background())
	if err := svc.Start(ctx, []string{"acme", "globex", "managed"}); err != nil {
		cancel()
		t.Fatal(err)
	}
	// Registered after the fixture's cleanups, so it runs before the segments service and the store close.
	t.Cleanup(func() {
		cancel()
		svc.Close()
	})
	f.deps.Campaigns = svc
	f.deps.HookEvents = manager.CampaignFeedback{S: svc}
	f.reserve(admin.Options{MaxBody: 4096})
	return f
}

// campaignJSON is the part of a campaign the tests read.
type campaignJSON struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Reason   string `json:"reason"`
	Runs     int    `json:"runs"`
	Progress struct {
		Sent      int `json:"sent"`
		Skipped   int `json:"skipped"`
		Failed    int `json:"failed"`
		Remaining int `json:"remaining"`
		Opened    int `json:"opened"`
		Clicked   int `json:"clicked"`
		// Unsubscribed counts the messages whose unsubscribe link was used.
		Unsubscribed int `json:"unsubscribed"`
	} `json:"progress"`
}

type messagesPage struct {
	Items []struct {
		ID      string `json:"id"`
		Contact string `json:"contact_id"`
		Status  string `json:"status"`
		Channel string `json:"channel"`
		To      string `json:"to"`
		Error   string `json:"error"`
	} `json:"items"`
	Next string `json:"next"`
}

func decode[T any](t *testing.T, data []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("decoding %T: %v: %s", v, err, data)
	}
	return v
}

func (f *fixture) createCampaign(t *testing.T, body string) campaignJSON {
	t.Helper()
	resp, data := f.do(t, "POST", "/api/v1/workspaces/acme/campaigns", "acme-admin", body)
	if resp.StatusCode != 201 {
		t.Fatalf("create campaign: %d %s", resp.StatusCode, data)
	}
	return decode[campaignJSON](t, data)
}

func (f *fixture) createSegment(t *testing.T, body string) string {
	t.Helper()
	resp, data := f.do(t, "POST", "/api/v1/workspaces/acme/segments", "acme-admin", body)
	if resp.StatusCode != 201 {
		t.Fatalf("create segment: %d %s", resp.StatusCode, data)
	}
	return decode[struct {
		ID string `json:"id"`
	}](t, data).ID
}

// waitCampaign polls the campaign until it has status want, or fails at the deadline.
func (f *fixture) waitCampaign(t *testing.T, id, want string) campaignJSON {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, data := f.do(t, "GET", "/api/v1/workspaces/acme/campaigns/"+id, "acme-admin", "")
		if resp.StatusCode != 200 {
			t.Fatalf("get campaign: %d %s", resp.StatusCode, data)
		}
		c := decode[campaignJSON](t, data)
		if c.Status == want {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("campaign still %q after 15s, want %q: %s", c.Status, want, data)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// campaignBody is a draft over the capture channel whose subject greets the contact by first name.
func campaignBody(name string, include ...string) string {
	inc, _ := json.Marshal(include)
	if include == nil {
		inc = []byte("[]")
	}
	return fmt.Sprintf(`{"name":%q,"audience":{"include":%s},"channels":[{"plugin":"capture","content":`+
		`{"subject":"Hello {{ contact.first_name | default: \"there\" }}","text":"Hi from {{ campaign.name }}"}}]}`, name, inc)
}

type scenario struct {
	name, method, url, token, body string
	status                         int
	code                           string // error code for 4xx
	want                           []string
}

func runScenarios(t *testing.T, f *fixture, tests []scenario) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, data := f.do(t, tc.method, tc.url, tc.token, tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, data)
			}
			if tc.code != "" && errorBody(t, data) != tc.code {
				t.Errorf("code: %s", data)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(data), w) {
					t.Errorf("response lacks %q: %s", w, data)
				}
			}
		})
	}
}

// Drafts: create, list, get, edit, delete; validation names the field; roles and unknown ids.
func TestCampaignsAPI(t *testing.T) {
	f := newCampaignFixture(t)
	f.createContact(t, `{"email":"ana@example.com","attributes":{"country":"FR"},"consent":{"email":"subscribed"}}`)
	seg := f.createSegment(t, `{"name":"France","rule":"country = \"FR\""}`)
	base := "/api/v1/workspaces/acme/campaigns"

	draft := f.createCampaign(t, campaignBody("Welcome", seg))
	if draft.Status != "draft" || !campaigns.ValidID(draft.ID) {
		t.Fatalf("created: %+v", draft)
	}
	doomed := f.createCampaign(t, campaignBody("Doomed"))
	one := base + "/" + draft.ID
	later := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)

	runScenarios(t, f, []scenario{
		{"create", "POST", base, "acme-admin", campaignBody("Another", seg), 201, "",
			[]string{`"id":"cmp_`, `"status":"draft"`, `"strategy":"all"`, `"schedule":{"kind":"now"}`, `"progress":{`}},
		{"list with progress", "GET", base, "acme-viewer", "", 200, "",
			[]string{`"items":[{"id":"` + draft.ID, `"name":"Welcome"`, `"name":"Doomed"`, `"progress":{"planned":0`, `"next":""`}},
		{"get", "GET", one, "acme-viewer", "", 200, "",
			[]string{`"status":"draft"`, `"audience":{"include":["` + seg + `"]}`, `"channels":[{"plugin":"capture"`, `"progress":{`, `"remaining":0`}},
		{"patch a draft", "PATCH", one, "acme-admin", `{"name":"Welcome aboard","strategy":"fallback","schedule":{"kind":"at","at":"` + later + `"}}`, 200, "",
			[]string{`"name":"Welcome aboard"`, `"strategy":"fallback"`, `"kind":"at"`, `"channels":[{"plugin":"capture"`}},
		{"delete a draft", "DELETE", base + "/" + doomed.ID, "acme-admin", "", 204, "", nil},
		{"deleted is gone", "GET", base + "/" + doomed.ID, "acme-admin", "", 404, "not_found", nil},

		// Validation: 400 naming the field.
		{"missing name", "POST", base, "acme-admin", `{"channels":[]}`, 400, "validation_failed", []string{`"field":"name"`, "is required"}},
		{"blank name", "POST", base, "acme-admin", `{"name":"  "}`, 400, "validation_failed", []string{`"field":"name"`}},
		{"unknown channel plugin", "POST", base, "acme-admin", `{"name":"X","channels":[{"plugin":"carrier-pigeon","content":{}}]}`, 400, "validation_failed",
			[]string{`"field":"channels[0].plugin"`, `no channel plugin \"carrier-pigeon\"`}},
		{"channel listed twice", "POST", base, "acme-admin", `{"name":"X","channels":[{"plugin":"null"},{"plugin":"null"}]}`, 400, "validation_failed",
			[]string{`"field":"channels[1].plugin"`, "listed twice"}},
		{"template syntax error names the line", "POST", base, "acme-admin",
			`{"name":"X","channels":[{"plugin":"capture","content":{"text":"Hello\n{% if contact.vip %}\nno end"}}]}`, 400, "validation_failed",
			[]string{`"field":"channels[0].content.text"`, "template error on line 2"}},
		{"unknown filter", "POST", base, "acme-admin",
			`{"name":"X","channels":[{"plugin":"capture","content":{"subject":"{{ contact.email | shout }}"}}]}`, 400, "validation_failed",
			[]string{`"field":"channels[0].content.subject"`, "line 1", "shout"}},
		{"bad cron", "POST", base, "acme-admin", `{"name":"X","schedule":{"kind":"recurring","cron":"61 * * * *"}}`, 400, "validation_failed",
			[]string{`"field":"schedule.cron"`}},
		{"recurring without cron", "POST", base, "acme-admin", `{"name":"X","schedule":{"kind":"recurring"}}`, 400, "validation_failed",
			[]string{`"field":"schedule.cron"`, "is required"}},
		{"at without a time", "POST", base, "acme-admin", `{"name":"X","schedule":{"kind":"at"}}`, 400, "validation_failed", []string{`"field":"schedule.at"`}},
		{"unknown schedule kind", "POST", base, "acme-admin", `{"name":"X","schedule":{"kind":"soon"}}`, 400, "validation_failed", []string{`"field":"schedule.kind"`}},
		{"bad time zone", "POST", base, "acme-admin", `{"name":"X","schedule":{"kind":"recurring","cron":"@daily","timezone":"Mars/Olympus"}}`, 400, "validation_failed",
			[]string{`"field":"schedule.timezone"`}},
		{"bad strategy", "POST", base, "acme-admin", `{"name":"X","strategy":"random"}`, 400, "validation_failed", []string{`"field":"strategy"`, `not \"random\"`}},
		{"bad goal window", "POST", base, "acme-admin", `{"name":"X","goal":{"event":"Order Completed","within":"forever"}}`, 400, "validation_failed",
			[]string{`"field":"goal.within"`}},
		{"empty audience entry", "POST", base, "acme-admin", `{"name":"X","audience":{"include":[""]}}`, 400, "validation_failed",
			[]string{`"field":"audience.include[0]"`}},
		{"unknown JSON field", "POST", base, "acme-admin", `{"name":"X","nmae":"typo"}`, 400, "validation_failed", []string{`"field":"nmae"`, "unknown field"}},
		{"wrong JSON type", "POST", base, "acme-admin", `{"name":5}`, 400, "validation_failed", []string{`"field":"name"`, "must be a string"}},
		{"malformed JSON", "POST", base, "acme-admin", "{\n  \"name\": \"X\",,\n}", 400, "malformed_json", []string{`"line":2`}},
		{"empty body", "POST", base, "acme-admin", "", 400, "malformed_json", []string{"empty"}},
		{"patch unknown field", "PATCH", one, "acme-admin", `{"subject":"x"}`, 400, "validation_failed", []string{`"field":"subject"`}},
		{"patch invalid keeps the draft", "PATCH", one, "acme-admin", `{"strategy":"random"}`, 400, "validation_failed", []string{`"field":"strategy"`}},

		// Roles: a viewer reads, never writes.
		{"viewer cannot create", "POST", base, "acme-viewer", campaignBody("V", seg), 403, "forbidden", nil},
		{"viewer cannot patch", "PATCH", one, "acme-viewer", `{"name":"V"}`, 403, "forbidden", nil},
		{"viewer cannot delete", "DELETE", one, "acme-viewer", "", 403, "forbidden", nil},
		{"viewer cannot launch", "POST", one + "/launch", "acme-viewer", "", 403, "forbidden", nil},
		{"viewer cannot pause", "POST", one + "/pause", "acme-viewer", "", 403, "forbidden", nil},
		{"viewer cannot cancel", "POST", one + "/cancel", "acme-viewer", "", 403, "forbidden", nil},
		{"viewer cannot preview", "POST", one + "/preview", "acme-viewer", `{"contact_id":"x"}`, 403, "forbidden", nil},
		{"viewer cannot test", "POST", one + "/test", "acme-viewer", `{"to":"qa@example.com"}`, 403, "forbidden", nil},
		{"viewer reads messages", "GET", one + "/messages", "acme-viewer", "", 200, "", []string{`"items":[]`, `"next":""`}},
		{"viewer reads the audit", "GET", one + "/audit", "acme-viewer", "", 200, "", []string{`"action":"created"`, `"action":"edited"`}},
		{"global viewer reads", "GET", one, "global-viewer", "", 200, "", []string{draft.ID}},
		{"other workspace is invisible", "GET", "/api/v1/workspaces/globex/campaigns", "acme-admin", "", 404, "not_found", nil},
		{"other workspace's id", "GET", "/api/v1/workspaces/globex/campaigns/" + draft.ID, "owner", "", 404, "not_found", nil},
		{"unknown workspace", "GET", "/api/v1/workspaces/nope/campaigns", "owner", "", 404, "not_found", nil},

		// Unknown and malformed ids are 404 on every route.
		{"unknown id", "GET", base + "/cmp_01m81b5h80bgjwrjxve0kf1ta6", "acme-admin", "", 404, "not_found", nil},
		{"malformed id", "GET", base + "/nope", "acme-admin", "", 404, "not_found", nil},
		{"patch unknown id", "PATCH", base + "/cmp_01m81b5h80bgjwrjxve0kf1ta6", "acme-admin", `{"name":"x"}`, 404, "not_found", nil},
		{"delete malformed id", "DELETE", base + "/nope", "acme-admin", "", 404, "not_found", nil},
		{"launch unknown id", "POST", base + "/cmp_01m81b5h80bgjwrjxve0kf1ta6/launch", "acme-admin", "", 404, "not_found", nil},
		{"pause malformed id", "POST", base + "/nope/pause", "acme-admin", "", 404, "not_found", nil},
		{"preview unknown id", "POST", base + "/cmp_01m81b5h80bgjwrjxve0kf1ta6/preview", "acme-admin", `{"contact_id":"x"}`, 404, "not_found", nil},
		{"test malformed id", "POST", base + "/nope/test", "acme-admin", `{"to":"qa@example.com"}`, 404, "not_found", nil},
		{"messages of unknown id", "GET", base + "/cmp_01m81b5h80bgjwrjxve0kf1ta6/messages", "acme-admin", "", 404, "not_found", nil},
		{"audit of malformed id", "GET", base + "/nope/audit", "acme-admin", "", 404, "not_found", nil},
		{"wrong method", "PUT", one, "acme-admin", `{}`, 405, "method_not_allowed", []string{"use DELETE, GET, PATCH"}},
	})

	// The failed edits changed nothing.
	_, data := f.do(t, "GET", one, "acme-admin", "")
	if !strings.Contains(string(data), `"strategy":"fallback"`) || !strings.Contains(string(data), `"name":"Welcome aboard"`) {
		t.Errorf("a refused edit changed the draft: %s", data)
	}
}

// A launched campaign really sends: one capture message per subscribed contact of the segment, the unsubscribed
// one skipped with its reason, listed by status, paged, masked for viewers, and audited.
func TestCampaignLaunchSends(t *testing.T) {
	f := newCampaignFixture(t)
	ana := f.createContact(t, `{"email":"ana@example.com","attributes":{"country":"FR","first_name":"Ana"},"consent":{"email":"subscribed"}}`)
	bob := f.createContact(t, `{"email":"bob@example.com","attributes":{"country":"FR"},"consent":{"email":"subscribed"}}`)
	cleo := f.createContact(t, `{"email":"cleo@example.com","attributes":{"country":"FR","first_name":"Cleo"},"consent":{"email":"unsubscribed"}}`)
	f.createContact(t, `{"email":"dave@example.com","attributes":{"country":"DE","first_name":"Dave"},"consent":{"email":"subscribed"}}`)
	seg := f.createSegment(t, `{"name":"France","rule":"country = \"FR\""}`)
	base := "/api/v1/workspaces/acme/campaigns"

	// Launch refusals leave the campaign a draft.
	empty := f.createCampaign(t, campaignBody("No audience"))
	temp := f.createSegment(t, `{"name":"Temp","type":"static"}`)
	orphan := f.createCampaign(t, campaignBody("Orphan", temp))
	if resp, data := f.do(t, "DELETE", "/api/v1/workspaces/acme/segments/"+temp, "acme-admin", ""); resp.StatusCode != 204 {
		t.Fatalf("delete segment: %d %s", resp.StatusCode, data)
	}
	noChannel := f.createCampaign(t, `{"name":"Silent","audience":{"include":["`+seg+`"]}}`)
	runScenarios(t, f, []scenario{
		{"empty audience", "POST", base + "/" + empty.ID + "/launch", "acme-admin", "", 400, "validation_failed", []string{`"field":"audience.include"`}},
		{"deleted segment", "POST", base + "/" + orphan.ID + "/launch", "acme-admin", "", 400, "validation_failed",
			[]string{`"field":"audience.include"`, "does not exist"}},
		{"no channel", "POST", base + "/" + noChannel.ID + "/launch", "acme-admin", "", 400, "validation_failed", []string{`"field":"channels"`}},
		{"still a draft", "GET", base + "/" + orphan.ID, "acme-admin", "", 200, "", []string{`"status":"draft"`}},
	})

	c := f.createCampaign(t, campaignBody("Welcome", seg))
	one := base + "/" + c.ID
	resp, data := f.do(t, "POST", one+"/launch", "acme-admin", "")
	if resp.StatusCode != 200 {
		t.Fatalf("launch: %d %s", resp.StatusCode, data)
	}
	if s := decode[campaignJSON](t, data).Status; s != "scheduled" && s != "running" {
		t.Fatalf("launched campaign is %q: %s", s, data)
	}
	if resp, data := f.do(t, "PATCH", one, "acme-admin", `{"name":"Too late"}`); resp.StatusCode != 409 || errorBody(t, data) != "conflict" {
		t.Fatalf("patch of a launched campaign: %d %s", resp.StatusCode, data)
	}

	done := f.waitCampaign(t, c.ID, "completed")
	if done.Progress.Sent != 2 || done.Progress.Skipped != 1 || done.Progress.Failed != 0 || done.Progress.Remaining != 0 || done.Runs != 1 {
		t.Fatalf("progress after completion: %+v", done)
	}

	// The capture outbox holds exactly one message per subscribed contact, with the rendered subject.
	resp, data = f.do(t, "GET", "/api/v1/workspaces/acme/outbox", "acme-admin", "")
	page := decode[outboxPage](t, data)
	if resp.StatusCode != 200 || len(page.Items) != 2 {
		t.Fatalf("outbox: %d %s", resp.StatusCode, data)
	}
	got := map[string]string{}
	outboxIDs := map[string]bool{}
	for _, it := range page.Items {
		got[it.To] = it.Fields["subject"]
		outboxIDs[it.ID] = true
		if it.Fields["text"] != "Hi from Welcome" {
			t.Errorf("text field: %q", it.Fields["text"])
		}
	}
	if got["ana@example.com"] != "Hello Ana" || got["bob@example.com"] != "Hello there" || len(got) != 2 {
		t.Fatalf("outbox messages: %v", got)
	}

	// Messages by status; the sent ones are the outbox's (same ids: the idempotency keys).
	_, data = f.do(t, "GET", one+"/messages?status=sent", "acme-admin", "")
	sent := decode[messagesPage](t, data)
	if len(sent.Items) != 2 || sent.Next != "" {
		t.Fatalf("sent messages: %s", data)
	}
	var sentTo []string
	for _, m := range sent.Items {
		if m.Status != "sent" || m.Channel != "capture" || !outboxIDs[m.ID] {
			t.Errorf("sent message %+v not in the outbox %v", m, outboxIDs)
		}
		sentTo = append(sentTo, m.To)
	}
	sort.Strings(sentTo)
	if strings.Join(sentTo, ",") != "ana@example.com,bob@example.com" {
		t.Errorf("sent to %v", sentTo)
	}
	_, data = f.do(t, "GET", one+"/messages?status=SKIPPED", "acme-admin", "")
	skipped := decode[messagesPage](t, data)
	if len(skipped.Items) != 1 || skipped.Items[0].Contact != cleo.ID || !strings.Contains(skipped.Items[0].Error, "unsubscribed from email") {
		t.Fatalf("skipped messages: %s", data)
	}

	runScenarios(t, f, []scenario{
		{"bogus status", "GET", one + "/messages?status=bogus", "acme-admin", "", 400, "validation_failed", []string{`"field":"status"`}},
		{"bad limit", "GET", one + "/messages?limit=0", "acme-admin", "", 400, "validation_failed", []string{`"field":"limit"`}},
		{"bad cursor", "GET", one + "/messages?cursor=zzz", "acme-admin", "", 400, "validation_failed", []string{`"field":"cursor"`}},
		{"viewer sees masked addresses", "GET", one + "/messages?status=sent", "acme-viewer", "", 200, "",
			[]string{`"to":"a***@example.com"`, `"to":"b***@example.com"`}},
		{"editor sees addresses", "GET", one + "/messages?status=sent", "acme-admin", "", 200, "", []string{`"to":"ana@example.com"`}},
		{"launch again once completed", "POST", one + "/launch", "acme-admin", "", 409, "conflict", []string{"completed"}},
		{"pause a completed campaign", "POST", one + "/pause", "acme-admin", "", 409, "conflict", nil},
		{"cancel a completed campaign", "POST", one + "/cancel", "acme-admin", "", 409, "conflict", nil},
		{"audit", "GET", one + "/audit", "acme-viewer", "", 200, "",
			[]string{`"action":"created","actor":"token `, `"action":"launched"`, `"action":"run started"`, `"action":"completed","actor":"engine"`}},
	})
	_, data = f.do(t, "GET", one+"/audit", "acme-admin", "")
	var actions []string
	for _, e := range decode[struct {
		Items []campaigns.AuditEntry `json:"items"`
	}](t, data).Items {
		actions = append(actions, e.Action)
	}
	if strings.Join(actions, ",") != "created,launched,run started,completed" {
		t.Errorf("audit actions in order: %v", actions)
	}

	// Paging with limit=1: every message once, in key order, the last page ending the cursor.
	var ids []string
	cursor := ""
	for i := 0; ; i++ {
		if i > 5 {
			t.Fatalf("paging does not end: %v", ids)
		}
		_, data := f.do(t, "GET", one+"/messages?limit=1&cursor="+url.QueryEscape(cursor), "acme-viewer", "")
		p := decode[messagesPage](t, data)
		for _, m := range p.Items {
			ids = append(ids, m.Contact)
		}
		if p.Next == "" {
			break
		}
		if len(p.Items) != 1 || p.Next != p.Items[0].ID {
			t.Fatalf("page %d: %s", i, data)
		}
		cursor = p.Next
	}
	want := []string{ana.ID, bob.ID, cleo.ID}
	sort.Strings(want)
	if strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Fatalf("paged contacts %v, want %v", ids, want)
	}

	// A finished campaign can be deleted, with its outbox.
	if resp, data := f.do(t, "DELETE", one, "acme-admin", ""); resp.StatusCode != 204 {
		t.Fatalf("delete completed: %d %s", resp.StatusCode, data)
	}
	if resp, _ := f.do(t, "GET", one+"/messages", "acme-admin", ""); resp.StatusCode != 404 {
		t.Fatalf("messages of a deleted campaign: %d", resp.StatusCode)
	}
}

// A campaign scheduled an hour ahead: launch is idempotent, it pauses, resumes, is cancelled; what is sending
// cannot be edited or deleted, what is cancelled cannot resume.
func TestCampaignScheduleLifecycle(t *testing.T) {
	f := newCampaignFixture(t)
	f.createContact(t, `{"email":"ana@example.com","attributes":{"country":"FR"},"consent":{"email":"subscribed"}}`)
	seg := f.createSegment(t, `{"name":"France","rule":"country = \"FR\""}`)
	at := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	body := strings.TrimSuffix(campaignBody("Later", seg), "}") + `,"schedule":{"kind":"at","at":"` + at.Format(time.RFC3339) + `"}}`
	c := f.createCampaign(t, body)
	one := "/api/v1/workspaces/acme/campaigns/" + c.ID
	nextRun := `"next_run_at":"` + at.Format(time.RFC3339) + `"`
	runScenarios(t, f, []scenario{
		{"pause a draft", "POST", one + "/pause", "acme-admin", "", 409, "conflict", nil},
		{"resume a draft", "POST", one + "/resume", "acme-admin", "", 409, "conflict", nil},
		{"launch", "POST", one + "/launch", "acme-admin", "", 200, "", []string{`"status":"scheduled"`, nextRun, `"runs":0`}},
		{"launch twice", "POST", one + "/launch", "acme-admin", "", 200, "", []string{`"status":"scheduled"`, nextRun}},
		{"patch a launched campaign", "PATCH", one, "acme-admin", `{"name":"Edited"}`, 409, "conflict", []string{"only a draft"}},
		{"delete a scheduled campaign", "DELETE", one, "acme-admin", "", 409, "conflict", []string{"cancel it"}},
		{"resume a scheduled campaign", "POST", one + "/resume", "acme-admin", "", 200, "", []string{`"status":"scheduled"`}},
		{"pause", "POST", one + "/pause", "acme-admin", "", 200, "", []string{`"status":"paused"`}},
		{"pause twice", "POST", one + "/pause", "acme-admin", "", 200, "", []string{`"status":"paused"`}},
		{"delete a paused campaign", "DELETE", one, "acme-admin", "", 409, "conflict", nil},
		{"launch a paused campaign", "POST", one + "/launch", "acme-admin", "", 200, "", []string{`"status":"paused"`}},
		{"resume", "POST", one + "/resume", "acme-admin", "", 200, "", []string{`"status":"scheduled"`, nextRun}},
		{"cancel", "POST", one + "/cancel", "acme-admin", "", 200, "", []string{`"status":"cancelled"`, `"finished_at":"`}},
		{"cancel twice", "POST", one + "/cancel", "acme-admin", "", 200, "", []string{`"status":"cancelled"`}},
		{"resume a cancelled campaign", "POST", one + "/resume", "acme-admin", "", 409, "conflict", []string{"only a paused campaign"}},
		{"pause a cancelled campaign", "POST", one + "/pause", "acme-admin", "", 409, "conflict", nil},
		{"launch a cancelled campaign", "POST", one + "/launch", "acme-admin", "", 409, "conflict", nil},
		{"nothing was sent", "GET", one + "/messages", "acme-admin", "", 200, "", []string{`"items":[]`}},
		{"audit", "GET", one + "/audit", "acme-admin", "", 200, "",
			[]string{`"action":"launched"`, `"action":"paused"`, `"action":"resumed"`, `"action":"cancelled"`}},
		{"delete a cancelled campaign", "DELETE", one, "acme-admin", "", 204, "", nil},
	})
	// Nothing reached the channel.
	if _, data := f.do(t, "GET", "/api/v1/workspaces/acme/outbox", "acme-admin", ""); !strings.Contains(string(data), `"items":[]`) {
		t.Fatalf("a cancelled campaign sent: %s", data)
	}
}

// Preview renders each channel for a contact; a test send goes through the channel now, to the address given.
func TestCampaignPreviewAndTestSend(t *testing.T) {
	f := newCampaignFixture(t)
	ana := f.createContact(t, `{"email":"ana@example.com","attributes":{"country":"FR","first_name":"Ana"},"consent":{"email":"subscribed"}}`)
	cleo := f.createContact(t, `{"email":"cleo@example.com","attributes":{"country":"FR"},"consent":{"email":"unsubscribed"}}`)
	seg := f.createSegment(t, `{"name":"France","rule":"country = \"FR\""}`)
	body := `{"name":"Two channels","audience":{"include":["` + seg + `"]},"channels":[` +
		`{"plugin":"capture","content":{"subject":"Hello {{ contact.first_name | default: \"there\" }}"}},` +
		`{"plugin":"null","content":{"text":"{{ contact.email }} in {{ contact.country }}"}}]}`
	c := f.createCampaign(t, body)
	one := "/api/v1/workspaces/acme/campaigns/" + c.ID
	runScenarios(t, f, []scenario{
		{"preview", "POST", one + "/preview", "acme-admin", `{"contact_id":"` + ana.ID + `"}`, 200, "",
			[]string{`"channel":"capture","to":"ana@example.com","fields":{"subject":"Hello Ana"}`,
				`"channel":"null","to":"ana@example.com","fields":{"text":"ana@example.com in FR"}`}},
		{"preview says who is skipped", "POST", one + "/preview", "acme-admin", `{"contact_id":"` + cleo.ID + `"}`, 200, "",
			[]string{`"subject":"Hello there"`, `"skipped":"unsubscribed from email"`}},
		{"preview of an unknown contact", "POST", one + "/preview", "acme-admin", `{"contact_id":"01m81b5h80bgjwrjxve0kf1ta6"}`, 400, "validation_failed",
			[]string{`"field":"contact_id"`}},
		{"preview without a contact", "POST", one + "/preview", "acme-admin", `{}`, 400, "validation_failed", []string{`"field":"contact_id"`, "is required"}},
		{"preview unknown field", "POST", one + "/preview", "acme-admin", `{"contact":"x"}`, 400, "validation_failed", []string{`"field":"contact"`}},
		{"test", "POST", one + "/test", "acme-admin", `{"to":"qa@example.com","channel":"capture"}`, 200, "",
			[]string{`"channel":"capture","to":"qa@example.com","fields":{"subject":"Hello there"}`, `"outcome":"delivered"`}},
		{"test every channel with a contact's data", "POST", one + "/test", "acme-admin", `{"to":"qa2@example.com","contact_id":"` + ana.ID + `"}`, 200, "",
			[]string{`"subject":"Hello Ana"`, `"text":"ana@example.com in FR"`, `"channel":"null"`}},
		{"test without an address", "POST", one + "/test", "acme-admin", `{}`, 400, "validation_failed", []string{`"field":"to"`}},
		{"test on a channel the campaign lacks", "POST", one + "/test", "acme-admin", `{"to":"qa@example.com","channel":"sms"}`, 400, "validation_failed",
			[]string{`"field":"channel"`}},
		{"test with an unknown contact", "POST", one + "/test", "acme-admin", `{"to":"qa@example.com","contact_id":"nope"}`, 400, "validation_failed",
			[]string{`"field":"contact_id"`}},
		{"a test is not a campaign message", "GET", one + "/messages", "acme-admin", "", 200, "", []string{`"items":[]`}},
		{"still a draft", "GET", one, "acme-admin", "", 200, "", []string{`"status":"draft"`}},
	})
	// The capture test sends are in the outbox, newest first.
	_, data := f.do(t, "GET", "/api/v1/workspaces/acme/outbox", "acme-admin", "")
	page := decode[outboxPage](t, data)
	if len(page.Items) != 2 || page.Items[1].To != "qa@example.com" || page.Items[1].Fields["subject"] != "Hello there" ||
		page.Items[0].To != "qa2@example.com" || page.Items[0].Fields["subject"] != "Hello Ana" {
		t.Fatalf("outbox after test sends: %s", data)
	}
}

// A launched campaign's engine runner outlives the launch request: requests served after it (here on another
// workspace, whose path puts other bytes where the launch's had "acme" and the campaign id) must not change which
// campaign it runs. fiber's c.Params strings point into buffers it reuses, so anything kept must be a copy.
func TestCampaignRunnerOutlivesLaunchRequest(t *testing.T) {
	f := newCampaignFixture(t)
	f.createContact(t, `{"email":"ana@example.com","attributes":{"country":"FR"},"consent":{"email":"subscribed"}}`)
	seg := f.createSegment(t, `{"name":"France","rule":"country = \"FR\""}`)
	if resp, data := f.do(t, "POST", "/api/v1/workspaces", "owner", `{"id":"beta"}`); resp.StatusCode != 201 {
		t.Fatalf("create workspace: %d %s", resp.StatusCode, data)
	}
	due := time.Now().Add(time.Second).UTC()
	c := f.createCampaign(t, strings.TrimSuffix(campaignBody("Soon", seg), "}")+`,"schedule":{"kind":"at","at":"`+due.Format(time.RFC3339Nano)+`"}}`)
	if resp, data := f.do(t, "POST", "/api/v1/workspaces/acme/campaigns/"+c.ID+"/launch", "acme-admin", ""); resp.StatusCode != 200 {
		t.Fatalf("launch: %d %s", resp.StatusCode, data)
	}
	// Requests on every P (fiber pools its request contexts per P) until the campaign's time has passed.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for time.Now().Before(due.Add(200 * time.Millisecond)) {
				req := httptest.NewRequest("POST", "/api/v1/workspaces/beta/campaigns/cmp_zzzzzzzzzzzzzzzzzzzzzzzzzz/launch", nil)
				req.Header.Set("Authorization", "Bearer "+bootstrap)
				if resp, err := f.srv.App().Test(req, -1); err == nil {
					resp.Body.Close()
				}
			}
		})
	}
	wg.Wait()
	f.waitCampaign(t, c.ID, "completed")
	if _, data := f.do(t, "GET", "/api/v1/workspaces/acme/outbox", "acme-admin", ""); len(decode[outboxPage](t, data).Items) != 1 {
		t.Fatalf("outbox: %s", data)
	}
}
