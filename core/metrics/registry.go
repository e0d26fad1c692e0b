package metrics

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// ContentType is the Content-Type of WriteText output.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// MaxSeries is the number of distinct label value combinations a labelled
// metric records before further new combinations are folded into its
// overflow series.
const MaxSeries = 10000

// OverflowLabelValue is the value of every label of the overflow series, the
// series that records updates for label value combinations first seen after
// a metric already holds MaxSeries series.
const OverflowLabelValue = "_overflow_"

// Metric types as written on "# TYPE" lines.
const (
	typeCounter   = "counter"
	typeGauge     = "gauge"
	typeHistogram = "histogram"
)

// A Registry holds a set of metric families and renders them, together with
// the Go runtime and process metrics, in the Prometheus text format. The zero
// value is not usable; create registries with NewRegistry. All methods are
// safe for concurrent use.
type Registry struct {
	maxSeries int // per labelled metric; MaxSeries except in tests

	mu       sync.RWMutex
	families []*family         // sorted by name
	taken    map[string]string // sample name -> name of the family that writes it
}

// family is one registered metric family.
type family struct {
	name string
	help string // already escaped for a HELP line
	typ  string
	// write writes the samples of the family to w. A family that writes no
	// sample is left out of the output, HELP and TYPE lines included.
	write func(w *textWriter, s *scrape)
}

// NewRegistry returns an empty registry. Its output always includes the Go
// runtime and process metrics, whose names are therefore already taken.
func NewRegistry() *Registry {
	r := &Registry{
		maxSeries: MaxSeries,
		taken:     make(map[string]string),
	}
	registerRuntime(r)
	return r
}

// register validates and adds a family. It panics on an invalid name or a
// name conflict.
func (r *Registry) register(kind, name, help string, labelNames []string, write func(*textWriter, *scrape)) {
	if !validMetricName(name) {
		panic(fmt.Sprintf("metrics: %s %q: invalid metric name (want [a-zA-Z_:][a-zA-Z0-9_:]*)", kind, name))
	}
	for i, l := range labelNames {
		if !validLabelName(l) {
			panic(fmt.Sprintf("metrics: %s %q: invalid label name %q (want [a-zA-Z_][a-zA-Z0-9_]* not starting with \"__\")", kind, name, l))
		}
		if kind == typeHistogram && l == "le" {
			panic(fmt.Sprintf("metrics: %s %q: label name \"le\" is reserved for histogram buckets", kind, name))
		}
		if slices.Contains(labelNames[:i], l) {
			panic(fmt.Sprintf("metrics: %s %q: duplicate label name %q", kind, name, l))
		}
	}
	samples := []string{name}
	if kind == typeHistogram {
		samples = append(samples, name+"_bucket", name+"_sum", name+"_count")
	}
	f := &family{name: name, help: escapeHelp(help), typ: kind, write: write}

	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range samples {
		if owner, ok := r.taken[s]; ok {
			if owner == name {
				panic(fmt.Sprintf("metrics: %s %q: metric already registered", kind, name))
			}
			panic(fmt.Sprintf("metrics: %s %q: sample name %q collides with metric %q", kind, name, s, owner))
		}
	}
	for _, s := range samples {
		r.taken[s] = name
	}
	i, _ := slices.BinarySearchFunc(r.families, name, func(f *family, n string) int { return strings.Compare(f.name, n) })
	r.families = slices.Insert(r.families, i, f)
}

// Counter registers a counter family with the given name, help text and
// label names, and returns it. It panics if a name is invalid or if the
// metric name is already registered.
func (r *Registry) Counter(name, help string, labelNames ...string) *CounterVec {
	v := &CounterVec{}
	v.vec.init(typeCounter, name, labelNames, r.maxSeries, func(values []string) *series[Counter] {
		return &series[Counter]{values: values}
	})
	r.register(typeCounter, name, help, labelNames, func(w *textWriter, _ *scrape) {
		for _, s := range v.vec.snapshot() {
			w.sample(name, "", v.vec.labelNames, s.values, "", "", s.m.Value())
		}
	})
	return v
}

// CounterFunc registers an unlabelled counter whose value is fn's result,
// evaluated each time the registry is rendered. It suits totals that another
// component already keeps, such as the transaction count in a database's
// statistics. fn must be safe for concurrent use, fast, and never decrease.
// It panics if the name is invalid or already registered.
func (r *Registry) CounterFunc(name, help string, fn func() float64) {
	r.register(typeCounter, name, help, nil, func(w *textWriter, _ *scrape) {
		w.sample(name, "", nil, nil, "", "", fn())
	})
}

