package contacts_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/events"
	"github.com/crosscast/crosscast/core/metrics"
	"github.com/crosscast/crosscast/core/store"
	"github.com/crosscast/crosscast/core/workspaces"
	"github.com/hashicorp/go-hclog"
)

// benchWorkers is how many concurrent callers a benchmark uses: CROSSCAST_BENCH_WORKERS, or 256 for single events
// and 16 for batches (as many HTTP connections as a load generator would open).
func benchWorkers(batch int) int {
	if n, err := strconv.Atoi(os.Getenv("CROSSCAST_BENCH_WORKERS")); err == nil && n > 0 {
		return n
	}
	if batch == 1 {
		return 256
	}
	return 16
}

func benchService(b *testing.B) *contacts.Service {
	log := hclog.NewNullLogger()
	reg := metrics.NewRegistry()
	st, err := store.Open(context.Background(), store.Options{Dir: b.TempDir(), Fsync: os.Getenv("CROSSCAST_BENCH_NOSYNC") == "", Logger: log, Metrics: reg})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = st.Close()
		if os.Getenv("CROSSCAST_BENCH_METRICS") != "" {
			var buf bytes.Buffer
			_ = reg.WriteText(&buf)
			for _, l := range strings.Split(buf.String(), "\n") {
				if strings.Contains(l, "_sum") || strings.Contains(l, "_count") {
					b.Log(l)
				}
			}
		}
	})
	if _, err := workspaces.NewService(st, log, nil).Create(context.Background(), workspaces.CreateInput{ID: "acme"}); err != nil {
		b.Fatal(err)
	}
	return contacts.NewService(st, nil, nil, log, nil)
}

var props = json.RawMessage(`{"product_id":"sku-123","price":19.99,"currency":"EUR","category":"shoes"}`)
var context1 = json.RawMessage(`{"ip":"203.0.113.7","userAgent":"Mozilla/5.0","page":{"url":"https://shop.example/p/123","path":"/p/123"}}`)

// BenchmarkIngest stores track events of 10k known-anonymous visitors through the contacts service, durably (fsync
// on), from concurrent callers as HTTP handlers would be, batch events per call. It reports events/s.
func BenchmarkIngest(b *testing.B) {
	for _, batch := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			svc := benchService(b)
			var seq atomic.Int64
			start := time.Now()
			b.ResetTimer()
			var wg sync.WaitGroup
			workers := benchWorkers(batch)
			per := (b.N + workers - 1) / workers
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < per; i += batch {
						in := make([]contacts.Incoming, 0, batch)
						for j := 0; j < batch && i+j < per; j++ {
							n := seq.Add(1)
							now := time.Now()
							in = append(in, contacts.Incoming{Event: events.Event{
								MessageID: fmt.Sprintf("m-%d-%d", w, n), Type: events.Track, Name: "Product Viewed",
								AnonymousID: fmt.Sprintf("anon-%d", n%10000), Properties: props, Context: context1,
								Timestamp: now, ReceivedAt: now,
							}})
						}
						if _, err := svc.Ingest(context.Background(), "acme", in); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(seq.Load())/time.Since(start).Seconds(), "events/s")
		})
	}
}

// BenchmarkUpsertMany imports contacts in chunks of 1000 rows, as the CSV import does, durably. It reports rows/s.
func BenchmarkUpsertMany(b *testing.B) {
	svc := benchService(b)
	start := time.Now()
	b.ResetTimer()
	for i := 0; i < b.N; i += 1000 {
		rows := make([]contacts.Fields, 0, 1000)
		for j := 0; j < 1000 && i+j < b.N; j++ {
			email := fmt.Sprintf("user%d@example.com", i+j)
			rows = append(rows, contacts.Fields{Email: &email, Attributes: map[string]any{
				"first_name": "Ana", "country": "FR", "score": json.Number("42"), "signed_up_at": "2026-01-02T03:04:05Z"},
				Tags: []string{"newsletter"}})
		}
		out, err := svc.UpsertMany(context.Background(), "acme", rows, "import")
		if err != nil {
			b.Fatal(err)
		}
		for _, o := range out {
			if o.Err != nil {
				b.Fatal(o.Err)
			}
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "rows/s")
}

// BenchmarkUpsertManyHalfRefused imports chunks of 1000 rows of which every other one is refused for a clash (its
// email belongs to a contact with another user id): refused rows write nothing and cost no rerun of their
// neighbours. It reports rows/s over all rows.
func BenchmarkUpsertManyHalfRefused(b *testing.B) {
	svc := benchService(b)
	taken, other := "taken@example.com", "owner"
	if _, _, err := svc.Upsert(context.Background(), "acme", contacts.Fields{Email: &taken, UserID: &other}, "api"); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	b.ResetTimer()
	refused := 0
	for i := 0; i < b.N; i += 1000 {
		rows := make([]contacts.Fields, 0, 1000)
		for j := 0; j < 1000 && i+j < b.N; j++ {
			email, user := fmt.Sprintf("user%d@example.com", i+j), fmt.Sprintf("u%d", i+j)
			if j%2 == 1 {
				email = taken
			}
			rows = append(rows, contacts.Fields{Email: &email, UserID: &user})
		}
		out, err := svc.UpsertMany(context.Background(), "acme", rows, "import")
		if err != nil {
			b.Fatal(err)
		}
		for _, o := range out {
			if o.Err != nil {
				refused++
			}
		}
	}
	if refused != b.N/2 {
		b.Fatalf("%d rows refused, want %d", refused, b.N/2)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "rows/s")
}
