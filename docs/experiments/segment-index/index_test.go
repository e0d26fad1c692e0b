// Package segmentindex measures, before issue 5 builds it, what an in-memory column index of contacts costs on this
// machine: build time from JSON and from a compact binary record, memory, and the time to count a rule with three
// attribute conditions and with one event condition over 1M contacts and ~10M events.
package segmentindex

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

const contactsN = 1_000_000

var countries = []string{"FR", "DE", "ES", "IT", "GB", "US", "NL", "BE", "PL", "SE"}
var plans = []string{"free", "pro", "team", "enterprise"}

// profile is what a stored contact holds, as JSON, for the decoding baseline.
type profile struct {
	ID         string         `json:"id"`
	Email      string         `json:"email"`
	Attributes map[string]any `json:"attributes"`
	Tags       []string       `json:"tags"`
	CreatedAt  time.Time      `json:"created_at"`
}

// columns is the index: one column per attribute, dictionary-coded strings, plain numbers and times.
type columns struct {
	country []uint8 // dictionary code + 1, 0 = missing
	plan    []uint8 // dictionary code + 1
	score   []float32
	signed  []int64  // unix seconds, 0 = missing
	vip     []uint64 // bitmap of the "vip" tag
	// events: per contact, the timestamps (unix seconds) of "Order Completed", newest last, and the totals.
	orderStart []uint32 // offsets into orderAt / orderTotal, len contactsN+1
	orderAt    []int64
	orderTotal []float32
}

func synth(n int) ([][]byte, [][]byte, *rand.Rand) {
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	js := make([][]byte, n)
	bins := make([][]byte, n)
	for i := range n {
		p := profile{ID: fmt.Sprintf("%026d", i), Email: fmt.Sprintf("user%d@example.com", i),
			Attributes: map[string]any{"country": countries[rng.IntN(len(countries))], "plan": plans[rng.IntN(len(plans))],
				"score": rng.IntN(100), "signed_up_at": now.Add(-time.Duration(rng.IntN(3*365*24)) * time.Hour).Format(time.RFC3339),
				"first_name": "Ana", "last_name": "Martin", "company": "Acme"},
			CreatedAt: now}
		if rng.IntN(10) == 0 {
			p.Tags = []string{"vip"}
		}
		js[i], _ = json.Marshal(p)
		// The compact record an index would keep per contact: codes and numbers only.
		b := make([]byte, 0, 24)
		b = append(b, byte(indexOf(countries, p.Attributes["country"].(string))+1), byte(indexOf(plans, p.Attributes["plan"].(string))+1))
		b = binary.LittleEndian.AppendUint32(b, uint32(p.Attributes["score"].(int)))
		t, _ := time.Parse(time.RFC3339, p.Attributes["signed_up_at"].(string))
		b = binary.LittleEndian.AppendUint64(b, uint64(t.Unix()))
		if p.Tags != nil {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
		bins[i] = b
	}
	return js, bins, rng
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

func buildFromJSON(js [][]byte) *columns {
	c := newColumns(len(js))
	for i, raw := range js {
		var p profile
		if err := json.Unmarshal(raw, &p); err != nil {
			panic(err)
		}
		c.country[i] = uint8(indexOf(countries, p.Attributes["country"].(string)) + 1)
		c.plan[i] = uint8(indexOf(plans, p.Attributes["plan"].(string)) + 1)
		c.score[i] = float32(p.Attributes["score"].(float64))
		t, _ := time.Parse(time.RFC3339, p.Attributes["signed_up_at"].(string))
		c.signed[i] = t.Unix()
		if len(p.Tags) > 0 {
			c.vip[i/64] |= 1 << (i % 64)
		}
	}
	return c
}

func buildFromBinary(bins [][]byte) *columns {
	c := newColumns(len(bins))
	for i, b := range bins {
		c.country[i], c.plan[i] = b[0], b[1]
		c.score[i] = float32(binary.LittleEndian.Uint32(b[2:]))
		c.signed[i] = int64(binary.LittleEndian.Uint64(b[6:]))
		if b[14] == 1 {
			c.vip[i/64] |= 1 << (i % 64)
		}
	}
	return c
}

func newColumns(n int) *columns {
	return &columns{country: make([]uint8, n), plan: make([]uint8, n), score: make([]float32, n), signed: make([]int64, n),
		vip: make([]uint64, (n+63)/64)}
}

// addEvents gives contacts ~10 "Order Completed" events each on average (about 10M), over the last year.
func (c *columns) addEvents(rng *rand.Rand, n int) int {
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC).Unix()
	c.orderStart = make([]uint32, n+1)
	total := 0
	for i := range n {
		c.orderStart[i] = uint32(total)
		k := rng.IntN(21)
		base := now - int64(rng.IntN(365*24*3600))
		for j := range k {
			c.orderAt = append(c.orderAt, base+int64(j)*86400)
			c.orderTotal = append(c.orderTotal, float32(rng.IntN(300)))
		}
		total += k
	}
	c.orderStart[n] = uint32(total)
	return total
}

// count3 counts country = "FR" and plan in ["pro","team"] and signed_up_at within 365d.
func (c *columns) count3(now int64) int {
	fr := uint8(indexOf(countries, "FR") + 1)
	pro, team := uint8(indexOf(plans, "pro")+1), uint8(indexOf(plans, "team")+1)
	since := now - 365*86400
	n := 0
	for i := range c.country {
		if c.country[i] == fr && (c.plan[i] == pro || c.plan[i] == team) && c.signed[i] >= since {
			n++
		}
	}
	return n
}

// countEvent adds performed("Order Completed", within: 30d, count >= 2, where: total > 100) to count3.
func (c *columns) countEvent(now int64) int {
	fr := uint8(indexOf(countries, "FR") + 1)
	pro, team := uint8(indexOf(plans, "pro")+1), uint8(indexOf(plans, "team")+1)
	since, window := now-365*86400, now-30*86400
	n := 0
	for i := range c.country {
		if !(c.country[i] == fr && (c.plan[i] == pro || c.plan[i] == team) && c.signed[i] >= since) {
			continue
		}
		hits := 0
		for j := c.orderStart[i]; j < c.orderStart[i+1]; j++ {
			if c.orderAt[j] >= window && c.orderTotal[j] > 100 {
				hits++
			}
		}
		if hits >= 2 {
			n++
		}
	}
	return n
}

func TestReport(t *testing.T) {
	js, bins, rng := synth(contactsN)
	start := time.Now()
	cj := buildFromJSON(js)
	fromJSON := time.Since(start)
	start = time.Now()
	c := buildFromBinary(bins)
	fromBin := time.Since(start)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	events := c.addEvents(rng, contactsN)
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC).Unix()
	if cj.count3(now) != c.count3(now) {
		t.Fatal("the two builds disagree")
	}
	colBytes := len(c.country) + len(c.plan) + 4*len(c.score) + 8*len(c.signed) + 8*len(c.vip)
	evBytes := 4*len(c.orderStart) + 8*len(c.orderAt) + 4*len(c.orderTotal)
	start = time.Now()
	n3 := c.count3(now)
	t3 := time.Since(start)
	start = time.Now()
	ne := c.countEvent(now)
	te := time.Since(start)
	t.Logf("contacts %d, events %d", contactsN, events)
	t.Logf("build from JSON %v, from binary records %v", fromJSON, fromBin)
	t.Logf("columns %d MiB, event columns %d MiB", colBytes>>20, evBytes>>20)
	t.Logf("count 3 attribute conditions: %d in %v; with one event condition: %d in %v", n3, t3, ne, te)
}
