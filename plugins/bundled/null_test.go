package bundled_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/crosscast/crosscast/plugins/bundled"
	"github.com/crosscast/crosscast/plugins/runtime"
	"github.com/crosscast/crosscast/sdk/wire"
	"github.com/hashicorp/go-hclog"
)

// Entry points of ABI v1 (sdk/ABI.md).
const (
	entryManifest  = 1
	entryConfigure = 2
	entrySend      = 16
)

func loadNull(tb testing.TB) *runtime.Plugin {
	tb.Helper()
	ctx := context.Background()
	rt, err := runtime.New(ctx, runtime.Options{
		CacheDir: tb.TempDir(), Pool: 2, Timeout: 5 * time.Second, MemoryLimit: 64 << 20,
		Logger: hclog.New(&hclog.LoggerOptions{Output: tb.Output(), Level: hclog.Warn}),
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = rt.Close(context.Background()) })
	code, err := bundled.Wasm("null")
	if err != nil {
		tb.Fatal(err)
	}
	p, err := rt.Load(ctx, "null", code)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func messages(n int) []wire.Message {
	msgs := make([]wire.Message, n)
	for i := range msgs {
		msgs[i] = wire.Message{
			ID: fmt.Sprintf("m%06d", i), IdempotencyKey: fmt.Sprintf("c1:s1:k%06d:email", i), Workspace: "acme",
			ContactID: fmt.Sprintf("k%06d", i), To: "ana@example.com",
			Fields:  wire.Pairs{{Key: "subject", Value: "Spring sale"}, {Key: "text", Value: "Hello Ana, our spring sale starts now."}},
			Headers: wire.Pairs{{Key: "List-Unsubscribe", Value: "<https://cc.example.com/u/abc>"}},
		}
	}
	return msgs
}

// The bundled null channel, built with the public SDK, runs under the real runtime: manifest, configure, and a
// send whose every message is delivered.
func TestNullChannelThroughRuntime(t *testing.T) {
	p := loadNull(t)
	ctx := context.Background()
	out, err := p.Call(ctx, entryManifest, nil)
	var m struct {
		ID   string `json:"id"`
		Kind string `json:"kind"`
		ABI  int    `json:"abi"`
	}
	if err != nil || json.Unmarshal(out, &m) != nil || m.ID != "null" || m.Kind != "channel" || m.ABI != 1 {
		t.Fatalf("manifest %s: %v", out, err)
	}
	if _, err := p.Call(ctx, entryConfigure, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	w := wire.NewWriter(nil)
	(&wire.SendRequest{NowUnixMilli: time.Now().UnixMilli(), Messages: messages(250)}).Encode(w)
	out, err = p.Call(ctx, entrySend, w.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := wire.DecodeSendResponse(out)
	if err != nil || len(resp.Results) != 250 {
		t.Fatalf("%d results, %v", len(resp.Results), err)
	}
	for i, r := range resp.Results {
		if r.ID != fmt.Sprintf("m%06d", i) || r.Status != wire.StatusDelivered || r.ProviderID == "" {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	// A malformed batch is the guest's clean error, and the plugin keeps serving.
	if _, err := p.Call(ctx, entrySend, []byte{1, 2, 3}); err == nil {
		t.Fatal("malformed batch accepted")
	}
	if _, err := p.Call(ctx, entrySend, w.Bytes()); err != nil {
		t.Fatalf("plugin unusable after a bad batch: %v", err)
	}
}

// BenchmarkNullSend is the per-item cost through the bundled null channel with every sandbox limit on (deadline,
// memory cap, pool, CloseOnContextDone), host-side encoding and decoding included. Compare with the native
// BenchmarkDispatchSend in sdk/ (same guest code, no wasm).
func BenchmarkNullSend(b *testing.B) {
	for _, batch := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch-%d", batch), func(b *testing.B) {
			p := loadNull(b)
			msgs := messages(batch)
			w := wire.NewWriter(nil)
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				w.Reset()
				(&wire.SendRequest{NowUnixMilli: 1, Messages: msgs}).Encode(w)
				out, err := p.Call(ctx, entrySend, w.Bytes())
				if err != nil {
					b.Fatal(err)
				}
				if _, err := wire.DecodeSendResponse(out); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "items/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/item")
		})
	}
}
