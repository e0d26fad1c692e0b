package campaigns

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/errs"
)

// The engine runs each scheduled or running campaign on a goroutine of its own (a runner): it starts runs when
// they are due, plans their audience into the outbox, and sends due messages in batches on Options.Workers
// goroutines. Every step reads the campaign and the outbox from the store, so a runner holds nothing that a crash
// would lose: a restart finds the same work where it was (ReleaseClaims hands back what was being sent).

// planChunk is how many audience ids are planned per store transaction.
const planChunk = 1000

type runnerKey struct{ ws, id string }

type engine struct {
	s *Service

	mu      sync.Mutex
	ctx     context.Context // the Start context; nil before Start
	runners map[runnerKey]*runner
	wg      sync.WaitGroup
}

func newEngine(s *Service) *engine {
	return &engine{s: s, runners: map[runnerKey]*runner{}}
}

// runner is one campaign's loop.
type runner struct {
	e      *engine
	ws, id string
	wake   chan struct{}

	// planning is set while a planner goroutine plans the current run.
	planning atomic.Bool
	// failures counts whole batches a channel failed in a row.
	failures atomic.Int64

	// templates are the campaign's parsed content, for the UpdatedAt they were parsed at.
	tmplMu  sync.Mutex
	tmplAt  time.Time
	tmpls   [][][]namedTemplate
	settled rateWindow
}

type namedTemplate struct {
	name string
	t    *template
}

// Start runs the engine until ctx ends: it hands back the messages a previous process left sending, and starts a
// runner for every scheduled or running campaign of the workspaces.
func (s *Service) Start(ctx context.Context, workspaces []string) error {
	e := s.engine
	e.mu.Lock()
	e.ctx = ctx
	e.mu.Unlock()
	e.wg.Go(func() { s.triggers.run(ctx) })
	e.wg.Go(func() { s.goals.run(ctx) })
	for _, ws := range workspaces {
		if err := s.triggers.refresh(ctx, ws); err != nil {
			return fmt.Errorf("loading the triggered campaigns of workspace %q: %w", ws, err)
		}
		if err := s.goals.refresh(ctx, ws); err != nil {
			return fmt.Errorf("loading the campaign goals of workspace %q: %w", ws, err)
		}
		list, err := s.store.ListCampaigns(ctx, ws)
		if err != nil {
			return fmt.Errorf("loading the campaigns of workspace %q: %w", ws, err)
		}
		for _, c := range list {
			if c.Status != Running && c.Status != Scheduled {
				continue
			}
			if n, err := s.store.ReleaseClaims(ctx, ws, c.ID, s.now().UTC()); err != nil {
				return fmt.Errorf("releasing the claims of campaign %s: %w", c.ID, err)
			} else if n > 0 {
				s.log.Info("messages left sending by the last run will be sent again with the same idempotency keys",
					"workspace", ws, "campaign", c.ID, "messages", n)
			}
			e.watch(ws, c.ID)
		}
	}
	return nil
}

// Close waits for the runners to stop; cancel Start's context first.
func (s *Service) Close() { s.engine.wg.Wait() }

// Wake makes every runner look for due work now (tests, and after a channel comes back).
func (s *Service) Wake() {
	e := s.engine
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range e.runners {
		r.poke()
	}
}

func (r *runner) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// watch makes sure a runner runs the campaign, and wakes it.
func (e *engine) watch(ws, id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ctx == nil || e.ctx.Err() != nil {
		return // not started (tests of the service alone), or stopping
	}
	k := runnerKey{ws, id}
	if r, ok := e.runners[k]; ok {
		r.poke()
		return
	}
	// The runner outlives the caller: copy the strings (the HTTP layer's may point into reused request buffers).
	ws, id = strings.Clone(ws), strings.Clone(id)
	k = runnerKey{ws, id}
	r := &runner{e: e, ws: ws, id: id, wake: make(chan struct{}, 1)}
	e.runners[k] = r
	ctx := e.ctx
	e.wg.Go(func() { r.loop(ctx) })
}

