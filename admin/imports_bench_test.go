package admin_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crosscast/crosscast/admin"
	"github.com/crosscast/crosscast/core/auth"
	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/jobs"
	"github.com/crosscast/crosscast/core/metrics"
	"github.com/crosscast/crosscast/core/store"
	"github.com/crosscast/crosscast/core/workspaces"
	"github.com/hashicorp/go-hclog"
)

// benchImportRows is the size of BenchmarkImportCSV's file: CROSSCAST_BENCH_IMPORT_ROWS, or 1M (the goal is 1M
// contacts in at most 20 s on a 2-core machine).
func benchImportRows() int {
	if n, err := strconv.Atoi(os.Getenv("CROSSCAST_BENCH_IMPORT_ROWS")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

// writeBenchCSV writes n rows of a typical CRM export (9 columns, ~110 bytes a row) to a file. Every 200,000th row
// is bad in one of four ways (an invalid email, a missing cell, Latin-1 bytes, an unknown consent value); it
// returns their line numbers.
func writeBenchCSV(b *testing.B, path string, n int) (int64, []int64) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString("email,First Name,Last Name,Age,Plan,City,tags,consent.email,Signup\n")
	plans := []string{"free", "pro", "team", "enterprise"}
	cities := []string{"Lyon", "Paris", "Berlin", "Madrid", "Lisbon", "Dublin"}
	var bad []int64
	for i := range n {
		if i%200_000 == 199_999 {
			bad = append(bad, int64(i)+2) // the header is line 1
			switch len(bad) % 4 {
			case 1:
				fmt.Fprintf(w, "person%d.example.com,F,L,30,free,Lyon,,,\n", i)
			case 2:
				fmt.Fprintf(w, "person%d@example.com,F,L,30,free,Lyon\n", i)
			case 3:
				fmt.Fprintf(w, "person%d@example.com,Fran\xe7ois,L,30,free,Lyon,,,\n", i)
			default:
				fmt.Fprintf(w, "person%d@example.com,F,L,30,free,Lyon,,maybe,\n", i)
			}
			continue
		}
		fmt.Fprintf(w, "person%d@example.com,First%d,Last%d,%d,%s,%s,imported|cohort%d,%s,2025-%02d-%02dT10:00:00Z\n",
			i, i, i%9973, 18+i%60, plans[i%4], cities[i%6], i%12, []string{"yes", "no", ""}[i%3], 1+i%12, 1+i%28)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	st, _ := f.Stat()
	_ = f.Close()
	return st.Size(), bad
}

// BenchmarkImportCSV imports a CSV of benchImportRows() contacts (a few bad rows among them, which must be reported
// at their lines and write nothing) into an empty workspace through the real HTTP server over TCP (upload streamed
// to the spool file, then the background job; fsync on), and reports rows/s for the whole (upload + import), the
// heap in use and the process RSS once the contacts are stored.
func BenchmarkImportCSV(b *testing.B) {
	// As served: crosscast serve sets the collector's target to 400% (cmd/crosscast: serveGCPercent).
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	rows := benchImportRows()
	log := hclog.New(&hclog.LoggerOptions{Output: b.Output(), Level: hclog.Warn})
	dir := b.TempDir()
	file := filepath.Join(dir, "contacts.csv")
	size, bad := writeBenchCSV(b, file, rows)
	st, err := store.Open(context.Background(), store.Options{Dir: filepath.Join(dir, "data"), Fsync: true, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	wsSvc := workspaces.NewService(st, log, nil)
	runner, err := jobs.NewRunner(context.Background(), st, jobs.Options{Dir: filepath.Join(dir, "data", "jobs")}, log)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = runner.Close(context.Background()) })
	svc := contacts.NewService(st, nil, nil, log, nil)
	srv := admin.New(admin.Deps{
		Workspaces: wsSvc, Auth: auth.NewService(st, bootstrap, log, nil), Store: st, Contacts: svc, Jobs: runner,
		Metrics: metrics.NewRegistry(), Logger: log, Version: "bench",
	}, admin.Options{MaxImport: 4 << 30})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	base := "http://" + ln.Addr().String()

	b.SetBytes(size)
	b.ResetTimer()
	var elapsed time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ws := fmt.Sprintf("bench%d", i)
		if _, err := wsSvc.Create(context.Background(), workspaces.CreateInput{ID: ws}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		j := benchImport(b, base, ws, file)
		elapsed += time.Since(start)
		good := int64(rows - len(bad))
		if j.Status != jobs.StatusSucceeded || j.Total != int64(rows) || j.Created != good || j.Failed != int64(len(bad)) || len(j.Errors) != len(bad) {
			b.Fatalf("import: %+v", j)
		}
		for k, line := range bad {
			if j.Errors[k].Line != line {
				b.Fatalf("error %d at line %d, want %d: %+v", k, j.Errors[k].Line, line, j.Errors[k])
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(rows)*float64(b.N)/elapsed.Seconds(), "rows/s")
	b.ReportMetric(elapsed.Seconds()/float64(b.N), "s/import")
	if n, _ := svc.Count(context.Background(), "bench0"); n != rows-len(bad) {
		b.Fatalf("%d contacts stored, want %d", n, rows-len(bad))
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
	rss, peak := procRSS()
	b.ReportMetric(rss, "rss-MiB")
	b.ReportMetric(peak, "peak-rss-MiB")
}

// benchImport uploads the file and polls the job until it is over.
func benchImport(b *testing.B, base, ws, file string) jobs.Job {
	b.Helper()
	f, err := os.Open(file)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	req, _ := http.NewRequest("POST", base+"/api/v1/workspaces/"+ws+"/contacts/import", f)
	req.Header.Set("Authorization", "Bearer "+bootstrap)
	req.Header.Set("Content-Type", "text/csv")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b.Fatalf("import: %d %s", resp.StatusCode, data)
	}
	var out struct {
		Job jobs.Job `json:"job"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Minute)
	for {
		req, _ := http.NewRequest("GET", base+"/api/v1/jobs/"+out.Job.ID, nil)
		req.Header.Set("Authorization", "Bearer "+bootstrap)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var j jobs.Job
		err = json.NewDecoder(resp.Body).Decode(&j)
		resp.Body.Close()
		if err != nil {
			b.Fatal(err)
		}
		if j.Status.Done() {
			return j
		}
		if time.Now().After(deadline) {
			b.Fatalf("import still %s: %+v", j.Status, j)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// procRSS returns the process's resident set size and its peak, in MiB (0 where /proc is missing).
func procRSS() (rss, peak float64) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(fields[1], 64)
		switch fields[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			peak = kb / 1024
		}
	}
	return rss, peak
}
