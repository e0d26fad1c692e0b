package index

import (
	"math"
	"slices"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
)

// dict interns a column's text values: a slot holds a code, so that repeated values ("FR", "pro") are stored once
// and a text comparison is decided once per distinct value in a full pass. Codes are reference-counted and reused.
type dict struct {
	codes map[string]uint32
	strs  []string
	refs  []int32
	free  []uint32
}

func (d *dict) intern(s string) uint32 {
	if c, ok := d.codes[s]; ok {
		d.refs[c]++
		return c
	}
	if d.codes == nil {
		d.codes = map[string]uint32{}
	}
	var c uint32
	if n := len(d.free); n > 0 {
		c = d.free[n-1]
		d.free = d.free[:n-1]
		d.strs[c], d.refs[c] = s, 1
	} else {
		c = uint32(len(d.strs))
		d.strs = append(d.strs, s)
		d.refs = append(d.refs, 1)
	}
	d.codes[s] = c
	return c
}

func (d *dict) release(c uint32) {
	if d.refs[c]--; d.refs[c] == 0 {
		delete(d.codes, d.strs[c])
		d.strs[c] = ""
		d.free = append(d.free, c)
	}
}

// column holds one field's values by slot: its kind (0: no value) and 64 bits (a number's float64 bits, a time's
// Unix nanoseconds, a text's dict code, a bool). Lists, and times outside what nanoseconds since 1970 can hold, are
// kept aside.
type column struct {
	kinds []contacts.Kind
	vals  []uint64
	dict  dict
	// unique columns (email, phone, user id) hold a different text in nearly every slot: a dictionary would only
	// add a map entry per contact, so their texts are kept by slot in texts instead.
	unique bool
	texts  []string
	lists  map[int32][]string
	far    map[int32]time.Time
	// byKind counts the slots holding each kind, for the schema the rule checker uses.
	byKind [contacts.List + 1]int
}

// farKind marks a time kept in column.far.
const farKind = contacts.List + 1

// newColumn returns a column with room for capacity slots.
func newColumn(capacity int, unique bool) *column {
	c := &column{unique: unique}
	c.kinds = make([]contacts.Kind, 0, capacity)
	if unique {
		c.texts = make([]string, 0, capacity)
	}
	c.vals = make([]uint64, 0, capacity)
	return c
}

func (c *column) grow(slot int32) {
	if int(slot) >= len(c.kinds) {
		n := max(int(slot)+1, 2*len(c.kinds), 64)
		if n > cap(c.kinds) && int(slot) < cap(c.kinds) {
			n = cap(c.kinds) // room was made for it (newColumn)
		}
		c.kinds = slices.Grow(c.kinds, n-len(c.kinds))[:n]
		c.vals = slices.Grow(c.vals, n-len(c.vals))[:n]
		if c.unique {
			c.texts = slices.Grow(c.texts, n-len(c.texts))[:n]
		}
	}
}

func (c *column) kind(slot int32) contacts.Kind {
	if int(slot) >= len(c.kinds) {
		return 0
	}
	return c.kinds[slot]
}

// get returns the slot's value as the contact holds it.
func (c *column) get(slot int32) (contacts.Value, bool) {
	switch k := c.kind(slot); k {
	case 0:
		return contacts.Value{}, false
	case contacts.String:
		if c.unique {
			return contacts.StringValue(c.texts[slot]), true
		}
		return contacts.StringValue(c.dict.strs[c.vals[slot]]), true
	case contacts.Number:
		return contacts.NumberValue(math.Float64frombits(c.vals[slot])), true
	case contacts.Bool:
		return contacts.BoolValue(c.vals[slot] == 1), true
	case contacts.Time:
		return contacts.Value{Kind: contacts.Time, Time: time.Unix(0, int64(c.vals[slot])).UTC()}, true
	case farKind:
		return contacts.Value{Kind: contacts.Time, Time: c.far[slot]}, true
	case contacts.List:
		return contacts.ListValue(c.lists[slot]), true
	}
	return contacts.Value{}, false
}

