// Package index is the in-memory image of what segment rules read, for one workspace, and the live membership of
// its segments: columns of built-in fields and attributes, tag and consent sets, each contact's track events (time
// and name), and one bit set per segment. It is rebuilt at start from the store (Load, LoadEvents) and kept in step
// with it by Apply, which the contacts change stream feeds; every change re-evaluates only the segments it can
// affect and returns the contacts that entered or left them.
//
// Rules are compiled against the columns (compile.go): comparisons read a column directly and decide text once per
// distinct value in a full pass; what has no fast path is evaluated with the reference evaluator (rule.Eval) over
// a Subject reading the index, so both always agree. Event properties are not kept in memory: a performed(...) with
// where: reads the contact's events from the store (EventSource), only when the event times alone cannot decide.
//
// It imports the standard library, core/contacts, core/events and core/segments/rule; it does no I/O but through
// EventSource.
package index

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/events"
	"github.com/crosscast/crosscast/core/segments/rule"
)

// EventSource reads a contact's stored events with their properties, for where: conditions.
type EventSource interface {
	// Events calls fn with the contact's track events of that name, newest first, until fn returns false.
	Events(ctx context.Context, contactID, name string, fn func(at time.Time, props map[string]any) bool)
}

// Transition is a contact entering or leaving a segment.
type Transition struct {
	Segment string
	Contact string
	Entered bool
}

// The built-in fields rules read (rule.BuiltinKind), in column order.
var builtinNames = []string{"email", "phone", "user_id", "timezone", "locale", "lifecycle", "created_at", "last_seen_at"}

const (
	fEmail = iota
	fPhone
	fUserID
	fTimezone
	fLocale
	fLifecycle
	fCreatedAt
	fLastSeen
	nBuiltins
)

// Index is one workspace's index. Its methods are safe for concurrent use.
type Index struct {
	mu     sync.RWMutex
	source EventSource

	// seq is the change sequence the index reflects at least: changes numbered up to it are ignored.
	seq uint64

	slots map[string]int32
	ids   []string // by slot; "" for a free slot
	free  []int32
	// contactSeq is the Seq of the change that last wrote each slot's profile, so that an older change arriving
	// late never overwrites a newer one.
	contactSeq []uint64

	builtins [nBuiltins]*column
	attrs    map[string]*column
	tags     map[string]*bitset
	consent  map[string]*consents
	names    map[string]uint32
	events   [][]event

	segs   map[string]*segment
	byName map[string]*segment
	order  []*segment // evaluation order: a segment after those it references
	// watch maps a dependency key (see depKeys) to the segments reading it.
	watch map[string][]*segment
	timed int // segments whose result can change with time alone
	// due holds, by slot, the Unix nanoseconds at which time alone may change one of the timed segments (0: never).
	due []int64

	// stamp numbers re-evaluations (see segment.stamp).
	stamp uint64

	// sorted holds contact ids in id order (some maybe removed since); the slots added since are in tail. orderMu
	// guards both for readers that merge the tail in (ordered).
	orderMu sync.Mutex
	sorted  []string
	tail    []int32

	// room is the number of slots a rebuild announced (Grow): new columns are made that large at once.
	room int
	// arena is what is left of the block LoadEvents cuts event lists from.
	arena []event
}

// eventArenaSize is the number of events in one of LoadEvents' blocks (1 MiB).
const eventArenaSize = 1 << 16

// New returns an empty index. source may be nil when no rule uses where: (tests).
func New(source EventSource) *Index {
	ix := &Index{
		source: source, slots: map[string]int32{}, attrs: map[string]*column{}, tags: map[string]*bitset{},
		consent: map[string]*consents{}, names: map[string]uint32{}, segs: map[string]*segment{},
		byName: map[string]*segment{}, watch: map[string][]*segment{},
	}
	for i := range ix.builtins {
		ix.builtins[i] = newColumn(0, isUnique(i))
	}
	return ix
}

