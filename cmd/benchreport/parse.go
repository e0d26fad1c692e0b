package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Report is the JSON document benchreport writes to -out.
type Report struct {
	GeneratedAt time.Time   `json:"generated_at"` // UTC, whole seconds (RFC 3339)
	Machine     Machine     `json:"machine"`
	GoVersion   string      `json:"go_version"` // runtime.Version() of benchreport
	Commit      string      `json:"commit"`     // git rev-parse --short HEAD, or ""
	Command     string      `json:"command"`    // the -command flag
	Benchmarks  []Benchmark `json:"benchmarks"` // in input order
}

// Machine describes the host the benchmarks ran on.
type Machine struct {
	GOOS        string `json:"goos"`         // "goos:" header, else runtime.GOOS
	GOARCH      string `json:"goarch"`       // "goarch:" header, else runtime.GOARCH
	CPU         string `json:"cpu"`          // "cpu:" header, else /proc/cpuinfo model name
	Cores       int    `json:"cores"`        // runtime.NumCPU()
	MemoryBytes int64  `json:"memory_bytes"` // /proc/meminfo MemTotal, or 0
	Kernel      string `json:"kernel"`       // /proc/sys/kernel/osrelease, or ""
}

// Benchmark is one benchmark result line.
type Benchmark struct {
	Package    string             `json:"package"`    // from the preceding "pkg:" header
	Name       string             `json:"name"`       // full name without the -GOMAXPROCS suffix
	Procs      int                `json:"procs"`      // GOMAXPROCS; 1 when the name has no suffix
	Iterations int64              `json:"iterations"` // b.N
	Metrics    map[string]float64 `json:"metrics"`    // value by unit: "ns/op", "B/op", "writes/s", ...
}

// ErrNoBenchmarks is returned by [Parse] when the input holds no benchmark
// result lines.
var ErrNoBenchmarks = errors.New("no benchmark results in input (did go test -bench run any benchmarks?)")

// FailError is returned by [Parse] when the input shows a failed test,
// benchmark or build.
type FailError struct {
	Lines []string // the failure lines, each prefixed with its line number
}

// maxShownFailures bounds how many failure lines FailError.Error lists.
const maxShownFailures = 10

// Error lists the failure lines.
func (e *FailError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "benchmark run failed, no report written:")
	for i, l := range e.Lines {
		if i == maxShownFailures {
			fmt.Fprintf(&b, "\n\t... and %d more", len(e.Lines)-i)
			break
		}
		fmt.Fprintf(&b, "\n\t%s", l)
	}
	return b.String()
}

// maxLineBytes bounds the length of one input line.
const maxLineBytes = 16 << 20

// Parse reads go test -bench output and returns the benchmark results with
// the goos, goarch and cpu headers filled into Report.Machine; the remaining
// fields are left for the caller.
//
// Lines that are neither headers, results nor failures (log output, PASS,
// ok ...) are ignored. Parse returns a *[FailError] if any line starts with
// "--- FAIL" (after indentation) or is a "FAIL" status line, and
// [ErrNoBenchmarks] if there are no results.
//
// A trailing -N on a name is taken as GOMAXPROCS, as go test appends it
// whenever GOMAXPROCS is not 1. A run with GOMAXPROCS=1 and a sub-benchmark
// named like "batch-1000" is therefore misread as procs 1000; go test's
// output does not allow telling the two apart.
func Parse(r io.Reader) (*Report, error) {
	rep := &Report{}
	var pkg string
	var failures []string
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, maxLineBytes)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if isFailure(line) {
			failures = append(failures, fmt.Sprintf("line %d: %s", n, line))
			continue
		}
		if key, val, ok := parseHeader(line); ok {
			switch key {
			case "goos":
				setOnce(&rep.Machine.GOOS, val)
			case "goarch":
				setOnce(&rep.Machine.GOARCH, val)
			case "cpu":
				setOnce(&rep.Machine.CPU, val)
			case "pkg":
				pkg = val
			}
			continue
		}
		b, ok := parseResult(line)
		if !ok {
			continue
		}
		for unit, v := range b.Metrics {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("line %d: %s reports %v %s, which JSON cannot represent", n, b.Name, v, unit)
			}
		}
		b.Package = pkg
		rep.Benchmarks = append(rep.Benchmarks, b)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(failures) > 0 {
		return nil, &FailError{Lines: failures}
	}
	if len(rep.Benchmarks) == 0 {
		return nil, ErrNoBenchmarks
	}
	return rep, nil
}

// isFailure reports whether line marks a failure: "--- FAIL: ..." (possibly
// indented, for subtests) or a "FAIL" / "FAIL\t<pkg> ..." status line.
func isFailure(line string) bool {
	return strings.HasPrefix(strings.TrimLeft(line, " \t"), "--- FAIL") ||
		line == "FAIL" || strings.HasPrefix(line, "FAIL\t") || strings.HasPrefix(line, "FAIL ")
}

// headerKeys are the "key: value" headers go test prints before benchmarks.
var headerKeys = []string{"goos", "goarch", "pkg", "cpu"}

// parseHeader splits a header line such as "cpu: AMD EPYC 7B13" into its key
// and trimmed value.
func parseHeader(line string) (key, val string, ok bool) {
	for _, k := range headerKeys {
		if v, found := strings.CutPrefix(line, k+": "); found {
			return k, strings.TrimSpace(v), true
		}
	}
	return "", "", false
}

// setOnce sets *dst to v unless it is already set; the headers repeat for
// every package and the first one wins.
func setOnce(dst *string, v string) {
	if *dst == "" {
		*dst = v
	}
}

// parseResult parses a result line: a name starting with "Benchmark", the
// iteration count, then one or more "value unit" pairs. Output the benchmark
// wrote to stdout may precede the name on the same line and is skipped.
func parseResult(line string) (Benchmark, bool) {
	fields := strings.Fields(line)
	for i, f := range fields {
		at := strings.Index(f, "Benchmark")
		if at < 0 {
			continue
		}
		if b, ok := parseFields(f[at:], fields[i+1:]); ok {
			return b, true
		}
	}
	return Benchmark{}, false
}

// parseFields parses the fields after the name: iterations, then pairs.
func parseFields(name string, rest []string) (Benchmark, bool) {
	if len(rest) < 3 || len(rest)%2 == 0 {
		return Benchmark{}, false
	}
	iters, err := strconv.ParseInt(rest[0], 10, 64)
	if err != nil || iters <= 0 {
		return Benchmark{}, false
	}
	metrics := make(map[string]float64, len(rest)/2)
	for i := 1; i < len(rest); i += 2 {
		v, err := strconv.ParseFloat(rest[i], 64)
		if err != nil {
			return Benchmark{}, false
		}
		metrics[rest[i+1]] = v
	}
	name, procs := splitProcs(name)
	return Benchmark{Name: name, Procs: procs, Iterations: iters, Metrics: metrics}, true
}

// splitProcs splits "BenchmarkWrite/batch-1000-2" into
// "BenchmarkWrite/batch-1000" and 2. go test never prints a -1 suffix, so a
// name without a suffix greater than 1 has procs 1 and is returned whole.
func splitProcs(name string) (string, int) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 || i == len(name)-1 {
		return name, 1
	}
	digits := name[i+1:]
	if strings.TrimLeft(digits, "0123456789") != "" {
		return name, 1
	}
	procs, err := strconv.Atoi(digits)
	if err != nil || procs <= 1 {
		return name, 1
	}
	return name[:i], procs
}
