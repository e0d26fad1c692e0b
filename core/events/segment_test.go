package events_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/events"
)

var received = time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC)

// fields returns the field paths of a ValidationError, failing the test for any other error.
func fields(t *testing.T, err error) []string {
	t.Helper()
	var v *errs.ValidationError
	if !errors.As(err, &v) {
		t.Fatalf("error %v (%T), want a *errs.ValidationError", err, err)
	}
	out := make([]string, len(v.Fields))
	for i, f := range v.Fields {
		out[i] = f.Field
	}
	return out
}

func TestParseMessage(t *testing.T) {
	tests := []struct {
		name string
		typ  events.Type
		body string
		// check runs on success; wantFields lists the expected problem paths on failure.
		check      func(t *testing.T, b events.Batch)
		wantFields []string
	}{
		{"track", events.Track, `{"userId":"u1","event":"Signed Up","properties":{"plan":"pro"},"messageId":"m1"}`, func(t *testing.T, b events.Batch) {
			e := b.Messages[0].Event
			if e.Type != events.Track || e.Name != "Signed Up" || e.UserID != "u1" || e.MessageID != "m1" || string(e.Properties) != `{"plan":"pro"}` {
				t.Errorf("event %+v", e)
			}
			if !e.Timestamp.Equal(received) || !e.ReceivedAt.Equal(received) || !e.OriginalTimestamp.IsZero() || !e.SentAt.IsZero() {
				t.Errorf("times %v %v %v %v, want the time received and no client readings", e.Timestamp, e.ReceivedAt, e.OriginalTimestamp, e.SentAt)
			}
			if b.Messages[0].Traits != nil {
				t.Errorf("a track call has no identify traits: %v", b.Messages[0].Traits)
			}
		}, nil},
		{"type in the body matches", events.Page, `{"type":"page","anonymousId":"a1","name":"Home"}`, func(t *testing.T, b events.Batch) {
			if e := b.Messages[0].Event; e.Type != events.Page || e.Name != "Home" || e.AnonymousID != "a1" {
				t.Errorf("event %+v", e)
			}
		}, nil},
		{"missing messageId is generated", events.Screen, `{"anonymousId":"a1"}`, func(t *testing.T, b events.Batch) {
			if id := b.Messages[0].Event.MessageID; !strings.HasPrefix(id, "cc-") || len(id) != 39 {
				t.Errorf("generated message id %q", id)
			}
		}, nil},
		{"numeric ids are strings", events.Identify, `{"userId":42,"anonymousId":-7.5e3,"messageId":1}`, func(t *testing.T, b events.Batch) {
			if e := b.Messages[0].Event; e.UserID != "42" || e.AnonymousID != "-7.5e3" || e.MessageID != "1" {
				t.Errorf("event %+v", e)
			}
		}, nil},
		{"null userId with anonymousId (analytics.js)", events.Track, `{"userId":null,"anonymousId":"a1","event":"x"}`, func(t *testing.T, b events.Batch) {
			if e := b.Messages[0].Event; e.UserID != "" || e.AnonymousID != "a1" {
				t.Errorf("event %+v", e)
			}
		}, nil},
		{"identify traits keep numbers exact", events.Identify, `{"userId":"u1","traits":{"email":"A@x.io","age":30,"big":12345678901234567890,"tags":["a"]}}`, func(t *testing.T, b events.Batch) {
			tr := b.Messages[0].Traits
			if tr["email"] != "A@x.io" || tr["age"] != json.Number("30") || tr["big"] != json.Number("12345678901234567890") || !reflect.DeepEqual(tr["tags"], []any{"a"}) {
				t.Errorf("traits %#v", tr)
			}
			if got := string(b.Messages[0].Event.Traits); !strings.Contains(got, `"big":12345678901234567890`) {
				t.Errorf("raw traits %s", got)
			}
		}, nil},
		{"group traits are not identify traits", events.Group, `{"userId":"u1","groupId":"g1","traits":{"name":"Initech"}}`, func(t *testing.T, b events.Batch) {
			m := b.Messages[0]
			if m.Traits != nil || m.Event.GroupID != "g1" || string(m.Event.Traits) != `{"name":"Initech"}` {
				t.Errorf("message %+v", m)
			}
		}, nil},
		{"alias", events.Alias, `{"previousId":"anon-1","userId":"u1"}`, func(t *testing.T, b events.Batch) {
			if e := b.Messages[0].Event; e.PreviousID != "anon-1" || e.UserID != "u1" {
				t.Errorf("event %+v", e)
			}
		}, nil},
		{"context read and kept", events.Page, `{"anonymousId":"a1","context":{"ip":"203.0.113.9","timezone":"Europe/Paris","locale":"fr-FR","campaign":{"source":"news"},"page":{"url":"https://x.io/?utm_source=news"}}}`, func(t *testing.T, b events.Batch) {
			m := b.Messages[0]
			if m.IP != "203.0.113.9" || m.Timezone != "Europe/Paris" || m.Locale != "fr-FR" {
				t.Errorf("message %+v", m)
			}
			var ctx map[string]any
			if err := json.Unmarshal(m.Event.Context, &ctx); err != nil || ctx["campaign"] == nil || ctx["page"] == nil || ctx["ip"] != "203.0.113.9" {
				t.Errorf("context %s", m.Event.Context)
			}
		}, nil},
		{"odd context values are ignored, an invalid ip warned about", events.Track, `{"userId":"u","event":"e","context":{"ip":"not-an-ip","timezone":5,"locale":null}}`, func(t *testing.T, b events.Batch) {
			m := b.Messages[0]
			if m.IP != "" || m.Timezone != "" || m.Locale != "" {
				t.Errorf("message %+v", m)
			}
			if len(b.Warnings) != 1 || !strings.HasPrefix(b.Warnings[0], "context.ip:") {
				t.Errorf("warnings %q", b.Warnings)
			}
		}, nil},
		{"unknown fields are kept out, not refused", events.Track, `{"userId":"u","event":"e","_metadata":{"bundled":[]},"options":{},"integrations":{"All":true},"channel":"server"}`, nil, nil},
		{"writeKey from the body", events.Track, `{"userId":"u","event":"e","writeKey":"wk_0123456789abcdef"}`, func(t *testing.T, b events.Batch) {
			if b.WriteKey != "wk_0123456789abcdef" {
				t.Errorf("write key %q", b.WriteKey)
			}
		}, nil},
		{"unreadable timestamp is a warning", events.Track, `{"userId":"u","event":"e","timestamp":"yesterday","sentAt":12}`, func(t *testing.T, b events.Batch) {
			if e := b.Messages[0].Event; !e.Timestamp.Equal(received) {
				t.Errorf("timestamp %v", e.Timestamp)
			}
			if len(b.Warnings) != 2 {
				t.Errorf("warnings %q", b.Warnings)
			}
		}, nil},

		{"missing ids", events.Track, `{"event":"e"}`, nil, []string{"userId"}},
		{"empty ids are missing", events.Identify, `{"userId":"","anonymousId":null}`, nil, []string{"userId"}},
		{"track needs an event", events.Track, `{"userId":"u"}`, nil, []string{"event"}},
		{"alias needs previousId and userId", events.Alias, `{"anonymousId":"a"}`, nil, []string{"previousId", "userId"}},
		{"group needs groupId", events.Group, `{"userId":"u"}`, nil, []string{"groupId"}},
		{"group needs a user too", events.Group, `{"groupId":"g"}`, nil, []string{"userId"}},
		{"type mismatch", events.Track, `{"type":"identify","userId":"u","event":"e"}`, nil, []string{"type"}},
		{"wrong types, every problem at once", events.Track,
			`{"userId":true,"anonymousId":{},"event":5,"properties":[],"context":"x","traits":1,"messageId":[1],"integrations":"all","writeKey":7}`, nil,
			[]string{"writeKey", "messageId", "userId", "anonymousId", "event", "properties", "traits", "integrations", "context"}},
		{"id too long", events.Identify, `{"userId":"` + strings.Repeat("x", events.MaxIDBytes+1) + `"}`, nil, []string{"userId"}},
		{"name too long", events.Track, `{"userId":"u","event":"` + strings.Repeat("x", events.MaxNameBytes+1) + `"}`, nil, []string{"event"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := events.ParseMessage([]byte(tt.body), tt.typ, received)
			if tt.wantFields != nil {
				if got := fields(t, err); !reflect.DeepEqual(got, tt.wantFields) {
					t.Fatalf("problems at %q, want %q (%v)", got, tt.wantFields, err)
				}
				if len(b.Messages) != 0 {
					t.Fatalf("messages returned with an error: %+v", b.Messages)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(b.Messages) != 1 {
				t.Fatalf("%d messages, want 1", len(b.Messages))
			}
			if tt.check != nil {
				tt.check(t, b)
			}
		})
	}
}

func TestParseMessageWriteKeyOnValidationError(t *testing.T) {
	b, err := events.ParseMessage([]byte(`{"writeKey":"wk_0123456789abcdef"}`), events.Track, received)
	if err == nil || b.WriteKey != "wk_0123456789abcdef" {
		t.Fatalf("batch %+v, error %v: want the write key and an error", b, err)
	}
}

func TestParseSyntaxAndSize(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		batch      bool
		wantMsg    string
		wantOffset int64
		tooLarge   bool
	}{
		{"empty", "  ", false, "empty", 0, false},
		{"not an object", ` [1]`, false, "must be a JSON object", 1, false},
		{"batch not an object", `"x"`, true, "must be a JSON object", 0, false},
		{"broken", "{\"userId\":\"u\",,}", false, "not valid JSON", 15, false},
		{"truncated", `{"batch":[`, true, "not valid JSON", 10, false},
		{"trailing data", `{"userId":"u"} {}`, false, "not valid JSON", 16, false},
		{"event too large", `{"userId":"` + strings.Repeat("x", events.MaxEventBytes) + `"}`, false, "", 0, true},
		{"batch too large", `{"batch":["` + strings.Repeat("x", events.MaxBatchBytes) + `"]}`, true, "", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.batch {
				_, err = events.ParseBatch([]byte(tt.body), received)
			} else {
				_, err = events.ParseMessage([]byte(tt.body), events.Identify, received)
			}
			if tt.tooLarge {
				var tl *events.TooLargeError
				if !errors.As(err, &tl) || tl.Size != len(tt.body) || !strings.Contains(err.Error(), "KB") {
					t.Fatalf("error %v, want a TooLargeError", err)
				}
				return
			}
			var syn *events.SyntaxError
			if !errors.As(err, &syn) {
				t.Fatalf("error %v (%T), want a SyntaxError", err, err)
			}
			if !strings.Contains(syn.Msg, tt.wantMsg) || syn.Offset != tt.wantOffset {
				t.Fatalf("%q at %d, want %q at %d", syn.Msg, syn.Offset, tt.wantMsg, tt.wantOffset)
			}
		})
	}
}

