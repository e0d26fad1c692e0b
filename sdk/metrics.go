package sdk

import "github.com/crosscast/crosscast/sdk/wire"

// Metric declares one of the plugin's own metrics in its manifest (request "metrics" in Manifest.Capabilities).
// The host exports it on /metrics as crosscast_plugin_<Name>, labelled with plugin and the declared Labels.
type Metric struct {
	Name   string   `json:"name"` // lower_snake_case; counters end in _total, by convention
	Type   string   `json:"type"` // "counter" or "histogram"
	Help   string   `json:"help"`
	Labels []string `json:"labels,omitempty"`
	// Buckets are a histogram's upper bounds, ascending; empty means latency buckets in seconds.
	Buckets []float64 `json:"buckets,omitempty"`
}

// Count adds delta (>= 0) to a declared counter. labels are name, value pairs, exactly the declared label names.
func Count(name string, delta float64, labels ...string) error {
	return recordMetric(name, delta, labels)
}

// Observe records one value in a declared histogram. labels are name, value pairs, exactly the declared names.
func Observe(name string, value float64, labels ...string) error {
	return recordMetric(name, value, labels)
}

func recordMetric(name string, v float64, labels []string) error {
	q := wire.MetricRequest{Name: name, Value: v}
	if len(labels) > 0 {
		m := make(map[string]string, len(labels)/2)
		for i := 0; i+1 < len(labels); i += 2 {
			m[labels[i]] = labels[i+1]
		}
		if len(labels)%2 == 1 {
			m[labels[len(labels)-1]] = ""
		}
		q.Labels = wire.PairsOf(m)
	}
	r, err := callCapability(capMetric, callMetric, q.Encode)
	if err != nil {
		return err
	}
	return r.End()
}
