package campaigns

import (
	"errors"
	"fmt"
	"html"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/scheduler"
	"github.com/osteele/liquid"
)

// Templates are Liquid (https://shopify.github.io/liquid/), the convention of Braze, Klaviyo and Shopify, rendered
// by github.com/osteele/liquid. A message's variables:
//
//	contact.id, contact.email, contact.phone, contact.user_id, contact.timezone, contact.locale,
//	contact.created_at, contact.last_seen_at, contact.tags (a list), contact.<attribute> (every attribute,
//	also under contact.attributes.<attribute>), contact.consent.<channel> ("subscribed", ...)
//	campaign.id, campaign.name
//	message.id
//	event.<property> (the triggering event's properties, for triggered campaigns)
//
// Filters are Liquid's standard ones (default, upcase, date, ...). A variable the contact lacks renders as empty
// text, so that {{ contact.first_name | default: "there" }} works; a campaign with strict_variables makes it an
// error instead, and that message fails with the variable named.

// engines are the two Liquid engines: lenient and strict about undefined variables. An Engine is safe for
// concurrent rendering once configured.
var engines = sync.OnceValues(func() (*liquid.Engine, *liquid.Engine) {
	strict := liquid.NewEngine()
	strict.StrictVariables()
	return liquid.NewEngine(), strict
})

// template is one parsed content field.
type template struct {
	lenient, strict *liquid.Template
}

// parseTemplate parses a content field; an error says where, in the marketer's words.
func parseTemplate(src string) (*template, error) {
	lenient, strict := engines()
	t, err := lenient.ParseString(src)
	if err != nil {
		return nil, templateError(err)
	}
	s, err := strict.ParseString(src)
	if err != nil {
		return nil, templateError(err)
	}
	// Filters are looked up when rendering: render once without data so that a misspelt filter is refused now
	// rather than failing every message. Other render errors depend on the data and are left to the messages.
	if _, err := t.RenderString(map[string]any{}); err != nil && strings.Contains(err.Error(), "undefined filter") {
		var se liquid.SourceError
		if errors.As(err, &se) {
			return nil, templateError(se)
		}
		return nil, fmt.Errorf("template error: %w", err)
	}
	return &template{lenient: t, strict: s}, nil
}

// templateError words a Liquid error with its line.
func templateError(err liquid.SourceError) error {
	msg := err.Error()
	// The library prefixes "Liquid error (line N): "; keep the cause and say the line ourselves.
	if i := strings.Index(msg, "): "); strings.HasPrefix(msg, "Liquid error") && i > 0 {
		msg = msg[i+3:]
	}
	// The library counts lines from 0 (measured: a tag on the third line is "line 2").
	return fmt.Errorf("template error on line %d: %s", err.LineNumber()+1, msg)
}

// render renders the template with vars.
func (t *template) render(vars map[string]any, strict bool) (string, error) {
	tpl := t.lenient
	if strict {
		tpl = t.strict
	}
	out, err := tpl.RenderString(vars)
	if err != nil {
		var se liquid.SourceError
		if errors.As(err, &se) {
			return "", templateError(se)
		}
		return "", fmt.Errorf("template error: %w", err)
	}
	return out, nil
}

// contactVars is what templates see of a contact.
func contactVars(c *contacts.Contact) map[string]any {
	attrs := make(map[string]any, len(c.Attributes))
	v := make(map[string]any, len(c.Attributes)+12)
	for name, a := range c.Attributes {
		x := valueVar(a)
		attrs[name] = x
		v[name] = x
	}
	consent := make(map[string]any, len(c.Consent))
	for ch, st := range c.Consent {
		consent[ch] = string(st.Status)
	}
	tags := make([]any, len(c.Tags))
	for i, t := range c.Tags {
		tags[i] = t
	}
	v["id"] = c.ID
	v["email"] = c.Email
	v["phone"] = c.Phone
	v["user_id"] = c.UserID
	v["timezone"] = c.Timezone
	v["locale"] = c.Locale
	v["created_at"] = c.CreatedAt
	if !c.LastSeenAt.IsZero() {
		v["last_seen_at"] = c.LastSeenAt
	}
	v["tags"] = tags
	v["attributes"] = attrs
	v["consent"] = consent
	return v
}

// valueVar is an attribute as templates see it: text, a number, a bool, a time (the date filter formats it) or a
// list.
func valueVar(a contacts.Value) any {
	switch a.Kind {
	case contacts.String:
		return a.Str
	case contacts.Number:
		return a.Num
	case contacts.Bool:
		return a.Bool
	case contacts.Time:
		return a.Time
	case contacts.List:
		out := make([]any, len(a.List))
		for i, s := range a.List {
			out[i] = s
		}
		return out
	}
	return nil
}

// nextCron is when a recurring schedule fires next after after.
func nextCron(spec string, loc *time.Location, after time.Time) (time.Time, error) {
	return scheduler.Next(spec, loc, after)
}

// htmlFields are the content fields that are HTML: the variables they show are escaped, so that a contact's
// attribute (which a public tracking call may set) cannot add markup or links to a message. Markup belongs in
// the template; a variable is always text there.
var htmlFields = map[string]bool{"html": true}

// escapeVars returns vars with every text HTML-escaped, for an HTML field.
func escapeVars(v any) any { return mapTexts(v, html.EscapeString) }

// oneLine makes a text one line: CR and LF become spaces.
var oneLine = strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ").Replace

// singleLineVars returns vars with every text made one line, for a field read line by line (ContentField.SingleLine).
func singleLineVars(v any) any { return mapTexts(v, oneLine) }

// mapTexts returns v with f applied to every text it holds.
func mapTexts(v any, f func(string) string) any {
	switch x := v.(type) {
	case string:
		return f(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = mapTexts(e, f)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = mapTexts(e, f)
		}
		return out
	}
	return v
}

// fieldVars picks the variables a field renders with: HTML-escaped for an HTML field, one-line for a field read
// line by line, vars as they are otherwise. escaped and lines are made on first use and kept for the next fields.
func fieldVars(name string, info ChannelInfo, vars map[string]any, escaped, lines *map[string]any) map[string]any {
	switch {
	case htmlFields[name]:
		if *escaped == nil {
			*escaped = escapeVars(vars).(map[string]any)
		}
		return *escaped
	case slices.ContainsFunc(info.Fields, func(f ContentField) bool { return f.Name == name && f.SingleLine }):
		if *lines == nil {
			*lines = singleLineVars(vars).(map[string]any)
		}
		return *lines
	}
	return vars
}
