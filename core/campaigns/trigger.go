package campaigns

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/events"
	"github.com/crosscast/crosscast/core/segments"
)

// SendTriggered: a campaign that sends to each contact when something happens: a track event, or entering a
// segment (a lifecycle change is entering a segment on lifecycle). It runs until paused or cancelled.
const SendTriggered = "triggered"

// Trigger is what starts a triggered campaign's message for a contact.
type Trigger struct {
	// Event is the name of a track event ("Cart Abandoned"); or
	Event string `json:"event,omitempty"`
	// Segment is the id of a segment: entering it triggers.
	Segment string `json:"segment,omitempty"`
	// Delay is how long after the trigger the message is due ("2h", "3d"); empty: at once.
	Delay string `json:"delay,omitempty"`
	// Reentry says when a contact may be triggered again: "once" (the default: once ever), "always" (every event;
	// for event triggers), or a duration ("30d": not again within 30 days of the last accepted trigger).
	Reentry string `json:"reentry,omitempty"`
}

// Re-entry rules.
const (
	ReentryOnce   = "once"
	ReentryAlways = "always"
)

func (t *Trigger) validate() error {
	switch {
	case t == nil:
		return errs.Invalid("schedule.trigger", "is required for a %q schedule: an event or a segment", SendTriggered)
	case (t.Event == "") == (t.Segment == ""):
		return errs.Invalid("schedule.trigger", "names either an event or a segment")
	}
	if t.Delay != "" {
		if _, err := parseWindow(t.Delay); err != nil {
			return errs.Invalid("schedule.trigger.delay", "%s", err.Error())
		}
	}
	switch t.Reentry {
	case "", ReentryOnce:
	case ReentryAlways:
		if t.Segment != "" {
			return errs.Invalid("schedule.trigger.reentry", "%q is for event triggers: a segment entry can be announced twice (at a restart), so give a duration instead", ReentryAlways)
		}
	default:
		if _, err := parseWindow(t.Reentry); err != nil {
			return errs.Invalid("schedule.trigger.reentry", "must be %q, %q or a duration such as 30d", ReentryOnce, ReentryAlways)
		}
	}
	return nil
}

// gap is the re-entry rule as TriggerHit.Gap.
func (t *Trigger) gap() time.Duration {
	switch t.Reentry {
	case "", ReentryOnce:
		return -1
	case ReentryAlways:
		return 0
	}
	d, _ := parseWindow(t.Reentry)
	return d
}

func (t *Trigger) delay() time.Duration {
	if t.Delay == "" {
		return 0
	}
	d, _ := parseWindow(t.Delay)
	return d
}

// triggerRun is the run number of a triggered message: the same for the same trigger, so that a trigger announced
// twice (an event delivered again, a segment entry announced again at start) plans nothing twice. Runs of
// triggered campaigns are hashes, from 1 to 2^31.
func triggerRun(identity string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(identity))
	return int(h.Sum32()&0x7fffffff) + 1
}

// hit is a trigger waiting to be planned.
type hit struct {
	ws string
	TriggerHit
}

// triggers routes events and segment entries to the running triggered campaigns, and plans their messages on a
// goroutine of its own, in batches: the stream's subscribers must not wait on the disk.
type triggers struct {
	s *Service

	mu sync.RWMutex
	// byWorkspace lists each workspace's running triggered campaigns.
	byWorkspace map[string][]Campaign

	queue chan hit
}

// triggerQueue bounds the triggers waiting to be planned: a full queue makes the writers wait (nothing is
// dropped).
const triggerQueue = 1 << 14

func newTriggers(s *Service) *triggers {
	return &triggers{s: s, byWorkspace: map[string][]Campaign{}, queue: make(chan hit, triggerQueue)}
}

// refresh re-reads which of a workspace's campaigns are running triggered ones.
func (t *triggers) refresh(ctx context.Context, ws string) error {
	list, err := t.s.store.ListCampaigns(ctx, ws)
	if err != nil {
		return err
	}
	var running []Campaign
	for _, c := range list {
		if c.Status == Running && c.Schedule.Kind == SendTriggered && c.Schedule.Trigger != nil {
			running = append(running, c)
		}
	}
	ws = strings.Clone(ws) // kept as a map key beyond the caller's request
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(running) == 0 {
		delete(t.byWorkspace, ws)
	} else {
		t.byWorkspace[ws] = running
	}
	return nil
}

func (t *triggers) campaigns(ws string) []Campaign {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.byWorkspace[ws]
}

