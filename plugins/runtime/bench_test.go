package runtime

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// BenchmarkCall is one echo call of 1 KiB on a warm instance: the fixed cost of crossing into a guest and back.
func BenchmarkCall(b *testing.B) {
	rt, _ := newTestRuntime(b, Options{})
	p := load(b, rt, "echo")
	in := bytes.Repeat([]byte("x"), 1<<10)
	ctx := context.Background()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Call(ctx, echoEntry, in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

// benchLoad measures New + Load (compile, check, instantiate, _initialize) + Close of the echo guest.
func benchLoad(b *testing.B, cacheDir string) {
	ctx := context.Background()
	wasm := guestWasm["echo"]
	for b.Loop() {
		rt, err := New(ctx, Options{CacheDir: cacheDir, Logger: hclog.NewNullLogger()})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := rt.Load(ctx, "echo", wasm); err != nil {
			b.Fatal(err)
		}
		if err := rt.Close(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed())/float64(time.Millisecond)/float64(b.N), "ms/load")
}

// BenchmarkLoadCold compiles from scratch every time (an in-memory cache that dies with its runtime).
func BenchmarkLoadCold(b *testing.B) { benchLoad(b, "") }

// BenchmarkLoadCached reads the compiled code from a warm cache directory, as a restart does.
func BenchmarkLoadCached(b *testing.B) {
	dir := b.TempDir()
	rt, err := New(context.Background(), Options{CacheDir: dir})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := rt.Load(context.Background(), "echo", guestWasm["echo"]); err != nil {
		b.Fatal(err)
	}
	_ = rt.Close(context.Background())
	benchLoad(b, dir)
}
