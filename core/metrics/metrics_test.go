package metrics

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// runtimeNames are the families every registry writes on its own.
var runtimeNames = []string{
	"go_gc_cycles_total",
	"go_goroutines",
	"go_info",
	"go_memstats_heap_alloc_bytes",
	"go_memstats_heap_inuse_bytes",
	"go_memstats_sys_bytes",
	"go_threads",
	"process_open_fds",
	"process_resident_memory_bytes",
	"process_start_time_seconds",
}

// render returns the output of r.WriteText.
func render(t *testing.T, r *Registry) string {
	t.Helper()
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatalf("WriteText: %v", err)
	}
	return b.String()
}

// families splits exposition text into blocks keyed by family name, in
// order. A block starts at a "# HELP" or "# TYPE" line naming a family not
// seen in the previous line.
func families(t *testing.T, text string) (names []string, blocks map[string]string) {
	t.Helper()
	blocks = make(map[string]string)
	cur := ""
	for line := range strings.Lines(text) {
		if strings.HasPrefix(line, "# HELP ") || strings.HasPrefix(line, "# TYPE ") {
			name := strings.Fields(line)[2]
			if name != cur {
				if _, dup := blocks[name]; dup {
					t.Fatalf("family %q appears twice", name)
				}
				cur = name
				names = append(names, name)
			}
		}
		if cur == "" {
			t.Fatalf("sample before any family header: %q", line)
		}
		blocks[cur] += line
	}
	return names, blocks
}

// userText returns text without the runtime and process families, and
// checks that each of those is present.
func userText(t *testing.T, text string) string {
	t.Helper()
	names, blocks := families(t, text)
	var b strings.Builder
	for _, n := range names {
		if strings.HasPrefix(n, "go_") || strings.HasPrefix(n, "process_") {
			continue
		}
		b.WriteString(blocks[n])
	}
	for _, n := range runtimeNames {
		if _, ok := blocks[n]; !ok {
			t.Errorf("runtime family %q missing from output", n)
		}
	}
	return b.String()
}

func TestWriteTextExact(t *testing.T) {
	r := NewRegistry()
	reqs := r.Counter("http_requests_total", "HTTP requests served.", "route", "status")
	inflight := r.Gauge("http_in_flight_requests", "Requests being served.")
	r.GaugeFunc("store_size_bytes", "Size of the store file.", func() float64 { return 4096 })
	r.CounterFunc("store_tx_total", "Transactions started.", func() float64 { return 12 })
	lat := r.Histogram("http_request_duration_seconds", "HTTP request latency.", []float64{0.01, 0.1, 1}, "route")
	r.Counter("plugin_calls_total", "Never used, so not written.", "plugin")

	reqs.With("/lists", "200").Inc()
	reqs.With("/campaigns", "500").Add(2)
	reqs.With("/campaigns", "200").Add(0.5)
	reqs.With("/campaigns", "200").Inc()
	inflight.With().Set(3)
	inflight.With().Add(-1)
	inflight.With().Inc()
	inflight.With().Dec()
	lat.With("/lists").Observe(0.005)
	lat.With("/lists").Observe(0.01) // upper bounds are inclusive
	lat.With("/lists").ObserveDuration(250 * time.Millisecond)
	lat.With("/lists").Observe(3)
	lat.With("/campaigns").Observe(0.05)

	want := `# HELP http_in_flight_requests Requests being served.
# TYPE http_in_flight_requests gauge
http_in_flight_requests 2
# HELP http_request_duration_seconds HTTP request latency.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{route="/campaigns",le="0.01"} 0
http_request_duration_seconds_bucket{route="/campaigns",le="0.1"} 1
http_request_duration_seconds_bucket{route="/campaigns",le="1"} 1
http_request_duration_seconds_bucket{route="/campaigns",le="+Inf"} 1
http_request_duration_seconds_sum{route="/campaigns"} 0.05
http_request_duration_seconds_count{route="/campaigns"} 1
http_request_duration_seconds_bucket{route="/lists",le="0.01"} 2
http_request_duration_seconds_bucket{route="/lists",le="0.1"} 2
http_request_duration_seconds_bucket{route="/lists",le="1"} 3
http_request_duration_seconds_bucket{route="/lists",le="+Inf"} 4
http_request_duration_seconds_sum{route="/lists"} 3.265
http_request_duration_seconds_count{route="/lists"} 4
# HELP http_requests_total HTTP requests served.
# TYPE http_requests_total counter
http_requests_total{route="/campaigns",status="200"} 1.5
http_requests_total{route="/campaigns",status="500"} 2
http_requests_total{route="/lists",status="200"} 1
# HELP store_size_bytes Size of the store file.
# TYPE store_size_bytes gauge
store_size_bytes 4096
# HELP store_tx_total Transactions started.
# TYPE store_tx_total counter
store_tx_total 12
`
	if got := userText(t, render(t, r)); got != want {
		t.Errorf("output mismatch\ngot:\n%s\nwant:\n%s", got, want)
	}
	// Output is deterministic.
	if a, b := render(t, r), render(t, r); userText(t, a) != userText(t, b) {
		t.Error("two renderings differ")
	}
}