// SetSeq records that the index reflects every change numbered up to seq (the store's change sequence when the
// rebuild read it).
func (ix *Index) SetSeq(seq uint64) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.seq = seq
}

// Len returns the number of contacts indexed.
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(ix.slots)
}

// isUnique tells the built-in fields whose texts differ from contact to contact (see column.unique).
func isUnique(f int) bool { return f == fEmail || f == fPhone || f == fUserID }

// Grow makes room for n more contacts, before a rebuild loads them.
func (ix *Index) Grow(n int) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.room = len(ix.ids) + n
	if len(ix.slots) == 0 {
		ix.slots = make(map[string]int32, n)
	}
	for i, col := range ix.builtins {
		if len(col.kinds) == 0 {
			ix.builtins[i] = newColumn(ix.room, isUnique(i))
		}
	}
	ix.ids = slices.Grow(ix.ids, n)
	ix.events = slices.Grow(ix.events, n)
	ix.contactSeq = slices.Grow(ix.contactSeq, n)
	ix.tail = slices.Grow(ix.tail, n)
}

// Load adds or replaces contacts during a rebuild, without evaluating segments.
func (ix *Index) Load(cs ...contacts.Contact) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for i := range cs {
		ix.setContact(&cs[i])
	}
}

// EventCodes returns the index's codes for event names (creating them): what LoadEvents takes.
func (ix *Index) EventCodes(names []string) []uint32 {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	out := make([]uint32, len(names))
	for i, n := range names {
		out[i] = ix.nameCode(n)
	}
	return out
}

