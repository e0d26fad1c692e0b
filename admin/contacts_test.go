package admin_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/events"
)

// contactJSON is the part of a contact the tests read.
type contactJSON struct {
	ID         string         `json:"id"`
	Email      string         `json:"email"`
	Phone      string         `json:"phone"`
	UserID     string         `json:"user_id"`
	Tags       []string       `json:"tags"`
	Attributes map[string]any `json:"attributes"`
	Consent    map[string]struct {
		Status string `json:"status"`
		Source string `json:"source"`
	} `json:"consent"`
}

func (f *fixture) createContact(t *testing.T, body string) contactJSON {
	t.Helper()
	resp, data := f.do(t, "POST", "/api/v1/workspaces/acme/contacts", "acme-admin", body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create contact: %d %s", resp.StatusCode, data)
	}
	var c contactJSON
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestContactsAPIScenarios(t *testing.T) {
	f := newFixture(t)
	ana := f.createContact(t, `{"email":"Ana@Example.com","phone":"+33 6 12 34 56 78","user_id":"u1","attributes":{"plan":"pro","salary":52000},"tags":["lead"]}`)
	base := "/api/v1/workspaces/acme/contacts"
	tests := []struct {
		name       string
		method     string
		url        string
		token      string
		body       string
		wantStatus int
		wantCode   string
		want       []string
	}{
		{"upsert by email updates", "POST", base, "acme-admin", `{"email":"ana@example.com","attributes":{"plan":"enterprise"}}`, 200, "", []string{ana.ID, `"plan":"enterprise"`}},
		{"list by email", "GET", base + "?email=ANA@example.com", "acme-admin", "", 200, "", []string{ana.ID, `"next":""`}},
		{"list by phone", "GET", base + "?phone=%2B33612345678", "acme-admin", "", 200, "", []string{ana.ID}},
		{"list by user id", "GET", base + "?user_id=u1", "acme-admin", "", 200, "", []string{ana.ID}},
		{"list by tag", "GET", base + "?tag=lead", "acme-admin", "", 200, "", []string{ana.ID}},
		{"search", "GET", base + "?q=enterp", "acme-admin", "", 200, "", []string{ana.ID}},
		{"no match", "GET", base + "?email=nobody@example.com", "acme-admin", "", 200, "", []string{`"items":[]`}},
		{"get", "GET", base + "/" + ana.ID, "acme-admin", "", 200, "", []string{`"email":"ana@example.com"`, `"phone":"+33612345678"`}},
		{"viewer sees masked email and phone", "GET", base + "/" + ana.ID, "acme-viewer", "", 200, "", []string{`"email":"a***@example.com"`, `"phone":"***78"`}},
		{"patch", "PATCH", base + "/" + ana.ID, "acme-admin", `{"timezone":"Europe/Paris","attributes":{"salary":null}}`, 200, "", []string{`"timezone":"Europe/Paris"`}},
		{"tags", "POST", base + "/" + ana.ID + "/tags", "acme-admin", `{"add":["vip"],"remove":["lead"]}`, 200, "", []string{`"tags":["vip"]`}},
		{"consent", "PUT", base + "/" + ana.ID + "/consent/email", "acme-admin", `{"status":"unsubscribed","source":"support ticket"}`, 200, "", []string{`"status":"unsubscribed"`, `"source":"support ticket"`}},
		{"events of a new contact", "GET", base + "/" + ana.ID + "/events", "acme-admin", "", 200, "", []string{`"items":[]`}},

		{"invalid email", "POST", base, "acme-admin", `{"email":"ana@"}`, 400, "validation_failed", []string{`"field":"email"`}},
		{"invalid phone", "POST", base, "acme-admin", `{"phone":"0612345678"}`, 400, "validation_failed", []string{`"field":"phone"`, "country code"}},
		{"no identifier", "POST", base, "acme-admin", `{"attributes":{"a":1}}`, 400, "validation_failed", []string{"email, phone or user_id"}},
		{"unknown field", "POST", base, "acme-admin", `{"mail":"a@b.co"}`, 400, "validation_failed", []string{`"field":"mail"`}},
		{"malformed json", "POST", base, "acme-admin", `{"email":`, 400, "malformed_json", nil},
		{"unknown consent channel", "PUT", base + "/" + ana.ID + "/consent/fax", "acme-admin", `{"status":"subscribed"}`, 400, "validation_failed", []string{"unknown channel", "email, sms"}},
		{"bad consent status", "PUT", base + "/" + ana.ID + "/consent/email", "acme-admin", `{"status":"yes"}`, 400, "validation_failed", []string{"subscribed, unsubscribed or unknown"}},
		{"missing consent status", "PUT", base + "/" + ana.ID + "/consent/email", "acme-admin", `{}`, 400, "validation_failed", []string{`"field":"status"`}},
		{"empty tags", "POST", base + "/" + ana.ID + "/tags", "acme-admin", `{}`, 400, "validation_failed", nil},
		{"bad limit", "GET", base + "?limit=0", "acme-admin", "", 400, "validation_failed", []string{"limit"}},
		{"bad cursor", "GET", base + "?cursor=zzz", "acme-admin", "", 400, "validation_failed", []string{"cursor"}},
		{"bad events cursor", "GET", base + "/" + ana.ID + "/events?cursor=!!", "acme-admin", "", 400, "validation_failed", []string{"cursor"}},
		{"unknown contact", "GET", base + "/01m81b5h80bgjwrjxve0kf1ta6", "acme-admin", "", 404, "not_found", nil},
		{"malformed contact id", "GET", base + "/../../x", "acme-admin", "", 404, "", nil},
		{"viewer cannot search masked data", "GET", base + "?q=ana", "acme-viewer", "", 403, "forbidden", []string{"editor"}},
		{"viewer cannot filter on a masked field", "GET", base + "?email=ana@example.com", "acme-viewer", "", 403, "forbidden", []string{"email"}},
		{"viewer may filter on what is not masked", "GET", base + "?user_id=u1", "acme-viewer", "", 200, "", []string{ana.ID, `"email":"a***@example.com"`}},
		{"viewer cannot write", "POST", base, "acme-viewer", `{"email":"x@example.com"}`, 403, "forbidden", nil},
		{"viewer cannot export a contact", "GET", base + "/" + ana.ID + "/gdpr-export", "acme-viewer", "", 403, "forbidden", nil},
		{"other workspace's token", "GET", "/api/v1/workspaces/globex/contacts", "acme-admin", "", 404, "not_found", nil},
		{"unknown workspace", "GET", "/api/v1/workspaces/nope/contacts", "owner", "", 404, "not_found", nil},
		{"no token", "GET", base, "", "", 401, "unauthorized", nil},
		{"bad erase flag", "DELETE", base + "/" + ana.ID + "?erase=perhaps", "acme-admin", "", 400, "validation_failed", []string{"erase"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, data := f.do(t, tc.method, tc.url, tc.token, tc.body)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.wantStatus, data)
			}
			if tc.wantCode != "" {
				if code := errorBody(t, data); code != tc.wantCode {
					t.Errorf("code %q, want %q: %s", code, tc.wantCode, data)
				}
			}
			for _, w := range tc.want {
				if !strings.Contains(string(data), w) {
					t.Errorf("response lacks %q: %s", w, data)
				}
			}
		})
	}
}

