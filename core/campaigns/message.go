package campaigns

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/events"
)

// MessageStatus is where an outbox message is.
type MessageStatus string

// Outbox message statuses. queued and sending are pending; the others are final.
const (
	// Queued: planned, waiting for its due time (a first try or a retry).
	Queued MessageStatus = "queued"
	// Sending: claimed by the engine and handed (or about to be handed) to the channel. A message found sending
	// after a crash, or once its lease has passed, is sent again with the same idempotency key.
	Sending MessageStatus = "sending"
	// Sent: the channel took it (delivered or accepted by the provider).
	Sent MessageStatus = "sent"
	// Failed: for good (the channel refused it, retries ran out, a template error).
	Failed MessageStatus = "failed"
	// Skipped: not sent, by rule (no consent, no address, excluded at send time).
	Skipped MessageStatus = "skipped"
	// MessageCancelled: the campaign was cancelled before it was sent.
	MessageCancelled MessageStatus = "cancelled"
)

// Final reports whether the status never changes again.
func (s MessageStatus) Final() bool { return s != Queued && s != Sending }

// Valid reports whether s is a status.
func (s MessageStatus) Valid() bool {
	switch s {
	case Queued, Sending, Sent, Failed, Skipped, MessageCancelled:
		return true
	}
	return false
}

// Message is one outbox message: one contact, one channel slot of one run of a campaign.
type Message struct {
	Campaign string `json:"campaign"`
	Run      int    `json:"run"`
	Contact  string `json:"contact_id"`
	// Slot is the channel's index in the campaign (StrategyAll), or 0 (StrategyFallback: the channel is chosen at
	// send time).
	Slot   int           `json:"slot"`
	Status MessageStatus `json:"status"`
	// Channel is the plugin it went to, once sent or tried.
	Channel string `json:"channel,omitempty"`
	// To is the address it went to.
	To       string `json:"to,omitempty"`
	Attempts int    `json:"attempts"`
	// Due is when a pending message is tried next (for one being sent: when its claim lapses).
	Due time.Time `json:"due,omitzero"`
	// ProviderID is the provider's id for the message, when the channel gives one.
	ProviderID string `json:"provider_id,omitempty"`
	// Units is what the provider bills the sent message as, when the channel counts it: SMS segments.
	Units int `json:"units,omitempty"`
	// Variant is the A/B variant the message gets (1-based); 0 without variants, VariantPending while it waits
	// for the test's winner.
	Variant int `json:"variant,omitempty"`
	// Trigger is, for a triggered campaign's message, the message id of the event that triggered it (its
	// properties are the template's event.* variables).
	Trigger   string    `json:"trigger,omitempty"`
	Error     string    `json:"error,omitempty"`
	PlannedAt time.Time `json:"planned_at"`
	// Transactional marks, when a message is saved sent, a transactional campaign's message: frequency caps do not
	// count it. Not kept in the outbox.
	Transactional bool      `json:"-"`
	SentAt        time.Time `json:"sent_at,omitzero"`
}

// ID is the message's key as text: campaign, run, contact and slot. It is the idempotency key channels pass to
// their provider, stable across retries and restarts.
func (m *Message) ID() string {
	return fmt.Sprintf("%s.%d.%s.%d", m.Campaign, m.Run, m.Contact, m.Slot)
}

// ParseMessageID reads a message id back.
func ParseMessageID(id string) (campaign string, run int, contact string, slot int, ok bool) {
	parts := strings.Split(id, ".")
	if len(parts) != 4 || !ValidID(parts[0]) || !contacts.ValidID(parts[2]) {
		return "", 0, "", 0, false
	}
	r, err1 := strconv.Atoi(parts[1])
	s, err2 := strconv.Atoi(parts[3])
	if err1 != nil || err2 != nil || r < 1 || s < 0 || s >= maxChannels {
		return "", 0, "", 0, false
	}
	return parts[0], r, parts[2], s, true
}

