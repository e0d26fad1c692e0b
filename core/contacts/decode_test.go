package contacts

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// checkDecode fails t unless Decode and json.Unmarshal agree on data: the same contact, and both or neither
// returning an error. It returns Decode's error.
func checkDecode(t testing.TB, data []byte) error {
	t.Helper()
	var got, want Contact
	gotErr := Decode(data, &got)
	wantErr := json.Unmarshal(data, &want)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("input %q:\nDecode error: %v\njson error:   %v", data, gotErr, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("input %q:\nDecode gives %#v\njson gives   %#v", data, got, want)
	}
	return gotErr
}

// fastPath reports whether Decode's fast path took data without handing it to encoding/json.
func fastPath(data []byte) bool {
	var c Contact
	d := decoder{data: data}
	return d.contact(&c)
}

// decodeCase is a tricky input for Decode; the table tests and the fuzz corpus share them.
type decodeCase struct {
	name string
	in   string
	fast bool // the fast path decodes it (else it goes to encoding/json)
}

func decodeCases() []decodeCase {
	long := strings.Repeat("x", MaxStringValue+1)
	many := "[" + strings.Repeat(`"a",`, MaxListItems) + `"a"]`
	deep := strings.Repeat("[", 100) + strings.Repeat("]", 100)
	return []decodeCase{
		{"minimal", `{"id":"c1","created_at":"2026-11-22T10:00:00Z","updated_at":"2026-11-22T10:00:00.123456789Z"}`, true},
		{"empty object", `{}`, true},
		{"blanks everywhere", " \t\r\n{ \"id\" :\n\"c1\" , \"tags\" : [ \"a\" , \"b\" ] , \"attributes\" : { \"n\" : 1 } } \n", true},
		{"any key order", `{"updated_at":"2026-01-01T00:00:00Z","tags":["t"],"id":"c1","email":"a@b.c","created_at":"2025-01-01T00:00:00Z"}`, true},
		{"unknown keys skipped", `{"id":"c1","x":{"a":[1,2.5e3,true,false,null,{"b":"\u00e9"}],"c":{}},"y":[],"z":-0.0,"w":"s"}`, true},
		{"escapes", `{"id":"a\"b\\c\/d\b\f\n\r\t\u0000\u001f\u00e9\u2028\ud83c\udf89"}`, true},
		{"escaped key", `{"\u0069d":"c1","attribute\u0073":{"k\"ey":"v"}}`, true},
		{"unicode", `{"id":"é 日本 🎉","tags":["ü"],"attributes":{"名前":"値"}}`, true},
		{"invalid utf-8", "{\"id\":\"bad \xff\xfe utf8\",\"attributes\":{\"k\xc3\":\"v\xe2\x82\"}}", true},
		{"lone surrogates", `{"id":"\ud800 \udc00 \ud800\u0041 \udbff\udfff \ud800\ud800"}`, true},
		{"surrogate at end", `{"id":"\ud83c"}`, true},
		{"empty maps and lists", `{"anonymous_ids":[],"attributes":{},"tags":[],"consent":{}}`, true},
		{"nulls", `{"id":null,"email":null,"anonymous_ids":null,"attributes":null,"tags":null,"consent":null,"created_at":null,"last_seen_at":null}`, true},
		{"null items", `{"tags":[null,"a",null]}`, true},
		{"null consent", `{"consent":{"email":null}}`, true},
		{"consent", `{"consent":{"email":{"status":"subscribed","at":"2026-11-22T10:00:00Z","source":"api"},"sms":{"status":"unsubscribed","at":"2026-11-22T10:00:00+02:00"},"push":{"status":"weird","x":1,"status":"unknown"},"web":{}}}`, true},
		{"consent nulls", `{"consent":{"email":{"status":null,"at":null,"source":null}}}`, true},
		{"every value kind", `{"attributes":{"s":"text","n":42,"neg":-1.5e-7,"big":1e21,"z":-0,"t":true,"f":false,"time":"2026-11-22T10:00:00Z","nano":"2026-11-22T10:00:00.5Z","off":"2026-11-22T10:00:00+02:00","l":["a","b"],"mixed":[1,"x",true,false,1.50,-0,2E+3],"el":[]}}`, true},
		{"time-like strings", `{"attributes":{"a":"2026-13-01T00:00:00Z","b":"2026-02-29T00:00:00Z","c":"2024-02-29T00:00:00Z","d":"2026-01-01t00:00:00Z","e":"2026-01-01T00:00:00.Z","f":"2026-01-01T00:00:00.1234567891Z","g":"2026-01-01T24:00:00Z","h":"2026-01-01T1:00:00Z ","i":"0000-01-01T00:00:00Z","j":"2026-01-01T00:00:60Z","k":"2026-01-01T00:00:00,5Z","l":"2026-01-01T00:00:00\u005a"}}`, true},
		{"number edges", `{"attributes":{"a":1e-400,"b":0.1,"c":123456789012345678901234567890,"d":4.9e-324}}`, true},
		{"duplicate attribute", `{"attributes":{"a":1,"a":"x"}}`, true},
		{"long text at the limit", `{"attributes":{"a":"` + long[1:] + `"}}`, true},

		// Left to encoding/json: errors, and what the fast path does not take on.
		{"null document", `null`, false},
		{"array document", `[]`, false},
		{"string document", `"x"`, false},
		{"empty input", ``, false},
		{"blank input", ` `, false},
		{"truncated", `{"id":"c1","tags":["a"`, false},
		{"truncated string", `{"id":"c1`, false},
		{"truncated escape", `{"id":"\u00`, false},
		{"trailing garbage", `{"id":"c1"}x`, false},
		{"two documents", `{}{}`, false},
		{"trailing comma", `{"id":"c1",}`, false},
		{"missing colon", `{"id" "c1"}`, false},
		{"bad escape", `{"id":"\x"}`, false},
		{"quote escape", `{"id":"\'"}`, false},
		{"control in string", "{\"id\":\"a\nb\"}", false},
		{"bad number", `{"attributes":{"a":01}}`, false},
		{"bad number dot", `{"attributes":{"a":1.}}`, false},
		{"bad number exp", `{"x":1e}`, false},
		{"plus number", `{"x":+1}`, false},
		{"bad literal", `{"x":nul}`, false},
		{"huge number", `{"attributes":{"a":1e400}}`, false},
		{"huge number in list", `{"attributes":{"a":[1e400]}}`, true}, // a list keeps the number's text
		{"null attribute", `{"attributes":{"a":null}}`, false},
		{"object attribute", `{"attributes":{"a":{"b":1}}}`, false},
		{"nested list attribute", `{"attributes":{"a":[["b"]]}}`, false},
		{"null list item", `{"attributes":{"a":["b",null]}}`, false},
		{"text over the limit", `{"attributes":{"a":"` + long + `"}}`, false},
		{"list over the limit", `{"attributes":{"a":` + many + `}}`, false},
		{"wrong type id", `{"id":5}`, false},
		{"wrong type tags", `{"tags":"a"}`, false},
		{"wrong type tag item", `{"tags":[1]}`, false},
		{"wrong type attributes", `{"attributes":[]}`, false},
		{"wrong type consent", `{"consent":{"email":"subscribed"}}`, false},
		{"wrong type status", `{"consent":{"email":{"status":1}}}`, false},
		{"wrong type time", `{"created_at":1}`, false},
		{"bad time", `{"created_at":"yesterday"}`, false},
		{"escaped time", `{"created_at":"2026-01-01T00:00:00\u005a"}`, false},
		{"case-insensitive key", `{"ID":"c1","Email":"a@b.c"}`, false},
		{"long s key", "{\"tag\u017f\":[\"a\"]}", false},
		{"long s consent key", "{\"consent\":{\"email\":{\"\u017ftatu\u017f\":\"subscribed\"}}}", false},
		{"case-insensitive consent key", `{"consent":{"email":{"Status":"subscribed"}}}`, false},
		{"duplicate field", `{"tags":["a","b","c"],"tags":["x",null]}`, false},
		{"duplicate map", `{"attributes":{"a":1},"attributes":{"b":2}}`, false},
		{"deep unknown value", `{"x":` + deep + `}`, false},
		{"too deep", `{"x":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`, false},
	}
}