func TestContactConflictAndErasure(t *testing.T) {
	f := newFixture(t)
	a := f.createContact(t, `{"email":"a@example.com","user_id":"ua"}`)
	f.createContact(t, `{"email":"b@example.com","user_id":"ub"}`)
	resp, data := f.do(t, "PATCH", "/api/v1/workspaces/acme/contacts/"+a.ID, "acme-admin", `{"email":"b@example.com"}`)
	if resp.StatusCode != http.StatusConflict || errorBody(t, data) != "conflict" {
		t.Fatalf("taking another contact's email: %d %s", resp.StatusCode, data)
	}
	resp, data = f.do(t, "GET", "/api/v1/workspaces/acme/contacts/"+a.ID+"/gdpr-export", "acme-admin", "")
	if resp.StatusCode != 200 || !strings.Contains(string(data), `"email":"a@example.com"`) || !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("gdpr export: %d %s", resp.StatusCode, data)
	}
	for _, k := range []string{`"contact"`, `"events"`, `"merges"`, `"sections"`} {
		if !strings.Contains(string(data), k) {
			t.Errorf("gdpr export lacks %s", k)
		}
	}
	resp, data = f.do(t, "DELETE", "/api/v1/workspaces/acme/contacts/"+a.ID+"?erase=true", "acme-admin", "")
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("erase: %d %s", resp.StatusCode, data)
	}
	resp, _ = f.do(t, "GET", "/api/v1/workspaces/acme/contacts/"+a.ID, "acme-admin", "")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("erased contact answers %d", resp.StatusCode)
	}
	resp, data = f.do(t, "POST", "/api/v1/workspaces/acme/contacts", "acme-admin", `{"email":"A@example.com"}`)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(data), "suppressed") {
		t.Errorf("re-creating an erased email: %d %s", resp.StatusCode, data)
	}
	resp, data = f.do(t, "GET", "/api/v1/workspaces/acme/audit", "acme-admin", "")
	if resp.StatusCode != 200 || !strings.Contains(string(data), `"action":"contact.erased"`) || !strings.Contains(string(data), a.ID) ||
		strings.Contains(string(data), "a@example.com") {
		t.Errorf("audit log: %d %s", resp.StatusCode, data)
	}
	if resp, _ := f.do(t, "GET", "/api/v1/workspaces/acme/audit", "acme-viewer", ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("viewer reads the audit log: %d", resp.StatusCode)
	}
}

