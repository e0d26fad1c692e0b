package campaigns

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/errs"
)

// ErrBadLink is a link whose signature does not match: forged, altered or cut.
var ErrBadLink = errors.New("this link is not valid")

// verify checks a signed link and reads its message.
func (s *Service) verify(ctx context.Context, kind, ws, msgID, sig, target string) (Message, error) {
	if s.opts.Links == nil || !s.opts.Links.Verify(kind, ws, msgID, sig, target) {
		return Message{}, ErrBadLink
	}
	m, err := s.store.GetMessage(ctx, ws, msgID)
	if err != nil {
		if errors.Is(err, errs.ErrNotFound) {
			return Message{}, fmt.Errorf("%w: the message is gone", ErrBadLink) // the campaign was deleted
		}
		return Message{}, err
	}
	return m, nil
}

// Opened records an open of a message (its pixel was loaded).
func (s *Service) Opened(ctx context.Context, ws, msgID, sig string) error {
	if _, err := s.verify(ctx, LinkOpen, ws, msgID, sig, ""); err != nil {
		return err
	}
	_, err := s.store.RecordEngagement(ctx, ws, msgID, Open)
	return err
}

// Clicked records a click of a message's link to target and returns where to send the browser. A click counts as
// an open too when none was seen (images blocked).
func (s *Service) Clicked(ctx context.Context, ws, msgID, sig, target string) (string, error) {
	if _, err := s.verify(ctx, LinkClick, ws, msgID, sig, target); err != nil {
		return "", err
	}
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", ErrBadLink // signed, so ours: but never redirect anywhere but the web
	}
	if _, err := s.store.RecordEngagement(ctx, ws, msgID, Click); err != nil {
		return "", err
	}
	return target, nil
}

// Preferences is what the unsubscribe page shows: the contact's consent per channel, and the channel the
// message came on.
type Preferences struct {
	Campaign string
	Channel  string // the consent channel of the message
	Consent  []ChannelConsent
	// Topic is the campaign's topic (its name), when it has one; Topics, the workspace's topics.
	Topic  string
	Topics []TopicChoice
}

// TopicChoice is one topic on the page.
type TopicChoice struct {
	ID, Name   string
	Subscribed bool
}

// ChannelConsent is one channel's consent on the page.
type ChannelConsent struct {
	Channel    string
	Subscribed bool
}

// Preferences reads the unsubscribe page of a message's link.
func (s *Service) Preferences(ctx context.Context, ws, msgID, sig string) (Preferences, error) {
	m, err := s.verify(ctx, LinkUnsubscribe, ws, msgID, sig, "")
	if err != nil {
		return Preferences{}, err
	}
	c, err := s.store.GetCampaign(ctx, ws, m.Campaign)
	if err != nil {
		return Preferences{}, err
	}
	ct, err := s.contact(ctx, ws, m.Contact)
	if err != nil {
		return Preferences{}, fmt.Errorf("%w: the contact is gone", ErrBadLink)
	}
	p := Preferences{Campaign: c.Name, Channel: s.consentChannel(m)}
	seen := map[string]bool{}
	for ch, st := range ct.Consent {
		p.Consent = append(p.Consent, ChannelConsent{ch, st.Status == contacts.Subscribed})
		seen[ch] = true
	}
	if p.Channel != "" && !seen[p.Channel] {
		p.Consent = append(p.Consent, ChannelConsent{p.Channel, false})
	}
	sort.Slice(p.Consent, func(i, j int) bool { return p.Consent[i].Channel < p.Consent[j].Channel })
	topics, err := s.topics(ctx, ws)
	if err != nil {
		return Preferences{}, err
	}
	for _, t := range topics {
		p.Topics = append(p.Topics, TopicChoice{t.ID, t.Name, !unsubscribedFrom(&ct, t.ID)})
		if t.ID == c.Topic {
			p.Topic = t.Name
		}
	}
	return p, nil
}

func (s *Service) consentChannel(m Message) string {
	if info, ok := s.channelInfo(m.Channel); ok && info.Consent != "" {
		return info.Consent
	}
	return "email"
}