// forget stops tracking a campaign being deleted (its runner exits at its next step).
func (e *engine) forget(ws, id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r, ok := e.runners[runnerKey{ws, id}]; ok {
		r.poke()
	}
}

func (e *engine) rate(ws, id string) float64 {
	e.mu.Lock()
	r := e.runners[runnerKey{ws, id}]
	e.mu.Unlock()
	if r == nil {
		return 0
	}
	return r.settled.rate(e.s.now())
}

func (r *runner) loop(ctx context.Context) {
	leave := func() { // under e.mu: only this runner's own entry (a new runner may have taken the key)
		if k := (runnerKey{r.ws, r.id}); r.e.runners[k] == r {
			delete(r.e.runners, k)
		}
	}
	defer func() {
		r.e.mu.Lock()
		leave()
		r.e.mu.Unlock()
	}()
	for {
		wait, more := r.step(ctx)
		if !more {
			// Exit, unless watch woke it meanwhile (a Resume right after the step read "paused"): watch pokes
			// under e.mu, and the runner leaves the map under e.mu, so one of the two sees the other.
			r.e.mu.Lock()
			select {
			case <-r.wake:
				r.e.mu.Unlock()
				continue
			default:
			}
			leave()
			r.e.mu.Unlock()
			return
		}
		if wait <= 0 {
			if ctx.Err() != nil {
				return
			}
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-r.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// step does what the campaign needs now and says how long to wait before the next step; more is false when the
// runner should exit (the campaign is paused, finished or gone; a resume starts a new runner).
func (r *runner) step(ctx context.Context) (wait time.Duration, more bool) {
	s := r.e.s
	c, err := s.store.GetCampaign(ctx, r.ws, r.id)
	if err != nil {
		if !errors.Is(err, errs.ErrNotFound) && ctx.Err() == nil {
			s.log.Error("reading a campaign", "workspace", r.ws, "campaign", r.id, "error", err)
			return s.opts.Tick, true
		}
		return 0, false
	}
	now := s.now().UTC()
	switch c.Status {
	case Scheduled:
		if c.NextRunAt != nil && c.NextRunAt.After(now) {
			return min(c.NextRunAt.Sub(now), time.Minute), true
		}
		if err := r.beginRun(ctx); err != nil {
			return r.trouble("starting a run", err), true
		}
		return 0, true
	case Running:
		return r.send(ctx, c)
	}
	return 0, false
}

// trouble logs an error of a step and returns the wait before the next try.
func (r *runner) trouble(what string, err error) time.Duration {
	if r.e.ctx.Err() == nil {
		r.e.s.log.Error(what, "workspace", r.ws, "campaign", r.id, "error", err)
	}
	return r.e.s.opts.Tick
}

// beginRun starts the campaign's next run: Runs+1, running, and the run after (recurring) computed now, so that a
// crash between two steps never starts a run twice or skips one.
func (r *runner) beginRun(ctx context.Context) error {
	s := r.e.s
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.store.GetCampaign(ctx, r.ws, r.id)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	if c.Status != Scheduled || c.NextRunAt != nil && c.NextRunAt.After(now) {
		return nil
	}
	c.Runs++
	c.Status = Running
	c.NextRunAt = nil
	c.RunStartedAt = &now
	if c.Schedule.Kind == SendRecurring {
		next, err := nextCron(c.Schedule.Cron, c.Schedule.location(), now)
		if err != nil {
			return err
		}
		c.NextRunAt = &next
	}
	c.UpdatedAt = now
	if err := s.store.PutCampaign(ctx, r.ws, c, s.entry("run started", "engine", fmt.Sprintf("run %d", c.Runs))); err != nil {
		return err
	}
	return nil
}

// send plans the current run (on a goroutine of its own) and sends what is due, then finishes the run when
// nothing is pending.
func (r *runner) send(ctx context.Context, c Campaign) (time.Duration, bool) {
	s := r.e.s
	triggered := c.Schedule.Kind == SendTriggered
	planned := triggered // triggers plan their own messages
	if !triggered {
		var err error
		if _, planned, err = s.store.PlanCursor(ctx, r.ws, c.ID, c.Runs); err != nil {
			return r.trouble("reading the plan", err), true
		}
	}
	if !planned && r.planning.CompareAndSwap(false, true) {
		run := c // the planner's own copy: this step goes on with c
		r.e.wg.Go(func() {
			defer r.planning.Store(false)
			if err := r.plan(ctx, run); err != nil {
				r.trouble("planning a run", err)
				if errors.Is(err, errs.ErrNotFound) {
					r.halt(ctx, "an audience segment no longer exists: "+err.Error())
				}
			}
			r.poke()
		})
	}
	if c.Test != nil && c.Winner == "" && c.RunStartedAt != nil {
		var err error
		if c, err = r.pickWinner(ctx, c, *c.RunStartedAt); err != nil {
			return r.trouble("choosing the test's winner", err), true
		}
	}
	tmpls, err := r.templates(c)
	if err != nil {
		r.halt(ctx, err.Error())
		return 0, false
	}
	var (
		wg      sync.WaitGroup
		claimed atomic.Int64
		mu      sync.Mutex
		failed  error // a worker's batch error (the last one)
	)
	for range s.opts.Workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				n, err := r.batch(ctx, c, tmpls)
				claimed.Add(int64(n))
				if err != nil {
					mu.Lock()
					failed = err
					mu.Unlock()
					return
				}
				if n == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	if err := failed; err != nil {
		if r.failures.Add(1) >= int64(s.opts.PauseAfter) {
			r.halt(ctx, fmt.Sprintf("channel failed %d batches in a row: %v", r.failures.Load(), err))
			return 0, false
		}
		return r.trouble("sending a batch", err), true
	}
	if claimed.Load() > 0 || r.planning.Load() {
		if claimed.Load() == 0 {
			return 20 * time.Millisecond, true // the planner pokes as it adds work
		}
		return 0, true
	}
	if triggered {
		return s.opts.Tick, true // runs until paused or cancelled; triggers wake it
	}
	counts, err := s.store.CampaignCounts(ctx, r.ws, c.ID)
	if err != nil {
		return r.trouble("counting messages", err), true
	}
	if _, planned, err = s.store.PlanCursor(ctx, r.ws, c.ID, c.Runs); err != nil {
		return r.trouble("reading the plan", err), true
	}
	if !planned || counts.Pending() > 0 {
		return s.opts.Tick, true // retries are due later
	}
	if err := r.finishRun(ctx); err != nil {
		return r.trouble("finishing a run", err), true
	}
	return 0, true
}

// finishRun ends the current run: the campaign completes, or waits for its next run (recurring).
func (r *runner) finishRun(ctx context.Context) error {
	s := r.e.s
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.store.GetCampaign(ctx, r.ws, r.id)
	if err != nil || c.Status != Running {
		return err
	}
	now := s.now().UTC()
	c.UpdatedAt = now
	c.RunStartedAt = nil // no run in progress
	action := "completed"
	if c.Schedule.Kind == SendRecurring && c.NextRunAt != nil {
		c.Status = Scheduled
		action = "run finished"
	} else {
		c.Status = Completed
		c.FinishedAt = &now
	}
	if err := s.store.PutCampaign(ctx, r.ws, c, s.entry(action, "engine", fmt.Sprintf("run %d", c.Runs))); err != nil {
		return err
	}
	return nil
}

// halt pauses the campaign with a reason the API shows; its messages stay queued.
func (r *runner) halt(ctx context.Context, reason string) {
	s := r.e.s
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.store.GetCampaign(ctx, r.ws, r.id)
	if err != nil || c.Status != Running && c.Status != Scheduled {
		return
	}
	c.Status, c.Reason, c.UpdatedAt = Paused, reason, s.now().UTC()
	if err := s.store.PutCampaign(ctx, r.ws, c, s.entry("paused", "engine", reason)); err != nil {
		s.log.Error("pausing a campaign", "workspace", r.ws, "campaign", r.id, "error", err)
		return
	}
	r.failures.Store(0)
	s.log.Warn("campaign paused", "workspace", r.ws, "campaign", r.id, "reason", reason)
}

// templates returns the campaign's parsed content by variant (0: the campaign's own; k: variant k's, over it)
// and channel slot.
func (r *runner) templates(c Campaign) ([][][]namedTemplate, error) {
	r.tmplMu.Lock()
	defer r.tmplMu.Unlock()
	if r.tmpls != nil && r.tmplAt.Equal(c.UpdatedAt) {
		return r.tmpls, nil
	}
	out := make([][][]namedTemplate, len(c.Variants)+1)
	for v := range out {
		out[v] = make([][]namedTemplate, len(c.Channels))
		for i, ch := range c.Channels {
			content := ch.Content
			if v > 0 {
				content = maps.Clone(ch.Content)
				if content == nil {
					content = map[string]string{}
				}
				maps.Copy(content, c.Variants[v-1].Content[ch.Plugin])
			}
			names := slices.Sorted(maps.Keys(content))
			for _, n := range names {
				t, err := parseTemplate(content[n])
				if err != nil {
					return nil, fmt.Errorf("channel %q field %q: %w", ch.Plugin, n, err)
				}
				out[v][i] = append(out[v][i], namedTemplate{n, t})
			}
		}
	}
	r.tmpls, r.tmplAt = out, c.UpdatedAt
	return out, nil
}

// plan adds the run's audience to the outbox, from its cursor on.
func (r *runner) plan(ctx context.Context, c Campaign) error {
	s := r.e.s
	after, done, err := s.store.PlanCursor(ctx, r.ws, c.ID, c.Runs)
	if err != nil || done {
		return err
	}
	slots := 1
	if c.Strategy == StrategyAll {
		slots = len(c.Channels)
	}
	var tz map[string]*time.Location
	for ctx.Err() == nil {
		ids, err := r.audience(ctx, c, after, planChunk)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return s.store.FinishPlan(ctx, r.ws, c.ID, c.Runs)
		}
		now := s.now().UTC()
		var local map[string]time.Time
		if c.Schedule.Kind == SendAt && c.Schedule.LocalTime {
			if tz == nil {
				tz = map[string]*time.Location{}
			}
			if local, err = r.localDue(ctx, c, ids, tz); err != nil {
				return err
			}
		}
		msgs := make([]Message, 0, len(ids)*slots)
		for _, id := range ids {
			due := now
			if t, ok := local[id]; ok && t.After(now) {
				due = t
			}
			variant := c.variantOf(id)
			if variant == VariantPending && c.RunStartedAt != nil {
				// The rest of the audience waits for the test's winner.
				window, _ := parseWindow(c.Test.Window)
				due = maxTime(due, c.RunStartedAt.Add(window))
			}
			for slot := range slots {
				msgs = append(msgs, Message{Campaign: c.ID, Run: c.Runs, Contact: id, Slot: slot, Status: Queued, Due: due, PlannedAt: now, Variant: variant})
			}
		}
		after = ids[len(ids)-1]
		if _, err := s.store.PlanMessages(ctx, r.ws, msgs, after); errors.Is(err, errs.ErrConflict) {
			return nil // cancelled, deleted or paused into another run meanwhile: nothing more to plan
		} else if err != nil {
			return err
		}
		r.poke()
	}
	return ctx.Err()
}

// audience returns up to limit ids of the campaign's audience after after, in id order: the union of the include
// segments, less the contacts in an exclude segment.
func (r *runner) audience(ctx context.Context, c Campaign, after string, limit int) ([]string, error) {
	s := r.e.s
	var out []string
	for len(out) < limit {
		// The next page of each include segment; their union, in order, up to the smallest last id among the
		// full pages (beyond it, a segment not read that far may hold ids that come first).
		var union []string
		bound := ""
		for _, seg := range c.Audience.Include {
			ids, next, err := s.segments.MemberIDs(ctx, r.ws, seg, after, limit)
			if err != nil {
				return nil, fmt.Errorf("segment %q: %w", seg, err)
			}
			union = append(union, ids...)
			if next != "" && (bound == "" || ids[len(ids)-1] < bound) {
				bound = ids[len(ids)-1]
			}
		}
		sort.Strings(union)
		n := 0
		for i, id := range union {
			if i > 0 && id == union[i-1] || bound != "" && id > bound {
				continue
			}
			union[n] = id
			n++
		}
		union = union[:n]
		if len(union) == 0 {
			return out, nil
		}
		for _, id := range union {
			excluded, err := r.excluded(ctx, c, id)
			if err != nil {
				return nil, err
			}
			if !excluded {
				out = append(out, id)
			}
		}
		after = union[len(union)-1]
		if bound == "" {
			return out, nil // every include segment was read to its end
		}
	}
	return out, nil
}

// messageVars are a message's template variables, but the triggering event's.
func (s *Service) messageVars(ws string, c Campaign, ct *contacts.Contact, msgID string) map[string]any {
	message := map[string]any{"id": msgID}
	vars := map[string]any{
		"contact":  contactVars(ct),
		"campaign": map[string]any{"id": c.ID, "name": c.Name},
		"message":  message,
	}
	if l := s.opts.Links; l != nil {
		u := l.Unsubscribe(ws, msgID)
		vars["unsubscribe_url"], message["unsubscribe_url"] = u, u
	}
	return vars
}

// addLinks tracks an email's opens and clicks (its html field) and gives a marketing email the List-Unsubscribe
// headers of RFC 8058 (one click, by POST to its unsubscribe link).
func (s *Service) addLinks(ws string, c Campaign, channel string, out *Outgoing) {
	l := s.opts.Links
	if l == nil {
		return
	}
	if info, ok := s.channelInfo(channel); !ok || info.Address != "email" {
		return
	}
	for i := range out.Fields {
		if out.Fields[i].Name == "html" {
			out.Fields[i].Value = l.trackHTML(ws, out.ID, out.Fields[i].Value)
		}
	}
	if !c.Transactional {
		out.Headers = append(out.Headers, Field{"List-Unsubscribe", "<" + l.Unsubscribe(ws, out.ID) + ">"},
			Field{"List-Unsubscribe-Post", "List-Unsubscribe=One-Click"})
	}
}

// included tells whether a contact is in one of the campaign's include segments now (any contact when there are
// none: a triggered campaign's audience is then whoever triggers it).
func (r *runner) included(ctx context.Context, c Campaign, id string) (bool, error) {
	if len(c.Audience.Include) == 0 {
		return true, nil
	}
	for _, seg := range c.Audience.Include {
		in, err := r.e.s.segments.IsMember(ctx, r.ws, seg, id)
		if err != nil {
			return false, fmt.Errorf("segment %q: %w", seg, err)
		}
		if in {
			return true, nil
		}
	}
	return false, nil
}

// excluded tells whether a contact is in one of the campaign's exclude segments now.
func (r *runner) excluded(ctx context.Context, c Campaign, id string) (bool, error) {
	for _, seg := range c.Audience.Exclude {
		in, err := r.e.s.segments.IsMember(ctx, r.ws, seg, id)
		if err != nil {
			return false, fmt.Errorf("segment %q: %w", seg, err)
		}
		if in {
			return true, nil
		}
	}
	return false, nil
}

// localDue is, for a local-time campaign, when each contact's wall clock reads the schedule's time.
func (r *runner) localDue(ctx context.Context, c Campaign, ids []string, tz map[string]*time.Location) (map[string]time.Time, error) {
	at := c.Schedule.At.In(c.Schedule.location())
	out := make(map[string]time.Time, len(ids))
	err := r.e.s.store.ViewContacts(ctx, r.ws, func(tx contacts.Tx) error {
		for _, id := range ids {
			ct, ok, err := tx.Get(id)
			if err != nil {
				return err
			}
			loc := time.UTC
			if ok && ct.Timezone != "" {
				l, seen := tz[ct.Timezone]
				if !seen {
					l, _ = time.LoadLocation(ct.Timezone) // nil when unknown
					tz[ct.Timezone] = l
				}
				if l != nil {
					loc = l
				}
			}
			if !ok || ct.Timezone == "" {
				out[id] = c.Schedule.At.UTC()
				continue
			}
			out[id] = time.Date(at.Year(), at.Month(), at.Day(), at.Hour(), at.Minute(), at.Second(), 0, loc).UTC()
		}
		return nil
	})
	return out, err
}

// batch claims due messages, renders and sends them, and records the outcomes; it returns how many it claimed.
func (r *runner) batch(ctx context.Context, c Campaign, tmpls [][][]namedTemplate) (int, error) {
	// A batch, once begun, finishes even when the engine is stopping: what it claimed is sent and recorded.
	ctx = context.WithoutCancel(ctx)
	s := r.e.s
	now := s.now().UTC()
	// Claim only while the campaign runs, under the read lock status changes take for writing: once Pause or
	// Cancel returns, no batch is claimed (one claimed before is still sent).
	s.mu.RLock()
	cur, err := s.store.GetCampaign(ctx, r.ws, c.ID)
	if err != nil || cur.Status != Running {
		s.mu.RUnlock()
		return 0, err
	}
	msgs, err := s.store.ClaimMessages(ctx, r.ws, c.ID, now, s.opts.Lease, r.claimSize(c))
	s.mu.RUnlock()
	if err != nil || len(msgs) == 0 {
		return 0, err
	}
	profiles := make(map[string]contacts.Contact, len(msgs))
	err = s.store.ViewContacts(ctx, r.ws, func(tx contacts.Tx) error {
		for _, m := range msgs {
			if _, seen := profiles[m.Contact]; seen {
				continue
			}
			ct, ok, err := tx.Get(m.Contact)
			if err != nil {
				return err
			}
			if ok {
				profiles[m.Contact] = ct
			}
		}
		return nil
	})
	if err != nil {
		return len(msgs), r.giveBack(ctx, msgs, err)
	}
	// Decide each message: a channel, or a final status; then the workspace's rules; then render.
	keep := make([]bool, len(msgs))
	slots := make([]int, len(msgs))
	for i := range msgs {
		m := &msgs[i]
		ct, ok := profiles[m.Contact]
		if !ok {
			m.Status, m.Error = Skipped, "the contact was deleted"
			continue
		}
		if ex, err := r.excluded(ctx, c, m.Contact); err != nil {
			return len(msgs), r.giveBack(ctx, msgs, err)
		} else if ex {
			m.Status, m.Error = Skipped, "the contact is in an excluded segment"
			continue
		}
		if c.Schedule.Kind == SendTriggered {
			// A triggered message goes to the audience as it is when it is sent (after its delay).
			if in, err := r.included(ctx, c, m.Contact); err != nil {
				return len(msgs), r.giveBack(ctx, msgs, err)
			} else if !in {
				m.Status, m.Error = Skipped, "the contact is not in the audience"
				continue
			}
		}
		if m.Variant == VariantPending {
			if m.Variant = cur.winnerIndex(); m.Variant == 0 {
				// Due before the winner is chosen (a clock moved): wait for it.
				m.Variant, m.Status, m.Due, m.Attempts = VariantPending, Queued, now.Add(time.Minute), max(0, m.Attempts-1)
				m.Error = "waiting for the A/B test's winner"
				continue
			}
		}
		if c.Topic != "" && !c.Transactional && unsubscribedFrom(&ct, c.Topic) {
			m.Status, m.Error = Skipped, fmt.Sprintf("unsubscribed from topic %q", c.Topic)
			continue
		}
		slot, to, why := r.pick(c, m.Slot, &ct)
		if slot < 0 {
			m.Status, m.Error = Skipped, why
			continue
		}
		m.Channel, m.To = c.Channels[slot].Plugin, to
		slots[i], keep[i] = slot, true
	}
	if err := r.applyRules(ctx, c, msgs, profiles, keep, now); err != nil {
		return len(msgs), r.giveBack(ctx, msgs, err)
	}
	byChannel := map[string][]int{}
	outgoing := make([]Outgoing, len(msgs))
	for i := range msgs {
		if !keep[i] {
			continue
		}
		m := &msgs[i]
		ct := profiles[m.Contact]
		out := Outgoing{ID: m.ID(), IdempotencyKey: m.ID(), ContactID: m.Contact, To: m.To}
		vars := s.messageVars(r.ws, c, &ct, m.ID())
		if m.Trigger != "" {
			e, found, err := s.store.TrackedEvent(ctx, r.ws, m.Trigger)
			if err != nil {
				return len(msgs), r.giveBack(ctx, msgs, err)
			}
			if found {
				vars["event"] = eventVars(e)
			}
		}
		var renderErr error
		variant := m.Variant
		if variant < 0 || variant >= len(tmpls) {
			variant = 0
		}
		var escaped, lines map[string]any
		info, _ := s.channelInfo(m.Channel)
		for _, nt := range tmpls[variant][slots[i]] {
			v, err := nt.t.render(fieldVars(nt.name, info, vars, &escaped, &lines), c.StrictVariables)
			if err != nil {
				renderErr = fmt.Errorf("field %q: %w", nt.name, err)
				break
			}
			out.Fields = append(out.Fields, Field{nt.name, v})
		}
		if renderErr != nil {
			m.Status, m.Error = Failed, renderErr.Error()
			continue
		}
		s.addLinks(r.ws, c, m.Channel, &out)
		outgoing[i] = out
		byChannel[m.Channel] = append(byChannel[m.Channel], i)
	}
	names := make([]string, 0, len(byChannel))
	for name := range byChannel {
		names = append(names, name)
	}
	sort.Strings(names)
	var batchErr error
	for _, name := range names {
		all := byChannel[name]
		info, _ := s.channelInfo(name)
		chunk := len(all)
		if info.Rate > 0 {
			chunk = min(chunk, info.Rate) // the operator's rate_limit: at most a second's worth per call
		}
		for lo := 0; lo < len(all); lo += chunk {
			idx := all[lo:min(len(all), lo+chunk)]
			batch := make([]Outgoing, len(idx))
			for k, i := range idx {
				batch[k] = outgoing[i]
			}
			var outcomes []Outcome
			var err error
			if info.Rate > 0 {
				err = s.limits.of(name).take(ctx, info.Rate, len(batch))
			}
			if err == nil {
				outcomes, err = s.channels.Send(ctx, r.ws, name, s.now().UTC(), batch)
			}
			// A partial failure comes with every outcome: those of the messages sent stand.
			var partial *PartialError
			usable := err == nil || errors.As(err, &partial)
			if usable && len(outcomes) != len(batch) {
				usable, err = false, fmt.Errorf("channel %q returned %d outcomes for %d messages", name, len(outcomes), len(batch))
			}
			sentAt := s.now().UTC()
			for k, i := range idx {
				m := &msgs[i]
				if !usable {
					r.retry(m, sentAt, 0, fmt.Sprintf("channel %q failed: %v", name, err))
					continue
				}
				o := outcomes[k]
				switch o.Status {
				case Delivered, Accepted:
					m.Status, m.Error, m.ProviderID, m.SentAt, m.Units = Sent, "", o.ProviderID, sentAt, o.Units
				case Refused:
					m.Status, m.Error = Failed, o.Error
				default:
					r.retry(m, sentAt, o.RetryAfter, o.Error)
				}
			}
			if err != nil {
				batchErr = err
			}
		}
	}
	for i := range msgs {
		if msgs[i].Status.Final() {
			msgs[i].Due = time.Time{} // a final message is due no more
		}
		msgs[i].Transactional = c.Transactional // for the send log the frequency cap counts
	}
	if err := s.store.SaveMessages(ctx, r.ws, msgs); err != nil {
		return len(msgs), err
	}
	if batchErr == nil {
		r.failures.Store(0)
	}
	settled := 0
	for _, m := range msgs {
		if m.Status.Final() {
			settled++
		}
	}
	r.settled.add(now, settled)
	return len(msgs), batchErr
}

// claimSize is how many messages a batch claims: Options.Batch, or less when a channel's rate limit could not
// send that many within half a lease (a claim that outlives its lease would be claimed again).
func (r *runner) claimSize(c Campaign) int {
	size := r.e.s.opts.Batch
	for _, ch := range c.Channels {
		if info, ok := r.e.s.channelInfo(ch.Plugin); ok && info.Rate > 0 {
			// Every worker's claim must go out within half a lease at the channel's rate (shared, at worst, by
			// this campaign's workers).
			size = min(size, max(1, info.Rate*int(r.e.s.opts.Lease/time.Second)/2/r.e.s.opts.Workers))
		}
	}
	return size
}

// giveBack returns claimed messages to the queue after a failure that is not theirs (reading the store).
func (r *runner) giveBack(ctx context.Context, msgs []Message, cause error) error {
	now := r.e.s.now().UTC()
	for i := range msgs {
		msgs[i].Status, msgs[i].Due, msgs[i].Attempts = Queued, now.Add(r.e.s.opts.RetryBase), max(0, msgs[i].Attempts-1)
	}
	if err := r.e.s.store.SaveMessages(ctx, r.ws, msgs); err != nil {
		return errors.Join(cause, err)
	}
	return cause
}

// retry requeues a message after a failure, or fails it for good when its attempts ran out.
func (r *runner) retry(m *Message, now time.Time, after time.Duration, why string) {
	o := r.e.s.opts
	if m.Attempts >= o.MaxAttempts {
		m.Status, m.Error = Failed, fmt.Sprintf("gave up after %d attempts: %s", m.Attempts, why)
		return
	}
	if after <= 0 {
		after = o.RetryBase << min(m.Attempts-1, 7)
		after = min(after, time.Hour)
	}
	m.Status, m.Error, m.Due = Queued, why, now.Add(after)
}

// pick chooses the channel slot a message goes to and its address: its own slot (StrategyAll) or the first the
// contact can receive (StrategyFallback). slot is -1, with the reason, when none can.
func (r *runner) pick(c Campaign, slot int, ct *contacts.Contact) (int, string, string) {
	try := []int{slot}
	if c.Strategy == StrategyFallback {
		try = try[:0]
		for i := range c.Channels {
			try = append(try, i)
		}
	}
	var why []string
	for _, i := range try {
		if i >= len(c.Channels) {
			continue
		}
		info, ok := r.e.s.channelInfo(c.Channels[i].Plugin)
		if !ok {
			why = append(why, fmt.Sprintf("channel %q is not loaded", c.Channels[i].Plugin))
			continue
		}
		to, reason := reachable(info, ct, c.Transactional)
		if reason == "" {
			return i, to, ""
		}
		why = append(why, fmt.Sprintf("%s: %s", c.Channels[i].Plugin, reason))
	}
	return -1, "", strings.Join(why, "; ")
}

// reachable returns the contact's address on a channel, or why it cannot receive it.
func reachable(info ChannelInfo, ct *contacts.Contact, transactional bool) (to, why string) {
	switch info.Address {
	case "email":
		to = ct.Email
	case "phone":
		to = ct.Phone
	case "none", "":
		to = ""
	}
	if info.Address != "none" && info.Address != "" && to == "" {
		return "", "no " + info.Address
	}
	if info.Consent != "" {
		st := ct.ConsentOn(info.Consent)
		switch {
		case st == contacts.Unsubscribed:
			return "", "unsubscribed from " + info.Consent
		case !transactional && st != contacts.Subscribed:
			return "", "not subscribed to " + info.Consent
		}
	}
	return to, ""
}

// rateWindow counts settled messages per second over the last minute.
type rateWindow struct {
	mu     sync.Mutex
	counts [60]int
	secs   [60]int64
}

func (w *rateWindow) add(now time.Time, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	sec := now.Unix()
	i := sec % 60
	if w.secs[i] != sec {
		w.secs[i], w.counts[i] = sec, 0
	}
	w.counts[i] += n
}

// rate is the messages per second over the seconds of the last minute that saw any.
func (w *rateWindow) rate(now time.Time) float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	sec := now.Unix()
	total, oldest := 0, sec
	for i := range w.secs {
		if w.secs[i] > sec-60 && w.secs[i] <= sec && w.counts[i] > 0 {
			total += w.counts[i]
			oldest = min(oldest, w.secs[i])
		}
	}
	if total == 0 {
		return 0
	}
	return float64(total) / float64(sec-oldest+1)
}