func TestParseBatch(t *testing.T) {
	// What analytics-node (packages/node/src/plugins/segmentio/publisher.ts) posts to /v1/batch.
	node := `{"batch":[
		{"type":"track","event":"Order Completed","properties":{"total":42.5},"userId":"u1","messageId":"node-next-1741089595000-3f0c5a1e-1d2b-4c3d-9e8f-0a1b2c3d4e5f","timestamp":"2025-03-04T11:59:55.000Z","context":{"library":{"name":"@segment/analytics-node","version":"2.1.0"}},"integrations":{},"_metadata":{"nodeVersion":"20.11.0","jsRuntime":"node"}},
		{"type":"identify","traits":{"email":"ann@example.com"},"userId":"u1","messageId":"node-next-1741089595001-aa","timestamp":"2025-03-04T11:59:56.000Z","context":{"library":{"name":"@segment/analytics-node","version":"2.1.0"}},"integrations":{},"_metadata":{"nodeVersion":"20.11.0","jsRuntime":"node"}},
		{"type":"alias","previousId":"anon-1","userId":"u1","messageId":"node-next-1741089595002-bb","timestamp":"2025-03-04T11:59:57.000Z"}
	],"sentAt":"2025-03-04T11:59:58.000Z"}`
	b, err := events.ParseBatch([]byte(node), received)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Messages) != 3 || b.WriteKey != "" || len(b.Warnings) != 0 {
		t.Fatalf("batch %+v", b)
	}
	types := []events.Type{events.Track, events.Identify, events.Alias}
	for i, m := range b.Messages {
		if m.Event.Type != types[i] {
			t.Errorf("message %d type %s, want %s", i, m.Event.Type, types[i])
		}
		// sentAt is 2 s after the first event, 1 s after the second...: receivedAt minus that.
		want := received.Add(-time.Duration(3-i) * time.Second)
		if !m.Event.Timestamp.Equal(want) || !m.Event.SentAt.Equal(time.Date(2025, 3, 4, 11, 59, 58, 0, time.UTC)) {
			t.Errorf("message %d timestamp %v sentAt %v, want %v", i, m.Event.Timestamp, m.Event.SentAt, want)
		}
	}
	if b.Messages[1].Traits["email"] != "ann@example.com" {
		t.Errorf("traits %v", b.Messages[1].Traits)
	}

	// What analytics.js in batching mode (packages/browser/src/plugins/segmentio/batched-dispatcher.ts) posts to
	// /v1/b: the write key at the top and in each item, sentAt only at the top.
	ajs := `{"writeKey":"wk_browser_key_12345","batch":[{"type":"page","name":null,"properties":{"path":"/"},"context":{"page":{"path":"/","url":"https://shop.example/"},"userAgent":"Mozilla/5.0","locale":"en-US","library":{"name":"analytics.js","version":"next-1.70.0"}},"anonymousId":"6f2b","userId":null,"timestamp":"2025-03-04T13:00:00.000Z","integrations":{},"messageId":"ajs-next-1","writeKey":"wk_browser_key_12345","_metadata":{"bundled":["Segment.io"],"unbundled":[],"bundledIds":[]}}],"sentAt":"2025-03-04T13:00:01.000Z"}`
	b, err = events.ParseBatch([]byte(ajs), received)
	if err != nil {
		t.Fatal(err)
	}
	m := b.Messages[0]
	if b.WriteKey != "wk_browser_key_12345" || m.Locale != "en-US" || m.Event.Name != "" || m.Event.AnonymousID != "6f2b" {
		t.Fatalf("batch %+v", b)
	}
	// The browser's clock is an hour ahead; correction brings the event back to 1 s before it arrived.
	if want := received.Add(-time.Second); !m.Event.Timestamp.Equal(want) {
		t.Errorf("timestamp %v, want %v", m.Event.Timestamp, want)
	}
}