// Unsubscribe withdraws consent through a message's link. With keep nil (RFC 8058's one-click POST): from the
// campaign's topic when it has one, else from the message's channel. From the preference page (keep and
// keepTopics given): from every channel of the contact but those in keep, and from every topic but those in
// keepTopics.
func (s *Service) Unsubscribe(ctx context.Context, ws, msgID, sig string, keep, keepTopics []string) error {
	m, err := s.verify(ctx, LinkUnsubscribe, ws, msgID, sig, "")
	if err != nil {
		return err
	}
	if s.opts.Consent == nil {
		return fmt.Errorf("consent cannot be changed by this server: %w", errs.ErrUnavailable)
	}
	c, err := s.store.GetCampaign(ctx, ws, m.Campaign)
	if err != nil {
		return err
	}
	ct, err := s.contact(ctx, ws, m.Contact)
	if err != nil {
		return fmt.Errorf("%w: the contact is gone", ErrBadLink)
	}
	// Topics first: the one-click of a campaign with a topic drops the topic, the page sets them all.
	var topics []string // the contact's unsubscribed topics after this
	changeTopics := false
	switch {
	case keep == nil && c.Topic != "":
		if !unsubscribedFrom(&ct, c.Topic) {
			topics, changeTopics = append(unsubscribedTopics(&ct), c.Topic), true
		}
	case keep != nil:
		all, err := s.topics(ctx, ws)
		if err != nil {
			return err
		}
		kept := map[string]bool{}
		for _, t := range keepTopics {
			kept[t] = true
		}
		topics = []string{}
		for _, t := range all {
			if !kept[t.ID] {
				topics = append(topics, t.ID)
			}
		}
		changeTopics = !slices.Equal(topics, unsubscribedTopics(&ct)) && (len(all) > 0 || len(unsubscribedTopics(&ct)) > 0)
	}
	if changeTopics {
		if s.opts.SetAttributes == nil {
			return fmt.Errorf("topics cannot be changed by this server: %w", errs.ErrUnavailable)
		}
		if err := s.opts.SetAttributes(ctx, ws, m.Contact, map[string]any{topicsAttribute: topics}, "unsubscribe link"); err != nil {
			return err
		}
	}
	var drop []string
	switch {
	case keep == nil && c.Topic != "":
		// the topic was the whole request
	case keep == nil:
		drop = []string{s.consentChannel(m)}
	default:
		kept := map[string]bool{}
		for _, ch := range keep {
			kept[ch] = true
		}
		for ch, st := range ct.Consent {
			if st.Status == contacts.Subscribed && !kept[ch] {
				drop = append(drop, ch)
			}
		}
		sort.Strings(drop)
	}
	for _, ch := range drop {
		if err := s.opts.Consent(ctx, ws, m.Contact, ch, contacts.Unsubscribed, "unsubscribe link"); err != nil {
			return err
		}
	}
	if len(drop) > 0 || changeTopics && len(topics) > len(unsubscribedTopics(&ct)) {
		if _, err := s.store.RecordEngagement(ctx, ws, msgID, Unsubscribe); err != nil {
			return err
		}
	}
	return nil
}

// unsubscribedTopics is the contact's list of unsubscribed topics.
func unsubscribedTopics(ct *contacts.Contact) []string {
	v, ok := ct.Attributes[topicsAttribute]
	switch {
	case !ok:
		return nil
	case v.Kind == contacts.String:
		return []string{v.Str}
	}
	return slices.Clone(v.List)
}

// topicsAttribute is the contact attribute holding the topics it unsubscribed from (a list of topic ids).
const topicsAttribute = "unsubscribed_topics"

// unsubscribedFrom tells whether a contact unsubscribed from a topic.
func unsubscribedFrom(ct *contacts.Contact, topic string) bool {
	v, ok := ct.Attributes[topicsAttribute]
	if !ok {
		return false
	}
	if v.Kind == contacts.String {
		return v.Str == topic
	}
	return slices.Contains(v.List, topic)
}