// Gauge registers a gauge family with the given name, help text and label
// names, and returns it. It panics if a name is invalid or if the metric
// name is already registered.
func (r *Registry) Gauge(name, help string, labelNames ...string) *GaugeVec {
	v := &GaugeVec{}
	v.vec.init(typeGauge, name, labelNames, r.maxSeries, func(values []string) *series[Gauge] {
		return &series[Gauge]{values: values}
	})
	r.register(typeGauge, name, help, labelNames, func(w *textWriter, _ *scrape) {
		for _, s := range v.vec.snapshot() {
			w.sample(name, "", v.vec.labelNames, s.values, "", "", s.m.Value())
		}
	})
	return v
}

// GaugeFunc registers an unlabelled gauge whose value is fn's result,
// evaluated each time the registry is rendered. fn must be safe for
// concurrent use and fast. It panics if the name is invalid or already
// registered.
func (r *Registry) GaugeFunc(name, help string, fn func() float64) {
	r.register(typeGauge, name, help, nil, func(w *textWriter, _ *scrape) {
		w.sample(name, "", nil, nil, "", "", fn())
	})
}

// Histogram registers a histogram family with the given name, help text,
// bucket upper bounds and label names, and returns it. buckets must be
// strictly increasing; a final +Inf bound may be given but is always
// implied, and nil or empty buckets mean LatencyBuckets. The slice is
// copied. It panics if a name is invalid, if the label name "le" is used,
// if the buckets are not strictly increasing or contain NaN, or if the
// metric name or one of its sample names (_bucket, _sum, _count) is already
// taken.
func (r *Registry) Histogram(name, help string, buckets []float64, labelNames ...string) *HistogramVec {
	upper, les := checkBuckets(name, buckets)
	v := &HistogramVec{}
	v.vec.init(typeHistogram, name, labelNames, r.maxSeries, func(values []string) *series[Histogram] {
		s := &series[Histogram]{values: values}
		s.m.upper = upper
		s.m.counts = make([]atomic.Uint64, len(upper)+1)
		return s
	})
	r.register(typeHistogram, name, help, labelNames, func(w *textWriter, _ *scrape) {
		for _, s := range v.vec.snapshot() {
			h := &s.m
			var cum uint64
			for i := range h.counts {
				cum += h.counts[i].Load()
				le := "+Inf"
				if i < len(les) {
					le = les[i]
				}
				w.sampleUint(name, "_bucket", v.vec.labelNames, s.values, "le", le, cum)
			}
			w.sample(name, "_sum", v.vec.labelNames, s.values, "", "", h.Sum())
			w.sampleUint(name, "_count", v.vec.labelNames, s.values, "", "", cum)
		}
	})
	return v
}

// WriteText writes every registered metric family, and the Go runtime and
// process metrics, to w in the Prometheus text exposition format 0.0.4.
// Families are sorted by name and the series of a family by label values.
// Gauge and counter functions are evaluated during the call. It returns the
// first error from w.
func (r *Registry) WriteText(w io.Writer) error {
	r.mu.RLock()
	fams := slices.Clone(r.families)
	r.mu.RUnlock()

	tw := &textWriter{bw: bufio.NewWriterSize(w, 32<<10)}
	s := &scrape{}
	for _, f := range fams {
		tw.family = f
		tw.started = false
		f.write(tw, s)
	}
	return tw.bw.Flush()
}

// validMetricName reports whether name matches [a-zA-Z_:][a-zA-Z0-9_:]*.
func validMetricName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9'
		if !ok {
			return false
		}
	}
	return true
}

// validLabelName reports whether name matches [a-zA-Z_][a-zA-Z0-9_]* and
// does not start with the reserved prefix "__".
func validLabelName(name string) bool {
	if name == "" || strings.HasPrefix(name, "__") {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9'
		if !ok {
			return false
		}
	}
	return true
}

// escapeHelp escapes backslash and newline in help text, and replaces
// invalid UTF-8, as the text format requires.
func escapeHelp(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

// validUTF8 reports whether every string in values is valid UTF-8.
func validUTF8(values []string) bool {
	for _, v := range values {
		if !utf8.ValidString(v) {
			return false
		}
	}
	return true
}