func TestParseBatchMergesContext(t *testing.T) {
	body := `{"context":{"device":{"type":"phone"},"locale":"de-DE","ip":"198.51.100.1"},"batch":[
		{"type":"track","event":"a","userId":"u","context":{"locale":"fr-FR"}},
		{"type":"track","event":"b","userId":"u"}]}`
	b, err := events.ParseBatch([]byte(body), received)
	if err != nil {
		t.Fatal(err)
	}
	if b.Messages[0].Locale != "fr-FR" || b.Messages[1].Locale != "de-DE" || b.Messages[1].IP != "198.51.100.1" {
		t.Fatalf("messages %+v", b.Messages)
	}
	for i, m := range b.Messages {
		var ctx map[string]any
		if err := json.Unmarshal(m.Event.Context, &ctx); err != nil || ctx["device"] == nil {
			t.Errorf("message %d context %s", i, m.Event.Context)
		}
	}
}

func TestParseBatchRefusesWhole(t *testing.T) {
	big := `{"type":"track","event":"e","userId":"u","properties":{"x":"` + strings.Repeat("x", events.MaxEventBytes) + `"}}`
	tests := []struct {
		name string
		body string
		want []string
	}{
		{"every problem with its index", `{"batch":[
			{"type":"track","event":"ok","userId":"u"},
			{"type":"track","event":"no ids"},
			{"type":"bogus","userId":"u"},
			{"userId":"u"},
			{"type":"alias","userId":"u"},
			5,
			` + big + `]}`, []string{"batch.1.userId", "batch.2.type", "batch.3.type", "batch.4.previousId", "batch.5", "batch.6"}},
		{"missing batch", `{"writeKey":"k"}`, []string{"batch"}},
		{"batch not a list", `{"batch":{}}`, []string{"batch"}},
		{"batch-level fields", `{"batch":[],"context":[],"integrations":1,"writeKey":false}`, []string{"writeKey", "context", "integrations"}},
		{"write keys differ", `{"writeKey":"k1","batch":[{"type":"screen","userId":"u","writeKey":"k2"}]}`, []string{"batch.0.writeKey"}},
		{"write keys differ between items", `{"batch":[{"type":"screen","userId":"u","writeKey":"k1"},{"type":"screen","userId":"u","writeKey":"k2"}]}`, []string{"batch.1.writeKey"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := events.ParseBatch([]byte(tt.body), received)
			if got := fields(t, err); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("problems at %q, want %q\n%v", got, tt.want, err)
			}
			if len(b.Messages) != 0 {
				t.Fatalf("an invalid batch returned messages: %+v", b.Messages)
			}
		})
	}
}

