package index

import (
	"context"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/segments/rule"
)

// Def defines a segment for the index: a rule, or a static list (Rule nil) whose members are set by SetMembers.
type Def struct {
	ID   string
	Name string
	Rule rule.Node
}

type segment struct {
	Def
	c       cnode
	deps    rule.Deps
	refs    []*segment
	members bitset
	count   int
	// stamp marks the segment as affected (== Index.stamp) in the current re-evaluation; flipped, as having
	// changed membership for the contact being re-evaluated.
	stamp, flipped uint64
}

func (s *segment) static() bool { return s.Rule == nil }

// timeKey is the dependency key of the passing of time.
const timeKey = "time"

// resolve finds a segment by id or name (ignoring case).
func (ix *Index) resolve(ref string) *segment {
	if s, ok := ix.segs[ref]; ok {
		return s
	}
	return ix.byName[strings.ToLower(ref)]
}

// PutSegment adds or replaces a segment and computes its membership over every contact, then that of the segments
// that reference it. It returns the transitions (none for a static list, whose members SetMembers sets). The rule
// must have been checked, its references resolved and free of cycles (core/segments does it).
func (ix *Index) PutSegment(ctx context.Context, def Def, now time.Time) []Transition {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	s := ix.define(def)
	ix.relink()
	if s.static() {
		return nil
	}
	return ix.recompute(ctx, s, now)
}

// define adds or replaces a segment's definition and its name; the caller relinks.
func (ix *Index) define(def Def) *segment {
	s := ix.segs[def.ID]
	if s == nil {
		s = &segment{}
		ix.segs[def.ID] = s
	} else {
		delete(ix.byName, strings.ToLower(s.Name))
	}
	s.Def = def
	ix.byName[strings.ToLower(def.Name)] = s
	return s
}

// RemoveSegment forgets a segment (no transitions: its members did not leave, it ceased to exist).
func (ix *Index) RemoveSegment(id string) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	s := ix.segs[id]
	if s == nil {
		return
	}
	delete(ix.segs, id)
	delete(ix.byName, strings.ToLower(s.Name))
	ix.relink()
}