// LoadEvents adds a contact's stored track events during a rebuild: their times (Unix nanoseconds) and names as
// EventCodes gave them, in any order. Events of a contact not loaded (yet) are kept for it.
func (ix *Index) LoadEvents(contactID string, at []int64, codes []uint32) {
	if len(at) != len(codes) {
		panic("index: LoadEvents with as many times as codes")
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	slot := ix.slotOf(contactID)
	list := ix.events[slot]
	if len(list) == 0 && len(at) <= eventArenaSize/16 {
		// A rebuild loads a contact's events at once: cut its list out of a shared block (capped, so a later
		// append copies it out) instead of allocating one per contact.
		if len(ix.arena) < len(at) {
			ix.arena = make([]event, eventArenaSize)
		}
		list, ix.arena = ix.arena[:0:len(at)], ix.arena[len(at):]
	}
	list = slices.Grow(list, len(at))
	sorted := true
	for i, t := range at {
		if n := len(list); n > 0 && list[n-1].at > t {
			sorted = false
		}
		list = append(list, event{at: t, name: codes[i]})
	}
	if !sorted {
		slices.SortStableFunc(list, func(a, b event) int { return cmpInt64(a.at, b.at) })
	}
	ix.events[slot] = list
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (ix *Index) nameCode(name string) uint32 {
	c, ok := ix.names[name]
	if !ok {
		c = uint32(len(ix.names))
		ix.names[name] = c
	}
	return c
}

// slotOf returns the contact's slot, allocating one.
func (ix *Index) slotOf(id string) int32 {
	if s, ok := ix.slots[id]; ok {
		return s
	}
	var s int32
	if n := len(ix.free); n > 0 {
		s = ix.free[n-1]
		ix.free = ix.free[:n-1]
		ix.ids[s] = id
	} else {
		s = int32(len(ix.ids))
		ix.ids = append(ix.ids, id)
		ix.events = append(ix.events, nil)
		ix.contactSeq = append(ix.contactSeq, 0)
	}
	ix.slots[id] = s
	ix.tail = append(ix.tail, s)
	return s
}

// setContact writes a contact's profile into the columns and returns the dependency keys that changed.
func (ix *Index) setContact(c *contacts.Contact) []string {
	_, known := ix.slots[c.ID]
	slot := ix.slotOf(c.ID)
	// A new slot is empty: nothing to take away, and every segment is evaluated (allKey), so no keys are built.
	var changed []string
	note := func(key func(string) string, name string) {
		if known {
			changed = append(changed, key(name))
		}
	}
	text := func(f int, v string) {
		if ix.builtins[f].set(slot, contacts.StringValue(v), v != "") {
			note(fieldKey, builtinNames[f])
		}
	}
	when := func(f int, t time.Time) {
		if ix.builtins[f].set(slot, contacts.TimeValue(t), !t.IsZero()) {
			note(fieldKey, builtinNames[f])
		}
	}
	text(fEmail, c.Email)
	text(fPhone, c.Phone)
	text(fUserID, c.UserID)
	text(fTimezone, c.Timezone)
	text(fLocale, c.Locale)
	when(fCreatedAt, c.CreatedAt)
	if seen, ok := ix.builtins[fLastSeen].get(slot); (!ok || c.LastSeenAt.After(seen.Time)) && inNanos(c.LastSeenAt) {
		// The store keeps the latest last-seen time it was given (a profile never moves it back).
		when(fLastSeen, c.LastSeenAt)
	}
	if known {
		for name, col := range ix.attrs {
			if _, ok := c.Attributes[name]; !ok && col.set(slot, contacts.Value{}, false) {
				note(attrKey, name)
			}
		}
		for tag, set := range ix.tags {
			if set.has(slot) && !c.HasTag(tag) {
				set.put(slot, false)
				note(tagKey, tag)
			}
		}
		for ch, col := range ix.consent {
			if _, ok := c.Consent[ch]; !ok && col.set(slot, 0) {
				note(channelKey, ch)
			}
		}
	}
	for name, v := range c.Attributes {
		col := ix.attrs[name]
		if col == nil {
			col = newColumn(ix.room, false)
			ix.attrs[name] = col
		}
		if col.set(slot, v, true) {
			note(attrKey, name)
		}
	}
	for _, tag := range c.Tags {
		set := ix.tags[tag]
		if set == nil {
			set = &bitset{}
			ix.tags[tag] = set
		}
		if !set.has(slot) {
			set.put(slot, true)
			note(tagKey, tag)
		}
	}
	for ch, st := range c.Consent {
		col := ix.consent[ch]
		if col == nil {
			col = &consents{}
			ix.consent[ch] = col
		}
		if col.set(slot, consentCode(st.Status)) {
			note(channelKey, ch)
		}
	}
	if !known {
		return []string{allKey}
	}
	return changed
}

// addEvent records a track event in the slot's time-ordered list.
func (ix *Index) addEvent(slot int32, at int64, name uint32) {
	list := append(ix.events[slot], event{at: at, name: name})
	for i := len(list) - 1; i > 0 && list[i-1].at > list[i].at; i-- {
		list[i-1], list[i] = list[i], list[i-1]
	}
	ix.events[slot] = list
}

// removeSlot forgets a contact entirely.
func (ix *Index) removeSlot(slot int32) {
	for _, col := range ix.builtins {
		col.clear(slot)
	}
	for _, col := range ix.attrs {
		col.clear(slot)
	}
	for _, set := range ix.tags {
		set.put(slot, false)
	}
	for _, col := range ix.consent {
		col.set(slot, 0)
	}
	for _, s := range ix.segs {
		if s.members.has(slot) {
			s.members.put(slot, false)
			s.count--
		}
	}
	if int(slot) < len(ix.due) {
		ix.due[slot] = 0
	}
	ix.events[slot] = nil
	ix.contactSeq[slot] = 0
	delete(ix.slots, ix.ids[slot])
	ix.ids[slot] = ""
	ix.free = append(ix.free, slot)
}

// Dependency keys: what a change touched, matched against what segments read (rule.Deps).
const allKey = "*"

func fieldKey(name string) string { return "f:" + name }
func attrKey(name string) string  { return "a:" + name }
func tagKey(tag string) string    { return "t:" + tag }
func channelKey(ch string) string { return "c:" + ch }
func eventKey(name string) string { return "e:" + name }
func depKeys(d rule.Deps) []string {
	var out []string
	for _, f := range d.Fields {
		out = append(out, fieldKey(f))
	}
	for _, a := range d.Attributes {
		out = append(out, attrKey(a))
	}
	for _, t := range d.Tags {
		out = append(out, tagKey(t))
	}
	for _, c := range d.Channels {
		out = append(out, channelKey(c))
	}
	for _, e := range d.Events {
		out = append(out, eventKey(e))
	}
	return out
}

// Apply brings the index in step with a committed change and re-evaluates, for each contact it touched, the
// segments the change can affect (and those that reference them). It returns the transitions, each with the
// reason ReasonChange or, for contacts deleted or merged away, exits. A change the index already reflects (its
// Seq is not above the rebuild's) is ignored.
func (ix *Index) Apply(ctx context.Context, ch contacts.Change, now time.Time) (changed, gone []Transition) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ch.Seq != 0 && ch.Seq <= ix.seq {
		return nil, nil
	}
	touched := map[int32][]string{}
	for _, id := range ch.Deleted {
		if slot, ok := ix.slots[id]; ok {
			gone = ix.exitAll(slot, gone)
			ix.removeSlot(slot)
		}
	}
	for _, m := range ch.Merged {
		from, ok := ix.slots[m.From]
		if !ok {
			continue
		}
		into := ix.slotOf(m.Into)
		for _, e := range ix.events[from] {
			ix.addEvent(into, e.at, e.name)
		}
		touched[into] = append(touched[into], allKey)
		gone = ix.exitAll(from, gone)
		ix.removeSlot(from)
	}
	for i := range ch.Contacts {
		c := &ch.Contacts[i]
		slot, known := ix.slots[c.ID]
		if known && ch.Seq != 0 && ch.Seq < ix.contactSeq[slot] {
			continue
		}
		keys := ix.setContact(c)
		slot = ix.slots[c.ID]
		ix.contactSeq[slot] = max(ix.contactSeq[slot], ch.Seq)
		touched[slot] = append(touched[slot], keys...)
	}
	for _, e := range ch.Events {
		slot, ok := ix.slots[e.ContactID]
		if !ok {
			continue
		}
		at := eventNanos(e.Timestamp)
		if e.Type == events.Track {
			ix.addEvent(slot, at, ix.nameCode(e.Name))
			touched[slot] = append(touched[slot], eventKey(e.Name))
		}
		if ix.seen(slot, e.Timestamp) {
			touched[slot] = append(touched[slot], fieldKey("last_seen_at"))
		}
	}
	p := ix.newPass(ctx, now, true)
	for _, slot := range sortedSlots(touched) {
		changed = ix.reevaluate(p, slot, touched[slot], changed)
	}
	return changed, gone
}

// lastSeenStep mirrors the store: an event moves last_seen_at only when it is at least this much later.
const lastSeenStep = time.Minute

// seen applies an event's time to last_seen_at as the store does, and reports whether it moved.
func (ix *Index) seen(slot int32, at time.Time) bool {
	if at.IsZero() || !inNanos(at) {
		return false
	}
	col := ix.builtins[fLastSeen]
	if prev, ok := col.get(slot); ok && at.Sub(prev.Time) < lastSeenStep {
		return false
	}
	return col.set(slot, contacts.TimeValue(at), true)
}

// inNanos reports whether t is a time the store's last-seen record can hold.
func inNanos(t time.Time) bool { return t.Year() >= 1678 && t.Year() <= 2261 }

func sortedSlots(m map[int32][]string) []int32 {
	out := make([]int32, 0, len(m))
	for s := range m {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// exitAll appends an exit from every segment the slot is in.
func (ix *Index) exitAll(slot int32, out []Transition) []Transition {
	for _, s := range ix.order {
		if s.members.has(slot) {
			out = append(out, Transition{Segment: s.ID, Contact: ix.ids[slot], Entered: false})
		}
	}
	return out
}
