package capability

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/crosscast/crosscast/core/metrics"
	"github.com/crosscast/crosscast/plugins/runtime"
	"github.com/crosscast/crosscast/sdk"
	"github.com/crosscast/crosscast/sdk/wire"
)

// Limits of plugin metrics: they end up in every scrape, so a plugin must not be able to bloat /metrics.
const (
	maxMetricsPerPlugin = 32
	maxMetricLabels     = 4
	maxLabelValue       = 128
	maxMetricBuckets    = 32
	// MetricPrefix starts the name of every plugin's own metric on /metrics.
	MetricPrefix = "crosscast_plugin_"
)

var metricName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// Metrics holds plugins' own metric families in the host's registry. A family is registered once and shared by
// every plugin (and every reload) that declares it alike; the "plugin" label tells them apart.
type Metrics struct {
	reg      *metrics.Registry
	mu       sync.Mutex
	families map[string]*metricFamily
}

type metricFamily struct {
	def     sdk.Metric
	counter *metrics.CounterVec
	hist    *metrics.HistogramVec
}

// NewMetrics returns a Metrics registering families in reg.
func NewMetrics(reg *metrics.Registry) *Metrics {
	return &Metrics{reg: reg, families: map[string]*metricFamily{}}
}

// Declare checks a plugin's declared metrics, registers the families not registered yet, and returns the metric
// import for the plugin. A declaration that differs from an existing family of the same name (another type,
// labels or buckets) is refused: one name means one thing on /metrics.
func (m *Metrics) Declare(plugin string, defs []sdk.Metric) (runtime.HostFunc, error) {
	if len(defs) > maxMetricsPerPlugin {
		return nil, fmt.Errorf("its manifest declares %d metrics; at most %d are allowed", len(defs), maxMetricsPerPlugin)
	}
	own := make(map[string]*metricFamily, len(defs))
	for _, d := range defs {
		if err := checkMetric(d); err != nil {
			return nil, fmt.Errorf("its manifest declares metric %q: %w", d.Name, err)
		}
		if own[d.Name] != nil {
			return nil, fmt.Errorf("its manifest declares metric %q twice", d.Name)
		}
		f, err := m.family(d)
		if err != nil {
			return nil, fmt.Errorf("its manifest declares metric %q: %w", d.Name, err)
		}
		own[d.Name] = f
	}
	return func(_ context.Context, b []byte, w *wire.Writer) error {
		q, err := wire.DecodeMetricRequest(b)
		if err != nil {
			return errMalformed("metric", err)
		}
		f := own[q.Name]
		if f == nil {
			return fmt.Errorf("metric %q is not declared in this plugin's manifest", q.Name)
		}
		values := make([]string, 1, 1+len(f.def.Labels))
		values[0] = plugin
		if len(q.Labels) != len(f.def.Labels) {
			return fmt.Errorf("metric %q takes labels %v, got %d", q.Name, f.def.Labels, len(q.Labels))
		}
		for _, l := range f.def.Labels {
			v, ok := q.Labels.Lookup(l)
			if !ok {
				return fmt.Errorf("metric %q takes labels %v; %q is missing", q.Name, f.def.Labels, l)
			}
			if len(v) > maxLabelValue || !utf8.ValidString(v) {
				return fmt.Errorf("metric %q: label %q must be UTF-8 of at most %d bytes", q.Name, l, maxLabelValue)
			}
			values = append(values, v)
		}
		if math.IsNaN(q.Value) || math.IsInf(q.Value, 0) {
			return fmt.Errorf("metric %q: value %v is not a finite number", q.Name, q.Value)
		}
		if f.counter != nil {
			if q.Value < 0 {
				return fmt.Errorf("counter %q cannot decrease (delta %v)", q.Name, q.Value)
			}
			f.counter.With(values...).Add(q.Value)
			return nil
		}
		f.hist.With(values...).Observe(q.Value)
		return nil
	}, nil
}

func checkMetric(d sdk.Metric) error {
	if !metricName.MatchString(d.Name) {
		return fmt.Errorf("the name must be lower_snake_case, at most 63 characters")
	}
	if d.Type != "counter" && d.Type != "histogram" {
		return fmt.Errorf("type %q is neither counter nor histogram", d.Type)
	}
	if d.Help == "" {
		return fmt.Errorf("help is empty: say what it counts, for operators")
	}
	if len(d.Labels) > maxMetricLabels {
		return fmt.Errorf("%d labels; at most %d are allowed", len(d.Labels), maxMetricLabels)
	}
	for i, l := range d.Labels {
		if !metricName.MatchString(l) || l == "plugin" || l == "le" {
			return fmt.Errorf("label %q: want lower_snake_case, not plugin or le", l)
		}
		if slices.Contains(d.Labels[:i], l) {
			return fmt.Errorf("label %q twice", l)
		}
	}
	if d.Type == "counter" && len(d.Buckets) > 0 {
		return fmt.Errorf("a counter has no buckets")
	}
	if len(d.Buckets) > maxMetricBuckets {
		return fmt.Errorf("%d buckets; at most %d are allowed", len(d.Buckets), maxMetricBuckets)
	}
	for i, b := range d.Buckets {
		if math.IsNaN(b) || math.IsInf(b, 0) || (i > 0 && b <= d.Buckets[i-1]) {
			return fmt.Errorf("buckets must be finite and strictly increasing")
		}
	}
	return nil
}

// family returns the registered family for d, registering it on first use.
func (m *Metrics) family(d sdk.Metric) (f *metricFamily, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if f := m.families[d.Name]; f != nil {
		if f.def.Type != d.Type || !slices.Equal(f.def.Labels, d.Labels) || !slices.Equal(f.def.Buckets, d.Buckets) {
			return nil, fmt.Errorf("another plugin declares it with another type, labels or buckets")
		}
		return f, nil
	}
	defer func() {
		if r := recover(); r != nil { // the registry panics on a name taken by the host's own metrics
			f, err = nil, fmt.Errorf("%s%s is taken by one of the host's metrics: %v", MetricPrefix, d.Name, r)
		}
	}()
	labels := append([]string{"plugin"}, d.Labels...)
	f = &metricFamily{def: d}
	name := MetricPrefix + d.Name
	help := d.Help + " (declared by a plugin)"
	if d.Type == "counter" {
		f.counter = m.reg.Counter(name, help, labels...)
	} else {
		f.hist = m.reg.Histogram(name, help, d.Buckets, labels...)
	}
	m.families[d.Name] = f
	return f, nil
}