func TestDecodeMatchesEncodingJSON(t *testing.T) {
	for _, tt := range decodeCases() {
		t.Run(tt.name, func(t *testing.T) {
			checkDecode(t, []byte(tt.in))
			if got := fastPath([]byte(tt.in)); got != tt.fast {
				t.Errorf("fast path took it: %v, want %v", got, tt.fast)
			}
		})
	}
}

// TestDecodeReplaces: Decode gives what json.Unmarshal gives into a zero Contact, whatever c held.
func TestDecodeReplaces(t *testing.T) {
	c := Contact{ID: "old", Tags: []string{"a"}, Attributes: map[string]Value{"a": NumberValue(1)}}
	if err := Decode([]byte(`{"email":"e"}`), &c); err != nil {
		t.Fatal(err)
	}
	if want := (Contact{Email: "e"}); !reflect.DeepEqual(c, want) {
		t.Fatalf("got %#v, want %#v", c, want)
	}
	if err := Decode([]byte(`{"email":1}`), &c); err == nil {
		t.Fatal("no error for a number as email")
	}
	if err := Decode([]byte(`{}`), nil); err == nil {
		t.Fatal("no error for a nil contact")
	}
}

// TestCanonicalTime: the fast time parser gives exactly what time.Parse (for attribute values) and time.Time's
// UnmarshalJSON (for the contact's times) give, over the whole range of years, and takes every canonical time.
func TestCanonicalTime(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for range 200000 {
		year, month, day := rng.IntN(10000), rng.IntN(14), rng.IntN(33)
		hour, minute, sec, frac := rng.IntN(25), rng.IntN(61), rng.IntN(61), rng.IntN(12)
		s := fmt.Sprintf("%04d-%02d-%02dT%02d:%02d:%02d", year, month, day, hour, minute, sec)
		if frac > 0 {
			s += "." + strconv.FormatInt(1e11+rng.Int64N(9e11), 10)[:frac] // frac digits, the first one never 0
		}
		s += "Z"
		valid := month >= 1 && month <= 12 && day >= 1 && day <= time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day() &&
			hour < 24 && minute < 60 && sec < 60 && frac <= 9
		got, ok := canonicalTime([]byte(s))
		if ok != valid {
			t.Fatalf("%s: canonical %v, want %v", s, ok, valid)
		}
		if !ok {
			continue
		}
		parsed, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		var unmarshaled time.Time
		if err := unmarshaled.UnmarshalJSON([]byte(`"` + s + `"`)); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if !reflect.DeepEqual(got, parsed.UTC()) || !reflect.DeepEqual(got, unmarshaled) {
			t.Fatalf("%s: got %v, time.Parse %v, UnmarshalJSON %v", s, got, parsed, unmarshaled)
		}
	}
}

