package admin_test

import (
	"encoding/json"
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
}

func TestSegmentsAPI(t *testing.T) {
	f := newFixture(t)
	ana := f.createContact(t, `{"email":"ana@example.com","attributes":{"country":"FR"},"tags":["vip"]}`)
	f.createContact(t, `{"email":"bob@example.com","attributes":{"country":"DE"}}`)
	f.createContact(t, `{"email":"cleo@example.com","attributes":{"country":"FR"}}`)
	base := "/api/v1/workspaces/acme/segments"
	resp, data := f.do(t, "POST", base, "acme-admin", `{"name":"France","rule":"country = \"FR\""}`)
	if resp.StatusCode != 201 || !strings.Contains(string(data), `"count":2`) {
		t.Fatalf("create: %d %s", resp.StatusCode, data)
	}
	var seg struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(data, &seg)
	resp, data = f.do(t, "POST", base, "acme-admin", `{"name":"VIP France","rule":{"and":[{"in_segment":"France"},{"has_tag":"vip"}]}}`)
	if resp.StatusCode != 201 || !strings.Contains(string(data), `"count":1`) || !strings.Contains(string(data), `in_segment(\"France\") and has_tag(\"vip\")`) {
		t.Fatalf("create from JSON: %d %s", resp.StatusCode, data)
	}
	tests := []struct {
		name, method, url, token, body string
		status                         int
		want                           []string
	}{
		{"list with counts", "GET", base, "acme-viewer", "", 200, []string{`"name":"France"`, `"count":2`, `"count":1`}},
		{"get", "GET", base + "/" + seg.ID, "acme-viewer", "", 200, []string{`"count":2`}},
		{"members masked for viewers", "GET", base + "/" + seg.ID + "/members", "acme-viewer", "", 200, []string{`"a***@example.com"`, `"c***@example.com"`, `"next":""`}},
		{"members paged", "GET", base + "/" + seg.ID + "/members?limit=1", "acme-viewer", "", 200, []string{`"next":"01`}},
		{"segments of a contact", "GET", "/api/v1/workspaces/acme/contacts/" + ana.ID + "/segments", "acme-viewer", "", 200, []string{`"France"`, `"VIP France"`}},
		{"duplicate name", "POST", base, "acme-admin", `{"name":"france","rule":"has_tag(\"x\")"}`, 409, []string{"already exists"}},
		{"unknown reference", "POST", base, "acme-admin", `{"name":"X","rule":"in_segment(\"nope\")"}`, 400, []string{`unknown segment \"nope\"`}},
		{"syntax error", "POST", base, "acme-admin", `{"name":"X","rule":"country > "}`, 400, []string{"1:11"}},
		{"cycle", "PATCH", base + "/" + seg.ID, "acme-admin", `{"rule":"in_segment(\"VIP France\")"}`, 400, []string{"depend on themselves"}},
		{"delete a used segment", "DELETE", base + "/" + seg.ID, "acme-admin", "", 409, []string{"VIP France"}},
		{"viewer cannot create", "POST", base, "acme-viewer", `{"name":"Y","rule":"email exists"}`, 403, nil},
		{"unknown segment", "GET", base + "/seg_01m81b5h80bgjwrjxve0kf1ta6", "acme-admin", "", 404, nil},
		{"edit recomputes", "PATCH", base + "/" + seg.ID, "acme-admin", `{"rule":"country in [\"FR\", \"DE\"]"}`, 200, []string{`"count":3`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, data := f.do(t, tc.method, tc.url, tc.token, tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, data)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(data), w) {
					t.Errorf("response lacks %q: %s", w, data)
				}
			}
		})
	}
}

func TestStaticListsAndHistoryAPI(t *testing.T) {
	f := newFixture(t)
	ana := f.createContact(t, `{"email":"ana@example.com","attributes":{"country":"FR"},"tags":["vip"]}`)
	bob := f.createContact(t, `{"email":"bob@example.com","attributes":{"country":"DE"}}`)
	base := "/api/v1/workspaces/acme/segments"
	resp, data := f.do(t, "POST", base, "acme-admin", `{"name":"Webinar","type":"static"}`)
	if resp.StatusCode != 201 || !strings.Contains(string(data), `"type":"static"`) || !strings.Contains(string(data), `"count":0`) {
		t.Fatalf("create list: %d %s", resp.StatusCode, data)
	}
	var list struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(data, &list)
	resp, data = f.do(t, "POST", base, "acme-admin", `{"name":"French","rule":"country = \"FR\""}`)
	if resp.StatusCode != 201 {
		t.Fatalf("create rule segment: %d %s", resp.StatusCode, data)
	}
	var french struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(data, &french)
	members := base + "/" + list.ID + "/members"
	tests := []struct {
		name, method, url, token, body string
		status                         int
		want                           []string
	}{
		{"add by id and email", "POST", members, "acme-admin", `{"contacts":["` + ana.ID + `"],"emails":["bob@example.com","zed@example.com"]}`, 200,
			[]string{`"changed":2`, `"count":2`, `"not_found":["zed@example.com"]`}},
		{"members", "GET", members, "acme-viewer", "", 200, []string{ana.ID, bob.ID}},
		{"remove", "DELETE", members, "acme-admin", `{"contacts":["` + bob.ID + `"]}`, 200, []string{`"changed":1`, `"count":1`}},
		{"import CSV", "POST", members + "/import", "acme-admin", "email\nbob@example.com\nana@example.com\n", 200, []string{`"changed":1`, `"unchanged":1`, `"count":2`}},
		{"import CSV without a key column", "POST", members + "/import", "acme-admin", "name\nBob\n", 400, []string{"no id, contact_id or email column"}},
		{"remove by CSV", "POST", members + "/import?remove=true", "acme-admin", "id\n" + bob.ID + "\n", 200, []string{`"changed":1`, `"count":1`}},
		{"viewer cannot edit", "POST", members, "acme-viewer", `{"contacts":["` + bob.ID + `"]}`, 403, nil},
		{"empty edit", "POST", members, "acme-admin", `{}`, 400, []string{"give 1 to"}},
		{"rule segments take no members", "POST", base + "/" + french.ID + "/members", "acme-admin", `{"contacts":["` + bob.ID + `"]}`, 409, []string{"follows its rule"}},
		{"a list has no rule", "PATCH", base + "/" + list.ID, "acme-admin", `{"rule":"email exists"}`, 400, []string{"no rule"}},
		{"unknown type", "POST", base, "acme-admin", `{"name":"Z","type":"smart"}`, 400, []string{"type"}},
		{"history of a contact", "GET", "/api/v1/workspaces/acme/contacts/" + bob.ID + "/segment-history", "acme-viewer", "", 200,
			[]string{`"entered":false`, `"reason":"manual"`, `"segment_name":"Webinar"`}},
		{"history of an unknown contact", "GET", "/api/v1/workspaces/acme/contacts/nope/segment-history", "acme-viewer", "", 404, nil},
		{"bad rule kind", "POST", base, "acme-admin", `{"name":"Odd","rule":"country > 5"}`, 400, []string{`'country' is text`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, data := f.do(t, tc.method, tc.url, tc.token, tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, data)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(data), w) {
					t.Errorf("response lacks %q: %s", w, data)
				}
			}
		})
	}
}
