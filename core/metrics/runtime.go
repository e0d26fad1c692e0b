package metrics

import (
	"bytes"
	"os"
	"runtime"
	rtmetrics "runtime/metrics"
	"strconv"
	"sync"
	"time"
)

// runtime/metrics samples read at each scrape.
const (
	rmGoroutines  = "/sched/goroutines:goroutines"
	rmThreads     = "/sched/threads/total:threads"
	rmHeapObjects = "/memory/classes/heap/objects:bytes"
	rmHeapUnused  = "/memory/classes/heap/unused:bytes"
	rmTotal       = "/memory/classes/total:bytes"
	rmGCCycles    = "/gc/cycles/total:gc-cycles"
)

var (
	// rmSupported holds the runtime/metrics names above that this Go
	// runtime provides.
	rmSupported = sync.OnceValue(func() []string {
		want := map[string]bool{
			rmGoroutines: true, rmThreads: true, rmHeapObjects: true,
			rmHeapUnused: true, rmTotal: true, rmGCCycles: true,
		}
		var names []string
		for _, d := range rtmetrics.All() {
			if want[d.Name] && d.Kind == rtmetrics.KindUint64 {
				names = append(names, d.Name)
			}
		}
		return names
	})

	// initTime approximates the process start time where /proc is missing.
	initTime = time.Now()

	// processStart is the process start time in seconds since the epoch.
	processStart = sync.OnceValue(func() float64 {
		if t, ok := procStartTime(); ok {
			return t
		}
		return float64(initTime.UnixNano()) / 1e9
	})
)

// scrape holds what is read once per WriteText call.
type scrape struct {
	once sync.Once
	rt   map[string]float64 // runtime/metrics values by name
}

// runtimeValue returns the runtime/metrics sample name, reading all samples
// on first use.
func (s *scrape) runtimeValue(name string) (float64, bool) {
	s.once.Do(func() {
		names := rmSupported()
		samples := make([]rtmetrics.Sample, len(names))
		for i, n := range names {
			samples[i].Name = n
		}
		rtmetrics.Read(samples)
		s.rt = make(map[string]float64, len(samples))
		for _, sm := range samples {
			if sm.Value.Kind() == rtmetrics.KindUint64 {
				s.rt[sm.Name] = float64(sm.Value.Uint64())
			}
		}
	})
	v, ok := s.rt[name]
	return v, ok
}

// registerRuntime registers the Go runtime and process metrics.
func registerRuntime(r *Registry) {
	gauge := func(name, help string, fn func(*scrape) (float64, bool)) {
		r.register(typeGauge, name, help, nil, func(w *textWriter, s *scrape) {
			if v, ok := fn(s); ok {
				w.sample(name, "", nil, nil, "", "", v)
			}
		})
	}
	rm := func(name string) func(*scrape) (float64, bool) {
		return func(s *scrape) (float64, bool) { return s.runtimeValue(name) }
	}

	gauge("go_goroutines", "Number of goroutines that currently exist.", func(s *scrape) (float64, bool) {
		if v, ok := s.runtimeValue(rmGoroutines); ok {
			return v, true
		}
		return float64(runtime.NumGoroutine()), true
	})
	gauge("go_threads", "Number of OS threads created.", func(s *scrape) (float64, bool) {
		if v, ok := s.runtimeValue(rmThreads); ok {
			return v, true
		}
		n, _ := runtime.ThreadCreateProfile(nil)
		return float64(n), true
	})
	version := []string{runtime.Version()}
	r.register(typeGauge, "go_info", "Information about the Go environment.", nil, func(w *textWriter, _ *scrape) {
		w.sample("go_info", "", []string{"version"}, version, "", "", 1)
	})
	gauge("go_memstats_heap_alloc_bytes", "Number of heap bytes allocated and currently in use.", rm(rmHeapObjects))
	gauge("go_memstats_heap_inuse_bytes", "Number of heap bytes that are in use.", func(s *scrape) (float64, bool) {
		objects, ok1 := s.runtimeValue(rmHeapObjects)
		unused, ok2 := s.runtimeValue(rmHeapUnused)
		return objects + unused, ok1 && ok2
	})
	gauge("go_memstats_sys_bytes", "Number of bytes obtained from system.", rm(rmTotal))
	r.register(typeCounter, "go_gc_cycles_total", "Number of completed GC cycles.", nil, func(w *textWriter, s *scrape) {
		if v, ok := s.runtimeValue(rmGCCycles); ok {
			w.sample("go_gc_cycles_total", "", nil, nil, "", "", v)
		}
	})
	gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", func(*scrape) (float64, bool) {
		return processStart(), true
	})
	gauge("process_resident_memory_bytes", "Resident memory size in bytes.", func(*scrape) (float64, bool) {
		return procResidentMemory()
	})
	gauge("process_open_fds", "Number of open file descriptors.", func(*scrape) (float64, bool) {
		return procOpenFDs()
	})
}

// userHZ is the unit of process times in /proc; the Linux kernel reports
// them in USER_HZ, which is 100 on every architecture Go supports.
const userHZ = 100

// procStartTime reads the process start time from /proc/self/stat and the
// boot time from /proc/stat.
func procStartTime() (float64, bool) {
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, false
	}
	// The command name may contain spaces and parentheses; fields resume
	// after the last ')'. starttime is field 22; the state after ')' is 3.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	fields := bytes.Fields(stat[i+1:])
	if len(fields) < 20 {
		return 0, false
	}
	ticks, err := strconv.ParseUint(string(fields[22-3]), 10, 64)
	if err != nil {
		return 0, false
	}
	sys, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	for line := range bytes.Lines(sys) {
		if rest, ok := bytes.CutPrefix(line, []byte("btime ")); ok {
			btime, err := strconv.ParseUint(string(bytes.TrimSpace(rest)), 10, 64)
			if err != nil {
				return 0, false
			}
			return float64(btime) + float64(ticks)/userHZ, true
		}
	}
	return 0, false
}

// procResidentMemory reads the resident set size from /proc/self/statm.
func procResidentMemory() (float64, bool) {
	statm, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	fields := bytes.Fields(statm)
	if len(fields) < 2 {
		return 0, false
	}
	pages, err := strconv.ParseUint(string(fields[1]), 10, 64)
	if err != nil {
		return 0, false
	}
	return float64(pages) * float64(os.Getpagesize()), true
}

// procOpenFDs counts the entries of /proc/self/fd, not counting the
// descriptor used to read the directory.
func procOpenFDs() (float64, bool) {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0, false
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil || len(names) == 0 {
		return 0, false
	}
	return float64(len(names) - 1), true
}
