package campaigns

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/internal/period"
)

// Status is where a campaign is in its life:
//
//	draft -> scheduled -> running -> completed
//	              \          |  ^
//	               \         v  |
//	                \----> paused
//	any but completed -> cancelled
//
// A draft is edited freely. Launch makes it scheduled (its first run is in the future) or running. A running
// campaign only pauses, resumes or is cancelled: its content and audience are frozen.
type Status string

// Campaign statuses.
const (
	Draft     Status = "draft"
	Scheduled Status = "scheduled"
	Running   Status = "running"
	Paused    Status = "paused"
	Completed Status = "completed"
	Cancelled Status = "cancelled"
)

// Channel strategies.
const (
	// StrategyAll sends on every channel of the campaign the contact can receive (consent and an address).
	StrategyAll = "all"
	// StrategyFallback sends on the first channel, in the campaign's order, the contact can receive.
	StrategyFallback = "fallback"
)

// Schedule kinds.
const (
	// SendNow: one run, planned at launch.
	SendNow = "now"
	// SendAt: one run, at Schedule.At (or at that wall-clock time in each contact's timezone, LocalTime).
	SendAt = "at"
	// SendRecurring: a run at each time of a cron expression, each targeting the audience as it is then.
	SendRecurring = "recurring"
)

// Campaign is one message to an audience, over one or more channels, each with its own content.
type Campaign struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Reason says why the engine paused or ended the campaign (a failing channel, an audience segment deleted).
	Reason   string    `json:"reason,omitempty"`
	Audience Audience  `json:"audience"`
	Strategy string    `json:"strategy"`
	Channels []Channel `json:"channels"`
	Schedule Schedule  `json:"schedule"`
	// Goal is the conversion a campaign is judged by; optional.
	Goal *Goal `json:"goal,omitempty"`
	// StrictVariables makes a variable the contact lacks an error (the message fails) instead of empty text.
	StrictVariables bool `json:"strict_variables,omitempty"`
	// Transactional messages go to every contact who has not unsubscribed from the channel; marketing messages
	// (the default) only to those who subscribed.
	Transactional bool `json:"transactional,omitempty"`
	// Topic is the workspace topic (settings.campaigns.topics) the campaign is about: contacts who unsubscribed
	// from it do not get it, and its one-click unsubscribe drops the topic rather than the channel.
	Topic      string     `json:"topic,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	LaunchedAt *time.Time `json:"launched_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// Runs is the number of audience passes planned so far (one for a one-off campaign).
	Runs int `json:"runs"`
	// NextRunAt is when the next run will be planned (scheduled or recurring campaigns).
	NextRunAt *time.Time `json:"next_run_at,omitempty"`
	// RunStartedAt is when the current run began.
	RunStartedAt *time.Time `json:"run_started_at,omitempty"`
	// Variants are an A/B/n test's versions of the content; Test, its test group and winner rule (abtest.go).
	Variants []Variant `json:"variants,omitempty"`
	Test     *Test     `json:"test,omitempty"`
	// Winner is the variant the test chose, sent to the rest of the audience; WinnerZ, the z statistic of its lead
	// over the runner-up when it was chosen (the rest of the audience then dilutes the live rates).
	Winner  string  `json:"winner,omitempty"`
	WinnerZ float64 `json:"winner_z,omitempty"`
}

// Audience is who a campaign targets: the contacts in any Include segment (rule segments or static lists) and in no
// Exclude segment, as they are when a run is planned.
type Audience struct {
	Include []string `json:"include"`
	Exclude []string `json:"exclude,omitempty"`
}

// Channel is one channel of a campaign: the channel plugin that sends and its content, each field a Liquid template
// (for email: subject, preheader, html, text, from, reply_to; for SMS: text, sender; or what the plugin declares).
type Channel struct {
	Plugin  string            `json:"plugin"`
	Content map[string]string `json:"content"`
}

