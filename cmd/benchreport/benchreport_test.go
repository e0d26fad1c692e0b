package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	storePkg = "github.com/crosscast/crosscast/core/store"
	relayPkg = "github.com/crosscast/crosscast/plugins/relay"
)

// wantBench is what Parse must return for testdata/bench.txt.
var wantBench = &Report{
	Machine: Machine{GOOS: "linux", GOARCH: "amd64", CPU: "AMD EPYC 7B13"},
	Benchmarks: []Benchmark{
		{storePkg, "BenchmarkStoreWrite/single", 2, 50000,
			map[string]float64{"ns/op": 24310, "writes/s": 41135, "B/op": 640, "allocs/op": 9}},
		{storePkg, "BenchmarkStoreWrite/group-commit", 2, 120000,
			map[string]float64{"ns/op": 15123, "writes/s": 66123, "B/op": 512, "allocs/op": 7}},
		{storePkg, "BenchmarkWrite/batch-1000", 2, 1000,
			map[string]float64{"ns/op": 1203456, "items/s": 830.9, "B/op": 262144, "allocs/op": 1003}},
		{storePkg, "BenchmarkCompact", 2, 300,
			map[string]float64{"ns/op": 4012345, "B/op": 1048576, "allocs/op": 42}},
		{storePkg, "BenchmarkStoreRead", 2, 2000000,
			map[string]float64{"ns/op": 612.5, "MB/s": 6687.35, "B/op": 0, "allocs/op": 0}},
		{relayPkg, "BenchmarkRelayFanout/subscribers-10", 2, 30000,
			map[string]float64{"ns/op": 40211, "p99-ms": 2.31, "B/op": 1024, "allocs/op": 12}},
		{relayPkg, "BenchmarkRelayFanout/subscribers-1000", 2, 500,
			map[string]float64{"ns/op": 2301002, "p99-ms": 17.5, "B/op": 98304, "allocs/op": 1012}},
	},
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParse(t *testing.T) {
	tests := []struct {
		name      string
		input     string
		want      *Report
		wantFails []string // non-nil: expect a *FailError with these lines
		wantErr   error    // expect errors.Is(err, wantErr)
		errSubstr string   // expect the error text to contain this
	}{
		{name: "two packages", input: readTestdata(t, "bench.txt"), want: wantBench},
		{
			name:  "failed benchmark",
			input: readTestdata(t, "fail.txt"),
			wantFails: []string{
				"line 6: --- FAIL: BenchmarkStoreWrite/group-commit",
				"line 8: --- FAIL: BenchmarkStoreWrite",
				"line 9: FAIL",
				"line 11: FAIL\tgithub.com/crosscast/crosscast/core/store\t0.412s",
				"line 19: FAIL",
			},
		},
		{
			name: "build failure",
			input: "# github.com/crosscast/crosscast/core/store\n" +
				"core/store/store.go:12:2: undefined: segment\n" +
				"FAIL\tgithub.com/crosscast/crosscast/core/store [build failed]\n",
			wantFails: []string{"line 3: FAIL\tgithub.com/crosscast/crosscast/core/store [build failed]"},
		},
		{
			name:      "indented subtest failure",
			input:     "BenchmarkA-8\t10\t5 ns/op\n    --- FAIL: TestB/sub (0.00s)\n",
			wantFails: []string{"line 2:     --- FAIL: TestB/sub (0.00s)"},
		},
		{name: "no benchmarks", input: readTestdata(t, "empty.txt"), wantErr: ErrNoBenchmarks},
		{name: "empty input", input: "", wantErr: ErrNoBenchmarks},
		{
			name:    "headers only",
			input:   "goos: linux\ngoarch: amd64\npkg: example.com/p\ncpu: X\nPASS\nok  \texample.com/p\t0.1s\n",
			wantErr: ErrNoBenchmarks,
		},
		{
			name:      "non-finite metric",
			input:     "BenchmarkRatio-8\t100\t12 ns/op\tNaN hits/op\n",
			errSubstr: "BenchmarkRatio reports NaN hits/op",
		},
		{
			name: "GOMAXPROCS=1 has no suffix, CRLF, no headers",
			input: "BenchmarkWrite/batch-1\t10\t83.20 ns/op\r\n" +
				"FAILED is not a status line\r\n",
			want: &Report{Benchmarks: []Benchmark{
				{"", "BenchmarkWrite/batch-1", 1, 10, map[string]float64{"ns/op": 83.2}},
			}},
		},
		{
			name: "first header wins, pkg switches",
			input: "goos: linux\ncpu: First\npkg: a\nBenchmarkA-4\t1\t1 ns/op\n" +
				"goos: darwin\ncpu: Second\npkg: b\nBenchmarkB-4\t2\t2 ns/op\n",
			want: &Report{
				Machine: Machine{GOOS: "linux", CPU: "First"},
				Benchmarks: []Benchmark{
					{"a", "BenchmarkA", 4, 1, map[string]float64{"ns/op": 1}},
					{"b", "BenchmarkB", 4, 2, map[string]float64{"ns/op": 2}},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tt.input))
			switch {
			case tt.wantFails != nil:
				var fe *FailError
				if !errors.As(err, &fe) {
					t.Fatalf("Parse error = %v, want *FailError", err)
				}
				if !slices.Equal(fe.Lines, tt.wantFails) {
					t.Errorf("FailError.Lines =\n%q\nwant\n%q", fe.Lines, tt.wantFails)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Parse error = %v, want %v", err, tt.wantErr)
				}
			case tt.errSubstr != "":
				if err == nil || !strings.Contains(err.Error(), tt.errSubstr) {
					t.Fatalf("Parse error = %v, want one containing %q", err, tt.errSubstr)
				}
			default:
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("Parse =\n%+v\nwant\n%+v", got, tt.want)
				}
				return
			}
			if got != nil {
				t.Errorf("Parse returned a report along with error %v", err)
			}
		})
	}
}

