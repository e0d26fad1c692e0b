package campaigns

import (
	"context"
	"fmt"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/errs"
)

// Rendered is one channel's message for one contact, as a preview or a test send shows it.
type Rendered struct {
	Channel string            `json:"channel"`
	To      string            `json:"to"`
	Fields  map[string]string `json:"fields,omitempty"`
	// Skipped says why the contact would not get this channel's message (consent, no address); Error, why it
	// could not be rendered (a template error, with its line).
	Skipped string `json:"skipped,omitempty"`
	Error   string `json:"error,omitempty"`
	// Outcome is a test send's result: "delivered", "accepted", "retry" or "failed", with Detail.
	Outcome string `json:"outcome,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// Preview renders every channel's message of a campaign for one contact, as the engine would send it now.
func (s *Service) Preview(ctx context.Context, ws, id, contactID string) ([]Rendered, error) {
	c, err := s.get(ctx, ws, id)
	if err != nil {
		return nil, err
	}
	ct, err := s.contact(ctx, ws, contactID)
	if err != nil {
		return nil, err
	}
	// The message id this contact's message would have in the campaign's first run.
	m := Message{Campaign: c.ID, Run: max(c.Runs, 1), Contact: ct.ID}
	return s.render(ws, c, &ct, m.ID())
}

func (s *Service) contact(ctx context.Context, ws, contactID string) (contacts.Contact, error) {
	if contactID == "" {
		return contacts.Contact{}, errs.Invalid("contact_id", "is required")
	}
	var ct contacts.Contact
	var found bool
	err := s.store.ViewContacts(ctx, ws, func(tx contacts.Tx) error {
		var err error
		ct, found, err = tx.Get(contactID)
		return err
	})
	if err != nil {
		return ct, err
	}
	if !found {
		return ct, errs.Invalid("contact_id", "no contact %q in this workspace", contactID)
	}
	return ct, nil
}

// render renders each channel of c for ct (every channel, whatever the strategy).
func (s *Service) render(ws string, c Campaign, ct *contacts.Contact, messageID string) ([]Rendered, error) {
	out := make([]Rendered, 0, len(c.Channels))
	vars := s.messageVars(ws, c, ct, messageID)
	for _, ch := range c.Channels {
		r := Rendered{Channel: ch.Plugin, Fields: map[string]string{}}
		info, ok := s.channelInfo(ch.Plugin)
		if !ok {
			r.Skipped = fmt.Sprintf("channel %q is not loaded", ch.Plugin)
		} else {
			r.To, r.Skipped = reachable(info, ct, c.Transactional)
		}
		var escaped, lines map[string]any
		for name, src := range ch.Content {
			t, err := parseTemplate(src)
			if err == nil {
				r.Fields[name], err = t.render(fieldVars(name, info, vars, &escaped, &lines), c.StrictVariables)
			}
			if err != nil {
				r.Error = fmt.Sprintf("field %q: %v", name, err)
				delete(r.Fields, name)
				break
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// TestInput is a test send: the campaign's message rendered for a contact (or for a blank one) and sent now to
// To, outside the outbox and whatever the contact's consent.
type TestInput struct {
	// To is the address: an email address or a phone number, as the channel takes.
	To string `json:"to"`
	// ContactID is whose data fills the templates; optional.
	ContactID string `json:"contact_id"`
	// Channel limits the send to one of the campaign's channels; optional.
	Channel string `json:"channel"`
}

// Test sends the campaign's message to a given address, on each of its channels (or one).
func (s *Service) Test(ctx context.Context, ws, id string, in TestInput) ([]Rendered, error) {
	c, err := s.get(ctx, ws, id)
	if err != nil {
		return nil, err
	}
	if in.To == "" {
		return nil, errs.Invalid("to", "is required: the address to send the test to")
	}
	ct := contacts.Contact{Email: in.To, Phone: in.To}
	if in.ContactID != "" {
		if ct, err = s.contact(ctx, ws, in.ContactID); err != nil {
			return nil, err
		}
	}
	if in.Channel != "" {
		var only []Channel
		for _, ch := range c.Channels {
			if ch.Plugin == in.Channel {
				only = append(only, ch)
			}
		}
		if len(only) == 0 {
			return nil, errs.Invalid("channel", "campaign %s has no channel %q", id, in.Channel)
		}
		c.Channels = only
	}
	now := s.now().UTC()
	key := "test." + contacts.NewID(now)
	out, err := s.render(ws, c, &ct, key)
	if err != nil {
		return nil, err
	}
	for i := range out {
		r := &out[i]
		r.Skipped, r.To = "", in.To // a test goes to the address given, whatever the contact's consent
		if r.Error != "" {
			continue
		}
		if _, ok := s.channelInfo(r.Channel); !ok {
			r.Error = fmt.Sprintf("channel %q is not loaded", r.Channel)
			continue
		}
		msg := Outgoing{ID: fmt.Sprintf("%s.%d", key, i), ContactID: ct.ID, To: in.To}
		msg.IdempotencyKey = msg.ID
		for _, ch := range c.Channels {
			if ch.Plugin == r.Channel {
				for name := range ch.Content {
					msg.Fields = append(msg.Fields, Field{name, r.Fields[name]})
				}
			}
		}
		sendCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		outcomes, err := s.channels.Send(sendCtx, ws, r.Channel, now, []Outgoing{msg})
		cancel()
		switch {
		case err != nil:
			r.Outcome, r.Detail = "failed", err.Error()
		case len(outcomes) != 1:
			r.Outcome, r.Detail = "failed", "the channel returned no outcome"
		default:
			r.Outcome, r.Detail = outcomes[0].Status.String(), outcomes[0].Error
		}
	}
	return out, nil
}

// String names an outcome as the API shows it.
func (o OutcomeStatus) String() string {
	switch o {
	case Delivered:
		return "delivered"
	case Accepted:
		return "accepted"
	case Retry:
		return "retry"
	case Refused:
		return "failed"
	}
	return "unknown"
}
