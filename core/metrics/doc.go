// Package metrics is Crosscast's in-process metrics registry. It owns the
// definition, the concurrent updating and the rendering of every metric the
// server exposes: request counts and latencies recorded by the HTTP layer,
// commit latency and operations per commit recorded by the bbolt store,
// counters and histograms labelled by plugin recorded on behalf of wasm
// plugins, and a fixed set of Go runtime and process metrics.
//
// A [Registry] renders its metrics in the Prometheus text exposition format,
// version 0.0.4, through [Registry.WriteText]; serve that output with the
// Content-Type [ContentType]. Output is deterministic: metric families are
// sorted by name and the series of a family are sorted by label values.
//
// Metrics are registered once, at wiring time, through [Registry.Counter],
// [Registry.Gauge], [Registry.Histogram], [Registry.GaugeFunc] and
// [Registry.CounterFunc]. Registration panics on an invalid metric or label
// name and on a name that is already taken, because both are programmer
// errors. Updating a metric is safe from any number of goroutines: looking up
// an existing series takes no lock, and counters, gauges and histogram
// observations are updated with atomic operations only. Each labelled metric
// holds at most [MaxSeries] series; label value combinations seen after that
// are all counted in one series whose label values are [OverflowLabelValue],
// so that a label fed from untrusted input cannot exhaust memory.
//
// This package lives under core/ and must import only the Go standard
// library; it must never depend on a third-party module.
package metrics