// Schedule is when a campaign sends.
type Schedule struct {
	Kind string `json:"kind"`
	// At is the time of a SendAt campaign.
	At *time.Time `json:"at,omitempty"`
	// LocalTime sends a SendAt campaign at At's wall-clock time (in Timezone, default UTC) in each contact's own
	// timezone; contacts without one get it at At.
	LocalTime bool `json:"local_time,omitempty"`
	// Cron is a SendRecurring campaign's schedule: five fields (minute hour day month weekday) or a descriptor
	// (@daily, @weekly, @every 2h).
	Cron string `json:"cron,omitempty"`
	// Timezone is the IANA zone Cron and LocalTime read wall-clock times in (default UTC).
	Timezone string `json:"timezone,omitempty"`
	// Trigger is a SendTriggered campaign's trigger.
	Trigger *Trigger `json:"trigger,omitempty"`
}

// Goal is a conversion event and how long after a message it counts.
type Goal struct {
	Event  string `json:"event"`
	Within string `json:"within"` // a duration: "7d", "48h"
}

// Editable reports whether the campaign's content, audience and schedule may still change.
func (c *Campaign) Editable() bool { return c.Status == Draft }

// Finished reports whether the campaign will never send again.
func (c *Campaign) Finished() bool { return c.Status == Completed || c.Status == Cancelled }

var idPattern = regexp.MustCompile(`^cmp_[0-9a-z]{26}$`)

// ValidID reports whether id has the shape of a campaign id.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// maxChannels bounds a campaign's channels; maxContent a template's size.
const (
	maxChannels = 8
	maxContent  = 512 << 10
	maxName     = 200
)

// ChannelInfo is what a channel plugin declares about its messages.
type ChannelInfo struct {
	// Address is the contact field messages go to: "email", "phone", or "none" (the plugin's own configuration
	// says where, as for a webhook).
	Address string
	// Consent is the consent channel checked before sending ("email", "sms", ...).
	Consent string
	// Fields are the content fields it reads, with those required; empty: any field is passed through.
	Fields []ContentField
	// Rate is the most messages per second the channel takes, over a sliding second, across every campaign and
	// workspace (the operator's rate_limit); 0: no cap.
	Rate int
}

// ContentField is one content field a channel declares.
type ContentField struct {
	Name     string
	Required bool
	// SingleLine makes the variables the field shows one line each (CR and LF become spaces): a field read line by
	// line, such as email headers, where a contact's attribute must not add a line.
	SingleLine bool
}

// validate checks a campaign's definition: what a draft may hold. Launch checks more (an audience, channels that
// exist now). channel looks a plugin up.
func (c *Campaign) validate(channel func(string) (ChannelInfo, bool)) error {
	if strings.TrimSpace(c.Name) == "" {
		return errs.Invalid("name", "is required")
	}
	if len(c.Name) > maxName {
		return errs.Invalid("name", "is longer than %d bytes", maxName)
	}
	switch c.Strategy {
	case StrategyAll, StrategyFallback:
	default:
		return errs.Invalid("strategy", "must be %q or %q, not %q", StrategyAll, StrategyFallback, c.Strategy)
	}
	if len(c.Channels) > maxChannels {
		return errs.Invalid("channels", "at most %d channels", maxChannels)
	}
	seen := map[string]bool{}
	for i, ch := range c.Channels {
		field := fmt.Sprintf("channels[%d]", i)
		if ch.Plugin == "" {
			return errs.Invalid(field+".plugin", "is required")
		}
		if seen[ch.Plugin] {
			return errs.Invalid(field+".plugin", "channel %q is listed twice", ch.Plugin)
		}
		seen[ch.Plugin] = true
		info, ok := channel(ch.Plugin)
		if !ok {
			return errs.Invalid(field+".plugin", "no channel plugin %q is loaded", ch.Plugin)
		}
		for name, src := range ch.Content {
			if len(src) > maxContent {
				return errs.Invalid(field+".content."+name, "is larger than %d bytes", maxContent)
			}
			if len(info.Fields) > 0 && !slices.ContainsFunc(info.Fields, func(f ContentField) bool { return f.Name == name }) {
				return errs.Invalid(field+".content."+name, "channel %q has no field %q (it has %s)", ch.Plugin, name, fieldNames(info.Fields))
			}
			if _, err := parseTemplate(src); err != nil {
				return errs.Invalid(field+".content."+name, "%s", err.Error())
			}
		}
	}
	for i, id := range c.Audience.Include {
		if id == "" {
			return errs.Invalid(fmt.Sprintf("audience.include[%d]", i), "is empty")
		}
	}
	for i, id := range c.Audience.Exclude {
		if id == "" {
			return errs.Invalid(fmt.Sprintf("audience.exclude[%d]", i), "is empty")
		}
	}
	if err := c.Schedule.validate(); err != nil {
		return err
	}
	if err := c.validateVariants(); err != nil {
		return err
	}
	if c.Goal != nil {
		if c.Goal.Event == "" {
			return errs.Invalid("goal.event", "is required")
		}
		if _, err := parseWindow(c.Goal.Within); err != nil {
			return errs.Invalid("goal.within", "%s", err.Error())
		}
	}
	return nil
}