func TestParseResult(t *testing.T) {
	tests := []struct {
		line string
		want Benchmark
		ok   bool
	}{
		{
			line: "BenchmarkStoreWrite/group-commit-8   \t  120000\t     15123 ns/op\t  66123 writes/s\t     512 B/op\t       7 allocs/op",
			want: Benchmark{Name: "BenchmarkStoreWrite/group-commit", Procs: 8, Iterations: 120000,
				Metrics: map[string]float64{"ns/op": 15123, "writes/s": 66123, "B/op": 512, "allocs/op": 7}},
			ok: true,
		},
		{
			line: "BenchmarkWrite/batch-1000-2 \t 1000\t 3.410 ns/op\t 1234 items/s",
			want: Benchmark{Name: "BenchmarkWrite/batch-1000", Procs: 2, Iterations: 1000,
				Metrics: map[string]float64{"ns/op": 3.41, "items/s": 1234}},
			ok: true,
		},
		{
			line: "noise from benchmark BenchmarkNoisy-2   \t 100\t 3.100 ns/op",
			want: Benchmark{Name: "BenchmarkNoisy", Procs: 2, Iterations: 100,
				Metrics: map[string]float64{"ns/op": 3.1}},
			ok: true,
		},
		{
			line: "noiseBenchmarkGlued-16 \t 7\t 1e+06 ns/op",
			want: Benchmark{Name: "BenchmarkGlued", Procs: 16, Iterations: 7,
				Metrics: map[string]float64{"ns/op": 1e6}},
			ok: true,
		},
		{line: "--- BENCH: BenchmarkRelayFanout/subscribers-10-2"},
		{line: "BenchmarkOnlyName-8"},
		{line: "BenchmarkNoMetrics-8 \t 100"},
		{line: "BenchmarkOddPairs-8 \t 100\t 5 ns/op\t 7"},
		{line: "BenchmarkBadIters-8 \t 1.5\t 5 ns/op"},
		{line: "BenchmarkZeroIters-8 \t 0\t 5 ns/op"},
		{line: "BenchmarkBadValue-8 \t 100\t fast ns/op"},
		{line: "    bench_test.go:42: Benchmark warmed up 10 subscribers"},
		{line: "ok  \tgithub.com/crosscast/crosscast/core/store\t12.345s"},
		{line: "PASS"},
	}
	for _, tt := range tests {
		got, ok := parseResult(tt.line)
		if ok != tt.ok || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseResult(%q) =\n%+v, %v\nwant\n%+v, %v", tt.line, got, ok, tt.want, tt.ok)
		}
	}
}

