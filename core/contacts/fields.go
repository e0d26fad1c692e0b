package contacts

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/crosscast/crosscast/core/errs"
)

// Fields is a write to a contact's profile, as the API, an import row or a tracking call gives it. Absent keys (nil
// pointers, missing map entries) leave values unchanged; an empty Email, Phone, UserID, Timezone or Locale removes
// the value; a null attribute removes the attribute.
type Fields struct {
	Email    *string `json:"email"`
	Phone    *string `json:"phone"`
	UserID   *string `json:"user_id"`
	Timezone *string `json:"timezone"`
	Locale   *string `json:"locale"`
	// Attributes are plain JSON values; nested objects become dotted names.
	Attributes map[string]any `json:"attributes"`
	// Tags are added; RemoveTags removed.
	Tags       []string `json:"tags"`
	RemoveTags []string `json:"remove_tags"`
	// Consent sets the status per channel ("subscribed", "unsubscribed", "unknown").
	Consent map[string]ConsentStatus `json:"consent"`
}

// edit is Fields normalised and validated.
type edit struct {
	email, phone, userID, timezone, locale *string
	attrs                                  map[string]*Value
	addTags, removeTags                    []string
	consent                                map[string]ConsentStatus
}

// parse validates f, collecting every problem under field paths prefixed with prefix ("" or "traits." ...).
func (f *Fields) parse(channels []string) (edit, error) {
	v := &errs.ValidationError{}
	var e edit
	norm := func(field string, in *string, fn func(string) (string, error)) *string {
		if in == nil {
			return nil
		}
		if *in == "" {
			empty := ""
			return &empty
		}
		out, err := fn(*in)
		if err != nil {
			v.Add(field, "%s", err)
			return nil
		}
		return &out
	}
	e.email = norm("email", f.Email, NormalizeEmail)
	e.phone = norm("phone", f.Phone, NormalizePhone)
	e.userID = norm("user_id", f.UserID, normalizeUserID)
	e.timezone = norm("timezone", f.Timezone, NormalizeTimezone)
	e.locale = norm("locale", f.Locale, NormalizeLocale)
	if len(f.Attributes) > 0 {
		e.attrs = make(map[string]*Value, len(f.Attributes))
		err := Flatten("", f.Attributes, 1, func(name string, raw any) error {
			if err := ValidateAttributeName(name); err != nil {
				v.Add("attributes."+name, "%s", err)
				return nil
			}
			if raw == nil {
				e.attrs[name] = nil
				return nil
			}
			val, err := ParseValue(raw)
			if err != nil {
				v.Add("attributes."+name, "%s", err)
				return nil
			}
			e.attrs[name] = &val
			return nil
		})
		if err != nil {
			v.Add("attributes", "%s", err)
		}
		if len(e.attrs) > MaxAttributes {
			v.Add("attributes", "%d attributes; a contact holds at most %d", len(e.attrs), MaxAttributes)
		}
	}
	for i, t := range f.Tags {
		n, err := NormalizeTag(t)
		if err != nil {
			v.Add(fmt.Sprintf("tags.%d", i), "%s", err)
			continue
		}
		e.addTags = append(e.addTags, n)
	}
	for i, t := range f.RemoveTags {
		n, err := NormalizeTag(t)
		if err != nil {
			v.Add(fmt.Sprintf("remove_tags.%d", i), "%s", err)
			continue
		}
		e.removeTags = append(e.removeTags, n)
	}
	if len(f.Consent) > 0 {
		e.consent = make(map[string]ConsentStatus, len(f.Consent))
		for ch, st := range f.Consent {
			if err := ValidateChannel(ch, channels); err != nil {
				v.Add("consent."+ch, "%s", err)
				continue
			}
			if !st.Valid() {
				v.Add("consent."+ch, "%q is not a consent status: use subscribed, unsubscribed or unknown", st)
				continue
			}
			e.consent[ch] = st
		}
	}
	return e, v.OrNil()
}

func normalizeUserID(s string) (string, error) {
	s = strings.TrimSpace(s)
	if len(s) > 256 || strings.ContainsAny(s, "\x00\n\r") {
		return "", fmt.Errorf("user ids are 1-256 bytes without control characters")
	}
	return s, nil
}

// identifiers returns the identifiers an edit sets (non-empty), for upserts.
func (e *edit) identity() identity {
	var id identity
	if e.userID != nil {
		id.userID = *e.userID
	}
	if e.email != nil {
		id.email = *e.email
	}
	if e.phone != nil {
		id.phone = *e.phone
	}
	return id
}

// apply writes the edit onto c; it reports whether anything changed. Identifiers are set here too (the caller has
// checked they are free).
func (e *edit) apply(c *Contact, now time.Time, source string) (bool, error) {
	changed := false
	set := func(dst *string, v *string) {
		if v != nil && *dst != *v {
			*dst, changed = *v, true
		}
	}
	set(&c.Email, e.email)
	set(&c.Phone, e.phone)
	set(&c.UserID, e.userID)
	set(&c.Timezone, e.timezone)
	set(&c.Locale, e.locale)
	for name, v := range e.attrs {
		old, had := c.Attributes[name]
		switch {
		case v == nil && had:
			delete(c.Attributes, name)
			changed = true
		case v != nil && (!had || !old.Equal(*v)):
			if c.Attributes == nil {
				c.Attributes = map[string]Value{}
			}
			c.Attributes[name] = *v
			changed = true
		}
	}
	if len(c.Attributes) > MaxAttributes {
		return false, errs.Invalid("attributes", "the contact would hold %d attributes; the limit is %d", len(c.Attributes), MaxAttributes)
	}
	for _, t := range e.addTags {
		if !c.HasTag(t) {
			c.Tags = append(c.Tags, t)
			changed = true
		}
	}
	for _, t := range e.removeTags {
		for i, have := range c.Tags {
			if have == t {
				c.Tags = append(c.Tags[:i:i], c.Tags[i+1:]...)
				changed = true
				break
			}
		}
	}
	if changed {
		sort.Strings(c.Tags)
	}
	for ch, st := range e.consent {
		if cur, ok := c.Consent[ch]; ok && cur.Status == st {
			continue
		}
		if c.Consent == nil {
			c.Consent = map[string]Consent{}
		}
		c.Consent[ch] = Consent{Status: st, At: now, Source: source}
		changed = true
	}
	return changed, nil
}

// DecodeFields strictly decodes a JSON object into Fields (numbers kept exact), for importers.
func DecodeFields(b []byte) (Fields, error) {
	var f Fields
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	err := dec.Decode(&f)
	return f, err
}