// relink recompiles every rule (references may now resolve differently) and recomputes the evaluation order and
// what each segment watches.
func (ix *Index) relink() {
	ix.order = ix.order[:0]
	ix.watch = map[string][]*segment{}
	ix.timed = 0
	all := make([]*segment, 0, len(ix.segs))
	for _, s := range ix.segs {
		all = append(all, s)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	state := map[*segment]int{} // 1 visiting, 2 done
	var visit func(s *segment)
	visit = func(s *segment) {
		if state[s] != 0 {
			return // done, or a cycle (refused before it gets here)
		}
		state[s] = 1
		s.refs = s.refs[:0]
		if !s.static() {
			s.deps = rule.Dependencies(s.Rule)
			for _, ref := range s.deps.Segments {
				if t := ix.resolve(ref); t != nil {
					s.refs = append(s.refs, t)
					visit(t)
				}
			}
		}
		state[s] = 2
		ix.order = append(ix.order, s)
	}
	for _, s := range all {
		visit(s)
	}
	for _, s := range ix.order {
		if s.static() {
			continue
		}
		s.c = ix.compile(s.Rule)
		for _, k := range depKeys(s.deps) {
			ix.watch[k] = append(ix.watch[k], s)
		}
		if s.c.next != nil {
			ix.watch[timeKey] = append(ix.watch[timeKey], s)
			ix.timed++
		}
	}
}

// recompute evaluates s, then the segments depending on it, over every contact.
func (ix *Index) recompute(ctx context.Context, s *segment, now time.Time) []Transition {
	var out []Transition
	dirty := map[*segment]bool{s: true}
	for _, seg := range ix.order {
		if !dirty[seg] {
			for _, r := range seg.refs {
				if dirty[r] {
					dirty[seg] = true
				}
			}
		}
		if !dirty[seg] || seg.static() {
			continue
		}
		p := ix.newPass(ctx, now, false)
		for slot, id := range ix.ids {
			if id == "" {
				continue
			}
			out = ix.judge(p, seg, int32(slot), out)
			if seg.c.next != nil {
				ix.setDue(int32(slot), earliestDue(ix.dueOf(int32(slot)), seg.c.next(p, int32(slot))))
			}
		}
	}
	return out
}

// judge evaluates one segment for one contact and records a change of membership.
func (ix *Index) judge(p *pass, s *segment, slot int32, out []Transition) []Transition {
	in := s.c.eval(p, slot)
	if in == s.members.has(slot) {
		return out
	}
	s.members.put(slot, in)
	if in {
		s.count++
	} else {
		s.count--
	}
	s.flipped = ix.stamp
	return append(out, Transition{Segment: s.ID, Contact: ix.ids[slot], Entered: in})
}

// reevaluate re-evaluates, for one contact, the segments watching one of keys and those referencing a segment whose
// membership changed, in order; then when time alone may next change its timed segments.
func (ix *Index) reevaluate(p *pass, slot int32, keys []string, out []Transition) []Transition {
	ix.stamp++
	all := false
	for _, k := range keys {
		if k == allKey {
			all = true
			break
		}
		for _, s := range ix.watch[k] {
			s.stamp = ix.stamp
		}
	}
	for _, s := range ix.order {
		if s.static() {
			continue
		}
		need := all || s.stamp == ix.stamp
		for _, r := range s.refs {
			need = need || r.flipped == ix.stamp
		}
		if need {
			out = ix.judge(p, s, slot, out)
		}
	}
	if ix.timed > 0 {
		var next time.Time
		for _, s := range ix.watch[timeKey] {
			next = earliest(next, s.c.next(p, slot))
		}
		ix.setDue(slot, next)
	}
	return out
}

func (ix *Index) dueOf(slot int32) int64 {
	if int(slot) < len(ix.due) {
		return ix.due[slot]
	}
	return 0
}

// earliestDue combines a due time (Unix nanoseconds, 0 for never) with another time.
func earliestDue(due int64, t time.Time) time.Time {
	if due == 0 {
		return t
	}
	return earliest(time.Unix(0, due), t)
}

// dueNanos is a due time as Index.due holds it: Unix nanoseconds, 0 for never (or beyond what they can hold).
func dueNanos(t time.Time) int64 {
	if !t.IsZero() && inNanos(t) {
		return t.UnixNano()
	}
	return 0
}

func (ix *Index) setDue(slot int32, t time.Time) {
	ns := dueNanos(t)
	if ns == 0 && int(slot) >= len(ix.due) {
		return
	}
	for len(ix.due) <= int(slot) {
		ix.due = append(ix.due, 0)
	}
	ix.due[slot] = ns
}

// Recheck re-evaluates the contacts for which time alone may have changed a timed segment by now (a window ended,
// a relative date moved on), and returns the transitions.
func (ix *Index) Recheck(ctx context.Context, now time.Time) []Transition {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	var out []Transition
	p := ix.newPass(ctx, now, true)
	limit := now.UnixNano()
	keys := []string{timeKey}
	for slot, due := range ix.due {
		if due != 0 && due <= limit && ix.ids[slot] != "" {
			out = ix.reevaluate(p, int32(slot), keys, out)
		}
	}
	return out
}

// SetMembers adds (in) or removes contacts of a static list and re-evaluates the segments that reference it.
// Contacts the index does not hold are skipped. It returns the transitions, the list's own first.
func (ix *Index) SetMembers(ctx context.Context, id string, contactIDs []string, in bool, now time.Time) []Transition {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	s := ix.segs[id]
	if s == nil || !s.static() {
		return nil
	}
	var out []Transition
	p := ix.newPass(ctx, now, true)
	for _, cid := range contactIDs {
		slot, ok := ix.slots[cid]
		if !ok || s.members.has(slot) == in {
			continue
		}
		ix.stamp++
		s.members.put(slot, in)
		if in {
			s.count++
		} else {
			s.count--
		}
		s.flipped = ix.stamp
		out = append(out, Transition{Segment: id, Contact: cid, Entered: in})
		stamp := ix.stamp
		for _, seg := range ix.order {
			if seg.static() {
				continue
			}
			for _, r := range seg.refs {
				if r.flipped == stamp {
					out = ix.judge(p, seg, slot, out)
					break
				}
			}
		}
	}
	return out
}

// Count returns a segment's number of members; ok is false for an unknown segment.
func (ix *Index) Count(id string) (n int, ok bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	s := ix.segs[id]
	if s == nil {
		return 0, false
	}
	return s.count, true
}

// IsMember reports whether a contact is in a segment.
func (ix *Index) IsMember(id, contactID string) bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	s := ix.segs[id]
	slot, ok := ix.slots[contactID]
	return s != nil && ok && s.members.has(slot)
}