func TestSplitProcs(t *testing.T) {
	tests := []struct {
		in    string
		name  string
		procs int
	}{
		{"BenchmarkStoreWrite-8", "BenchmarkStoreWrite", 8},
		{"BenchmarkWrite/batch-1000-2", "BenchmarkWrite/batch-1000", 2},
		{"BenchmarkStoreWrite/group-commit-128", "BenchmarkStoreWrite/group-commit", 128},
		{"BenchmarkStoreWrite/group-commit", "BenchmarkStoreWrite/group-commit", 1},
		{"BenchmarkStoreWrite", "BenchmarkStoreWrite", 1},
		{"BenchmarkX/size-1", "BenchmarkX/size-1", 1}, // go test never prints -1
		{"BenchmarkX/n=-0", "BenchmarkX/n=-0", 1},
		{"BenchmarkX/trailing-", "BenchmarkX/trailing-", 1},
		{"BenchmarkX/v1.2-8", "BenchmarkX/v1.2", 8},
		{"BenchmarkX/v-1.2", "BenchmarkX/v-1.2", 1},
		{"BenchmarkX-99999999999999999999", "BenchmarkX-99999999999999999999", 1},
	}
	for _, tt := range tests {
		name, procs := splitProcs(tt.in)
		if name != tt.name || procs != tt.procs {
			t.Errorf("splitProcs(%q) = %q, %d; want %q, %d", tt.in, name, procs, tt.name, tt.procs)
		}
	}
}

// parseFixture parses testdata/bench.txt and fills in the environment with
// a fixed time.
func parseFixture(t *testing.T) *Report {
	t.Helper()
	rep, err := Parse(strings.NewReader(readTestdata(t, "bench.txt")))
	if err != nil {
		t.Fatal(err)
	}
	describeEnvironment(rep, "make bench", time.Date(2026, 3, 4, 5, 6, 7, 890, time.FixedZone("CET", 3600)))
	return rep
}

func TestJSONRoundTrip(t *testing.T) {
	rep := parseFixture(t)
	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}

	var back Report
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, rep) {
		t.Errorf("round trip changed the report:\ngot  %+v\nwant %+v", &back, rep)
	}

	// The document has exactly the documented shape.
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	checkKeys(t, "top level", doc, "generated_at", "machine", "go_version", "commit", "command", "benchmarks")
	checkKeys(t, "machine", doc["machine"].(map[string]any), "goos", "goarch", "cpu", "cores", "memory_bytes", "kernel")
	benchmarks := doc["benchmarks"].([]any)
	if len(benchmarks) != len(wantBench.Benchmarks) {
		t.Fatalf("%d benchmarks in JSON, want %d", len(benchmarks), len(wantBench.Benchmarks))
	}
	for _, b := range benchmarks {
		checkKeys(t, "benchmark", b.(map[string]any), "package", "name", "procs", "iterations", "metrics")
	}
	if got := doc["generated_at"]; got != "2026-03-04T04:06:07Z" {
		t.Errorf("generated_at = %v, want 2026-03-04T04:06:07Z", got)
	}
	if _, err := time.Parse(time.RFC3339, doc["generated_at"].(string)); err != nil {
		t.Errorf("generated_at is not RFC 3339: %v", err)
	}
	if got := doc["command"]; got != "make bench" {
		t.Errorf("command = %v", got)
	}
	if m := doc["machine"].(map[string]any); m["cpu"] != "AMD EPYC 7B13" || m["goos"] != "linux" {
		t.Errorf("machine = %v, want the headers' cpu and goos", m)
	}
}

func checkKeys(t *testing.T, what string, obj map[string]any, want ...string) {
	t.Helper()
	got := slices.Sorted(maps.Keys(obj))
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s keys = %q, want %q", what, got, want)
	}
}

func TestRender(t *testing.T) {
	rep := parseFixture(t)
	rep.Machine.Cores = 2
	rep.GoVersion = "go1.26.8"
	rep.Commit = "abc1234"
	var buf bytes.Buffer
	if err := Render(&buf, rep); err != nil {
		t.Fatal(err)
	}
	want := `linux/amd64, AMD EPYC 7B13, 2 cores, go1.26.8, commit abc1234

pkg: github.com/crosscast/crosscast/core/store
benchmark                         iterations    ns/op     MB/s  items/s  writes/s     B/op  allocs/op
BenchmarkStoreWrite/single             50000    24310        -        -     41135      640          9
BenchmarkStoreWrite/group-commit      120000    15123        -        -     66123      512          7
BenchmarkWrite/batch-1000               1000  1203456        -    830.9         -   262144       1003
BenchmarkCompact                         300  4012345        -        -         -  1048576         42
BenchmarkStoreRead                   2000000    612.5  6687.35        -         -        0          0

pkg: github.com/crosscast/crosscast/plugins/relay
benchmark                              iterations    ns/op  p99-ms   B/op  allocs/op
BenchmarkRelayFanout/subscribers-10         30000    40211    2.31   1024         12
BenchmarkRelayFanout/subscribers-1000         500  2301002    17.5  98304       1012
`
	if got := buf.String(); got != want {
		t.Errorf("Render =\n%s\nwant\n%s", got, want)
	}
}

