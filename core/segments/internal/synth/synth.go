// Package synth generates the synthetic workspace the segment benchmarks run on: contacts with realistic
// attributes (a skewed list of 20 countries with their locales and time zones, 4 plans, age, a sign-up over the last
// 3 years, lifetime value, a city among 1,000, newsletter; 10% tagged vip; 60% subscribed to email) and their track
// events (page and product views, 0-20 orders over the last year, abandoned carts), about 10 per contact.
//
// Generation is deterministic per contact (each has its own random stream), so that any contact can be generated
// again without keeping a million profiles in memory. Only benchmarks import it.
package synth

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
)

// Now is the instant the data is generated around; benchmarks evaluate rules at it.
var Now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// Seed is the seed of every contact's random stream (with the contact's number).
const Seed = 20261122

// EventNames are the track events generated, by code; EventShare is the share of each in the total.
var (
	EventNames = []string{"Page Viewed", "Product Viewed", "Order Completed", "Cart Abandoned"}
	EventShare = []float64{0.60, 0.25, 0.10, 0.05}
	Plans      = []string{"free", "pro", "team", "enterprise"}
)

// Weighted picks an index with probability proportional to its weight.
type Weighted []float64 // cumulative, normalised to end at 1

// NewWeighted returns a picker for the weights.
func NewWeighted(ws []float64) Weighted {
	out := make(Weighted, len(ws))
	var sum, acc float64
	for _, w := range ws {
		sum += w
	}
	for i, w := range ws {
		acc += w / sum
		out[i] = acc
	}
	out[len(out)-1] = 1
	return out
}

// Pick draws an index.
func (w Weighted) Pick(r *rand.Rand) int { return min(sort.SearchFloat64s(w, r.Float64()), len(w)-1) }

var countries = []struct {
	code, locale, tz string
	weight           float64
}{
	{"US", "en-US", "America/New_York", 24}, {"GB", "en-GB", "Europe/London", 10}, {"FR", "fr-FR", "Europe/Paris", 9},
	{"DE", "de-DE", "Europe/Berlin", 9}, {"CA", "en-CA", "America/Toronto", 5}, {"ES", "es-ES", "Europe/Madrid", 5},
	{"IT", "it-IT", "Europe/Rome", 4}, {"NL", "nl-NL", "Europe/Amsterdam", 4}, {"BR", "pt-BR", "America/Sao_Paulo", 4},
	{"AU", "en-AU", "Australia/Sydney", 3}, {"IN", "en-IN", "Asia/Kolkata", 3}, {"BE", "fr-BE", "Europe/Brussels", 3},
	{"PL", "pl-PL", "Europe/Warsaw", 2.5}, {"SE", "sv-SE", "Europe/Stockholm", 2}, {"CH", "de-CH", "Europe/Zurich", 2},
	{"AT", "de-AT", "Europe/Vienna", 2}, {"PT", "pt-PT", "Europe/Lisbon", 2}, {"MX", "es-MX", "America/Mexico_City", 2},
	{"JP", "ja-JP", "Asia/Tokyo", 1.5}, {"IE", "en-IE", "Europe/Dublin", 1},
}

// Gen generates contact i and its events.
type Gen struct {
	// N is the number of contacts (CROSSCAST_BENCH_CONTACTS, default 1,000,000); PerContact the mean number of
	// events per contact (CROSSCAST_BENCH_EVENTS_PER_CONTACT, default 10).
	N          int
	PerContact float64
	// means of the exponential draws whose floor is each event's count per contact.
	means               [4]float64
	step                int64 // milliseconds between two sign-ups
	country, plan, city Weighted
	cities              []string
}

// Event is one generated track event: when (Unix nanoseconds, whole milliseconds as trackers send) and its name's
// code in EventNames.
type Event struct {
	At   int64
	Name uint8
}

func envNumber(name string, def float64) float64 {
	if v, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil && v > 0 {
		return v
	}
	return def
}

// New returns a generator sized by the environment (see Gen).
func New() Gen {
	g := Gen{N: int(envNumber("CROSSCAST_BENCH_CONTACTS", 1_000_000)), PerContact: envNumber("CROSSCAST_BENCH_EVENTS_PER_CONTACT", 10)}
	for i, share := range EventShare {
		// E[floor(X)] = 1/(e^(1/m)-1) for X exponential of mean m: solve for the wanted mean count.
		g.means[i] = 1 / math.Log1p(1/(share*g.PerContact))
	}
	g.step = (3 * 365 * 24 * time.Hour).Milliseconds() / int64(g.N)
	ws := make([]float64, len(countries))
	for i, c := range countries {
		ws[i] = c.weight
	}
	g.country = NewWeighted(ws)
	g.plan = NewWeighted([]float64{60, 25, 10, 5})
	cw := make([]float64, 1000) // cities: Zipf-like over 1000 names
	g.cities = make([]string, len(cw))
	for i := range cw {
		cw[i] = 1 / math.Pow(float64(i+1), 1.05)
		g.cities[i] = fmt.Sprintf("City %04d", i+1)
	}
	g.city = NewWeighted(cw)
	return g
}

const crockford = "0123456789abcdefghjkmnpqrstvwxyz"