// randomContact builds a contact with varied fields and tricky text. roundTrips is false when it holds something
// JSON does not give back as is (invalid UTF-8, a string that reads as a time, times in other zones, empty slices
// that omitempty drops, values over the limits).
func randomContact(rng *rand.Rand) (c Contact, roundTrips bool) {
	roundTrips = true
	clean := []string{"", "plain", `q " b \ s`, "ctl \x00\x1f\t\n\r\b\f", "<a>&", "é 日本 🎉", "sep\u2028\u2029", "\x7f", "/", "2026", "\ufffd"}
	dirty := []string{"bad \xff utf8", "\xc3", "\xed\xa0\x80"}
	pick := func() string {
		if rng.IntN(20) == 0 {
			roundTrips = false
			return dirty[rng.IntN(len(dirty))]
		}
		return clean[rng.IntN(len(clean))]
	}
	base := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	when := func() time.Time {
		t := base.Add(-time.Duration(rng.Int64N(4e18)))
		switch rng.IntN(4) {
		case 0:
			return t.Truncate(time.Second)
		case 1:
			return t.Truncate(time.Millisecond)
		case 2:
			if rng.IntN(4) == 0 {
				roundTrips = false
				return t.In(time.FixedZone("X", 3600*rng.IntN(12)))
			}
		}
		return t
	}
	c = Contact{ID: NewID(base), CreatedAt: when(), UpdatedAt: when()}
	for _, f := range []*string{&c.Email, &c.Phone, &c.UserID, &c.Timezone, &c.Locale} {
		if rng.IntN(2) == 0 {
			*f = pick() + "x"
		}
	}
	if rng.IntN(2) == 0 {
		c.LastSeenAt = when()
	}
	strs := func() []string {
		n := rng.IntN(4)
		if n == 0 {
			roundTrips = false // omitted, decodes as nil
		}
		s := make([]string, n)
		for i := range s {
			s[i] = pick()
		}
		return s
	}
	if rng.IntN(2) == 0 {
		c.AnonymousIDs = strs()
	}
	if rng.IntN(2) == 0 {
		c.Tags = strs()
	}
	if rng.IntN(5) > 0 {
		c.Attributes = map[string]Value{}
		n := rng.IntN(9)
		if n == 0 {
			roundTrips = false
		}
		for range n {
			var v Value
			switch rng.IntN(8) {
			case 0:
				s := pick()
				switch rng.IntN(30) {
				case 0:
					s = when().Format(time.RFC3339Nano)
					roundTrips = false
				case 1:
					s = strings.Repeat("y", MaxStringValue+rng.IntN(2))
					roundTrips = roundTrips && len(s) <= MaxStringValue
				}
				v = StringValue(s)
			case 1:
				f := []float64{0, math.Copysign(0, -1), -0.5, 1e21, 1e20, 1.5e-7, 1e-6, 42, 123456789.125, math.MaxFloat64, 5e-324}[rng.IntN(11)]
				if rng.IntN(2) == 0 {
					f = rng.NormFloat64() * math.Pow(10, float64(rng.IntN(40)-20))
				}
				v = NumberValue(f)
			case 2:
				v = BoolValue(rng.IntN(2) == 0)
			case 3, 4:
				v = TimeValue(when())
			case 5:
				items := make([]string, rng.IntN(4))
				for i := range items {
					items[i] = pick()
				}
				if rng.IntN(30) == 0 {
					items = make([]string, MaxListItems+rng.IntN(2))
					roundTrips = roundTrips && len(items) <= MaxListItems
				}
				v = ListValue(items)
			case 6:
				v = ListValue(nil)
				roundTrips = false // "[]" decodes as an empty list, not a nil one
			default:
				v = StringValue(pick() + "text")
			}
			c.Attributes[pick()+"k"] = v
		}
	}
	if rng.IntN(2) == 0 {
		c.Consent = map[string]Consent{}
		n := rng.IntN(4)
		if n == 0 {
			roundTrips = false
		}
		for range n {
			s := Consent{Status: []ConsentStatus{Subscribed, Unsubscribed, Unknown, "other"}[rng.IntN(4)], At: when()}
			if rng.IntN(2) == 0 {
				s.Source = pick() + "src"
			}
			c.Consent[pick()] = s
		}
	}
	return c, roundTrips
}