func TestRun(t *testing.T) {
	bench := readTestdata(t, "bench.txt")
	tests := []struct {
		name       string
		args       []string // "OUT" is replaced by the output path
		stdin      string
		code       int
		wantOut    bool   // the JSON file is written
		wantStderr string // stderr contains this
		command    string // expected "command" in the JSON
	}{
		{name: "file to nested out", args: []string{"-in", "testdata/bench.txt", "-out", "OUT"}, wantOut: true, command: "make bench"},
		{name: "stdin", args: []string{"-in", "-", "-out", "OUT", "-command", "go test -bench . ./core/..."}, stdin: bench, wantOut: true, command: "go test -bench . ./core/..."},
		{name: "stdin by default", args: []string{"-out", "OUT"}, stdin: bench, wantOut: true, command: "make bench"},
		{name: "table only", args: []string{"-in", "testdata/bench.txt"}},
		{name: "failure", args: []string{"-in", "testdata/fail.txt", "-out", "OUT"}, code: 1, wantStderr: "testdata/fail.txt: benchmark run failed"},
		{name: "no benchmarks", args: []string{"-in", "testdata/empty.txt", "-out", "OUT"}, code: 1, wantStderr: "no benchmark results"},
		{name: "missing input", args: []string{"-in", "testdata/missing.txt", "-out", "OUT"}, code: 1, wantStderr: "missing.txt"},
		{name: "unknown flag", args: []string{"-bogus"}, code: 2, wantStderr: "-bogus"},
		{name: "stray argument", args: []string{"-in", "testdata/bench.txt", "extra"}, code: 2, wantStderr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "bench", "nested", "results.json")
			args := slices.Clone(tt.args)
			for i, a := range args {
				if a == "OUT" {
					args[i] = out
				}
			}
			var stdout, stderr bytes.Buffer
			code := run(args, strings.NewReader(tt.stdin), &stdout, &stderr)
			if code != tt.code {
				t.Fatalf("exit code %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), tt.wantStderr)
			}

			data, err := os.ReadFile(out)
			if !tt.wantOut {
				if err == nil {
					t.Errorf("%s was written", out)
				}
				if tt.code == 0 && !strings.Contains(stdout.String(), "BenchmarkStoreWrite/group-commit ") {
					t.Errorf("stdout lacks the table:\n%s", stdout.String())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var rep Report
			if err := json.Unmarshal(data, &rep); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(rep.Benchmarks, wantBench.Benchmarks) {
				t.Errorf("benchmarks = %+v", rep.Benchmarks)
			}
			if rep.Command != tt.command || rep.GoVersion == "" || rep.Machine.Cores == 0 || rep.GeneratedAt.IsZero() {
				t.Errorf("environment not filled in: %+v", rep)
			}
			if !strings.Contains(stdout.String(), "pkg: "+relayPkg) || !strings.Contains(stdout.String(), "wrote "+out) {
				t.Errorf("stdout =\n%s", stdout.String())
			}
		})
	}
}

func TestCPUModel(t *testing.T) {
	cpuinfo := "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel\t\t: 1\nmodel name\t: AMD EPYC 7B13 64-Core Processor\n\nprocessor\t: 1\nmodel name\t: other\n"
	if got, want := cpuModel(cpuinfo), "AMD EPYC 7B13 64-Core Processor"; got != want {
		t.Errorf("cpuModel = %q, want %q", got, want)
	}
	if got := cpuModel("processor\t: 0\nCPU implementer\t: 0x41\n"); got != "" {
		t.Errorf("cpuModel without model name = %q, want \"\"", got)
	}
}

func TestMemTotal(t *testing.T) {
	tests := []struct {
		meminfo string
		want    int64
	}{
		{"MemTotal:       16316412 kB\nMemFree:         1234567 kB\n", 16316412 * 1024},
		{"MemFree:         1234567 kB\n", 0},
		{"MemTotal:       lots kB\n", 0},
		{"", 0},
	}
	for _, tt := range tests {
		if got := memTotal(tt.meminfo); got != tt.want {
			t.Errorf("memTotal(%q) = %d, want %d", tt.meminfo, got, tt.want)
		}
	}
}