// Counts are a campaign's messages by status, kept exact by the store as messages change.
type Counts struct {
	Planned   int `json:"planned"`
	Queued    int `json:"queued"`
	Sending   int `json:"sending"`
	Sent      int `json:"sent"`
	Failed    int `json:"failed"`
	Skipped   int `json:"skipped"`
	Cancelled int `json:"cancelled"`
	// Engagement, from the messages' signed links: opens and clicks (every one, and the messages with at least
	// one), and unsubscribes.
	Opened        int `json:"opened"`
	OpenedUnique  int `json:"opened_unique"`
	Clicked       int `json:"clicked"`
	ClickedUnique int `json:"clicked_unique"`
	Unsubscribed  int `json:"unsubscribed"`
	// Delivery feedback from the channels' providers (Service.Feedback): delivered, bounced for good (hard) or
	// for now (soft), reported as spam.
	Delivered   int `json:"delivered"`
	BouncedHard int `json:"bounced_hard"`
	BouncedSoft int `json:"bounced_soft"`
	Complained  int `json:"complained"`
	// Converted counts the messages followed by the campaign's goal event within its window.
	Converted int `json:"converted"`
	// Units sums the sent messages' units, where their channel counts them: the SMS segments a provider bills.
	Units int `json:"units,omitempty"`
}

// Merge adds d to c, field by field.
func (c *Counts) Merge(d Counts) {
	c.Planned += d.Planned
	c.Queued += d.Queued
	c.Sending += d.Sending
	c.Sent += d.Sent
	c.Units += d.Units
	c.Failed += d.Failed
	c.Skipped += d.Skipped
	c.Cancelled += d.Cancelled
	c.Opened += d.Opened
	c.OpenedUnique += d.OpenedUnique
	c.Clicked += d.Clicked
	c.ClickedUnique += d.ClickedUnique
	c.Unsubscribed += d.Unsubscribed
	c.Delivered += d.Delivered
	c.BouncedHard += d.BouncedHard
	c.BouncedSoft += d.BouncedSoft
	c.Complained += d.Complained
	c.Converted += d.Converted
}

// Engagement is what a message's recipient did with it.
type Engagement byte

// Engagements.
const (
	Open        Engagement = 'o'
	Click       Engagement = 'c'
	Unsubscribe Engagement = 'u'
	Delivery    Engagement = 'd' // the provider delivered it
	HardBounce  Engagement = 'h'
	SoftBounce  Engagement = 's'
	Complaint   Engagement = 'p'
	Conversion  Engagement = 'v' // the goal event followed it
)

// SentMessage is a message in a contact's send log: which one, and when it was sent.
type SentMessage struct {
	Message
	At time.Time
}

// Add counts one message of status s, n times (n may be negative).
func (c *Counts) Add(s MessageStatus, n int) {
	switch s {
	case Queued:
		c.Queued += n
	case Sending:
		c.Sending += n
	case Sent:
		c.Sent += n
	case Failed:
		c.Failed += n
	case Skipped:
		c.Skipped += n
	case MessageCancelled:
		c.Cancelled += n
	}
}

// Pending is the number of messages not final yet.
func (c Counts) Pending() int { return c.Queued + c.Sending }

// AuditEntry is one event in a campaign's life: created, edited, launched, paused (by whom or why), ...
type AuditEntry struct {
	At     time.Time `json:"at"`
	Action string    `json:"action"`
	Actor  string    `json:"actor"`
	Detail string    `json:"detail,omitempty"`
}

