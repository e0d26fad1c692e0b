package manager

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/crosscast/crosscast/core/metrics"
	"github.com/crosscast/crosscast/core/store"
	"github.com/crosscast/crosscast/core/workspaces"
	"github.com/crosscast/crosscast/sdk/wire"
	"github.com/hashicorp/go-hclog"
)

// BenchmarkCaptureSend is the bundled capture channel keeping batches of 100 messages in its outbox: a send, a kv
// read of the batch's dedupe keys and one kv transaction of 300 writes, durable (fsync on) before the answer.
func BenchmarkCaptureSend(b *testing.B) {
	for _, fsync := range []bool{true, false} {
		b.Run(fmt.Sprintf("fsync=%v", fsync), func(b *testing.B) {
			ctx := context.Background()
			st, err := store.Open(ctx, store.Options{Dir: b.TempDir(), Fsync: fsync, Logger: hclog.NewNullLogger(), Metrics: metrics.NewRegistry()})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			if err := st.CreateWorkspace(ctx, workspaces.Workspace{ID: "acme", Name: "Acme", WriteKey: "wk_acme_0123456789abcdef"}); err != nil {
				b.Fatal(err)
			}
			o := opts(b)
			o.Logger, o.KV = hclog.NewNullLogger(), st
			m, err := New(ctx, o, DefaultSpecs())
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close(ctx)
			const batch = 100
			msgs := make([]wire.Message, batch)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j := range msgs {
					msgs[j] = wire.Message{
						ID: fmt.Sprintf("m%d-%d", i, j), To: "ana@example.com", ContactID: "c1",
						Fields: wire.Pairs{{Key: "subject", Value: "Spring sale"}, {Key: "text", Value: "Hello Ana, our spring sale starts now."}},
					}
				}
				res, err := m.Send(ctx, "acme", "capture", time.Now(), msgs)
				if err != nil || res[batch-1].Status != wire.StatusDelivered {
					b.Fatalf("%v %+v", err, res[batch-1])
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
