package admin_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// benchUsers is how many distinct users the tracking benchmarks spread events over: most events then belong to a
// contact that already exists, as on a live site.
const benchUsers = 1000

// trackingBenchEvent is one analytics-node-shaped track call with a unique message id.
func trackingBenchEvent(n int64) string {
	return fmt.Sprintf(`{"type":"track","event":"Product Viewed","userId":"bench-%d","messageId":"bench-%d",`+
		`"properties":{"sku":"SKU-%d","price":19.99,"currency":"EUR"},"timestamp":%q,`+
		`"context":{"library":{"name":"@segment/analytics-node","version":"2.2.0"},"ip":"203.0.113.7"},"integrations":{}}`,
		n%benchUsers, n, n%97, time.Now().UTC().Format("2006-01-02T15:04:05.000Z"))
}

// BenchmarkTrackingBatch posts batches of 100 events to /v1/batch through app.Test over a real store with fsync on,
// one request at a time (one group commit per request) and from 8 concurrent senders, and reports events/s.
func BenchmarkTrackingBatch(b *testing.B) {
	const perBatch = 100
	for _, senders := range []int{1, 8} {
		b.Run(fmt.Sprintf("senders=%d", senders), func(b *testing.B) {
			f := newTrackingFixture(b)
			var next atomic.Int64
			body := func() string {
				items := make([]string, perBatch)
				for i := range items {
					items[i] = trackingBenchEvent(next.Add(1))
				}
				return `{"batch":[` + strings.Join(items, ",") + `],"sentAt":"` + time.Now().UTC().Format(time.RFC3339Nano) + `"}`
			}
			trackingLoad(b, f, senders, func() trackReq {
				return trackReq{path: "/v1/batch", header: map[string]string{"Content-Type": "application/json", "Authorization": trackingBasic(keyStore)}, body: body()}
			})
			b.ReportMetric(float64(b.N*perBatch)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkTrackingTrack posts single track calls to /v1/track, from 1 and from 32 concurrent senders (the group
// commit then shares each fsync between the calls waiting for it), and reports events/s.
func BenchmarkTrackingTrack(b *testing.B) {
	for _, senders := range []int{1, 32} {
		b.Run(fmt.Sprintf("senders=%d", senders), func(b *testing.B) {
			f := newTrackingFixture(b)
			var next atomic.Int64
			trackingLoad(b, f, senders, func() trackReq {
				return trackReq{path: "/v1/track", header: map[string]string{"Content-Type": "application/json", "Authorization": trackingBasic(keyStore)},
					body: trackingBenchEvent(next.Add(1))}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// trackingLoad sends b.N requests made by mk from senders goroutines, failing on any answer but 200.
func trackingLoad(b *testing.B, f *trackingFixture, senders int, mk func() trackReq) {
	b.Helper()
	var left atomic.Int64
	left.Store(int64(b.N))
	done := make(chan struct{}, senders)
	b.ResetTimer()
	for range senders {
		go func() {
			defer func() { done <- struct{}{} }()
			for left.Add(-1) >= 0 {
				resp, data, err := f.try(mk())
				if err != nil {
					b.Error(err)
					return
				}
				if resp.StatusCode != http.StatusOK {
					b.Errorf("status %d: %s", resp.StatusCode, data)
					return
				}
			}
		}()
	}
	for range senders {
		<-done
	}
	b.StopTimer()
}