// Members returns up to limit members of a segment in contact id order, after the contact id after ("" for the
// first), and the cursor of the next page ("" at the end).
func (ix *Index) Members(id, after string, limit int) (page []string, next string) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	s := ix.segs[id]
	if s == nil {
		return nil, ""
	}
	ids := ix.ordered()
	i := sort.SearchStrings(ids, after)
	if i < len(ids) && ids[i] == after {
		i++
	}
	for ; i < len(ids); i++ {
		slot, ok := ix.slots[ids[i]]
		if !ok || !s.members.has(slot) {
			continue
		}
		if len(page) == limit {
			return page, page[len(page)-1]
		}
		page = append(page, ids[i])
	}
	return page, ""
}

// Sort splits ids into the segment's members (how many) and the others (returned, in the order given): what a
// start compares the recorded members with.
func (ix *Index) Sort(id string, ids []string) (others []string, members int) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	s := ix.segs[id]
	for _, contactID := range ids {
		if slot, ok := ix.slots[contactID]; ok && s != nil && s.members.has(slot) {
			members++
		} else {
			others = append(others, contactID)
		}
	}
	return others, members
}

// EachMember calls fn with every member of a segment, in no particular order.
func (ix *Index) EachMember(id string, fn func(contactID string)) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if s := ix.segs[id]; s != nil {
		for slot, contactID := range ix.ids {
			if contactID != "" && s.members.has(int32(slot)) {
				fn(contactID)
			}
		}
	}
}