// OnChange is the contacts stream subscriber: each tracked event may trigger campaigns.
func (s *Service) OnChange(ctx context.Context, ch contacts.Change) {
	if len(ch.Deleted) > 0 {
		// An erased contact's send log and outbox addresses go too, behind the writer (a subscriber must not wait
		// on the disk).
		ws, ids := strings.Clone(ch.Workspace), slices.Clone(ch.Deleted)
		s.engine.wg.Go(func() {
			for _, id := range ids {
				if err := s.store.ForgetSends(context.WithoutCancel(ctx), ws, id); err != nil {
					s.log.Error("forgetting an erased contact's sends", "workspace", ws, "error", err)
				}
				if _, err := s.store.ForgetAddresses(context.WithoutCancel(ctx), ws, id); err != nil {
					s.log.Error("forgetting an erased contact's addresses in the outbox", "workspace", ws, "error", err)
				}
			}
		})
	}
	s.goals.observe(ctx, ch)
	list := s.triggers.campaigns(ch.Workspace)
	if len(list) == 0 {
		return
	}
	for _, e := range ch.Events {
		if e.Type != events.Track || e.ContactID == "" {
			continue
		}
		for _, c := range list {
			if c.Schedule.Trigger.Event == e.Name {
				s.triggers.add(ctx, ch.Workspace, c, e.ContactID, e.Timestamp, e.MessageID, "event:"+e.MessageID)
			}
		}
	}
}

// OnTransitions is the segments listener: entering a segment may trigger campaigns.
func (s *Service) OnTransitions(ctx context.Context, ws string, ts []segments.Transition) {
	list := s.triggers.campaigns(ws)
	if len(list) == 0 {
		return
	}
	for _, tr := range ts {
		if !tr.Entered {
			continue
		}
		for _, c := range list {
			if c.Schedule.Trigger.Segment == tr.Segment {
				s.triggers.add(ctx, ws, c, tr.Contact, tr.At, "", fmt.Sprintf("entered:%s:%d", tr.Segment, tr.At.Unix()))
			}
		}
	}
}

// add queues a trigger; it waits when the queue is full.
func (t *triggers) add(ctx context.Context, ws string, c Campaign, contact string, at time.Time, eventID, identity string) {
	tr := c.Schedule.Trigger
	if at.IsZero() {
		at = t.s.now()
	}
	at = at.UTC()
	slots := 1
	if c.Strategy == StrategyAll {
		slots = len(c.Channels)
	}
	run := triggerRun(identity)
	if tr.gap() < 0 {
		run = 1 // once ever: one key per contact
	}
	due := at.Add(tr.delay())
	if now := t.s.now().UTC(); due.Before(now) {
		due = now
	}
	// The hit waits in a queue: copy what may point into a caller's reused buffer.
	ws, contact, eventID = strings.Clone(ws), strings.Clone(contact), strings.Clone(eventID)
	h := hit{ws: ws, TriggerHit: TriggerHit{Campaign: c.ID, Contact: contact, At: at, Gap: tr.gap()}}
	for slot := range slots {
		h.Messages = append(h.Messages, Message{Campaign: c.ID, Run: run, Contact: contact, Slot: slot, Status: Queued,
			Due: due, PlannedAt: t.s.now().UTC(), Trigger: eventID})
	}
	select {
	case t.queue <- h:
	case <-ctx.Done():
	}
}

// run plans queued triggers until ctx ends, in batches of what is waiting (one transaction per workspace).
func (t *triggers) run(ctx context.Context) {
	for {
		var first hit
		select {
		case <-ctx.Done():
			return
		case first = <-t.queue:
		}
		batch := map[string][]TriggerHit{first.ws: {first.TriggerHit}}
	more:
		for n := 1; n < 1000; n++ {
			select {
			case h := <-t.queue:
				batch[h.ws] = append(batch[h.ws], h.TriggerHit)
			default:
				break more
			}
		}
		for ws, hits := range batch {
			n, err := t.s.store.PlanTriggered(context.WithoutCancel(ctx), ws, hits)
			if err != nil {
				t.s.log.Error("planning triggered messages", "workspace", ws, "triggers", len(hits), "error", err)
				continue
			}
			if n > 0 {
				seen := map[string]bool{}
				for _, h := range hits {
					if !seen[h.Campaign] {
						seen[h.Campaign] = true
						t.s.engine.watch(ws, h.Campaign)
					}
				}
			}
		}
	}
}

// eventVars is what templates see of a triggering event: its properties, name and time.
func eventVars(e events.Event) map[string]any {
	v := map[string]any{"name": e.Name, "timestamp": e.Timestamp}
	var props map[string]any
	if len(e.Properties) > 0 && json.Unmarshal(e.Properties, &props) == nil {
		for k, p := range props {
			v[k] = p // a property named name or timestamp wins: event.properties.* has them all anyway
		}
	}
	if props == nil {
		props = map[string]any{}
	}
	v["properties"] = props
	return v
}
