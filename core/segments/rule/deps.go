package rule

import (
	"slices"
)

// Deps says what a rule reads, so that an index knows which segments a change to a contact can affect: a write that
// touches none of a segment's dependencies cannot change the contact's membership of it. Each list is sorted and
// holds each name once.
//
// Membership can change only when one of these changes: a built-in field or attribute listed (any write to it,
// including removal), a listed tag added or removed, the consent on a listed channel, a new event of a listed name
// (or the removal of one), a listed score, the contact's membership of a listed segment (so segments must be
// evaluated after those they reference; Segments gives the edges), and, when Time is set, the clock (NextChange
// says when, per contact). bucket(...) reads only the contact's id, which never changes: it adds no dependency. A
// new contact, a merge and an erasure affect every segment.
type Deps struct {
	// Fields are the built-in fields read (see BuiltinKind). Note that last_seen_at changes with every event.
	Fields []string `json:"fields,omitempty"`
	// Attributes are the attribute names read, as stored.
	Attributes []string `json:"attributes,omitempty"`
	Tags       []string `json:"tags,omitempty"`
	// Channels are the consent channels read by subscribed(...) and unsubscribed(...).
	Channels []string `json:"channels,omitempty"`
	// Events are the event names performed(...) counts.
	Events []string `json:"events,omitempty"`
	Scores []string `json:"scores,omitempty"`
	// Segments are the segment references of in_segment(...), as written.
	Segments []string `json:"segments,omitempty"`
	// Time is set when the result can change as time passes, the contact unchanged: within and older_than
	// (inside where: too) and performed(..., within: ...).
	Time bool `json:"time,omitempty"`
}

// Dependencies returns what n reads.
func Dependencies(n Node) Deps {
	var d Deps
	walk(n, func(n Node) {
		switch n := n.(type) {
		case *Compare:
			switch n.Field.Scope {
			case Builtin:
				d.Fields = append(d.Fields, n.Field.Name)
			case Attribute:
				d.Attributes = append(d.Attributes, n.Field.Name)
			}
			d.Time = d.Time || n.Op == Within || n.Op == OlderThan
		case *Score:
			d.Scores = append(d.Scores, n.Name)
		case *HasTag:
			d.Tags = append(d.Tags, n.Tag)
		case *Consent:
			d.Channels = append(d.Channels, n.Channel)
		case *InSegment:
			d.Segments = append(d.Segments, n.Ref)
		case *Performed:
			d.Events = append(d.Events, n.Event)
			d.Time = d.Time || n.Within != nil
		}
	})
	for _, l := range []*[]string{&d.Fields, &d.Attributes, &d.Tags, &d.Channels, &d.Events, &d.Scores, &d.Segments} {
		slices.Sort(*l)
		*l = slices.Compact(*l)
	}
	return d
}

// Segments returns the segment references of n's in_segment(...) conditions, sorted, each once, so that the caller
// can refuse unknown segments and reference cycles.
func Segments(n Node) []string { return Dependencies(n).Segments }

// walk calls fn for n and every node under it, where: conditions included.
func walk(n Node, fn func(Node)) {
	if n == nil {
		return
	}
	fn(n)
	switch n := n.(type) {
	case *And:
		for _, it := range n.Items {
			walk(it, fn)
		}
	case *Or:
		for _, it := range n.Items {
			walk(it, fn)
		}
	case *Not:
		walk(n.Item, fn)
	case *Performed:
		walk(n.Where, fn)
	}
}
