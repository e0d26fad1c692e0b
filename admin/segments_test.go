package admin_test

import (
	"net/http"
	"strings"
	"testing"
)

func TestSegmentPreviewAPI(t *testing.T) {
	f := newFixture(t)
	f.createContact(t, `{"email":"ana@example.com","attributes":{"country":"FR","age":34},"tags":["vip"]}`)
	f.createContact(t, `{"email":"bob@example.com","attributes":{"country":"DE","age":51}}`)
	f.createContact(t, `{"email":"cleo@example.com","attributes":{"country":"FR","age":22},"consent":{"email":"subscribed"}}`)
	url := "/api/v1/workspaces/acme/segments/preview"
	tests := []struct {
		name, token, body string
		status            int
		code              string
		want              []string
	}{
		{"text rule", "acme-admin", `{"rule":"country = \"FR\" and age > 30"}`, 200, "", []string{`"count":1`, `"scanned":3`, `"email":"ana@example.com"`}},
		{"json rule", "acme-admin", `{"rule":{"or":[{"has_tag":"vip"},{"subscribed":"email"}]}}`, 200, "", []string{`"count":2`}},
		{"sample size", "acme-admin", `{"rule":"email exists","sample":1}`, 200, "", []string{`"count":3`}},
		{"viewer sees masked sample", "acme-viewer", `{"rule":"has_tag(\"vip\")"}`, 200, "", []string{`"email":"a***@example.com"`}},
		{"syntax error with position", "acme-admin", `{"rule":"country = and age > 3"}`, 400, "validation_failed", []string{`"field":"rule"`, `1:11: expected a value after '='`}},
		{"unknown function", "acme-admin", `{"rule":"perfomed(\"Order Completed\")"}`, 400, "validation_failed", []string{"did you mean 'performed'"}},
		{"absurd window", "acme-admin", `{"rule":"performed(\"x\", within: 99999d)"}`, 400, "validation_failed", []string{"within"}},
		{"unknown segment", "acme-admin", `{"rule":"in_segment(\"churned\")"}`, 400, "validation_failed", []string{`unknown segment \"churned\"`}},
		{"missing rule", "acme-admin", `{}`, 400, "validation_failed", []string{"is required"}},
		{"bad sample", "acme-admin", `{"rule":"email exists","sample":1000}`, 400, "validation_failed", []string{"sample"}},
		{"other workspace", "acme-admin", ``, 404, "not_found", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := url
			if tc.name == "other workspace" {
				u = "/api/v1/workspaces/globex/segments/preview"
				tc.body = `{"rule":"email exists"}`
			}
			resp, data := f.do(t, "POST", u, tc.token, tc.body)
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
	if resp, _ := f.do(t, "GET", url, "acme-admin", ""); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET preview: %d", resp.StatusCode)
	}
}
