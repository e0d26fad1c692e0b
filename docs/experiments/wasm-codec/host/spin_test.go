package host

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

func TestSpinStopsAtDeadline(t *testing.T) {
	b := &testing.B{}
	mod, ctx := setup(b, true)
	var gcs atomic.Int64
	stop := make(chan struct{})
	go func() { // force stop-the-world phases while the guest spins
		for {
			select {
			case <-stop:
				return
			default:
				runtime.GC()
				gcs.Add(1)
				time.Sleep(5 * time.Millisecond)
			}
		}
	}()
	for i := 0; i < 5; i++ {
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		start := time.Now()
		_, err := mod.ExportedFunction("cc_spin").Call(cctx)
		cancel()
		t.Logf("spin call %d returned after %v: %v (gcs so far %d)", i, time.Since(start), err, gcs.Load())
		if err == nil {
			t.Fatal("spin returned without error")
		}
		mod, ctx = setup(b, true) // trapped instance is discarded
	}
	close(stop)
}
