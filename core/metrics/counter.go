package metrics

import (
	"fmt"
	"math"
	"sync/atomic"
)

// A CounterVec is a counter family, partitioned by label values. Create one
// with Registry.Counter.
type CounterVec struct {
	vec vec[Counter]
}

// With returns the counter for the given label values, which must be given
// in the order of the label names the family was registered with. It is
// cheap and safe for concurrent use; callers on hot paths may still keep the
// result. It panics if the number of values differs from the number of label
// names. Once the family holds MaxSeries series, new combinations of values
// return the overflow series.
func (v *CounterVec) With(labelValues ...string) *Counter {
	return v.vec.with(labelValues)
}

// A Counter is a cumulative value that only increases. It is safe for
// concurrent use.
type Counter struct {
	bits atomic.Uint64 // math.Float64bits of the value
}

// Inc adds 1 to the counter.
func (c *Counter) Inc() {
	addFloat(&c.bits, 1)
}

// Add adds v to the counter. It panics if v is negative or NaN, because a
// counter never decreases.
func (c *Counter) Add(v float64) {
	if v < 0 || math.IsNaN(v) {
		panic(fmt.Sprintf("metrics: counter cannot be increased by %v", v))
	}
	addFloat(&c.bits, v)
}

// Value returns the current value of the counter.
func (c *Counter) Value() float64 {
	return math.Float64frombits(c.bits.Load())
}

// addFloat atomically adds v to the float64 stored as bits in p.
func addFloat(p *atomic.Uint64, v float64) {
	for {
		old := p.Load()
		if p.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}
