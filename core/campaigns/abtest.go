package campaigns

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"time"

	"github.com/crosscast/crosscast/core/errs"
)

// A/B/n tests: a campaign's Variants replace some of its content (per channel), each for a share of the audience.
// With a Test, the variants are first tried on Test.Percent of the audience; when Test.Window has passed, the
// variant with the best rate of Test.Metric (open, click) is the winner and the rest of the audience gets it.
// Without a Test, the whole audience is split by the variants' weights.

// VariantPending is the variant of a message waiting for its test's winner.
const VariantPending = -1

// Variant is one version of a campaign's content.
type Variant struct {
	Name string `json:"name"`
	// Weight is the variant's share of the tested audience, in percent; the weights add up to 100.
	Weight int `json:"weight"`
	// Content replaces fields of the campaign's channels: channel plugin -> field -> Liquid template. Fields not
	// named keep the campaign's.
	Content map[string]map[string]string `json:"content,omitempty"`
}

// Test is an A/B test with a winner.
type Test struct {
	// Percent of the audience gets the variants first (1-99).
	Percent int `json:"percent"`
	// Window is how long the test runs before the winner is chosen ("4h").
	Window string `json:"window"`
	// Metric chooses the winner: "open", "click" or "conversion" (unique opens, clicks, or goal conversions, per
	// message sent).
	Metric string `json:"metric"`
}

const maxVariants = 8

func (c *Campaign) validateVariants() error {
	if len(c.Variants) == 0 {
		if c.Test != nil {
			return errs.Invalid("test", "needs variants")
		}
		return nil
	}
	if len(c.Variants) < 2 || len(c.Variants) > maxVariants {
		return errs.Invalid("variants", "an A/B test has 2 to %d variants", maxVariants)
	}
	if c.Schedule.Kind == SendTriggered || c.Schedule.Kind == SendRecurring {
		return errs.Invalid("variants", "A/B tests are for one-off campaigns (now or at a time)")
	}
	total := 0
	names := map[string]bool{}
	for i, v := range c.Variants {
		field := fmt.Sprintf("variants[%d]", i)
		if v.Name == "" || len(v.Name) > 64 || names[v.Name] {
			return errs.Invalid(field+".name", "each variant needs a name of 1-64 bytes, unique")
		}
		names[v.Name] = true
		if v.Weight < 1 || v.Weight > 100 {
			return errs.Invalid(field+".weight", "%d must be between 1 and 100", v.Weight)
		}
		total += v.Weight
		for plugin, fields := range v.Content {
			slot := -1
			for k, ch := range c.Channels {
				if ch.Plugin == plugin {
					slot = k
				}
			}
			if slot < 0 {
				return errs.Invalid(field+".content."+plugin, "the campaign has no channel %q", plugin)
			}
			for name, src := range fields {
				if _, err := parseTemplate(src); err != nil {
					return errs.Invalid(field+".content."+plugin+"."+name, "%s", err.Error())
				}
			}
		}
	}
	if total != 100 {
		return errs.Invalid("variants", "the weights add up to %d, not 100", total)
	}
	if t := c.Test; t != nil {
		if t.Percent < 1 || t.Percent > 99 {
			return errs.Invalid("test.percent", "%d must be between 1 and 99", t.Percent)
		}
		if _, err := parseWindow(t.Window); err != nil {
			return errs.Invalid("test.window", "%s", err.Error())
		}
		switch {
		case t.Metric == "conversion" && c.Goal == nil:
			return errs.Invalid("test.metric", "conversion needs the campaign's goal")
		case t.Metric != "open" && t.Metric != "click" && t.Metric != "conversion":
			return errs.Invalid("test.metric", "must be open, click or conversion, not %q", t.Metric)
		}
	}
	return nil
}

// bucket is a contact's place, 0-99, in a campaign's split: the same at every run and restart.
func bucket(campaign, contact, salt string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(campaign))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(contact))
	_, _ = h.Write([]byte(salt))
	return int(h.Sum32() % 100)
}

// variantOf is the variant a contact gets at planning (1-based; 0 without variants; VariantPending when it waits
// for the test's winner).
func (c *Campaign) variantOf(contact string) int {
	if len(c.Variants) == 0 {
		return 0
	}
	if c.Test != nil && bucket(c.ID, contact, "test") >= c.Test.Percent {
		return VariantPending
	}
	b := bucket(c.ID, contact, "variant")
	for i, v := range c.Variants {
		if b < v.Weight {
			return i + 1
		}
		b -= v.Weight
	}
	return len(c.Variants)
}

// winnerIndex is the winner's variant number, or 0 when none was chosen.
func (c *Campaign) winnerIndex() int {
	for i, v := range c.Variants {
		if v.Name == c.Winner {
			return i + 1
		}
	}
	return 0
}

// VariantStats is one variant's results.
type VariantStats struct {
	Name   string `json:"name"`
	Counts Counts `json:"counts"`
	// Rates per message sent: opens and clicks (unique), clicks per open.
	OpenRate       float64 `json:"open_rate"`
	ClickRate      float64 `json:"click_rate"`
	ClickToOpen    float64 `json:"click_to_open"`
	ConversionRate float64 `json:"conversion_rate"`
}

