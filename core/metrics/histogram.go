package metrics

import (
	"fmt"
	"math"
	"strconv"
	"sync/atomic"
	"time"
)

// LatencyBuckets are histogram bucket upper bounds, in seconds, from 100µs
// to 10s in a 1-2.5-5 progression. They suit both HTTP request latency and
// bbolt commit (fsync) latency.
var LatencyBuckets = []float64{
	0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05,
	0.1, 0.25, 0.5,
	1, 2.5, 5,
	10,
}

// A HistogramVec is a histogram family, partitioned by label values. Create
// one with Registry.Histogram.
type HistogramVec struct {
	vec vec[Histogram]
}

// With returns the histogram for the given label values, which must be
// given in the order of the label names the family was registered with. It
// is cheap and safe for concurrent use. It panics if the number of values
// differs from the number of label names. Once the family holds MaxSeries
// series, new combinations of values return the overflow series.
func (v *HistogramVec) With(labelValues ...string) *Histogram {
	return v.vec.with(labelValues)
}

// A Histogram counts observations in buckets and keeps their sum. It is safe
// for concurrent use and Observe takes no lock.
type Histogram struct {
	upper  []float64       // bucket upper bounds, shared by the family, without +Inf
	counts []atomic.Uint64 // per bucket, not cumulative; the last one is +Inf
	sum    atomic.Uint64   // math.Float64bits of the sum of observations
}

// Observe records the observation v.
func (h *Histogram) Observe(v float64) {
	// Find the first bucket whose upper bound is >= v. NaN lands in +Inf.
	i, j := 0, len(h.upper)
	for i < j {
		m := int(uint(i+j) >> 1)
		if h.upper[m] < v {
			i = m + 1
		} else {
			j = m
		}
	}
	if math.IsNaN(v) {
		i = len(h.upper)
	}
	h.counts[i].Add(1)
	addFloat(&h.sum, v)
}

// ObserveDuration records d as an observation in seconds.
func (h *Histogram) ObserveDuration(d time.Duration) {
	h.Observe(d.Seconds())
}

// Count returns the number of observations recorded.
func (h *Histogram) Count() uint64 {
	var n uint64
	for i := range h.counts {
		n += h.counts[i].Load()
	}
	return n
}

// Sum returns the sum of the observations recorded.
func (h *Histogram) Sum() float64 {
	return math.Float64frombits(h.sum.Load())
}

// checkBuckets validates buckets and returns a copy without a final +Inf,
// together with the formatted le label value of each bound.
func checkBuckets(name string, buckets []float64) ([]float64, []string) {
	if len(buckets) == 0 {
		buckets = LatencyBuckets
	}
	upper := make([]float64, 0, len(buckets))
	for i, b := range buckets {
		switch {
		case math.IsNaN(b):
			panic(fmt.Sprintf("metrics: histogram %q: bucket %d is NaN", name, i))
		case i > 0 && b <= buckets[i-1]:
			panic(fmt.Sprintf("metrics: histogram %q: buckets not strictly increasing at %d (%v after %v)", name, i, b, buckets[i-1]))
		case math.IsInf(b, +1):
			if i != len(buckets)-1 {
				panic(fmt.Sprintf("metrics: histogram %q: +Inf bucket must be last", name))
			}
			continue
		}
		upper = append(upper, b)
	}
	les := make([]string, len(upper))
	for i, b := range upper {
		les[i] = strconv.FormatFloat(b, 'g', -1, 64)
	}
	return upper, les
}