func TestFamiliesSorted(t *testing.T) {
	r := NewRegistry()
	for _, n := range []string{"zz", "aa", "mm", "go_zz", "a:b"} {
		r.GaugeFunc(n, "", func() float64 { return 1 })
	}
	names, _ := families(t, render(t, r))
	for i := 1; i < len(names); i++ {
		if names[i-1] >= names[i] {
			t.Errorf("families not sorted: %q before %q", names[i-1], names[i])
		}
	}
}

func TestEscaping(t *testing.T) {
	tests := []struct {
		name, help, value string
		wantHelp          string
		wantValue         string
	}{
		{"plain", "Plain help.", "/a", "Plain help.", `"/a"`},
		{"backslash", `C:\dir`, `a\b`, `C:\\dir`, `"a\\b"`},
		{"quote", `say "hi"`, `a"b`, `say "hi"`, `"a\"b"`},
		{"newline", "line1\nline2", "a\nb", `line1\nline2`, `"a\nb"`},
		{"all", "\\\n\"", "\\\n\"", `\\\n"`, `"\\\n\""`},
		{"utf8", "Größe ✓", "héllo ✓", "Größe ✓", `"héllo ✓"`},
		{"invalid utf8", "bad \xff", "bad \xff", "bad \uFFFD", "\"bad \uFFFD\""},
		{"empty", "", "", "", `""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRegistry()
			r.Counter("m", tt.help, "l").With(tt.value).Inc()
			got := userText(t, render(t, r))
			want := "# TYPE m counter\nm{l=" + tt.wantValue + "} 1\n"
			if tt.wantHelp != "" {
				want = "# HELP m " + tt.wantHelp + "\n" + want
			}
			if got != want {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestInvalidUTF8SharesSeries(t *testing.T) {
	r := NewRegistry()
	c := r.Counter("m", "h", "l")
	c.With("\xff").Inc()
	c.With("\xfe").Inc()
	c.With("\uFFFD").Inc()
	want := "# HELP m h\n# TYPE m counter\nm{l=\"\uFFFD\"} 3\n"
	if got := userText(t, render(t, r)); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestFloatFormatting(t *testing.T) {
	tests := []struct {
		v    float64
		want string
	}{
		{0, "0"},
		{1, "1"},
		{-1, "-1"},
		{0.1, "0.1"},
		{1e-7, "1e-07"},
		{123456789, "1.23456789e+08"},
		{1e21, "1e+21"},
		{math.Inf(+1), "+Inf"},
		{math.Inf(-1), "-Inf"},
		{math.NaN(), "NaN"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			r := NewRegistry()
			r.Gauge("g", "").With().Set(tt.v)
			want := "# TYPE g gauge\ng " + tt.want + "\n"
			if got := userText(t, render(t, r)); got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

func TestHistogramCumulativeBuckets(t *testing.T) {
	tests := []struct {
		name    string
		buckets []float64
		obs     []float64
		want    []uint64 // cumulative, +Inf last
		sum     string
	}{
		{"empty", []float64{1, 2}, nil, []uint64{0, 0, 0}, "0"},
		{"one per bucket", []float64{1, 2}, []float64{0.5, 1.5, 2.5}, []uint64{1, 2, 3}, "4.5"},
		{"inclusive bounds", []float64{1, 2}, []float64{1, 2}, []uint64{1, 2, 2}, "3"},
		{"all above", []float64{1, 2}, []float64{3, 4}, []uint64{0, 0, 2}, "7"},
		{"all below", []float64{1, 2}, []float64{-5, 0}, []uint64{2, 2, 2}, "-5"},
		{"explicit +Inf", []float64{1, math.Inf(+1)}, []float64{0, 9}, []uint64{1, 2}, "9"},
		{"+Inf observation", []float64{1}, []float64{math.Inf(+1)}, []uint64{0, 1}, "+Inf"},
		{"NaN observation", []float64{1}, []float64{math.NaN()}, []uint64{0, 1}, "NaN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRegistry()
			h := r.Histogram("h", "", tt.buckets).With()
			for _, o := range tt.obs {
				h.Observe(o)
			}
			var want strings.Builder
			want.WriteString("# TYPE h histogram\n")
			upper, les := checkBuckets("h", tt.buckets)
			if len(upper)+1 != len(tt.want) {
				t.Fatalf("test has %d counts for %d buckets", len(tt.want), len(upper)+1)
			}
			for i, n := range tt.want {
				le := "+Inf"
				if i < len(les) {
					le = les[i]
				}
				fmt.Fprintf(&want, "h_bucket{le=%q} %d\n", le, n)
			}
			fmt.Fprintf(&want, "h_sum %s\nh_count %d\n", tt.sum, len(tt.obs))
			if got := userText(t, render(t, r)); got != want.String() {
				t.Errorf("got:\n%s\nwant:\n%s", got, want.String())
			}
			if h.Count() != uint64(len(tt.obs)) {
				t.Errorf("Count() = %d, want %d", h.Count(), len(tt.obs))
			}
		})
	}
}

func TestHistogramBuckets(t *testing.T) {
	tests := []struct {
		name      string
		buckets   []float64
		wantPanic bool
		wantLen   int
	}{
		{"nil means LatencyBuckets", nil, false, len(LatencyBuckets)},
		{"empty means LatencyBuckets", []float64{}, false, len(LatencyBuckets)},
		{"trailing +Inf dropped", []float64{1, 2, math.Inf(+1)}, false, 2},
		{"only +Inf", []float64{math.Inf(+1)}, false, 0},
		{"decreasing", []float64{2, 1}, true, 0},
		{"equal", []float64{1, 1}, true, 0},
		{"NaN", []float64{1, math.NaN()}, true, 0},
		{"+Inf not last", []float64{math.Inf(+1), 1}, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRegistry()
			msg := catchPanic(func() {
				h := r.Histogram("h", "", tt.buckets).With()
				if len(h.upper) != tt.wantLen {
					t.Errorf("got %d bounds, want %d", len(h.upper), tt.wantLen)
				}
			})
			if (msg != "") != tt.wantPanic {
				t.Errorf("panic = %q, want panic %v", msg, tt.wantPanic)
			}
		})
	}
	// The caller's slice is copied.
	b := []float64{1, 2}
	h := NewRegistry().Histogram("h", "", b).With()
	b[0] = 100
	h.Observe(1.5)
	if h.counts[1].Load() != 1 {
		t.Error("histogram shares the caller's bucket slice")
	}
}

func TestLatencyBuckets(t *testing.T) {
	if LatencyBuckets[0] != 0.0001 || LatencyBuckets[len(LatencyBuckets)-1] != 10 {
		t.Errorf("LatencyBuckets span %v..%v, want 0.0001..10", LatencyBuckets[0], LatencyBuckets[len(LatencyBuckets)-1])
	}
	for i := 1; i < len(LatencyBuckets); i++ {
		if LatencyBuckets[i] <= LatencyBuckets[i-1] {
			t.Errorf("LatencyBuckets not increasing at %d", i)
		}
	}
}

// catchPanic runs f and returns the panic message, or "" if f returned.
func catchPanic(f func()) (msg string) {
	defer func() {
		if p := recover(); p != nil {
			msg = fmt.Sprint(p)
			if msg == "" {
				msg = "(empty panic)"
			}
		}
	}()
	f()
	return ""
}

func TestWrongLabelCountPanics(t *testing.T) {
	r := NewRegistry()
	c := r.Counter("c", "", "a", "b")
	g := r.Gauge("g", "", "a")
	h := r.Histogram("h", "", nil, "a")
	u := r.Counter("u", "")
	tests := []struct {
		name string
		f    func()
	}{
		{"counter too few", func() { c.With("x") }},
		{"counter too many", func() { c.With("x", "y", "z") }},
		{"counter none", func() { c.With() }},
		{"gauge too many", func() { g.With("x", "y") }},
		{"gauge none", func() { g.With() }},
		{"histogram too many", func() { h.With("x", "y") }},
		{"unlabelled given one", func() { u.With("x") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := catchPanic(tt.f)
			if !strings.Contains(msg, "label values") {
				t.Errorf("panic = %q, want a label count panic", msg)
			}
		})
	}
	// Correct counts do not panic.
	for _, f := range []func(){func() { c.With("x", "y") }, func() { g.With("x") }, func() { h.With("x") }, func() { u.With() }} {
		if msg := catchPanic(f); msg != "" {
			t.Errorf("unexpected panic %q", msg)
		}
	}
}

func TestInvalidNamesPanic(t *testing.T) {
	tests := []struct {
		name   string
		metric string
		labels []string
		want   string
	}{
		{"empty metric", "", nil, "invalid metric name"},
		{"leading digit", "1abc", nil, "invalid metric name"},
		{"dash", "http-requests", nil, "invalid metric name"},
		{"space", "a b", nil, "invalid metric name"},
		{"dot", "a.b", nil, "invalid metric name"},
		{"unicode", "größe", nil, "invalid metric name"},
		{"empty label", "m", []string{""}, "invalid label name"},
		{"label leading digit", "m", []string{"1a"}, "invalid label name"},
		{"label colon", "m", []string{"a:b"}, "invalid label name"},
		{"label dash", "m", []string{"a-b"}, "invalid label name"},
		{"label reserved prefix", "m", []string{"__name"}, "invalid label name"},
		{"duplicate label", "m", []string{"a", "a"}, "duplicate label name"},
	}
	kinds := []struct {
		kind     string
		register func(r *Registry, name string, labels []string)
	}{
		{"counter", func(r *Registry, n string, l []string) { r.Counter(n, "", l...) }},
		{"gauge", func(r *Registry, n string, l []string) { r.Gauge(n, "", l...) }},
		{"histogram", func(r *Registry, n string, l []string) { r.Histogram(n, "", nil, l...) }},
	}
	for _, k := range kinds {
		for _, tt := range tests {
			t.Run(k.kind+"/"+tt.name, func(t *testing.T) {
				r := NewRegistry()
				msg := catchPanic(func() { k.register(r, tt.metric, tt.labels) })
				if !strings.Contains(msg, tt.want) {
					t.Errorf("panic = %q, want it to mention %q", msg, tt.want)
				}
			})
		}
	}
	valid := []struct {
		metric string
		labels []string
	}{
		{"a", nil}, {"_a", nil}, {":a", nil}, {"a:b_c9", []string{"_x", "y_1", "Z"}}, {"A", []string{"a_"}},
	}
	for _, v := range valid {
		t.Run("valid/"+v.metric, func(t *testing.T) {
			if msg := catchPanic(func() { NewRegistry().Counter(v.metric, "", v.labels...) }); msg != "" {
				t.Errorf("unexpected panic %q", msg)
			}
		})
	}
	t.Run("histogram le label", func(t *testing.T) {
		msg := catchPanic(func() { NewRegistry().Histogram("h", "", nil, "le") })
		if !strings.Contains(msg, `"le" is reserved`) {
			t.Errorf("panic = %q", msg)
		}
	})
	t.Run("func metric name", func(t *testing.T) {
		msg := catchPanic(func() { NewRegistry().GaugeFunc("a-b", "", func() float64 { return 0 }) })
		if !strings.Contains(msg, "invalid metric name") {
			t.Errorf("panic = %q", msg)
		}
	})
}

func TestDuplicateRegistrationPanics(t *testing.T) {
	fn := func() float64 { return 0 }
	tests := []struct {
		name        string
		first, then func(r *Registry)
		want        string
	}{
		{"counter twice",
			func(r *Registry) { r.Counter("m", "") },
			func(r *Registry) { r.Counter("m", "", "a") },
			"already registered"},
		{"gauge after counter",
			func(r *Registry) { r.Counter("m", "") },
			func(r *Registry) { r.Gauge("m", "") },
			"already registered"},
		{"gauge func after gauge",
			func(r *Registry) { r.Gauge("m", "") },
			func(r *Registry) { r.GaugeFunc("m", "", fn) },
			"already registered"},
		{"counter func after histogram",
			func(r *Registry) { r.Histogram("m", "", nil) },
			func(r *Registry) { r.CounterFunc("m", "", fn) },
			"already registered"},
		{"counter named like histogram count",
			func(r *Registry) { r.Histogram("m", "", nil) },
			func(r *Registry) { r.Counter("m_count", "") },
			`collides with metric "m"`},
		{"histogram over existing sum",
			func(r *Registry) { r.Gauge("m_sum", "") },
			func(r *Registry) { r.Histogram("m", "", nil) },
			`collides with metric "m_sum"`},
		{"histogram over existing bucket",
			func(r *Registry) { r.Gauge("m_bucket", "") },
			func(r *Registry) { r.Histogram("m", "", nil) },
			`collides with metric "m_bucket"`},
		{"runtime metric",
			func(*Registry) {},
			func(r *Registry) { r.Gauge("go_goroutines", "") },
			"already registered"},
		{"process metric",
			func(*Registry) {},
			func(r *Registry) { r.GaugeFunc("process_open_fds", "", fn) },
			"already registered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRegistry()
			tt.first(r)
			msg := catchPanic(func() { tt.then(r) })
			if !strings.Contains(msg, tt.want) {
				t.Errorf("panic = %q, want it to mention %q", msg, tt.want)
			}
			// The failed registration leaves the registry usable.
			if err := r.WriteText(&bytes.Buffer{}); err != nil {
				t.Error(err)
			}
		})
	}
	// Separate registries do not share names.
	NewRegistry().Counter("m", "")
	NewRegistry().Counter("m", "")
}

func TestSeriesCapOverflow(t *testing.T) {
	tests := []struct {
		name   string
		max    int
		labels int
	}{
		{"one label", 3, 1},
		{"two labels", 3, 2},
		{"default cap", MaxSeries, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRegistry()
			r.maxSeries = tt.max
			names := []string{"route", "status"}[:tt.labels]
			c := r.Counter("c", "", names...)
			h := r.Histogram("h", "", []float64{1}, names...)
			values := func(i int) []string {
				v := []string{fmt.Sprintf("/hostile/%d", i), "200"}
				return v[:tt.labels]
			}
			extra := 7
			for i := 0; i < tt.max+extra; i++ {
				c.With(values(i)...).Inc()
				h.With(values(i)...).Observe(0.5)
			}
			// Series created before the cap keep counting.
			c.With(values(0)...).Inc()
			// Invalid UTF-8 cannot sneak past the cap.
			c.With(append([]string{"\xff"}, values(0)[1:]...)...).Inc()

			if n := len(c.vec.snapshot()); n != tt.max+1 {
				t.Errorf("counter has %d series, want %d", n, tt.max+1)
			}
			if n := len(h.vec.snapshot()); n != tt.max+1 {
				t.Errorf("histogram has %d series, want %d", n, tt.max+1)
			}
			ov := make([]string, tt.labels)
			for i := range ov {
				ov[i] = OverflowLabelValue
			}
			if got := c.With(ov...).Value(); got != float64(extra+1) {
				t.Errorf("overflow counter = %v, want %d", got, extra+1)
			}
			if got := c.With(values(0)...).Value(); got != 2 {
				t.Errorf("first counter = %v, want 2", got)
			}
			if got := h.With(ov...).Count(); got != uint64(extra) {
				t.Errorf("overflow histogram count = %d, want %d", got, extra)
			}
			text := render(t, r)
			var wantLine string
			if tt.labels == 1 {
				wantLine = fmt.Sprintf("\nc{route=\"_overflow_\"} %d\n", extra+1)
			} else {
				wantLine = fmt.Sprintf("\nc{route=\"_overflow_\",status=\"_overflow_\"} %d\n", extra+1)
			}
			if !strings.Contains(text, wantLine) {
				t.Errorf("output lacks %q", wantLine)
			}
		})
	}
}

func TestCounterAddNegativePanics(t *testing.T) {
	tests := []struct {
		name      string
		v         float64
		wantPanic bool
	}{
		{"zero", 0, false},
		{"positive", 1.5, false},
		{"+Inf", math.Inf(+1), false},
		{"negative", -1, true},
		{"tiny negative", -1e-300, true},
		{"-Inf", math.Inf(-1), true},
		{"NaN", math.NaN(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewRegistry().Counter("c", "").With()
			msg := catchPanic(func() { c.Add(tt.v) })
			if (msg != "") != tt.wantPanic {
				t.Errorf("panic = %q, want panic %v", msg, tt.wantPanic)
			}
		})
	}
}

func TestConcurrent(t *testing.T) {
	const (
		goroutines = 16
		perG       = 2000
	)
	r := NewRegistry()
	reqs := r.Counter("reqs_total", "", "route", "status")
	total := r.Counter("all_total", "")
	inflight := r.Gauge("inflight", "", "route")
	lat := r.Histogram("lat_seconds", "", []float64{0.001, 0.01, 0.1}, "route")
	routes := []string{"/a", "/b", "/c", "/d"}

	var wg sync.WaitGroup
	stop := make(chan struct{})
	scraped := make(chan error, 1)
	go func() { // scrape while updating
		defer close(scraped)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := r.WriteText(&bytes.Buffer{}); err != nil {
				scraped <- err
				return
			}
		}
	}()
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				route := routes[(g+i)%len(routes)]
				inflight.With(route).Inc()
				reqs.With(route, "200").Inc()
				total.With().Add(0.5)
				lat.With(route).Observe(float64(i%4) * 0.005) // 0, 0.005, 0.01, 0.015
				inflight.With(route).Dec()
			}
		})
	}
	wg.Wait()
	close(stop)
	if err := <-scraped; err != nil {
		t.Fatal(err)
	}

	per := float64(goroutines * perG / len(routes))
	for _, route := range routes {
		if got := reqs.With(route, "200").Value(); got != per {
			t.Errorf("reqs %s = %v, want %v", route, got, per)
		}
		if got := inflight.With(route).Value(); got != 0 {
			t.Errorf("inflight %s = %v, want 0", route, got)
		}
		h := lat.With(route)
		if got := h.Count(); got != uint64(per) {
			t.Errorf("lat %s count = %d, want %v", route, got, per)
		}
		// Buckets 0.001, 0.01, 0.1, +Inf receive 0; 0.005 and 0.01; 0.015; nothing.
		want := []uint64{uint64(per) / 4, uint64(per) / 2, uint64(per) / 4, 0}
		for i := range h.counts {
			if got := h.counts[i].Load(); got != want[i] {
				t.Errorf("lat %s bucket %d = %d, want %d", route, i, got, want[i])
			}
		}
	}
	if got, want := total.With().Value(), float64(goroutines*perG)/2; got != want {
		t.Errorf("total = %v, want %v", got, want)
	}
	want := fmt.Sprintf("all_total %d\n", goroutines*perG/2)
	if text := render(t, r); !strings.Contains(text, want) {
		t.Errorf("output lacks %q", want)
	}
}

func TestConcurrentSeriesCreation(t *testing.T) {
	r := NewRegistry()
	r.maxSeries = 50
	c := r.Counter("c", "", "k")
	var wg sync.WaitGroup
	const goroutines, perG = 8, 500
	for range goroutines {
		wg.Go(func() {
			for i := range perG {
				c.With(fmt.Sprint(i % 100)).Inc()
			}
		})
	}
	wg.Wait()
	var sum float64
	for _, s := range c.vec.snapshot() {
		sum += s.m.Value()
	}
	if sum != goroutines*perG {
		t.Errorf("sum over series = %v, want %d", sum, goroutines*perG)
	}
	if n := len(c.vec.snapshot()); n != 51 {
		t.Errorf("%d series, want 51", n)
	}
}

// Line syntax of the text format, as a strict subset: name, optional
// labels, one space, value. No timestamps are written.
var (
	sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)` +
		`(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*\})?` +
		` ([-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]Inf|NaN)$`)
	helpLine = regexp.MustCompile(`^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (?:[^\\\n]|\\[\\n])*$`)
	typeLine = regexp.MustCompile(`^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$`)
)

func TestTextSyntax(t *testing.T) {
	r := NewRegistry()
	r.Counter("c_total", "Help with \\ and \n.", "a", "b").With("x\"\n\\", "").Inc()
	r.Gauge("g", "").With().Set(math.NaN())
	r.Gauge("g2", "G2.").With().Set(math.Inf(-1))
	r.GaugeFunc("gf", "GF.", func() float64 { return 1e300 })
	h := r.Histogram("h_seconds", "H.", nil, "plugin")
	h.With("p1").ObserveDuration(3 * time.Millisecond)
	h.With("p2").Observe(100)
	text := render(t, r)
	if !strings.HasSuffix(text, "\n") {
		t.Error("output does not end in a newline")
	}

	typed := map[string]string{}
	for n, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "# HELP "):
			if !helpLine.MatchString(line) {
				t.Errorf("line %d: bad HELP line %q", n+1, line)
			}
		case strings.HasPrefix(line, "# TYPE "):
			m := typeLine.FindStringSubmatch(line)
			if m == nil {
				t.Errorf("line %d: bad TYPE line %q", n+1, line)
				continue
			}
			typed[m[1]] = m[2]
		case strings.HasPrefix(line, "#"):
			t.Errorf("line %d: unexpected comment %q", n+1, line)
		default:
			m := sampleLine.FindStringSubmatch(line)
			if m == nil {
				t.Errorf("line %d: bad sample line %q", n+1, line)
				continue
			}
			name := m[1]
			base := name
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(name, suf); ok && typed[b] == "histogram" {
					base = b
				}
			}
			if typed[base] == "" {
				t.Errorf("line %d: sample %q before its TYPE line", n+1, name)
			}
		}
	}
	for _, n := range runtimeNames {
		if typed[n] == "" {
			t.Errorf("runtime family %q missing", n)
		}
	}
}

