package smtprelay

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// BenchmarkSendPipelined measures messages per second through a pool of 4 connections to an in-process go-smtp
// server (which offers PIPELINING), with concurrent senders: one 2 KiB message to 2 recipients per operation.
func BenchmarkSendPipelined(b *testing.B) {
	ts := newServer(b, serverOptions{discard: true})
	cfg := ts.config()
	cfg.Pool = 4
	r, err := New(cfg, hclog.NewNullLogger())
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	body := []byte(simple + strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n", 36))
	var n atomic.Int64
	b.SetParallelism(4) // more senders than connections, so the pool is always busy
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			to := []string{fmt.Sprintf("u%d@example.com", i), "list@example.com"}
			if _, err := r.Send(b.Context(), "news@example.com", to, body); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	if n := ts.maxOpen.Load(); n > 4 {
		b.Errorf("%d concurrent connections, pool is 4", n)
	}
}