// TestDecodeRandomContacts: for random contacts, Decode reads Encode's document as json.Unmarshal does, takes it on
// the fast path, and gives back the contact itself when JSON round-trips it.
func TestDecodeRandomContacts(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var roundTripped int
	for i := range 2000 {
		c, roundTrips := randomContact(rng)
		data, err := Encode(&c)
		if err != nil {
			t.Fatal(err)
		}
		decodeErr := checkDecode(t, data)
		if fast := fastPath(data); fast != (decodeErr == nil) {
			t.Fatalf("contact %d: fast path took it: %v, decode error: %v\n%s", i, fast, decodeErr, data)
		}
		if !roundTrips {
			continue
		}
		roundTripped++
		var got Contact
		if err := Decode(data, &got); err != nil {
			t.Fatalf("contact %d: %v\n%s", i, err, data)
		}
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("contact %d:\n got %#v\nwant %#v\n%s", i, got, c, data)
		}
	}
	t.Logf("%d of 2000 contacts round-trip", roundTripped)
	if roundTripped < 200 {
		t.Fatalf("only %d of 2000 contacts round-trip: the generator is too dirty", roundTripped)
	}
}

func FuzzDecode(f *testing.F) {
	rng := rand.New(rand.NewPCG(9, 10))
	for range 30 {
		c, _ := randomContact(rng)
		if data, err := Encode(&c); err == nil && len(data) < 4096 {
			f.Add(data)
		}
	}
	for _, tc := range decodeCases() {
		if len(tc.in) < 4096 {
			f.Add([]byte(tc.in))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecode(t, data)
	})
}

// benchProfile is a realistic stored profile: an email, seven attributes of mixed kinds, two tags, two consents, a
// time zone and its times.
func benchProfile(b *testing.B) []byte {
	at := time.Date(2026, 11, 22, 10, 4, 5, 123456789, time.UTC)
	c := Contact{ID: NewID(at), Email: "ana.martin@example.com", Timezone: "Europe/Paris",
		CreatedAt: at.Add(-400 * 24 * time.Hour), UpdatedAt: at, LastSeenAt: at.Add(time.Hour),
		Attributes: map[string]Value{
			"first_name":   StringValue("Ana"),
			"last_name":    StringValue("Martin"),
			"country":      StringValue("FR"),
			"score":        NumberValue(42.5),
			"vip":          BoolValue(true),
			"signed_up_at": TimeValue(at.Add(-400 * 24 * time.Hour)),
			"interests":    ListValue([]string{"running", "jazz"}),
		},
		Tags: []string{"newsletter", "beta"},
		Consent: map[string]Consent{
			"email": {Status: Subscribed, At: at, Source: "import"},
			"sms":   {Status: Unsubscribed, At: at, Source: "unsubscribe link"},
		},
	}
	data, err := Encode(&c)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	return data
}

func BenchmarkDecode(b *testing.B) {
	data := benchProfile(b)
	for b.Loop() {
		var c Contact
		if err := Decode(data, &c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeEncodingJSON(b *testing.B) {
	data := benchProfile(b)
	for b.Loop() {
		var c Contact
		if err := json.Unmarshal(data, &c); err != nil {
			b.Fatal(err)
		}
	}
}