// readyToLaunch checks what launching needs beyond a valid definition.
func (c *Campaign) readyToLaunch(channel func(string) (ChannelInfo, bool)) error {
	if len(c.Audience.Include) == 0 && c.Schedule.Kind != SendTriggered {
		return errs.Invalid("audience.include", "names no segment: a campaign needs an audience")
	}
	if len(c.Channels) == 0 {
		return errs.Invalid("channels", "is empty: a campaign needs at least one channel")
	}
	for i, ch := range c.Channels {
		info, _ := channel(ch.Plugin)
		for _, f := range info.Fields {
			if f.Required && strings.TrimSpace(ch.Content[f.Name]) == "" {
				return errs.Invalid(fmt.Sprintf("channels[%d].content.%s", i, f.Name), "is required by channel %q", ch.Plugin)
			}
		}
	}
	return nil
}

func fieldNames(fs []ContentField) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.Name
	}
	return strings.Join(names, ", ")
}

func (s *Schedule) validate() error {
	if s.Timezone != "" {
		if _, err := time.LoadLocation(s.Timezone); err != nil {
			return errs.Invalid("schedule.timezone", "%q is not an IANA time zone", s.Timezone)
		}
	}
	switch s.Kind {
	case SendNow:
		if s.At != nil || s.Cron != "" || s.LocalTime {
			return errs.Invalid("schedule", "a %q schedule takes no at, cron or local_time", SendNow)
		}
	case SendAt:
		if s.At == nil {
			return errs.Invalid("schedule.at", "is required for an %q schedule", SendAt)
		}
		if s.Cron != "" {
			return errs.Invalid("schedule.cron", "is only for a %q schedule", SendRecurring)
		}
	case SendRecurring:
		if s.Cron == "" {
			return errs.Invalid("schedule.cron", "is required for a %q schedule", SendRecurring)
		}
		if _, err := nextCron(s.Cron, s.location(), time.Now()); err != nil {
			return errs.Invalid("schedule.cron", "%s", err.Error())
		}
		if s.At != nil || s.LocalTime {
			return errs.Invalid("schedule", "a %q schedule takes no at or local_time", SendRecurring)
		}
	case SendTriggered:
		if s.At != nil || s.Cron != "" || s.LocalTime {
			return errs.Invalid("schedule", "a %q schedule takes no at, cron or local_time", SendTriggered)
		}
		return s.Trigger.validate()
	default:
		return errs.Invalid("schedule.kind", "must be %q, %q, %q or %q, not %q", SendNow, SendAt, SendRecurring, SendTriggered, s.Kind)
	}
	if s.Trigger != nil {
		return errs.Invalid("schedule.trigger", "is only for a %q schedule", SendTriggered)
	}
	return nil
}

// location is the schedule's time zone (UTC when none or unknown).
func (s *Schedule) location() *time.Location {
	if s.Timezone == "" {
		return time.UTC
	}
	loc, err := time.LoadLocation(s.Timezone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// parseWindow reads a window, a delay or a re-entry period: "7d", "48h".
func parseWindow(s string) (time.Duration, error) { return period.Parse(s) }