// OfContact returns the ids of the segments a contact is in, sorted; ok is false when the index does not hold it.
func (ix *Index) OfContact(contactID string) (ids []string, ok bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	slot, ok := ix.slots[contactID]
	if !ok {
		return nil, false
	}
	ids = []string{}
	for id, s := range ix.segs {
		if s.members.has(slot) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, true
}

// Preview evaluates a rule over every contact at now without saving it: the count, and the first sample matching
// contact ids in id order, kept during the same pass.
func (ix *Index) Preview(ctx context.Context, n rule.Node, now time.Time, sample int) (count int, first []string) {
	ix.mu.Lock() // compiling may add empty columns
	c := ix.compile(n)
	ix.mu.Unlock()
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	p := ix.newPass(ctx, now, false)
	first = []string{}
	for slot, id := range ix.ids {
		if id == "" || !c.eval(p, int32(slot)) {
			continue
		}
		count++
		if sample <= 0 || len(first) == sample && id >= first[sample-1] {
			continue
		}
		// first stays sorted and at most sample long: most matches are past its last id and stop above.
		i, _ := slices.BinarySearch(first, id)
		if len(first) < sample {
			first = slices.Insert(first, i, id)
		} else {
			copy(first[i+1:], first[i:sample-1])
			first[i] = id
		}
	}
	return count, first
}

// AttributeKind gives the rule checker the kind of an attribute: the one kind every contact holding it holds.
func (ix *Index) AttributeKind(name string) (contacts.Kind, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if col := ix.attrs[name]; col != nil {
		return col.only()
	}
	return 0, false
}

// ordered returns the indexed contact ids in id order. It may hold ids since removed (callers skip those not in
// slots). The caller holds ix.mu (read or write).
func (ix *Index) ordered() []string {
	ix.orderMu.Lock()
	defer ix.orderMu.Unlock()
	if len(ix.tail) == 0 {
		return ix.sorted
	}
	tail := make([]string, 0, len(ix.tail))
	for _, slot := range ix.tail {
		if int(slot) < len(ix.ids) && ix.ids[slot] != "" {
			tail = append(tail, ix.ids[slot])
		}
	}
	slices.Sort(tail)
	merged := make([]string, 0, len(ix.sorted)+len(tail))
	i, j := 0, 0
	for i < len(ix.sorted) || j < len(tail) {
		var id string
		if j == len(tail) || i < len(ix.sorted) && ix.sorted[i] < tail[j] {
			id, i = ix.sorted[i], i+1
		} else {
			id, j = tail[j], j+1
		}
		if _, live := ix.slots[id]; live && (len(merged) == 0 || merged[len(merged)-1] != id) {
			merged = append(merged, id)
		}
	}
	ix.sorted, ix.tail = merged, ix.tail[:0]
	return ix.sorted
}

// Stats describes the index's size.
type Stats struct {
	Contacts, Events, Segments, Attributes int
	// Bytes estimates the memory the index holds.
	Bytes int
}

// Stats returns the index's size.
func (ix *Index) Stats() Stats {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	st := Stats{Contacts: len(ix.slots), Segments: len(ix.segs), Attributes: len(ix.attrs)}
	st.Bytes = len(ix.ids)*(16+8+24) + len(ix.slots)*(16+4+24) + 8*len(ix.due) + 16*(len(ix.sorted)+len(ix.tail))
	for _, evs := range ix.events {
		st.Events += len(evs)
		st.Bytes += 16 * cap(evs)
	}
	for _, col := range ix.builtins {
		st.Bytes += col.bytes()
	}
	for _, col := range ix.attrs {
		st.Bytes += col.bytes()
	}
	for _, set := range ix.tags {
		st.Bytes += 8 * len(*set)
	}
	for _, col := range ix.consent {
		st.Bytes += len(*col)
	}
	for _, s := range ix.segs {
		st.Bytes += 8 * len(s.members)
	}
	return st
}

// PutSegments adds or replaces several segments at once (the start-up rebuild): one relink, then each membership
// computed once, referenced segments first. Transitions are not returned: start-up compares with what was
// recorded instead.
func (ix *Index) PutSegments(ctx context.Context, defs []Def, now time.Time) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for _, def := range defs {
		ix.define(def)
	}
	ix.relink()
	for _, s := range ix.order {
		if !s.static() {
			ix.fill(ctx, s, now)
		}
	}
}

// fill computes a segment's membership of every contact from scratch, on every core, without transitions. Slots
// are cut in blocks of whole bit-set words, so that no two goroutines write the same word; each block has its own
// pass and count. Evaluating only reads the index, and segments referenced are filled before (ix.order).
func (ix *Index) fill(ctx context.Context, s *segment, now time.Time) {
	n := len(ix.ids)
	s.members = make(bitset, (n+63)/64)
	s.count = 0
	if s.c.next != nil {
		for len(ix.due) < n {
			ix.due = append(ix.due, 0)
		}
	}
	workers := min(runtime.GOMAXPROCS(0), max(1, n/fillMinBlock))
	per := (n/workers + 63) &^ 63
	counts := make([]int, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*per, min(n, (w+1)*per)
		wg.Go(func() {
			p := ix.newPass(ctx, now, false)
			for slot := lo; slot < hi; slot++ {
				if ix.ids[slot] == "" {
					continue
				}
				if s.c.eval(p, int32(slot)) {
					s.members[slot>>6] |= 1 << (uint(slot) & 63)
					counts[w]++
				}
				if s.c.next != nil {
					ix.due[slot] = dueNanos(earliestDue(ix.due[slot], s.c.next(p, int32(slot))))
				}
			}
		})
	}
	wg.Wait()
	for _, c := range counts {
		s.count += c
	}
}

// fillMinBlock is the fewest slots worth a goroutine of their own in fill (a variable for the property test, which
// lowers it so that its small indexes are filled in parallel too).
var fillMinBlock = 1 << 14
