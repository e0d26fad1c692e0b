package metrics

import (
	"math"
	"sync/atomic"
)

// A GaugeVec is a gauge family, partitioned by label values. Create one with
// Registry.Gauge.
type GaugeVec struct {
	vec vec[Gauge]
}

// With returns the gauge for the given label values, which must be given in
// the order of the label names the family was registered with. It is cheap
// and safe for concurrent use. It panics if the number of values differs
// from the number of label names. Once the family holds MaxSeries series,
// new combinations of values return the overflow series.
func (v *GaugeVec) With(labelValues ...string) *Gauge {
	return v.vec.with(labelValues)
}

// A Gauge is a value that can go up and down. It is safe for concurrent use.
type Gauge struct {
	bits atomic.Uint64 // math.Float64bits of the value
}

// Set sets the gauge to v.
func (g *Gauge) Set(v float64) {
	g.bits.Store(math.Float64bits(v))
}

// Add adds v, which may be negative, to the gauge.
func (g *Gauge) Add(v float64) {
	addFloat(&g.bits, v)
}

// Inc adds 1 to the gauge.
func (g *Gauge) Inc() {
	addFloat(&g.bits, 1)
}

// Dec subtracts 1 from the gauge.
func (g *Gauge) Dec() {
	addFloat(&g.bits, -1)
}

// Value returns the current value of the gauge.
func (g *Gauge) Value() float64 {
	return math.Float64frombits(g.bits.Load())
}
