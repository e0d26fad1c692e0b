package campaigns

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/events"
)

// Goals: a campaign with a goal ({"event":"Order Completed","within":"7d"}) counts as converted each of its
// messages a contact performs that event after, within the window (once per message). Events come from the
// contacts stream; the contact's send log (contact_sends) says what it was sent and when. The check runs on a
// goroutine of its own, behind the writer.

// goalCampaign is a campaign with a goal, as the goal checker needs it.
type goalCampaign struct {
	id     string
	within time.Duration
}

// goals keeps each workspace's campaigns with goals, by goal event name.
type goals struct {
	s     *Service
	mu    sync.RWMutex
	byWS  map[string]map[string][]goalCampaign
	queue chan goalHit
}

type goalHit struct {
	ws, contact, event string
	at                 time.Time
}

func newGoals(s *Service) *goals {
	return &goals{s: s, byWS: map[string]map[string][]goalCampaign{}, queue: make(chan goalHit, triggerQueue)}
}

// refresh re-reads the campaigns with goals of a workspace (every launched campaign: conversions count after it
// completes too).
func (g *goals) refresh(ctx context.Context, ws string) error {
	list, err := g.s.store.ListCampaigns(ctx, ws)
	if err != nil {
		return err
	}
	byEvent := map[string][]goalCampaign{}
	for _, c := range list {
		if c.Goal == nil || c.Status == Draft {
			continue
		}
		within, err := parseWindow(c.Goal.Within)
		if err != nil {
			continue
		}
		byEvent[c.Goal.Event] = append(byEvent[c.Goal.Event], goalCampaign{c.ID, within})
	}
	ws = strings.Clone(ws)
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(byEvent) == 0 {
		delete(g.byWS, ws)
	} else {
		g.byWS[ws] = byEvent
	}
	return nil
}

func (g *goals) of(ws, event string) []goalCampaign {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.byWS[ws][event]
}

// observe queues the goal checks of a change's events.
func (g *goals) observe(ctx context.Context, ch contacts.Change) {
	for _, e := range ch.Events {
		if e.Type != events.Track || e.ContactID == "" || len(g.of(ch.Workspace, e.Name)) == 0 {
			continue
		}
		h := goalHit{strings.Clone(ch.Workspace), strings.Clone(e.ContactID), strings.Clone(e.Name), e.Timestamp}
		select {
		case g.queue <- h:
		case <-ctx.Done():
		}
	}
}

// run checks queued goal events until ctx ends.
func (g *goals) run(ctx context.Context) {
	for {
		var h goalHit
		select {
		case <-ctx.Done():
			return
		case h = <-g.queue:
		}
		if err := g.check(context.WithoutCancel(ctx), h); err != nil {
			g.s.log.Error("counting a goal conversion", "workspace", h.ws, "event", h.event, "error", err)
		}
	}
}

// check counts as converted the contact's messages of the campaigns with this goal, sent within their window
// before the event.
func (g *goals) check(ctx context.Context, h goalHit) error {
	list := g.of(h.ws, h.event)
	longest := time.Duration(0)
	for _, c := range list {
		longest = max(longest, c.within)
	}
	sent, err := g.s.store.SentSince(ctx, h.ws, h.contact, h.at.Add(-longest))
	if err != nil {
		return err
	}
	for _, m := range sent {
		for _, c := range list {
			if m.Campaign == c.id && !m.At.After(h.at) && h.at.Sub(m.At) <= c.within {
				if _, err := g.s.store.RecordEngagement(ctx, h.ws, m.ID(), Conversion); err != nil && !isNotFound(err) {
					return err
				}
			}
		}
	}
	return nil
}