// id makes a contact id as contacts.NewID does (48 bits of milliseconds, 80 random bits), from r.
func id(ms int64, r *rand.Rand) string {
	hi := uint64(ms)<<16 | r.Uint64()&0xffff
	lo := r.Uint64()
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// Contact returns contact i (signed up over the last 3 years, in id order) and its track events, oldest first,
// appended to evs[:0].
func (g Gen) Contact(i int, evs []Event) (contacts.Contact, []Event) {
	r := rand.New(rand.NewPCG(Seed, uint64(i)))
	start := Now.Add(-3 * 365 * 24 * time.Hour).UnixMilli()
	created := time.UnixMilli(start + int64(i)*g.step + r.Int64N(max(g.step/2, 1))).UTC()
	country := countries[g.country.Pick(r)]
	plan := Plans[g.plan.Pick(r)]
	c := contacts.Contact{
		ID: id(created.UnixMilli(), r), Email: fmt.Sprintf("user%07d@example.com", i), Locale: country.locale,
		Timezone: country.tz, CreatedAt: created, UpdatedAt: created,
		Attributes: map[string]contacts.Value{
			"plan":         contacts.StringValue(plan),
			"signed_up_at": contacts.TimeValue(created),
			"newsletter":   contacts.BoolValue(r.IntN(3) == 0),
		},
	}
	if r.IntN(10) > 0 {
		c.Attributes["country"] = contacts.StringValue(country.code)
	}
	if r.IntN(5) > 0 {
		c.Attributes["age"] = contacts.NumberValue(float64(min(90, 18+int(r.ExpFloat64()*16))))
	}
	if r.IntN(10) < 7 {
		c.Attributes["city"] = contacts.StringValue(g.cities[g.city.Pick(r)])
	}
	ltv := 0.0
	if plan != "free" {
		ltv = math.Round(math.Exp(5+1.2*r.NormFloat64())*100) / 100
	}
	c.Attributes["ltv"] = contacts.NumberValue(ltv)
	for _, t := range []struct {
		tag string
		one int
	}{{"vip", 10}, {"beta", 20}, {"churned", 12}} {
		if r.IntN(t.one) == 0 {
			c.Tags = append(c.Tags, t.tag)
		}
	}
	c.Consent = map[string]contacts.Consent{}
	for _, ch := range []struct {
		name     string
		sub, uns int // percentages
	}{{"email", 60, 15}, {"sms", 10, 5}} {
		switch k := r.IntN(100); {
		case k < ch.sub:
			c.Consent[ch.name] = contacts.Consent{Status: contacts.Subscribed, At: created, Source: "signup"}
		case k < ch.sub+ch.uns:
			c.Consent[ch.name] = contacts.Consent{Status: contacts.Unsubscribed, At: created, Source: "link"}
		}
	}
	// Activity: a span ending recently for a third of contacts, weeks or months ago for the rest; never before
	// the sign-up nor more than a year ago.
	var ago time.Duration
	switch k := r.IntN(100); {
	case k < 35:
		ago = time.Duration(r.Int64N(int64(7 * 24 * time.Hour)))
	case k < 60:
		ago = 7*24*time.Hour + time.Duration(r.Int64N(int64(53*24*time.Hour)))
	default:
		ago = 60*24*time.Hour + time.Duration(r.Int64N(int64(305*24*time.Hour)))
	}
	end := Now.Add(-ago).UnixMilli()
	from := max(end-(24*time.Hour+time.Duration(r.Int64N(int64(364*24*time.Hour)))).Milliseconds(),
		Now.Add(-365*24*time.Hour).UnixMilli(), created.UnixMilli())
	if from >= end { // signed up after that span: active since the sign-up
		from, end = created.UnixMilli(), Now.UnixMilli()
	}
	evs = evs[:0]
	if from < end {
		for name, mean := range g.means {
			k := int(r.ExpFloat64() * mean)
			if name == 2 {
				k = min(k, 20) // Order Completed: 0-20 over the year
			}
			for range k {
				evs = append(evs, Event{At: (from + r.Int64N(end-from)) * int64(time.Millisecond), Name: uint8(name)})
			}
		}
		slices.SortFunc(evs, func(a, b Event) int { return cmp.Compare(a.At, b.At) })
	}
	if len(evs) > 0 {
		c.LastSeenAt = time.Unix(0, evs[len(evs)-1].At).UTC()
	}
	return c, evs
}

// Properties returns the JSON properties of contact i's k-th event, as a tracker would send them (drawn from their
// own random stream, so that they do not change the contacts or event times).
func Properties(i, k int, e Event) []byte {
	r := rand.New(rand.NewPCG(Seed+1, uint64(i)<<16|uint64(k)))
	switch e.Name {
	case 0:
		p := r.IntN(400)
		return fmt.Appendf(nil, `{"path":"/blog/post-%d","url":"https://www.example.com/blog/post-%d","title":"Post %d","referrer":"https://www.google.com/"}`, p, p, p)
	case 1:
		p := r.IntN(5000)
		return fmt.Appendf(nil, `{"product_id":"sku-%05d","name":"Product %d","price":%d.90,"currency":"EUR"}`, p, p, 5+r.IntN(200))
	case 2:
		return fmt.Appendf(nil, `{"order_id":"ord-%d-%d","total":%d.%02d,"currency":"EUR","products":[{"product_id":"sku-%05d","quantity":%d}]}`,
			i, k, 5+r.IntN(300), r.IntN(100), r.IntN(5000), 1+r.IntN(3))
	}
	return fmt.Appendf(nil, `{"cart_id":"cart-%d-%d","value":%d.90}`, i, k, 10+r.IntN(250))
}