// Stats are a campaign's results, in total, by variant and by channel.
type Stats struct {
	Total    Counts            `json:"total"`
	Rates    Rates             `json:"rates"`
	Variants []VariantStats    `json:"variants,omitempty"`
	Channels map[string]Counts `json:"channels"`
	// Winner is the test's winner, once chosen; Significant says whether the leader's lead over the runner-up on
	// the test's metric passes a two-proportion z-test at 95% (Z its statistic): live during the test, as it
	// stood at the choice after.
	Winner      string  `json:"winner,omitempty"`
	Significant bool    `json:"significant"`
	Z           float64 `json:"z,omitempty"`
}

// Rates are a campaign's rates per message sent.
type Rates struct {
	OpenRate       float64 `json:"open_rate"`
	ClickRate      float64 `json:"click_rate"`
	ClickToOpen    float64 `json:"click_to_open"`
	ConversionRate float64 `json:"conversion_rate"`
}

func ratesOf(c Counts) Rates {
	var r Rates
	if c.Sent > 0 {
		r.OpenRate = float64(c.OpenedUnique) / float64(c.Sent)
		r.ClickRate = float64(c.ClickedUnique) / float64(c.Sent)
		r.ConversionRate = float64(c.Converted) / float64(c.Sent)
	}
	if c.OpenedUnique > 0 {
		r.ClickToOpen = float64(c.ClickedUnique) / float64(c.OpenedUnique)
	}
	return r
}

// metricOf is a variant's successes on the test's metric.
func metricOf(c Counts, metric string) int {
	switch metric {
	case "click":
		return c.ClickedUnique
	case "conversion":
		return c.Converted
	}
	return c.OpenedUnique
}

// Stats returns a campaign's results.
func (s *Service) Stats(ctx context.Context, ws, id string) (Stats, error) {
	c, err := s.get(ctx, ws, id)
	if err != nil {
		return Stats{}, err
	}
	total, err := s.store.CampaignCounts(ctx, ws, id)
	if err != nil {
		return Stats{}, err
	}
	variants, channels, err := s.store.CampaignBreakdown(ctx, ws, id)
	if err != nil {
		return Stats{}, err
	}
	st := Stats{Total: total, Rates: ratesOf(total), Channels: channels, Winner: c.Winner}
	for i, v := range c.Variants {
		counts := variants[i+1]
		r := ratesOf(counts)
		st.Variants = append(st.Variants, VariantStats{Name: v.Name, Counts: counts, OpenRate: r.OpenRate, ClickRate: r.ClickRate,
			ClickToOpen: r.ClickToOpen, ConversionRate: r.ConversionRate})
	}
	if c.Winner != "" {
		// The test's result, as it stood when the winner was chosen.
		st.Z = c.WinnerZ
		st.Significant = math.Abs(st.Z) >= 1.96
	} else if len(st.Variants) >= 2 {
		metric := "open"
		if c.Test != nil {
			metric = c.Test.Metric
		}
		best, second := leaders(st.Variants, metric)
		st.Z = zTest(metricOf(st.Variants[best].Counts, metric), st.Variants[best].Counts.Sent,
			metricOf(st.Variants[second].Counts, metric), st.Variants[second].Counts.Sent)
		st.Significant = math.Abs(st.Z) >= 1.96
	}
	return st, nil
}

// leaders returns the indexes of the best and second best variants on metric (rate per message sent).
func leaders(vs []VariantStats, metric string) (best, second int) {
	rate := func(i int) float64 {
		c := vs[i].Counts
		if c.Sent == 0 {
			return -1
		}
		return float64(metricOf(c, metric)) / float64(c.Sent)
	}
	best, second = 0, 1
	if rate(1) > rate(0) {
		best, second = 1, 0
	}
	for i := 2; i < len(vs); i++ {
		switch {
		case rate(i) > rate(best):
			best, second = i, best
		case rate(i) > rate(second):
			second = i
		}
	}
	return best, second
}

// zTest is the two-proportion z statistic of x1/n1 against x2/n2 (0 when undefined).
func zTest(x1, n1, x2, n2 int) float64 {
	if n1 == 0 || n2 == 0 {
		return 0
	}
	p1, p2 := float64(x1)/float64(n1), float64(x2)/float64(n2)
	p := float64(x1+x2) / float64(n1+n2)
	se := math.Sqrt(p * (1 - p) * (1/float64(n1) + 1/float64(n2)))
	if se == 0 {
		return 0
	}
	return (p1 - p2) / se
}

// pickWinner chooses the test's winner once its window has passed since the run was planned, and records it;
// it returns the campaign as it is then.
func (r *runner) pickWinner(ctx context.Context, c Campaign, planned time.Time) (Campaign, error) {
	s := r.e.s
	window, _ := parseWindow(c.Test.Window)
	if s.now().Before(planned.Add(window)) {
		return c, nil
	}
	st, err := s.Stats(ctx, r.ws, c.ID)
	if err != nil {
		return c, err
	}
	best, _ := leaders(st.Variants, c.Test.Metric)
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, err := s.store.GetCampaign(ctx, r.ws, c.ID)
	if err != nil || cur.Winner != "" {
		return cur, err
	}
	cur.Winner, cur.WinnerZ = c.Variants[best].Name, st.Z
	cur.UpdatedAt = s.now().UTC()
	if err := s.store.PutCampaign(ctx, r.ws, cur, s.entry("winner chosen", "engine", fmt.Sprintf("%s (%s rate %.1f%%, z %.2f)", cur.Winner, c.Test.Metric,
		100*float64(metricOf(st.Variants[best].Counts, c.Test.Metric))/float64(max(1, st.Variants[best].Counts.Sent)), st.Z))); err != nil {
		return c, err
	}
	return cur, nil
}
