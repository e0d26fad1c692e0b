package metrics

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// series is one label value combination of a family and its metric.
type series[T any] struct {
	values []string // sanitized, owned copies
	m      T
}

// vec maps label values to series. Lookups of existing series are lock-free;
// creating a series takes mu.
type vec[T any] struct {
	kind        string
	name        string
	labelNames  []string
	max         int
	newSeries   func(values []string) *series[T]
	single      *series[T] // the only series when there are no labels
	overflowKey string

	m        sync.Map // key(values) -> *series[T]
	full     atomic.Bool
	overflow atomic.Pointer[series[T]]
	mu       sync.Mutex
	n        int // series in m, not counting the overflow series
}

func (v *vec[T]) init(kind, name string, labelNames []string, maxSeries int, newSeries func([]string) *series[T]) {
	v.kind = kind
	v.name = name
	v.labelNames = slices.Clone(labelNames)
	v.max = maxSeries
	v.newSeries = newSeries
	if len(labelNames) == 0 {
		v.single = newSeries(nil)
		return
	}
	ov := make([]string, len(labelNames))
	for i := range ov {
		ov[i] = OverflowLabelValue
	}
	v.overflowKey = seriesKey(ov)
}

// with returns the metric for values, creating its series if needed.
func (v *vec[T]) with(values []string) *T {
	if len(values) != len(v.labelNames) {
		v.panicLabelCount(slices.Clone(values)) // Clone keeps values on the caller's stack
	}
	if v.single != nil {
		return &v.single.m
	}
	var s any
	var ok bool
	if len(values) == 1 {
		s, ok = v.m.Load(values[0])
	} else {
		var buf [128]byte
		s, ok = v.m.Load(string(appendKey(buf[:0], values)))
	}
	if ok {
		return &s.(*series[T]).m
	}
	if v.full.Load() && validUTF8(values) {
		if o := v.overflow.Load(); o != nil {
			return &o.m
		}
	}
	return &v.create(values).m
}

func (v *vec[T]) panicLabelCount(values []string) {
	panic(fmt.Sprintf("metrics: %s %q: With got %d label values %q, want %d for labels %q",
		v.kind, v.name, len(values), values, len(v.labelNames), v.labelNames))
}

// create returns the series for values, creating it, or returning the
// overflow series when the vec is full.
func (v *vec[T]) create(values []string) *series[T] {
	vals := make([]string, len(values))
	for i, s := range values {
		// Clone: callers may pass strings aliasing reusable buffers.
		vals[i] = strings.Clone(strings.ToValidUTF8(s, "\uFFFD"))
	}
	key := seriesKey(vals)

	v.mu.Lock()
	defer v.mu.Unlock()
	if s, ok := v.m.Load(key); ok {
		return s.(*series[T])
	}
	if v.n >= v.max {
		if o := v.overflow.Load(); o != nil {
			return o
		}
		o, ok := v.m.Load(v.overflowKey)
		if !ok {
			ov := make([]string, len(vals))
			for i := range ov {
				ov[i] = OverflowLabelValue
			}
			o = v.newSeries(ov)
			v.m.Store(v.overflowKey, o)
		}
		v.overflow.Store(o.(*series[T]))
		v.full.Store(true)
		return o.(*series[T])
	}
	s := v.newSeries(vals)
	v.m.Store(key, s)
	v.n++
	return s
}

// snapshot returns the series of the vec sorted by label values.
func (v *vec[T]) snapshot() []*series[T] {
	if v.single != nil {
		return []*series[T]{v.single}
	}
	var out []*series[T]
	v.m.Range(func(_, s any) bool {
		out = append(out, s.(*series[T]))
		return true
	})
	slices.SortFunc(out, func(a, b *series[T]) int { return slices.Compare(a.values, b.values) })
	return out
}

// seriesKey returns the map key for values.
func seriesKey(values []string) string {
	if len(values) == 1 {
		return values[0]
	}
	return string(appendKey(nil, values))
}

// appendKey appends an unambiguous encoding of values to b: each value is
// preceded by its length.
func appendKey(b []byte, values []string) []byte {
	for _, s := range values {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}
