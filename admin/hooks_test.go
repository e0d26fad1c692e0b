package admin_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/crosscast/crosscast/admin"
	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/workspaces"
	"github.com/crosscast/crosscast/plugins/manager"
	"github.com/crosscast/crosscast/sdk/wire"
)

// connectorHooks stands in for a connector plugin's inbound entry (its plugin side is tested in plugins/manager and
// sdk/plugintest): what is tested here is what the host does with the events a connector returns.
type connectorHooks struct {
	reply manager.HookReply
}

func (h connectorHooks) Hook(context.Context, string, string, wire.HookRequest) (manager.HookReply, error) {
	return h.reply, nil
}

var _ admin.Hooks = connectorHooks{}

func TestConnectorEventsAreStoredLikeTrackingCalls(t *testing.T) {
	f := newFixture(t)
	at := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC).UnixMilli()
	f.deps.Hooks = connectorHooks{reply: manager.HookReply{Status: 200, Body: []byte(`ok`), TrackEvents: []wire.TrackEvent{
		{MessageID: "gtm-1", Type: wire.TrackTypePage, Event: "Pricing", AnonymousID: "a-77", TimestampUnixMilli: at,
			Context: []byte(`{"ip":"198.51.100.23","page":{"url":"https://acme.example/pricing"}}`)},
		{MessageID: "gtm-2", Type: wire.TrackTypeIdentify, UserID: "u-77", AnonymousID: "a-77", TimestampUnixMilli: at + 1000,
			Traits: []byte(`{"email":"Zoe@Example.com","plan":"pro"}`)},
		{MessageID: "gtm-3", Type: wire.TrackTypeTrack, Event: "Signed Up", UserID: "u-77", TimestampUnixMilli: at + 2000,
			Properties: []byte(`{"source":"ads"}`)},
		{MessageID: "", Type: wire.TrackTypeTrack, Event: "No ids at all"}, // the plugin got it wrong: dropped
	}}}
	if _, err := f.deps.Workspaces.Update(context.Background(), "acme", workspacesIPAnonymize()); err != nil {
		t.Fatal(err)
	}
	f.reserve(admin.Options{MaxBody: 4096})
	send := func() int {
		req, _ := http.NewRequest("POST", "/hooks/acme/gtm", strings.NewReader(`{}`))
		resp, err := f.srv.App().Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode
	}
	if code := send(); code != 200 {
		t.Fatalf("webhook: %d", code)
	}
	if code := send(); code != 200 { // the provider delivers again: nothing stored twice
		t.Fatalf("second delivery: %d", code)
	}
	items, _, err := f.deps.Contacts.List(context.Background(), "acme", contacts.Filter{UserID: "u-77"})
	if err != nil || len(items) != 1 || items[0].Email != "zoe@example.com" || items[0].Attributes["plan"].Str != "pro" {
		t.Fatalf("contact: %+v %v", items, err)
	}
	evs, _, err := f.deps.Contacts.Events(context.Background(), "acme", items[0].ID, "", 10)
	if err != nil || len(evs) != 3 {
		t.Fatalf("events: %d %v", len(evs), err)
	}
	page := evs[2]
	if page.Name != "Pricing" || !strings.Contains(string(page.Context), `"ip":"198.51.100.0"`) || page.Timestamp.UnixMilli() != at {
		t.Errorf("page event: %+v context %s", page, page.Context)
	}
	_, metricsBody := f.do(t, "GET", "/metrics", "", "")
	if !strings.Contains(string(metricsBody), `crosscast_hook_events_dropped_total{plugin="gtm"} 2`) {
		t.Errorf("dropped events not counted:\n%s", metricsBody)
	}
}

func workspacesIPAnonymize() workspaces.UpdateInput {
	return workspaces.UpdateInput{Settings: &workspaces.Settings{IP: "anonymize"}}
}