// set stores the slot's value (ok false: none) and reports whether it changed.
func (c *column) set(slot int32, v contacts.Value, ok bool) bool {
	if !ok {
		v = contacts.Value{}
	}
	old, had := c.get(slot)
	if had == ok && (!ok || old.Equal(v) && sameInstant(old, v)) {
		return false
	}
	c.clear(slot)
	if !ok {
		return true
	}
	c.grow(slot)
	k := v.Kind
	switch v.Kind {
	case contacts.String:
		if c.unique {
			c.texts[slot] = v.Str
		} else {
			c.vals[slot] = uint64(c.dict.intern(v.Str))
		}
	case contacts.Number:
		c.vals[slot] = math.Float64bits(v.Num)
	case contacts.Bool:
		c.vals[slot] = 0
		if v.Bool {
			c.vals[slot] = 1
		}
	case contacts.Time:
		if y := v.Time.Year(); y < 1678 || y > 2261 {
			if c.far == nil {
				c.far = map[int32]time.Time{}
			}
			c.far[slot] = v.Time
			k = farKind
		} else {
			c.vals[slot] = uint64(v.Time.UnixNano())
		}
	case contacts.List:
		if c.lists == nil {
			c.lists = map[int32][]string{}
		}
		c.lists[slot] = slices.Clone(v.List)
	default:
		return true
	}
	c.kinds[slot] = k
	c.byKind[v.Kind]++
	return true
}

// sameInstant compares times as instants (Equal does), which is what rules see.
func sameInstant(a, b contacts.Value) bool { return a.Kind != contacts.Time || a.Time.Equal(b.Time) }

// clear removes the slot's value.
func (c *column) clear(slot int32) {
	k := c.kind(slot)
	switch k {
	case 0:
		return
	case contacts.String:
		if c.unique {
			c.texts[slot] = ""
		} else {
			c.dict.release(uint32(c.vals[slot]))
		}
	case contacts.List:
		delete(c.lists, slot)
	case farKind:
		delete(c.far, slot)
		k = contacts.Time
	}
	c.byKind[k]--
	c.kinds[slot] = 0
	c.vals[slot] = 0
}

// only returns the one kind the column holds, if it holds exactly one.
func (c *column) only() (contacts.Kind, bool) {
	var found contacts.Kind
	for k, n := range c.byKind {
		if n == 0 {
			continue
		}
		if found != 0 {
			return 0, false
		}
		found = contacts.Kind(k)
	}
	return found, found != 0
}

func (c *column) bytes() int {
	n := len(c.kinds) + 8*len(c.vals) + len(c.lists)*64 + len(c.far)*48 + 16*len(c.texts)
	for _, s := range c.texts {
		n += len(s)
	}
	for _, s := range c.dict.strs {
		n += len(s) + 16 + 4 + 40 // the string, its header, its ref count, its map entry
	}
	return n
}

// bitset is a set of slots.
type bitset []uint64

func (b bitset) has(slot int32) bool {
	w := int(slot) >> 6
	return w < len(b) && b[w]&(1<<(uint(slot)&63)) != 0
}

func (b *bitset) put(slot int32, on bool) {
	w := int(slot) >> 6
	if w >= len(*b) {
		if !on {
			return
		}
		*b = slices.Grow(*b, w+1-len(*b))[:w+1]
	}
	if on {
		(*b)[w] |= 1 << (uint(slot) & 63)
	} else {
		(*b)[w] &^= 1 << (uint(slot) & 63)
	}
}

// consents holds one channel's consent by slot.
type consents []uint8

const (
	consentSubscribed   = 1
	consentUnsubscribed = 2
)

func consentCode(s contacts.ConsentStatus) uint8 {
	switch s {
	case contacts.Subscribed:
		return consentSubscribed
	case contacts.Unsubscribed:
		return consentUnsubscribed
	}
	return 0
}

func (c consents) status(slot int32) contacts.ConsentStatus {
	if int(slot) < len(c) {
		switch c[slot] {
		case consentSubscribed:
			return contacts.Subscribed
		case consentUnsubscribed:
			return contacts.Unsubscribed
		}
	}
	return contacts.Unknown
}

// set stores a status and reports whether it changed.
func (c *consents) set(slot int32, code uint8) bool {
	if int(slot) >= len(*c) {
		if code == 0 {
			return false
		}
		n := max(int(slot)+1, 2*len(*c), 64)
		*c = slices.Grow(*c, n-len(*c))[:n]
	}
	if (*c)[slot] == code {
		return false
	}
	(*c)[slot] = code
	return true
}

// event is one track event of a contact as rules count it: when, and its name's code.
type event struct {
	at   int64
	name uint32
}

// eventNanos clamps a time to what Unix nanoseconds hold, as the store's event keys do.
func eventNanos(t time.Time) int64 {
	switch {
	case t.Year() < 1678:
		return math.MinInt64
	case t.Year() > 2261:
		return math.MaxInt64
	}
	return t.UnixNano()
}