func TestParseBatchCapsProblems(t *testing.T) {
	items := strings.TrimSuffix(strings.Repeat("{},", 1000), ",")
	_, err := events.ParseBatch([]byte(`{"batch":[`+items+`]}`), received)
	got := fields(t, err)
	if len(got) != 101 || !strings.Contains(err.Error(), "and 900 more problems") {
		t.Fatalf("%d problems: %v", len(got), err)
	}
}

func TestParseBatchEmpty(t *testing.T) {
	b, err := events.ParseBatch([]byte(`{"batch":[],"writeKey":"wk"}`), received)
	if err != nil || len(b.Messages) != 0 || b.WriteKey != "wk" {
		t.Fatalf("batch %+v, error %v", b, err)
	}
}

func TestCorrect(t *testing.T) {
	at := func(s string) time.Time {
		t.Helper()
		if s == "" {
			return time.Time{}
		}
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name                     string
		original, sent, received string
		want                     string
		clamped                  bool
	}{
		{"nothing sent: the time received", "", "", "2025-01-01T12:00:00Z", "2025-01-01T12:00:00Z", false},
		{"only sentAt: the time received", "", "2020-01-01T00:00:00Z", "2025-01-01T12:00:00Z", "2025-01-01T12:00:00Z", false},
		{"timestamp alone is trusted (historical import)", "2019-06-01T08:00:00Z", "", "2025-01-01T12:00:00Z", "2019-06-01T08:00:00Z", false},
		{"client clock an hour ahead", "2025-01-01T13:00:00Z", "2025-01-01T13:00:05Z", "2025-01-01T12:00:00Z", "2025-01-01T11:59:55Z", false},
		{"client clock a day behind", "2024-12-31T11:59:00.250Z", "2024-12-31T12:00:00Z", "2025-01-01T12:00:00Z", "2025-01-01T11:59:00.25Z", false},
		{"queued offline for a week", "2024-12-25T12:00:00Z", "2025-01-01T12:00:00Z", "2025-01-01T12:00:01Z", "2024-12-25T12:00:01Z", false},
		{"zones do not matter", "2025-01-01T14:00:00+02:00", "2025-01-01T12:00:10Z", "2025-01-01T12:00:10Z", "2025-01-01T12:00:00Z", false},
		{"a little ahead is kept", "2025-01-01T12:04:00Z", "", "2025-01-01T12:00:00Z", "2025-01-01T12:04:00Z", false},
		{"far future without sentAt is clamped", "2030-01-01T00:00:00Z", "", "2025-01-01T12:00:00Z", "2025-01-01T12:00:00Z", true},
		{"event after its own sending is clamped", "2025-01-01T13:00:00Z", "2025-01-01T12:00:00Z", "2025-01-01T12:00:00Z", "2025-01-01T12:00:00Z", true},
		{"absurd readings do not overflow", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2025-01-01T12:00:00Z", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, clamped := events.Correct(at(tt.original), at(tt.sent), at(tt.received))
			if clamped != tt.clamped {
				t.Errorf("clamped %v, want %v", clamped, tt.clamped)
			}
			if tt.want == "" {
				// Only sanity: in the past, and a time JSON can carry.
				if got.After(at(tt.received)) {
					t.Errorf("%v after the time received", got)
				}
				if _, err := json.Marshal(got); err != nil {
					t.Errorf("timestamp %v cannot be encoded: %v", got, err)
				}
				return
			}
			if !got.Equal(at(tt.want)) || got.Location() != time.UTC {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want string // RFC 3339 in UTC, "" for unreadable
	}{
		{"2012-12-02T00:30:08.276Z", "2012-12-02T00:30:08.276Z"},
		{"2012-12-02T01:30:08+01:00", "2012-12-02T00:30:08Z"},
		{"2012-12-02T01:30:08.5+0100", "2012-12-02T00:30:08.5Z"},
		{"2015-2-02T00:30:08.276Z", "2015-02-02T00:30:08.276Z"}, // as in Segment's own batch example
		{"2012-12-02T00:30:08", "2012-12-02T00:30:08Z"},
		{"2012-12-02 00:30:08.123456", "2012-12-02T00:30:08.123456Z"},
		{"2012-12-02T00:30Z", "2012-12-02T00:30:00Z"},
		{"2012-12-02", "2012-12-02T00:00:00Z"},
		{"", ""},
		{"yesterday", ""},
		{"1354408208", ""},
		{"2012-13-02T00:30:08Z", ""},
		{"0000-01-01T00:00:00+01:00", ""}, // the year -1 in UTC: JSON cannot hold it
		{"0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := events.ParseTime(tt.in)
			if tt.want == "" {
				if ok {
					t.Fatalf("read %v, want unreadable", got)
				}
				return
			}
			if !ok || got.Format(time.RFC3339Nano) != tt.want {
				t.Fatalf("got %v (%v), want %s", got, ok, tt.want)
			}
		})
	}
}

func TestAnonymizeIP(t *testing.T) {
	tests := map[string]string{
		"203.0.113.77":            "203.0.113.0",
		"::ffff:203.0.113.77":     "203.0.113.0",
		"2001:db8:1:2:3:4:5:6":    "2001:db8:1::",
		"2001:db8:abcd:ff00::1":   "2001:db8:abcd::",
		"fe80::1234:5678%eth0":    "fe80::",
		"::1":                     "::",
		"not an ip":               "",
		"":                        "",
		"203.0.113.77:8080":       "",
		"2001:db8::/32":           "",
		"0000:0000:0000:0000:0:0": "",
	}
	for in, want := range tests {
		if got := events.AnonymizeIP(in); got != want {
			t.Errorf("AnonymizeIP(%q) = %q, want %q", in, got, want)
		}
	}
}

// sameJSON reports whether got is the JSON document want ("" for none), whatever the order of object keys.
func sameJSON(got json.RawMessage, want string) bool {
	if want == "" || len(got) == 0 {
		return want == "" && len(got) == 0
	}
	var g, w any
	return json.Unmarshal(got, &g) == nil && json.Unmarshal([]byte(want), &w) == nil && reflect.DeepEqual(g, w)
}

func TestSetIP(t *testing.T) {
	tests := []struct {
		name    string
		context string // "" for none
		ip      string
		want    string // resulting context, "" for none
	}{
		{"none sent, set", "", "198.51.100.0", `{"ip":"198.51.100.0"}`},
		{"none sent, dropped", "", "", ""},
		{"replaced", `{"ip":"198.51.100.7","locale":"en"}`, "198.51.100.0", `{"ip":"198.51.100.0","locale":"en"}`},
		{"removed", `{"ip":"198.51.100.7","locale":"en"}`, "", `{"locale":"en"}`},
		{"only ip removed", `{"ip":"198.51.100.7"}`, "", ""},
		{"added", `{"locale":"en"}`, "2001:db8::1", `{"ip":"2001:db8::1","locale":"en"}`},
		{"added to an empty object", `{ }`, "192.0.2.1", `{"ip":"192.0.2.1"}`},
		{"added after whitespace", "{\"locale\":\"en\"\n}\n", "192.0.2.1", `{"ip":"192.0.2.1","locale":"en"}`},
		{"kept as sent", `{"ip":"192.0.2.1","locale":"en"}`, "192.0.2.1", `{"ip":"192.0.2.1","locale":"en"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"userId":"u"`
			if tt.context != "" {
				body += `,"context":` + tt.context
			}
			b, err := events.ParseMessage([]byte(body+"}"), events.Identify, received)
			if err != nil {
				t.Fatal(err)
			}
			m := &b.Messages[0]
			m.SetIP(tt.ip)
			if !sameJSON(m.Event.Context, tt.want) {
				t.Fatalf("context %s, want %s", m.Event.Context, tt.want)
			}
		})
	}
}

