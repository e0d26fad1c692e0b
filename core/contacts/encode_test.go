package contacts_test

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
)

// TestEncodeMatchesEncodingJSON: the store's hand-written profile encoder writes byte for byte what json.Marshal
// writes, for random contacts with tricky text and every kind of value, and what it writes decodes back equal.
func TestEncodeMatchesEncodingJSON(t *testing.T) {
	tricky := []string{"", "plain", `q " b \ s`, "ctl \x00\x1f\t\n", "<a>&", "é 日本 🎉", "bad \xff utf8", "sep\u2028", "\x7f"}
	rng := rand.New(rand.NewPCG(5, 6))
	pick := func() string { return tricky[rng.IntN(len(tricky))] }
	at := time.Date(2026, 11, 22, 10, 0, 0, 123000000, time.UTC)
	for i := range 1000 {
		c := contacts.Contact{ID: contacts.NewID(at), Email: pick(), Phone: pick(), UserID: pick(), Timezone: pick(), Locale: pick(),
			CreatedAt: at, UpdatedAt: at.Add(time.Duration(rng.Int64N(1e12)))}
		if rng.IntN(2) == 0 {
			c.LastSeenAt = at.Add(time.Hour)
		}
		for range rng.IntN(3) {
			c.AnonymousIDs = append(c.AnonymousIDs, pick())
			c.Tags = append(c.Tags, pick())
		}
		if rng.IntN(4) > 0 {
			c.Attributes = map[string]contacts.Value{}
			for range rng.IntN(6) {
				var v contacts.Value
				switch rng.IntN(6) {
				case 0:
					v = contacts.StringValue(pick())
				case 1:
					v = contacts.NumberValue([]float64{0, -0.5, 1e21, 1.5e-7, 42, 123456789.125}[rng.IntN(6)])
				case 2:
					v = contacts.BoolValue(rng.IntN(2) == 0)
				case 3:
					v = contacts.TimeValue(at.Add(-time.Duration(rng.Int64N(1e15))))
				case 4:
					v = contacts.ListValue([]string{pick(), pick()})
				default:
					v = contacts.ListValue(nil)
				}
				c.Attributes[pick()+"k"] = v
			}
		}
		if rng.IntN(2) == 0 {
			c.Consent = map[string]contacts.Consent{"email": {Status: contacts.Subscribed, At: at, Source: pick()}, "sms": {Status: contacts.Unsubscribed, At: at}}
		}
		got, err := contacts.Encode(&c)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(&c)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("contact %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

func BenchmarkEncodeContact(b *testing.B) {
	at := time.Now()
	c := contacts.Contact{ID: contacts.NewID(at), Email: "ana@example.com", CreatedAt: at, UpdatedAt: at, Tags: []string{"newsletter"},
		Attributes: map[string]contacts.Value{"first_name": contacts.StringValue("Ana"), "country": contacts.StringValue("FR"),
			"score": contacts.NumberValue(42), "signed_up_at": contacts.TimeValue(at)},
		Consent: map[string]contacts.Consent{"email": {Status: contacts.Subscribed, At: at, Source: "import"}}}
	b.Run("Encode", func(b *testing.B) {
		for b.Loop() {
			_, _ = contacts.Encode(&c)
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		for b.Loop() {
			_, _ = json.Marshal(&c)
		}
	})
}