// Store keeps campaigns and their outbox in the workspace's file, beside the contacts it reads profiles from.
// core/store implements it.
type Store interface {
	contacts.Store
	// PutCampaign creates or replaces a campaign, and appends audit entries to its trail in the same transaction.
	PutCampaign(ctx context.Context, ws string, c Campaign, audit ...AuditEntry) error
	// GetCampaign returns a campaign (errs.ErrNotFound when there is none).
	GetCampaign(ctx context.Context, ws, id string) (Campaign, error)
	// ListCampaigns returns the workspace's campaigns in id order (creation order).
	ListCampaigns(ctx context.Context, ws string) ([]Campaign, error)
	// DeleteCampaign removes a campaign with its outbox, counts and audit trail.
	DeleteCampaign(ctx context.Context, ws, id string) error
	// Audit lists a campaign's audit trail (entries come with PutCampaign), oldest first.
	Audit(ctx context.Context, ws, id string) ([]AuditEntry, error)

	// PlanMessages adds the messages that are not in the outbox yet (by key: campaign, run, contact, slot), as
	// queued, and records after as the run's planning cursor, in one transaction; it returns how many it added.
	PlanMessages(ctx context.Context, ws string, msgs []Message, after string) (int, error)
	// PlanCursor returns a run's planning cursor: the last contact id planned ("" before any), and whether
	// planning finished (FinishPlan).
	PlanCursor(ctx context.Context, ws, campaign string, run int) (after string, done bool, err error)
	// FinishPlan records that a run's planning finished.
	FinishPlan(ctx context.Context, ws, campaign string, run int) error
	// ClaimMessages marks up to limit of a campaign's messages due at now (queued, or sending with a lease
	// passed) as sending, with attempts+1 and a lease until now+lease, and returns them, soonest due first.
	ClaimMessages(ctx context.Context, ws, campaign string, now time.Time, lease time.Duration, limit int) ([]Message, error)
	// ReleaseClaims makes every message of a campaign left sending claimable at now (its lease ends now): at
	// start, what the last process was sending when it stopped. It returns how many.
	ReleaseClaims(ctx context.Context, ws, campaign string, now time.Time) (int, error)
	// SaveMessages writes messages' new status (and due time, channel, address, error) in one transaction.
	SaveMessages(ctx context.Context, ws string, msgs []Message) error
	// CancelMessages marks every pending message of a campaign cancelled.
	CancelMessages(ctx context.Context, ws, campaign string) (int, error)
	// CampaignCounts returns a campaign's messages by status.
	CampaignCounts(ctx context.Context, ws, campaign string) (Counts, error)
	// ListMessages returns up to limit of a campaign's messages after the message id after, in key order, only
	// those of status (any when ""); the next cursor is "" at the end.
	ListMessages(ctx context.Context, ws, campaign string, status MessageStatus, after string, limit int) ([]Message, string, error)
	// PlanTriggered plans triggered messages, hit by hit, each unless its campaign's re-entry rule refuses it
	// (see TriggerHit), in one transaction; it returns how many hits were accepted.
	PlanTriggered(ctx context.Context, ws string, hits []TriggerHit) (int, error)
	// CountSends returns how many marketing messages each contact was sent at or after since.
	CountSends(ctx context.Context, ws string, contactIDs []string, since time.Time) (map[string]int, error)
	// CampaignBreakdown returns a campaign's outcome and engagement counts by A/B variant and by channel.
	CampaignBreakdown(ctx context.Context, ws, campaign string) (map[int]Counts, map[string]Counts, error)
	// RecordEngagement counts an open, a click, an unsubscribe or a provider's feedback on a message (errs.ErrNotFound
	// when there is no such message) and its campaign's totals, in one transaction; first is true for the message's
	// first of that kind (all but opens and clicks are counted once per message).
	RecordEngagement(ctx context.Context, ws, msgID string, kind Engagement) (first bool, err error)
	// SentSince returns the messages a contact was sent at or after since, oldest first.
	SentSince(ctx context.Context, ws, contactID string, since time.Time) ([]SentMessage, error)
	// ForgetAddresses blanks the address of every outbox message to a contact (the contact was erased).
	ForgetAddresses(ctx context.Context, ws, contactID string) (int, error)
	// SoftBounce counts a contact's soft bounce on a consent channel and returns the count since the last
	// delivery; ClearSoftBounces forgets them.
	SoftBounce(ctx context.Context, ws, contactID, channel string) (int, error)
	ClearSoftBounces(ctx context.Context, ws, contactID, channel string) error
	// ForgetSends deletes a contact's send log and soft bounces (the contact was erased).
	ForgetSends(ctx context.Context, ws, contactID string) error
	// TrackedEvent returns a stored event by message id.
	TrackedEvent(ctx context.Context, ws, messageID string) (events.Event, bool, error)
	// GetMessage returns one message by id.
	GetMessage(ctx context.Context, ws, id string) (Message, error)
}

// TriggerHit is one contact's trigger of a triggered campaign, with the messages it plans.
type TriggerHit struct {
	Campaign string
	Contact  string
	At       time.Time
	// Gap is the re-entry rule: a hit within Gap of the contact's last accepted one is dropped; 0 accepts every
	// hit, a negative Gap only the first ever.
	Gap      time.Duration
	Messages []Message
}
