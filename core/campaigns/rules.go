package campaigns

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/internal/period"
	"github.com/crosscast/crosscast/core/workspaces"
)

// A workspace's sending rules (workspaces.CampaignRules) apply to its marketing messages at send time: quiet hours
// hold a message back until they end, in the contact's timezone; the frequency cap skips a message that would give
// a contact more than N messages in a period, across campaigns and channels (counted in the store's send log).

// rules are a workspace's sending rules, read.
type rules struct {
	capMessages int
	capPeriod   time.Duration
	quiet       bool
	quietStart  time.Duration // since midnight
	quietEnd    time.Duration
	quietZone   *time.Location
}

// readRules reads a workspace's rules; rules it cannot read (not validated by an older version) are ignored.
func readRules(r workspaces.CampaignRules) rules {
	var out rules
	if fc := r.FrequencyCap; fc != nil && fc.Messages > 0 {
		if d, err := period.Parse(fc.Period); err == nil {
			out.capMessages, out.capPeriod = fc.Messages, d
		}
	}
	if q := r.QuietHours; q != nil {
		start, err1 := workspaces.ClockTime(q.Start)
		end, err2 := workspaces.ClockTime(q.End)
		if err1 == nil && err2 == nil && start != end {
			out.quiet, out.quietStart, out.quietEnd, out.quietZone = true, start, end, time.UTC
			if q.Timezone != "" {
				if loc, err := time.LoadLocation(q.Timezone); err == nil {
					out.quietZone = loc
				}
			}
		}
	}
	return out
}

// quietUntil returns, when now is within the quiet hours for a contact in loc, the instant they end; zero
// otherwise.
func (r rules) quietUntil(now time.Time, loc *time.Location) time.Time {
	if !r.quiet {
		return time.Time{}
	}
	local := now.In(loc)
	midnight := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, loc)
	tod := local.Sub(midnight)
	var end time.Time
	switch {
	case r.quietStart < r.quietEnd: // the same day: 12:00-14:00
		if tod >= r.quietStart && tod < r.quietEnd {
			end = midnight.Add(r.quietEnd)
		}
	case tod >= r.quietStart: // over midnight (21:00-08:00), evening part
		next := midnight.AddDate(0, 0, 1)
		end = time.Date(next.Year(), next.Month(), next.Day(), 0, 0, 0, 0, loc).Add(r.quietEnd)
	case tod < r.quietEnd: // morning part
		end = midnight.Add(r.quietEnd)
	}
	if end.IsZero() {
		return end
	}
	return end.UTC()
}

// zones caches the locations of contacts' timezones.
type zones struct {
	mu sync.Mutex
	m  map[string]*time.Location
}

// of returns the contact's location, or fallback when it has none or an unknown one.
func (z *zones) of(ct *contacts.Contact, fallback *time.Location) *time.Location {
	if ct.Timezone == "" {
		return fallback
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.m == nil {
		z.m = map[string]*time.Location{}
	}
	loc, seen := z.m[ct.Timezone]
	if !seen {
		loc, _ = time.LoadLocation(ct.Timezone)
		z.m[ct.Timezone] = loc
	}
	if loc == nil {
		return fallback
	}
	return loc
}

// applyRules holds back (quiet hours) or skips (frequency cap) the batch's marketing messages that the workspace's
// rules refuse now; keep tells which messages are still to be sent, and is updated.
func (r *runner) applyRules(ctx context.Context, c Campaign, msgs []Message, profiles map[string]contacts.Contact, keep []bool, now time.Time) error {
	s := r.e.s
	if c.Transactional || s.opts.Rules == nil {
		return nil
	}
	wr, err := s.opts.Rules(ctx, r.ws)
	if err != nil {
		return err
	}
	rl := readRules(wr)
	// Read what may fail first, so that a failure changes no message.
	var counts map[string]int
	if rl.capMessages > 0 {
		var ids []string
		for i := range msgs {
			if keep[i] {
				ids = append(ids, msgs[i].Contact)
			}
		}
		if counts, err = s.store.CountSends(ctx, r.ws, ids, now.Add(-rl.capPeriod)); err != nil {
			return err
		}
	}
	for i := range msgs {
		if !keep[i] {
			continue
		}
		m := &msgs[i]
		if rl.quiet {
			ct := profiles[m.Contact]
			loc := s.zones.of(&ct, rl.quietZone)
			if until := rl.quietUntil(now, loc); !until.IsZero() {
				m.Status, m.Due, m.Attempts = Queued, until, max(0, m.Attempts-1) // waiting is not an attempt
				m.Error = fmt.Sprintf("quiet hours: held until %s %s", until.In(loc).Format("15:04"), loc)
				keep[i] = false
				continue
			}
		}
		if rl.capMessages > 0 {
			if counts[m.Contact] >= rl.capMessages {
				m.Status, m.Error = Skipped, fmt.Sprintf("frequency cap: %d messages in %s already", rl.capMessages, periodText(rl.capPeriod))
				keep[i] = false
				continue
			}
			counts[m.Contact]++ // another slot of the same contact in this batch counts too
		}
	}
	return nil
}

// periodText writes a period as the settings do: days when whole.
func periodText(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}
