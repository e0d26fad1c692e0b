package index

import (
	"context"
	"math"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/segments/rule"
)

// pass is one evaluation at one instant: a full pass over every contact (memo set: text comparisons are decided
// once per distinct value) or the re-evaluation of a few contacts after a change.
type pass struct {
	ix    *Index
	ctx   context.Context
	now   time.Time
	memos [][]int8
}

func (ix *Index) newPass(ctx context.Context, now time.Time, single bool) *pass {
	p := &pass{ix: ix, ctx: ctx, now: now}
	if !single {
		p.memos = [][]int8{}
	}
	return p
}

// memo returns memo table id, sized for a dictionary of n values.
func (p *pass) memo(id, n int) []int8 {
	for len(p.memos) <= id {
		p.memos = append(p.memos, nil)
	}
	if len(p.memos[id]) < n {
		p.memos[id] = make([]int8, n)
	}
	return p.memos[id]
}

// cnode is a compiled condition.
type cnode struct {
	eval func(p *pass, slot int32) bool
	// next returns the earliest time after p.now at which time alone may change the result for the slot (zero:
	// never), as rule.NextChange does; nil when the condition does not depend on time.
	next func(p *pass, slot int32) time.Time
}

type compiler struct {
	ix    *Index
	memos int
}

// compile turns a checked rule into column reads. References to segments resolve now, by name or id.
func (ix *Index) compile(n rule.Node) cnode {
	c := &compiler{ix: ix}
	return c.node(n)
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

func (c *compiler) node(n rule.Node) cnode {
	switch n := n.(type) {
	case *rule.And:
		return c.list(n.Items, true)
	case *rule.Or:
		return c.list(n.Items, false)
	case *rule.Not:
		in := c.node(n.Item)
		return cnode{eval: func(p *pass, slot int32) bool { return !in.eval(p, slot) }, next: in.next}
	case *rule.Compare:
		return c.compare(n)
	case *rule.HasTag:
		set := c.ix.tags[n.Tag]
		if set == nil {
			set = &bitset{}
			c.ix.tags[n.Tag] = set
		}
		return cnode{eval: func(_ *pass, slot int32) bool { return set.has(slot) }}
	case *rule.Consent:
		col := c.ix.consent[n.Channel]
		if col == nil {
			col = &consents{}
			c.ix.consent[n.Channel] = col
		}
		return cnode{eval: func(_ *pass, slot int32) bool { return col.status(slot) == n.Status }}
	case *rule.InSegment:
		target := c.ix.resolve(n.Ref)
		if target == nil {
			return cnode{eval: func(*pass, int32) bool { return false }}
		}
		return cnode{eval: func(_ *pass, slot int32) bool { return target.members.has(slot) }}
	case *rule.Bucket:
		return cnode{eval: func(p *pass, slot int32) bool { return n.Holds(p.ix.ids[slot]) }}
	case *rule.Performed:
		return c.performed(n)
	}
	// Scores, and anything new: the reference evaluator over the index.
	return cnode{eval: func(p *pass, slot int32) bool { return rule.Eval(n, p.subject(slot, false), p.now) }}
}

func (c *compiler) list(items []rule.Node, and bool) cnode {
	cs := make([]cnode, len(items))
	var timed bool
	for i, it := range items {
		cs[i] = c.node(it)
		timed = timed || cs[i].next != nil
	}
	out := cnode{eval: func(p *pass, slot int32) bool {
		for _, it := range cs {
			if it.eval(p, slot) != and {
				return !and
			}
		}
		return and
	}}
	if timed {
		out.next = func(p *pass, slot int32) time.Time {
			var t time.Time
			for _, it := range cs {
				if it.next != nil {
					t = earliest(t, it.next(p, slot))
				}
			}
			return t
		}
	}
	return out
}

// column returns the column a field reads (creating it empty, so that later writes fill it).
func (ix *Index) column(f rule.Field) *column {
	if f.Scope == rule.Builtin {
		for i, name := range builtinNames {
			if name == f.Name {
				return ix.builtins[i]
			}
		}
		return &column{}
	}
	col := ix.attrs[f.Name]
	if col == nil {
		col = &column{}
		ix.attrs[f.Name] = col
	}
	return col
}

func (c *compiler) compare(n *rule.Compare) cnode {
	if n.Field.Scope == rule.Property {
		return cnode{eval: func(*pass, int32) bool { return false }}
	}
	col := c.ix.column(n.Field)
	memo := c.memos
	c.memos++
	out := cnode{eval: func(p *pass, slot int32) bool {
		if p.memos != nil && !col.unique && col.kind(slot) == contacts.String {
			m := p.memo(memo, len(col.dict.strs))
			code := col.vals[slot]
			if r := m[code]; r != 0 {
				return r == 1
			}
			r := n.Holds(contacts.StringValue(col.dict.strs[code]), true, p.now)
			m[code] = 2
			if r {
				m[code] = 1
			}
			return r
		}
		v, ok := col.get(slot)
		return n.Holds(v, ok, p.now)
	}}
	if (n.Op == rule.Within || n.Op == rule.OlderThan) && n.Value.Kind == rule.LitDuration {
		d := n.Value.Duration.Std()
		out.next = func(p *pass, slot int32) time.Time {
			v, ok := col.get(slot)
			if !ok {
				return time.Time{}
			}
			t, ok := rule.TimeOf(v)
			if !ok {
				return time.Time{}
			}
			var next time.Time
			if n.Op == rule.Within && t.After(p.now) {
				next = t
			}
			if end := t.Add(d).Add(time.Nanosecond); end.After(p.now) {
				next = earliest(next, end)
			}
			return next
		}
	}
	return out
}

func (c *compiler) performed(n *rule.Performed) cnode {
	code := c.ix.nameCode(n.Event)
	timedWhere := n.Where != nil && rule.Dependencies(n.Where).Time
	// count returns how many events of the name are in the window, newest first, stopping early once limit is
	// reached (limit < 0: no limit).
	count := func(p *pass, slot int32, limit int64) int64 {
		since, windowed := n.Since(p.now)
		sinceNs := int64(math.MinInt64)
		if windowed {
			sinceNs = eventNanos(since)
		}
		evs := p.ix.events[slot]
		var seen int64
		for i := len(evs) - 1; i >= 0; i-- {
			e := evs[i]
			if e.at < sinceNs {
				break
			}
			if e.name == code {
				if seen++; seen == limit {
					break
				}
			}
		}
		return seen
	}
	// Beyond the threshold of >, >= and = one more event decides: no need to count further.
	limit := int64(-1)
	if n.Count == nil {
		limit = 1
	} else if n.Count.Op == rule.Ge || n.Count.Op == rule.Gt || n.Count.Op == rule.Eq {
		limit = n.Count.Value + 1
	}
	out := cnode{eval: func(p *pass, slot int32) bool {
		if n.Where == nil {
			return n.CountHolds(count(p, slot, limit))
		}
		// The properties are in the store: read them only when the times alone leave the answer open.
		if !n.CanHold(count(p, slot, -1)) {
			return false
		}
		return rule.Eval(n, p.subject(slot, true), p.now)
	}}
	switch {
	case timedWhere:
		out.next = func(p *pass, slot int32) time.Time { return rule.NextChange(n, p.subject(slot, true), p.now) }
	case n.Within != nil:
		within := n.Within.Std()
		out.next = func(p *pass, slot int32) time.Time {
			// An event counts until at+within, included: the earliest such end still ahead.
			var next time.Time
			evs := p.ix.events[slot]
			for i := len(evs) - 1; i >= 0; i-- {
				if evs[i].name != code {
					continue
				}
				end := time.Unix(0, evs[i].at).Add(within)
				if end.Before(p.now) {
					break
				}
				next = end.Add(time.Nanosecond)
			}
			return next
		}
	}
	return out
}

// subject is one indexed contact as the reference evaluator reads it. With props, events come from the store with
// their properties; without, from the index, without properties.
type subject struct {
	p     *pass
	slot  int32
	props bool
}

var _ rule.Subject = subject{}

func (p *pass) subject(slot int32, props bool) subject {
	return subject{p: p, slot: slot, props: props}
}

func (s subject) ID() string { return s.p.ix.ids[s.slot] }

func (s subject) Field(name string) (contacts.Value, bool) {
	for i, n := range builtinNames {
		if n == name {
			return s.p.ix.builtins[i].get(s.slot)
		}
	}
	return contacts.Value{}, false
}

func (s subject) Attribute(name string) (contacts.Value, bool) {
	if col := s.p.ix.attrs[name]; col != nil {
		return col.get(s.slot)
	}
	return contacts.Value{}, false
}

func (s subject) HasTag(tag string) bool {
	set := s.p.ix.tags[tag]
	return set != nil && set.has(s.slot)
}

func (s subject) Consent(channel string) contacts.ConsentStatus {
	if col := s.p.ix.consent[channel]; col != nil {
		return col.status(s.slot)
	}
	return contacts.Unknown
}

// Score: scores arrive with the scoring issue; no contact has one yet.
func (s subject) Score(string) (float64, bool) { return 0, false }

func (s subject) InSegment(ref string) bool {
	t := s.p.ix.resolve(ref)
	return t != nil && t.members.has(s.slot)
}

func (s subject) Events(name string, fn func(time.Time, map[string]any) bool) {
	if s.props && s.p.ix.source != nil {
		s.p.ix.source.Events(s.p.ctx, s.ID(), name, fn)
		return
	}
	code, ok := s.p.ix.names[name]
	if !ok {
		return
	}
	evs := s.p.ix.events[s.slot]
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].name == code && !fn(time.Unix(0, evs[i].at).UTC(), nil) {
			return
		}
	}
}