// FuzzParseBatch checks that no input panics, and that what is accepted holds what ingestion relies on.
func FuzzParseBatch(f *testing.F) {
	for _, s := range []string{
		`{"batch":[{"type":"track","event":"e","userId":"u","timestamp":"2025-03-04T11:00:00Z"}],"sentAt":"2025-03-04T11:00:01Z"}`,
		`{"batch":[{"type":"identify","userId":1,"traits":{"a":1.5}}],"context":{"ip":"::1"},"writeKey":"k"}`,
		`{"batch":[{"type":"alias","previousId":"p","userId":"u"},{"type":"group","groupId":"g","anonymousId":"a"}]}`,
		`{"batch":[{}, 1, null, "x"]}`,
		`{"batch":[{"type":"page","anonymousId":"a","context":{"timezone":"UTC"},"sentAt":"0001-01-01T00:00:00Z","timestamp":"9999-12-31T23:59:59Z"}]}`,
		`[]`, ``, `{`, `{"batch":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := events.ParseBatch(body, received)
		if err != nil {
			var (
				v   *errs.ValidationError
				syn *events.SyntaxError
				tl  *events.TooLargeError
			)
			if !errors.As(err, &v) && !errors.As(err, &syn) && !errors.As(err, &tl) {
				t.Fatalf("unexpected error kind %T: %v", err, err)
			}
			if len(b.Messages) != 0 {
				t.Fatal("messages returned with an error")
			}
			return
		}
		checkAccepted(t, b.Messages)
	})
}

// FuzzParseMessage is FuzzParseBatch for the single-call endpoints.
func FuzzParseMessage(f *testing.F) {
	for _, s := range []string{
		`{"userId":"u","event":"e","properties":{},"context":{"ip":"1.2.3.4"},"timestamp":"2015-2-02T00:30:08.276Z","sentAt":"2015-02-02T00:30:09Z"}`,
		`{"anonymousId":5,"traits":{"x":[1,2]},"messageId":"m"}`,
		`{"previousId":"p","userId":"u"}`,
		`{"type":"group","groupId":"g","userId":"u"}`,
		`null`, `{"userId":"\u0000"}`,
	} {
		for _, typ := range []uint8{0, 1, 2, 3, 4, 5} {
			f.Add([]byte(s), typ)
		}
	}
	types := []events.Type{events.Identify, events.Track, events.Page, events.Screen, events.Group, events.Alias}
	f.Fuzz(func(t *testing.T, body []byte, typ uint8) {
		b, err := events.ParseMessage(body, types[int(typ)%len(types)], received)
		if err != nil {
			return
		}
		if len(b.Messages) != 1 {
			t.Fatalf("%d messages", len(b.Messages))
		}
		checkAccepted(t, b.Messages)
	})
}

func checkAccepted(t *testing.T, ms []events.Message) {
	t.Helper()
	for i := range ms {
		m := &ms[i]
		e := m.Event
		if !e.Type.Valid() || e.MessageID == "" || len(e.MessageID) > events.MaxIDBytes {
			t.Fatalf("message %d: type %q, message id %q", i, e.Type, e.MessageID)
		}
		switch e.Type {
		case events.Alias:
			if e.PreviousID == "" || e.UserID == "" {
				t.Fatalf("message %d: alias without ids", i)
			}
		default:
			if e.UserID == "" && e.AnonymousID == "" {
				t.Fatalf("message %d: no identity", i)
			}
		}
		if e.Timestamp.Sub(e.ReceivedAt) > events.FutureTolerance {
			t.Fatalf("message %d: timestamp %v too far after %v", i, e.Timestamp, e.ReceivedAt)
		}
		for name, raw := range map[string][]byte{"properties": e.Properties, "traits": e.Traits, "context": e.Context} {
			if raw == nil {
				continue
			}
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(raw, &obj); err != nil {
				t.Fatalf("message %d: %s is not an object: %s", i, name, raw)
			}
		}
		m.SetIP("192.0.2.0")
		if _, err := json.Marshal(m.Event); err != nil {
			t.Fatalf("message %d cannot be stored: %v", i, err)
		}
		m.SetIP("")
		var ctx map[string]json.RawMessage
		if m.Event.Context != nil {
			if err := json.Unmarshal(m.Event.Context, &ctx); err != nil {
				t.Fatalf("message %d: context after SetIP: %v", i, err)
			}
			if _, ok := ctx["ip"]; ok {
				t.Fatalf("message %d: ip kept after drop: %s", i, m.Event.Context)
			}
		}
	}
}

// BenchmarkParseBatch parses a 100-event batch as analytics-node sends it and applies an IP to each event, the
// tracking API's share of a batch request before storage.
func BenchmarkParseBatch(b *testing.B) {
	items := make([]string, 100)
	for i := range items {
		items[i] = fmt.Sprintf(`{"type":"track","event":"Product Viewed","userId":"user-%d","messageId":"node-next-1741089595000-%d",`+
			`"properties":{"sku":"SKU-%d","price":19.99,"currency":"EUR"},"timestamp":"2025-03-04T11:59:55.000Z",`+
			`"context":{"library":{"name":"@segment/analytics-node","version":"2.2.0"}},"integrations":{},"_metadata":{"nodeVersion":"22.3.0","jsRuntime":"node"}}`, i, i, i)
	}
	body := []byte(`{"batch":[` + strings.Join(items, ",") + `],"sentAt":"2025-03-04T11:59:58.000Z"}`)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		batch, err := events.ParseBatch(body, received)
		if err != nil {
			b.Fatal(err)
		}
		for i := range batch.Messages {
			batch.Messages[i].SetIP("203.0.113.0")
		}
	}
	b.ReportMetric(float64(b.N*len(items))/b.Elapsed().Seconds(), "events/s")
}

// TestEventsIsALeaf keeps core/events importing only the standard library, core/errs and core/internal/jsonw (the package doc's rule):
// everything that handles events depends on it, so it must depend on nothing else.
func TestEventsIsALeaf(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch dep {
		case "github.com/crosscast/crosscast/core/events", "github.com/crosscast/crosscast/core/errs", "github.com/crosscast/crosscast/core/internal/jsonw":
		default:
			t.Errorf("core/events depends on %s", dep)
		}
	}
}
