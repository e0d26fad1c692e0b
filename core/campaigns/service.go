package campaigns

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/workspaces"
	"github.com/hashicorp/go-hclog"
)

// Segments is what campaigns read of segments: the audience, without the profiles. core/segments implements it.
type Segments interface {
	// MemberIDs returns up to limit member ids after after, in id order, and the id to continue after ("" at the
	// end); errs.ErrNotFound when the segment does not exist.
	MemberIDs(ctx context.Context, ws, id, after string, limit int) ([]string, string, error)
	// IsMember tells whether a contact is in a segment now.
	IsMember(ctx context.Context, ws, id, contactID string) (bool, error)
}

// Channels reaches the channel plugins. plugins/manager implements it.
type Channels interface {
	// Channel describes a loaded channel plugin; ok is false when there is none of that name.
	Channel(name string) (info ChannelInfo, ok bool)
	// Send hands a batch of rendered messages of one workspace to a channel and returns one outcome per message,
	// in order. An error means the whole batch failed (the plugin trapped, timed out or is quarantined).
	Send(ctx context.Context, ws, channel string, now time.Time, msgs []Outgoing) ([]Outcome, error)
}

// Outgoing is a rendered message as a channel receives it.
type Outgoing struct {
	// ID identifies the message; IdempotencyKey is the same for every try (the message id).
	ID             string
	IdempotencyKey string
	ContactID      string
	To             string
	Fields         []Field
	Headers        []Field
}

// Field is one named value of an outgoing message.
type Field struct{ Name, Value string }

// OutcomeStatus is what a channel says of one message.
type OutcomeStatus uint8

// Outcomes.
const (
	Delivered OutcomeStatus = iota + 1 // handed over for good
	Accepted                           // queued by the provider; a receipt may follow
	Retry                              // failed for now
	Refused                            // failed for good
)

// Outcome is a channel's answer for one message.
type Outcome struct {
	Status     OutcomeStatus
	ProviderID string
	Error      string
	// RetryAfter is when to try again (Retry); 0: the engine's backoff.
	RetryAfter time.Duration
	// Units is what the provider bills the message as (SMS segments), when the channel counts it.
	Units int
}

// PartialError is a channel's error for a batch it sent only part of: it returns every outcome anyway (those of
// the messages it did not send are retries), and the engine keeps them while counting the batch as failed.
type PartialError struct{ Err error }

func (e *PartialError) Error() string { return "part of the batch failed: " + e.Err.Error() }
func (e *PartialError) Unwrap() error { return e.Err }

// Options tune the engine. Zero values take the defaults.
type Options struct {
	// Batch is the most messages claimed and handed to a channel at once (default 500).
	Batch int
	// Workers is how many batches of one campaign are in flight at once (default 2).
	Workers int
	// Lease is how long a claimed message stays with the engine before it may be claimed again (default 5m).
	Lease time.Duration
	// RetryBase is the first retry's delay; each further retry doubles it, up to an hour (default 30s).
	RetryBase time.Duration
	// MaxAttempts is how many times a message is tried before it fails for good (default 6).
	MaxAttempts int
	// PauseAfter is how many batches in a row a channel may fail as a whole before the campaign pauses with the
	// reason (default 5).
	PauseAfter int
	// Tick is how often the engine looks for due work when nothing wakes it (default 1s).
	Tick time.Duration
	// Rules reads a workspace's sending rules (frequency cap, quiet hours); nil: none.
	Rules func(ctx context.Context, ws string) (workspaces.CampaignRules, error)
	// Links signs the unsubscribe, open and click links of messages; nil: messages carry none.
	Links *Links
	// Consent changes a contact's consent (the contacts service's SetConsent), for unsubscribe links.
	Consent func(ctx context.Context, ws, contactID, channel string, status contacts.ConsentStatus, source string) error
	// SetAttributes writes attributes of a contact (the contacts service's Update): the preference page's
	// unsubscribed_topics.
	SetAttributes func(ctx context.Context, ws, contactID string, attrs map[string]any, source string) error
}