func TestRuntimeMetrics(t *testing.T) {
	text := render(t, NewRegistry())
	_, blocks := families(t, text)
	value := func(name string) float64 {
		for line := range strings.Lines(blocks[name]) {
			if strings.HasPrefix(line, "#") {
				continue
			}
			var v float64
			if _, err := fmt.Sscan(strings.Fields(line)[1], &v); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return v
		}
		t.Fatalf("%s: no sample", name)
		return 0
	}
	if v := value("go_goroutines"); v < 1 {
		t.Errorf("go_goroutines = %v", v)
	}
	if v := value("go_threads"); v < 1 {
		t.Errorf("go_threads = %v", v)
	}
	if a, i, s := value("go_memstats_heap_alloc_bytes"), value("go_memstats_heap_inuse_bytes"), value("go_memstats_sys_bytes"); a <= 0 || i < a || s < i {
		t.Errorf("heap alloc %v, inuse %v, sys %v: want 0 < alloc <= inuse <= sys", a, i, s)
	}
	if !strings.Contains(blocks["go_info"], `go_info{version="go`) {
		t.Errorf("go_info = %q", blocks["go_info"])
	}
	if !strings.Contains(blocks["go_gc_cycles_total"], "# TYPE go_gc_cycles_total counter\n") {
		t.Errorf("go_gc_cycles_total is not a counter")
	}
	now := float64(time.Now().Unix())
	if v := value("process_start_time_seconds"); v > now+1 || v < now-7*24*3600 {
		t.Errorf("process_start_time_seconds = %v, now %v", v, now)
	}
	if _, ok := procResidentMemory(); ok {
		if v := value("process_resident_memory_bytes"); v <= 0 {
			t.Errorf("process_resident_memory_bytes = %v", v)
		}
	}
	if _, ok := procOpenFDs(); ok {
		if v := value("process_open_fds"); v < 3 {
			t.Errorf("process_open_fds = %v", v)
		}
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

func TestWriteTextError(t *testing.T) {
	boom := errors.New("boom")
	if err := NewRegistry().WriteText(failWriter{boom}); !errors.Is(err, boom) {
		t.Errorf("WriteText error = %v, want %v", err, boom)
	}
}

func TestWithDoesNotAllocate(t *testing.T) {
	r := NewRegistry()
	c1 := r.Counter("c1", "", "route")
	c2 := r.Counter("c2", "", "route", "status")
	h := r.Histogram("h", "", nil, "route")
	c1.With("/a")
	c2.With("/a", "200")
	h.With("/a")
	tests := []struct {
		name string
		f    func()
	}{
		{"counter one label", func() { c1.With("/a").Inc() }},
		{"counter two labels", func() { c2.With("/a", "200").Inc() }},
		{"histogram", func() { h.With("/a").Observe(0.01) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, tt.f); n != 0 {
				t.Errorf("%v allocations per call, want 0", n)
			}
		})
	}
}

func TestContentType(t *testing.T) {
	if ContentType != "text/plain; version=0.0.4; charset=utf-8" {
		t.Errorf("ContentType = %q", ContentType)
	}
}

func BenchmarkCounterWith(b *testing.B) {
	r := NewRegistry()
	c := r.Counter("http_requests_total", "", "route", "status")
	routes := []string{"/api/campaigns", "/api/lists", "/api/subscribers", "/healthz"}
	for _, route := range routes {
		c.With(route, "200")
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			c.With(routes[i&3], "200").Inc()
			i++
		}
	})
}

func BenchmarkHistogramObserve(b *testing.B) {
	r := NewRegistry()
	h := r.Histogram("http_request_duration_seconds", "", LatencyBuckets).With()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		v := 0.0
		for pb.Next() {
			h.Observe(v)
			v += 0.0007
			if v > 12 {
				v = 0
			}
		}
	})
}

func BenchmarkWriteText(b *testing.B) {
	r := NewRegistry()
	c := r.Counter("http_requests_total", "", "route", "status")
	h := r.Histogram("http_request_duration_seconds", "", LatencyBuckets, "route")
	for i := range 50 {
		route := fmt.Sprintf("/api/route/%d", i)
		c.With(route, "200").Inc()
		h.With(route).Observe(0.01)
	}
	b.ReportAllocs()
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		if err := r.WriteText(&buf); err != nil {
			b.Fatal(err)
		}
	}
}
