package campaigns

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/errs"
)

// softBounceLimit is how many soft bounces in a row (messages bounced, no delivery between) withdraw a contact's
// consent on the channel.
const softBounceLimit = 3

// Feedback is one event a channel's provider reported about a sent message (through the channel plugin's
// receive): what Service.Feedback acts on.
type Feedback struct {
	// Type is delivered, bounced, deferred, complained, opened, clicked, unsubscribed or replied.
	Type string
	// MessageID is the message's id, as the channel got it (its idempotency key).
	MessageID string
	// Address is the email address or phone number the event is about: what finds the contact of an event that
	// names no message (an SMS STOP reply).
	Address string
	// Permanent marks a hard bounce.
	Permanent bool
	Detail    string
}

// Feedback acts on a channel's delivery feedback for messages of the workspace:
//
//   - delivered: counted;
//   - bounced: a hard bounce (permanent) is counted and withdraws the contact's consent on the channel (source
//     "hard bounce"), so that no campaign sends there again; a soft one is counted, and the third in a row (no
//     delivery between) withdraws consent too (source "soft bounces");
//   - complained (reported as spam): counted, and consent withdrawn (source "complaint");
//   - unsubscribed (an SMS STOP, a provider's own link): consent withdrawn (source "provider unsubscribe");
//   - opened, clicked (tracked by the provider): counted as opens and clicks;
//   - deferred, replied: nothing yet.
//
// An event for a message that is not in the outbox (another system's, a deleted campaign's) is skipped. It
// returns the first error of an event it could not record (the webhook should then be delivered again: recording
// is idempotent but for opens and clicks).
func (s *Service) Feedback(ctx context.Context, ws, channel string, events []Feedback) error {
	var errsSeen []error
	for _, f := range events {
		if err := s.feedback(ctx, ws, channel, f); err != nil {
			errsSeen = append(errsSeen, fmt.Errorf("%s of %s: %w", f.Type, f.MessageID, err))
		}
	}
	return errors.Join(errsSeen...)
}

func (s *Service) feedback(ctx context.Context, ws, channel string, f Feedback) error {
	if f.MessageID == "" {
		if f.Type == "unsubscribed" && f.Address != "" {
			return s.unsubscribeAddress(ctx, ws, channel, f.Address)
		}
		return nil // found by the provider's id: not kept yet
	}
	m, err := s.store.GetMessage(ctx, ws, f.MessageID)
	if errors.Is(err, errs.ErrNotFound) || isInvalid(err) {
		s.log.Debug("feedback for a message not in the outbox", "workspace", ws, "channel", channel, "type", f.Type)
		return nil
	}
	if err != nil {
		return err
	}
	if m.Channel != channel {
		// Only the channel a message went out on speaks for it: another plugin's webhook cannot act on it.
		s.log.Warn("feedback from another channel than the message's", "workspace", ws, "channel", channel, "type", f.Type)
		return nil
	}
	var kind Engagement
	withdraw := ""
	consent := s.consentChannel(m)
	switch f.Type {
	case "delivered":
		kind = Delivery
		if err := s.store.ClearSoftBounces(ctx, ws, m.Contact, consent); err != nil {
			return err
		}
	case "bounced":
		kind = SoftBounce
		if f.Permanent {
			kind, withdraw = HardBounce, "hard bounce"
			break
		}
		// A mailbox full today may be gone for good: past a few soft bounces in a row, stop sending there.
		if first, err := s.store.RecordEngagement(ctx, ws, f.MessageID, SoftBounce); err != nil || !first {
			return err // counted once per message
		}
		n, err := s.store.SoftBounce(ctx, ws, m.Contact, consent)
		if err != nil {
			return err
		}
		if n >= softBounceLimit && s.opts.Consent != nil {
			if err := s.opts.Consent(ctx, ws, m.Contact, consent, contacts.Unsubscribed, "soft bounces"); err != nil && !errors.Is(err, errs.ErrNotFound) {
				return err
			}
		}
		return nil
	case "complained":
		kind, withdraw = Complaint, "complaint"
	case "unsubscribed":
		kind, withdraw = Unsubscribe, "provider unsubscribe"
	case "opened":
		kind = Open
	case "clicked":
		kind = Click
	default:
		return nil
	}
	if withdraw != "" && s.opts.Consent != nil {
		if err := s.opts.Consent(ctx, ws, m.Contact, consent, contacts.Unsubscribed, withdraw); err != nil && !errors.Is(err, errs.ErrNotFound) {
			return err
		}
	}
	_, err = s.store.RecordEngagement(ctx, ws, f.MessageID, kind)
	return err
}

func isInvalid(err error) bool {
	var ve *errs.ValidationError
	return errors.As(err, &ve)
}

func isNotFound(err error) bool { return errors.Is(err, errs.ErrNotFound) }

// unsubscribeAddress withdraws, on the channel's consent, the consent of the contact holding an address: an SMS
// STOP, which names the sender's number and no message.
func (s *Service) unsubscribeAddress(ctx context.Context, ws, channel, address string) error {
	info, ok := s.channelInfo(channel)
	if !ok || info.Consent == "" || s.opts.Consent == nil {
		return nil
	}
	kind := contacts.ByPhone
	if strings.Contains(address, "@") {
		kind = contacts.ByEmail
	}
	var id string
	err := s.store.ViewContacts(ctx, ws, func(tx contacts.Tx) error {
		id, _ = tx.Lookup(kind, address)
		return nil
	})
	if err != nil || id == "" {
		return err
	}
	if err := s.opts.Consent(ctx, ws, id, info.Consent, contacts.Unsubscribed, "provider unsubscribe"); err != nil && !errors.Is(err, errs.ErrNotFound) {
		return err
	}
	return nil
}