func (o Options) withDefaults() Options {
	if o.Batch <= 0 {
		o.Batch = 500
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.Lease <= 0 {
		o.Lease = 5 * time.Minute
	}
	if o.RetryBase <= 0 {
		o.RetryBase = 30 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 6
	}
	if o.PauseAfter <= 0 {
		o.PauseAfter = 5
	}
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
	return o
}

// Service manages campaigns and runs their delivery.
type Service struct {
	store    Store
	segments Segments
	channels Channels
	log      hclog.Logger
	now      func() time.Time
	opts     Options

	// mu serialises changes of a campaign's record (edits, status changes) with the engine's; the engine claims
	// messages under its read lock.
	mu sync.RWMutex

	engine   *engine
	triggers *triggers
	goals    *goals
	limits   limiters
	zones    zones
}

// NewService returns a service; Start runs its engine.
func NewService(store Store, segs Segments, channels Channels, log hclog.Logger, now func() time.Time, opts Options) *Service {
	if now == nil {
		now = time.Now
	}
	s := &Service{store: store, segments: segs, channels: channels, log: log.Named("campaigns"), now: now, opts: opts.withDefaults()}
	s.engine = newEngine(s)
	s.triggers = newTriggers(s)
	s.goals = newGoals(s)
	return s
}

// Input is a campaign's definition as the API takes it; in an update, absent fields are left as they are.
type Input struct {
	Name            *string    `json:"name"`
	Audience        *Audience  `json:"audience"`
	Strategy        *string    `json:"strategy"`
	Channels        *[]Channel `json:"channels"`
	Schedule        *Schedule  `json:"schedule"`
	Goal            *Goal      `json:"goal"`
	StrictVariables *bool      `json:"strict_variables"`
	Transactional   *bool      `json:"transactional"`
	Variants        *[]Variant `json:"variants"`
	Test            *Test      `json:"test"`
	Topic           *string    `json:"topic"`
}

func (in Input) apply(c *Campaign) {
	if in.Name != nil {
		c.Name = *in.Name
	}
	if in.Audience != nil {
		c.Audience = *in.Audience
		if c.Audience.Include == nil {
			c.Audience.Include = []string{} // shown as [], never null
		}
	}
	if in.Strategy != nil {
		c.Strategy = *in.Strategy
	}
	if in.Channels != nil {
		c.Channels = *in.Channels
		for i := range c.Channels {
			if c.Channels[i].Content == nil {
				c.Channels[i].Content = map[string]string{}
			}
		}
	}
	if in.Schedule != nil {
		c.Schedule = *in.Schedule
	}
	if in.Goal != nil {
		c.Goal = in.Goal
		if in.Goal.Event == "" && in.Goal.Within == "" {
			c.Goal = nil // {"goal":{}} removes it
		}
	}
	if in.StrictVariables != nil {
		c.StrictVariables = *in.StrictVariables
	}
	if in.Transactional != nil {
		c.Transactional = *in.Transactional
	}
	if in.Variants != nil {
		c.Variants = *in.Variants
	}
	if in.Topic != nil {
		c.Topic = *in.Topic
	}
	if in.Test != nil {
		c.Test = in.Test
		if in.Test.Percent == 0 && in.Test.Window == "" && in.Test.Metric == "" {
			c.Test = nil // {"test":{}} removes it
		}
	}
}

// View is a campaign with its progress, as the API shows it.
type View struct {
	Campaign
	Progress Progress `json:"progress"`
}

// Progress is how far a campaign's delivery is.
type Progress struct {
	Counts
	// Remaining is the messages not sent or settled yet; Rate the messages settled per second over the last
	// minute; ETA when the remaining ones should be done at that rate (absent when unknown).
	Remaining int        `json:"remaining"`
	Rate      float64    `json:"rate"`
	ETA       *time.Time `json:"eta,omitempty"`
	// Planning is true while the current run's audience is still being planned.
	Planning bool `json:"planning"`
}

func (s *Service) channelInfo(name string) (ChannelInfo, bool) {
	if s.channels == nil {
		return ChannelInfo{}, false
	}
	return s.channels.Channel(name)
}

// Create saves a new draft campaign.
func (s *Service) Create(ctx context.Context, ws string, in Input, actor string) (View, error) {
	now := s.now().UTC()
	c := Campaign{ID: "cmp_" + contacts.NewID(now), Status: Draft, Strategy: StrategyAll, Schedule: Schedule{Kind: SendNow},
		Audience: Audience{Include: []string{}}, Channels: []Channel{}, CreatedAt: now, UpdatedAt: now}
	in.apply(&c)
	if in.Name == nil {
		return View{}, errs.Invalid("name", "is required")
	}
	if err := c.validate(s.channelInfo); err != nil {
		return View{}, err
	}
	if err := s.checkTopic(ctx, ws, c); err != nil {
		return View{}, err
	}
	if err := s.store.PutCampaign(ctx, ws, c, s.entry("created", actor, "")); err != nil {
		return View{}, err
	}
	return s.view(ctx, ws, c)
}

// Get returns a campaign with its progress.
func (s *Service) Get(ctx context.Context, ws, id string) (View, error) {
	c, err := s.get(ctx, ws, id)
	if err != nil {
		return View{}, err
	}
	return s.view(ctx, ws, c)
}

func (s *Service) get(ctx context.Context, ws, id string) (Campaign, error) {
	if !ValidID(id) {
		return Campaign{}, fmt.Errorf("campaign %q: %w", id, errs.ErrNotFound)
	}
	return s.store.GetCampaign(ctx, ws, id)
}

// List returns the workspace's campaigns, oldest first, with their progress.
func (s *Service) List(ctx context.Context, ws string) ([]View, error) {
	list, err := s.store.ListCampaigns(ctx, ws)
	if err != nil {
		return nil, err
	}
	out := make([]View, 0, len(list))
	for _, c := range list {
		v, err := s.view(ctx, ws, c)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (s *Service) view(ctx context.Context, ws string, c Campaign) (View, error) {
	counts, err := s.store.CampaignCounts(ctx, ws, c.ID)
	if err != nil {
		return View{}, err
	}
	p := Progress{Counts: counts, Remaining: counts.Pending()}
	if c.Status == Running && c.Runs > 0 {
		_, done, err := s.store.PlanCursor(ctx, ws, c.ID, c.Runs)
		if err != nil {
			return View{}, err
		}
		p.Planning = !done
	}
	p.Rate = s.engine.rate(ws, c.ID)
	if p.Rate > 0 && p.Remaining > 0 {
		eta := s.now().UTC().Add(time.Duration(float64(p.Remaining) / p.Rate * float64(time.Second))).Truncate(time.Second)
		p.ETA = &eta
	}
	return View{Campaign: c, Progress: p}, nil
}

// Update edits a draft.
func (s *Service) Update(ctx context.Context, ws, id string, in Input, actor string) (View, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.get(ctx, ws, id)
	if err != nil {
		return View{}, err
	}
	if !c.Editable() {
		return View{}, fmt.Errorf("campaign %s is %s: only a draft can be edited (pause, resume or cancel it instead): %w", id, c.Status, errs.ErrConflict)
	}
	in.apply(&c)
	if err := c.validate(s.channelInfo); err != nil {
		return View{}, err
	}
	if err := s.checkTopic(ctx, ws, c); err != nil {
		return View{}, err
	}
	c.UpdatedAt = s.now().UTC()
	if err := s.store.PutCampaign(ctx, ws, c, s.entry("edited", actor, "")); err != nil {
		return View{}, err
	}
	return s.view(ctx, ws, c)
}

// Delete removes a campaign that is not sending (a draft, or a finished one) with its outbox.
func (s *Service) Delete(ctx context.Context, ws, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.get(ctx, ws, id)
	if err != nil {
		return err
	}
	if c.Status == Running || c.Status == Scheduled || c.Status == Paused {
		return fmt.Errorf("campaign %s is %s: cancel it before deleting it: %w", id, c.Status, errs.ErrConflict)
	}
	s.engine.forget(ws, id)
	return s.store.DeleteCampaign(ctx, ws, id)
}

// Launch starts a draft: it becomes scheduled, or running when its first run is due now. Launching a campaign
// already launched changes nothing (idempotent).
func (s *Service) Launch(ctx context.Context, ws, id, actor string) (View, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.get(ctx, ws, id)
	if err != nil {
		return View{}, err
	}
	if c.Status != Draft {
		if c.Finished() {
			return View{}, fmt.Errorf("campaign %s is %s: %w", id, c.Status, errs.ErrConflict)
		}
		return s.view(ctx, ws, c) // launched already
	}
	if err := c.validate(s.channelInfo); err != nil {
		return View{}, err
	}
	if err := c.readyToLaunch(s.channelInfo); err != nil {
		return View{}, err
	}
	if err := s.checkTopic(ctx, ws, c); err != nil {
		return View{}, err
	}
	if t := c.Schedule.Trigger; t != nil && t.Segment != "" {
		if _, _, err := s.segments.MemberIDs(ctx, ws, t.Segment, "", 1); errors.Is(err, errs.ErrNotFound) {
			return View{}, errs.Invalid("schedule.trigger.segment", "segment %q does not exist (deleted?)", t.Segment)
		} else if err != nil {
			return View{}, err
		}
	}
	for i, seg := range append(append([]string{}, c.Audience.Include...), c.Audience.Exclude...) {
		if _, _, err := s.segments.MemberIDs(ctx, ws, seg, "", 1); err != nil {
			if errors.Is(err, errs.ErrNotFound) {
				field := "audience.include"
				if i >= len(c.Audience.Include) {
					field = "audience.exclude"
				}
				return View{}, errs.Invalid(field, "segment %q does not exist (deleted?)", seg)
			}
			return View{}, err
		}
	}
	now := s.now().UTC()
	next, err := c.Schedule.first(now)
	if err != nil {
		return View{}, err
	}
	c.Status = Scheduled
	c.NextRunAt = &next
	detail := "next run " + next.Format(time.RFC3339)
	if c.Schedule.Kind == SendTriggered {
		// Always running: each trigger plans its own messages (run numbers are the triggers').
		c.Status, c.NextRunAt, c.Runs, detail = Running, nil, 1, "listening for triggers"
	}
	c.LaunchedAt = &now
	c.UpdatedAt = now
	if err := s.store.PutCampaign(ctx, ws, c, s.entry("launched", actor, detail)); err != nil {
		return View{}, err
	}
	if err := s.triggers.refresh(ctx, ws); err != nil {
		return View{}, err
	}
	if err := s.goals.refresh(ctx, ws); err != nil {
		return View{}, err
	}
	s.engine.watch(ws, id)
	return s.view(ctx, ws, c)
}

// checkTopic refuses a campaign topic the workspace does not have.
func (s *Service) checkTopic(ctx context.Context, ws string, c Campaign) error {
	if c.Topic == "" {
		return nil
	}
	topics, err := s.topics(ctx, ws)
	if err != nil {
		return err
	}
	for _, t := range topics {
		if t.ID == c.Topic {
			return nil
		}
	}
	return errs.Invalid("topic", "the workspace has no topic %q (settings.campaigns.topics)", c.Topic)
}

// topics are the workspace's topics.
func (s *Service) topics(ctx context.Context, ws string) ([]workspaces.Topic, error) {
	if s.opts.Rules == nil {
		return nil, nil
	}
	r, err := s.opts.Rules(ctx, ws)
	return r.Topics, err
}

// first is when a launched schedule's first run is.
func (s *Schedule) first(now time.Time) (time.Time, error) {
	switch s.Kind {
	case SendAt:
		at := s.At.UTC()
		if s.LocalTime {
			// The earliest zone reaches the wall-clock time first: about 14 hours before UTC does.
			at = at.Add(-14 * time.Hour)
		}
		return maxTime(at, now), nil
	case SendRecurring:
		return nextCron(s.Cron, s.location(), now)
	}
	return now, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Pause stops a scheduled or running campaign from sending; messages stay queued.
func (s *Service) Pause(ctx context.Context, ws, id, actor string) (View, error) {
	return s.transition(ctx, ws, id, actor, "paused", func(c *Campaign) error {
		switch c.Status {
		case Paused:
			return nil
		case Running, Scheduled:
			c.Status, c.Reason = Paused, ""
			return nil
		}
		return fmt.Errorf("campaign %s is %s: only a scheduled or running campaign can be paused: %w", c.ID, c.Status, errs.ErrConflict)
	})
}

// Resume continues a paused campaign.
func (s *Service) Resume(ctx context.Context, ws, id, actor string) (View, error) {
	return s.transition(ctx, ws, id, actor, "resumed", func(c *Campaign) error {
		switch c.Status {
		case Running, Scheduled:
			return nil
		case Paused:
			c.Status, c.Reason = Scheduled, ""
			if c.RunStartedAt != nil || c.Schedule.Kind == SendTriggered {
				c.Status = Running // back to the run it was sending, or to listening for triggers
			}
			return nil
		}
		return fmt.Errorf("campaign %s is %s: only a paused campaign can be resumed: %w", c.ID, c.Status, errs.ErrConflict)
	})
}

// Cancel ends a campaign for good: its pending messages are cancelled.
func (s *Service) Cancel(ctx context.Context, ws, id, actor string) (View, error) {
	v, err := s.transition(ctx, ws, id, actor, "cancelled", func(c *Campaign) error {
		switch c.Status {
		case Cancelled:
			return nil
		case Completed:
			return fmt.Errorf("campaign %s is completed: %w", c.ID, errs.ErrConflict)
		}
		now := s.now().UTC()
		c.Status, c.FinishedAt, c.NextRunAt = Cancelled, &now, nil
		return nil
	})
	if err != nil {
		return v, err
	}
	if _, err := s.store.CancelMessages(ctx, ws, id); err != nil {
		return View{}, err
	}
	return s.Get(ctx, ws, id)
}

// transition changes a campaign's status under mu, records it, and tells the engine.
func (s *Service) transition(ctx context.Context, ws, id, actor, action string, change func(*Campaign) error) (View, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.get(ctx, ws, id)
	if err != nil {
		return View{}, err
	}
	before := c.Status
	if err := change(&c); err != nil {
		return View{}, err
	}
	if c.Status != before {
		c.UpdatedAt = s.now().UTC()
		if err := s.store.PutCampaign(ctx, ws, c, s.entry(action, actor, c.Reason)); err != nil {
			return View{}, err
		}
		if c.Schedule.Kind == SendTriggered {
			if err := s.triggers.refresh(ctx, ws); err != nil {
				return View{}, err
			}
		}
		s.engine.watch(ws, id)
	}
	return s.view(ctx, ws, c)
}

// Audit returns a campaign's audit trail, oldest first.
func (s *Service) Audit(ctx context.Context, ws, id string) ([]AuditEntry, error) {
	if _, err := s.get(ctx, ws, id); err != nil {
		return nil, err
	}
	return s.store.Audit(ctx, ws, id)
}

// entry is an audit entry of now, recorded with the campaign change it describes (Store.PutCampaign).
func (s *Service) entry(action, actor, detail string) AuditEntry {
	return AuditEntry{At: s.now().UTC(), Action: action, Actor: actor, Detail: detail}
}

// Messages lists a campaign's outbox, optionally of one status.
func (s *Service) Messages(ctx context.Context, ws, id string, status MessageStatus, cursor string, limit int) ([]Message, string, error) {
	if _, err := s.get(ctx, ws, id); err != nil {
		return nil, "", err
	}
	if status != "" && !status.Valid() {
		return nil, "", errs.Invalid("status", "must be one of queued, sending, sent, failed, skipped, cancelled")
	}
	return s.store.ListMessages(ctx, ws, id, status, cursor, limit)
}