func TestWorkspacePIISettingsDriveMasking(t *testing.T) {
	f := newFixture(t)
	c := f.createContact(t, `{"email":"ana@example.com","attributes":{"salary":52000,"address":{"city":"Lyon"},"plan":"pro"}}`)
	resp, data := f.do(t, "PATCH", "/api/v1/workspaces/acme", "acme-admin", `{"settings":{"pii":["salary","address"],"ip":"anonymize"}}`)
	if resp.StatusCode != 200 || !strings.Contains(string(data), `"ip":"anonymize"`) {
		t.Fatalf("settings: %d %s", resp.StatusCode, data)
	}
	_, data = f.do(t, "GET", "/api/v1/workspaces/acme/contacts/"+c.ID, "acme-viewer", "")
	var got contactJSON
	_ = json.Unmarshal(data, &got)
	if got.Attributes["salary"] != "***" || got.Attributes["address.city"] != "***" || got.Attributes["plan"] != "pro" || got.Email != "ana@example.com" {
		t.Errorf("viewer sees %s", data)
	}
	// Events seen by a viewer: the PII keys of traits, the user id and the IP are masked.
	if r, body := f.do(t, "PATCH", "/api/v1/workspaces/acme", "acme-admin", `{"settings":{"pii":["salary","user_id"]}}`); r.StatusCode != 200 {
		t.Fatalf("%d %s", r.StatusCode, body)
	}
	if _, err := f.deps.Contacts.Ingest(context.Background(), "acme", []contacts.Incoming{{
		Event: events.Event{MessageID: "m1", Type: events.Identify, UserID: "u-secret", Traits: json.RawMessage(`{"salary":1,"plan":"pro"}`),
			Context: json.RawMessage(`{"ip":"203.0.113.7"}`), Timestamp: time.Now(), ReceivedAt: time.Now()},
		Traits: map[string]any{"email": "ana@example.com"}}}); err != nil {
		t.Fatal(err)
	}
	_, data = f.do(t, "GET", "/api/v1/workspaces/acme/contacts/"+c.ID+"/events", "acme-viewer", "")
	if strings.Contains(string(data), "u-secret") || strings.Contains(string(data), "203.0.113.7") || strings.Contains(string(data), `"salary":1`) ||
		!strings.Contains(string(data), `"plan":"pro"`) {
		t.Errorf("viewer sees events %s", data)
	}
	resp, data = f.do(t, "PATCH", "/api/v1/workspaces/acme", "acme-admin", `{"settings":{"ip":"sometimes","channels":["Email!"]}}`)
	if resp.StatusCode != 400 || !strings.Contains(string(data), "settings.ip") || !strings.Contains(string(data), "settings.channels.0") {
		t.Errorf("bad settings: %d %s", resp.StatusCode, data)
	}
}
