package runtime

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crosscast/crosscast/sdk/wire"
)

// Entry points of testdata/echo.
const (
	echoEntry  = 1
	echoError  = 2
	echoLog    = 3
	echoSleep  = 4
	echoNoSuch = 99
)

func sleepInput(d time.Duration) []byte {
	return binary.LittleEndian.AppendUint32(nil, uint32(d.Milliseconds()))
}

func TestEcho(t *testing.T) {
	rt, _ := newTestRuntime(t, Options{})
	p := load(t, rt, "echo")
	big := make([]byte, 1<<20)
	_, _ = rand.Read(big)

	tests := []struct {
		name    string
		entry   uint32
		input   []byte
		want    []byte
		wantErr string // GuestError message
	}{
		{name: "round trip", entry: echoEntry, input: []byte("hello, plugin"), want: []byte("hello, plugin")},
		{name: "empty input", entry: echoEntry, input: nil, want: []byte{}},
		{name: "1 MiB of random bytes", entry: echoEntry, input: big, want: big},
		{name: "guest error", entry: echoError, input: []byte("no such recipient"), wantErr: "no such recipient"},
		{name: "unknown entry", entry: echoNoSuch, input: []byte("x"), wantErr: "unknown entry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := p.Call(context.Background(), tt.entry, tt.input)
			if tt.wantErr != "" {
				var ge *GuestError
				if !errors.Is(err, ErrGuest) || !errors.As(err, &ge) || ge.Message != tt.wantErr {
					t.Fatalf("got %v, want a GuestError %q", err, tt.wantErr)
				}
				mustContain(t, err, `plugin "echo"`, fmt.Sprintf("entry %d", tt.entry))
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, tt.want) || out == nil {
				t.Fatalf("got %d bytes %.40q, want %d bytes %.40q", len(out), out, len(tt.want), tt.want)
			}
		})
	}
	st := p.Stats()
	if st.Calls != uint64(len(tests)) || st.Failures != 2 || st.Discarded != 0 || st.Created != 1 || st.Live != 1 {
		t.Errorf("stats %+v: want %d calls, 2 failures (guest errors), 1 instance kept", st, len(tests))
	}
}

// A wire payload crosses the boundary byte for byte: what the manager encodes is what a guest decodes.
func TestEchoWirePayload(t *testing.T) {
	rt, _ := newTestRuntime(t, Options{})
	p := load(t, rt, "echo")
	req := wire.SendRequest{NowUnixMilli: 1_700_000_000_000, Messages: []wire.Message{{
		ID: "m1", IdempotencyKey: "k1", Workspace: "w", ContactID: "c1", To: "+15550100",
	}}}
	w := wire.NewWriter(nil)
	req.Encode(w)
	out, err := p.Call(context.Background(), echoEntry, w.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	got, err := wire.DecodeSendRequest(out)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, req) {
		t.Fatalf("got %+v, want %+v", got, req)
	}
}

func TestPoolReusesInstance(t *testing.T) {
	rt, _ := newTestRuntime(t, Options{})
	p := load(t, rt, "echo")
	for i := range 20 {
		in := fmt.Appendf(nil, "call %d", i)
		out, err := p.Call(context.Background(), echoEntry, in)
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("call %d: %q, %v", i, out, err)
		}
	}
	if st := p.Stats(); st.Created != 1 || st.Live != 1 || st.Calls != 20 {
		t.Fatalf("stats %+v: want the instance made at load to serve all 20 calls", st)
	}
}

func TestConcurrentCallsShareBoundedPool(t *testing.T) {
	rt, _ := newTestRuntime(t, Options{Pool: 2})
	p := load(t, rt, "echo")
	const goroutines, calls = 8, 25
	errs := make(chan error, goroutines*calls)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range calls {
				in := fmt.Appendf(nil, "goroutine %d call %d", g, i)
				out, err := p.Call(context.Background(), echoEntry, in)
				if err == nil && !bytes.Equal(out, in) {
					err = fmt.Errorf("got %q, want %q", out, in)
				}
				if err != nil {
					errs <- err
				}
				if live := p.Stats().Live; live > 2 {
					errs <- fmt.Errorf("%d live instances, pool is 2", live)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st := p.Stats(); st.Created > 2 || st.Live > 2 || st.Calls != goroutines*calls || st.Failures != 0 {
		t.Fatalf("stats %+v: want at most 2 instances and %d good calls", st, goroutines*calls)
	}
}

func TestGuestLog(t *testing.T) {
	rt, rec := newTestRuntime(t, Options{})
	p := load(t, rt, "echo")
	levels := []string{1: "trace", 2: "debug", 3: "info", 4: "warn", 5: "error"}
	for lvl := 1; lvl <= 5; lvl++ {
		if _, err := p.Call(context.Background(), echoLog, fmt.Appendf([]byte{byte(lvl)}, "line at %d", lvl)); err != nil {
			t.Fatal(err)
		}
	}
	long := append([]byte{3}, bytes.Repeat([]byte("é"), 5000)...) // 10,000 bytes of two-byte runes
	if _, err := p.Call(context.Background(), echoLog, long); err != nil {
		t.Fatal(err)
	}
	recs := rec.records("log")
	if len(recs) != 6 {
		t.Fatalf("got %d log records, want 6: %v", len(recs), recs)
	}
	for i, r := range recs[:5] {
		if r["@level"] != levels[i+1] || r["line"] != fmt.Sprintf("line at %d", i+1) || r["plugin"] != "echo" ||
			r["@module"] != "plugin" {
			t.Errorf("record %d: %v", i, r)
		}
	}
	line, _ := recs[5]["line"].(string)
	if len(line) != maxLogLine || line != strings.Repeat("é", maxLogLine/2) || recs[5]["truncated"] != true {
		t.Errorf("long line kept %d bytes (truncated=%v), want %d", len(line), recs[5]["truncated"], maxLogLine)
	}
}

func TestCallerContext(t *testing.T) {
	t.Run("waiting for a busy pool honours ctx", func(t *testing.T) {
		rt, _ := newTestRuntime(t, Options{Pool: 1})
		p := load(t, rt, "echo")
		first := make(chan error, 1)
		go func() {
			_, err := p.Call(context.Background(), echoSleep, sleepInput(500*time.Millisecond))
			first <- err
		}()
		waitFor(t, 5*time.Second, "the first call to hold the only instance", func() bool {
			return p.Stats().Busy == 1
		})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := p.Call(ctx, echoEntry, []byte("x"))
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrTimeout) {
			t.Fatalf("got %v, want the caller's deadline while waiting", err)
		}
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		if st := p.Stats(); st.Discarded != 0 || st.Created != 1 {
			t.Fatalf("stats %+v: waiting must not cost an instance", st)
		}
	})
	t.Run("caller deadline earlier than Timeout", func(t *testing.T) {
		rt, _ := newTestRuntime(t, Options{Timeout: 10 * time.Second})
		p := load(t, rt, "echo")
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := p.Call(ctx, echoSleep, sleepInput(time.Minute))
		if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want ErrTimeout from the caller's deadline", err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("a sleeping guest held the call %v past a 100ms deadline", took)
		}
		if st := p.Stats(); st.Discarded != 1 {
			t.Fatalf("stats %+v: the interrupted instance must be discarded", st)
		}
		if _, err := p.Call(context.Background(), echoEntry, []byte("x")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("caller cancels mid-call", func(t *testing.T) {
		rt, _ := newTestRuntime(t, Options{})
		p := load(t, rt, "echo")
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for p.Stats().Busy == 0 {
				<-tick.C
			}
			cancel()
		}()
		_, err := p.Call(ctx, echoSleep, sleepInput(time.Minute))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	})
}

func TestClose(t *testing.T) {
	t.Run("drains calls in flight", func(t *testing.T) {
		rt, _ := newTestRuntime(t, Options{})
		p := load(t, rt, "echo")
		done := make(chan error, 1)
		start := time.Now()
		go func() {
			_, err := p.Call(context.Background(), echoSleep, sleepInput(300*time.Millisecond))
			done <- err
		}()
		waitFor(t, 5*time.Second, "the call to start", func() bool { return p.Stats().Busy == 1 })
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Fatal(err)
		}
		// The guest sleeps 300 ms: Close must not return before that. (The call's goroutine may deliver its result
		// a moment after Close returns, so the result is awaited, not polled.)
		if took := time.Since(start); took < 300*time.Millisecond {
			t.Fatalf("Close returned after %v, before the call in flight ended", took)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("call in flight during Close: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the call in flight never returned")
		}
		if _, err := p.Call(context.Background(), echoEntry, []byte("x")); !errors.Is(err, ErrClosed) {
			t.Fatalf("call after Close: %v, want ErrClosed", err)
		}
		if st := p.Stats(); st.Live != 0 {
			t.Fatalf("stats %+v: want no live instance after Close", st)
		}
	})
	t.Run("gives up at ctx and lets the last call clean up", func(t *testing.T) {
		rt, _ := newTestRuntime(t, Options{})
		p := load(t, rt, "echo")
		done := make(chan error, 1)
		go func() {
			_, err := p.Call(context.Background(), echoSleep, sleepInput(300*time.Millisecond))
			done <- err
		}()
		waitFor(t, 5*time.Second, "the call to start", func() bool { return p.Stats().Busy == 1 })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		if err := p.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want the ctx's deadline", err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "the instance to be closed", func() bool { return p.Stats().Live == 0 })
	})
	// Closing the whole runtime does not wait past its ctx, and wazero frees the memories at once: the memory of the
	// instance a call still runs on stays mapped until that call ends (unmapping it under the guest crashed the
	// process).
	t.Run("runtime close with a call in flight", func(t *testing.T) {
		rt, err := New(context.Background(), Options{CacheDir: sharedCacheDir})
		if err != nil {
			t.Fatal(err)
		}
		p := load(t, rt, "echo")
		done := make(chan error, 1)
		go func() {
			_, err := p.Call(context.Background(), echoSleep, sleepInput(300*time.Millisecond))
			done <- err
		}()
		waitFor(t, 5*time.Second, "the call to start", func() bool { return p.Stats().Busy == 1 })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		_ = rt.Close(ctx)
		select {
		case <-done: // an error or not: the guest woke on a memory that was still there
		case <-time.After(5 * time.Second):
			t.Fatal("the call in flight never returned")
		}
		waitFor(t, 5*time.Second, "the instance to be closed", func() bool { return p.Stats().Live == 0 })
	})
	t.Run("runtime close closes plugins", func(t *testing.T) {
		rt, err := New(context.Background(), Options{CacheDir: sharedCacheDir})
		if err != nil {
			t.Fatal(err)
		}
		p := load(t, rt, "echo")
		if err := rt.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Call(context.Background(), echoEntry, []byte("x")); !errors.Is(err, ErrClosed) {
			t.Fatalf("call after runtime Close: %v", err)
		}
		if _, err := rt.Load(context.Background(), "echo", guestWasm["echo"]); !errors.Is(err, ErrClosed) {
			t.Fatalf("load after runtime Close: %v", err)
		}
	})
}

func TestLoadRefuses(t *testing.T) {
	tests := []struct {
		name  string
		wasm  []byte
		want  error
		parts []string
	}{
		{name: "missing and mistyped exports", wasm: guestWasm["noabi"], want: ErrBadABI,
			parts: []string{"missing export cc_abi_v1", "export cc_call is (i32, i32, i32) -> (i32), want (i32, i32, i32) -> (i64)"}},
		{name: "import from an unknown module", wasm: guestWasm["badimport"], want: ErrBadABI,
			parts: []string{"imports env.foo from an unknown module"}},
		{name: "corrupt bytes", wasm: []byte("\x00asm but not really a module"), want: ErrInvalidWasm},
		{name: "truncated module", wasm: guestWasm["echo"][:len(guestWasm["echo"])/2], want: ErrInvalidWasm},
		{name: "needs more memory than the limit at start", wasm: guestWasm["bigstart"], want: ErrTrap},
	}
	rt, rec := newTestRuntime(t, Options{MemoryLimit: 64 << 20})
	good := load(t, rt, "echo")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := rt.Load(context.Background(), "bad", tt.wasm)
			if !errors.Is(err, tt.want) || p != nil {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			mustContain(t, err, append(tt.parts, `plugin "bad"`)...)
			if out, err := good.Call(context.Background(), echoEntry, []byte("still fine")); err != nil || string(out) != "still fine" {
				t.Fatalf("healthy plugin after a refused load: %q, %v", out, err)
			}
		})
	}
	// The guest that ran out of memory while initialising left its Go crash dump in the log.
	var found bool
	for _, r := range rec.records("discarding plugin instance") {
		if s, _ := r["stderr"].(string); r["plugin"] == "bad" && strings.Contains(s, "out of memory") {
			found = true
		}
	}
	if !found {
		t.Error("no stderr tail with the out-of-memory dump was logged")
	}
	if _, err := rt.Load(context.Background(), "", guestWasm["echo"]); err == nil {
		t.Error("a plugin with an empty name was loaded")
	}
}

func TestNewOptions(t *testing.T) {
	bad := []Options{
		{MemoryLimit: (MinMemoryPages - 1) * pageSize},
		{MemoryLimit: (maxMemoryPages + 1) * pageSize},
		{Pool: -1},
		{Timeout: -time.Second},
		{MaxOutput: -1},
	}
	for _, o := range bad {
		if rt, err := New(context.Background(), o); err == nil {
			_ = rt.Close(context.Background())
			t.Errorf("New accepted %+v", o)
		}
	}
	rt, err := New(context.Background(), Options{MemoryLimit: MinMemoryPages * pageSize})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	if o := rt.opts; o.Pool != DefaultPool || o.Timeout != DefaultTimeout || o.MaxOutput != DefaultMaxOutput {
		t.Errorf("defaults not applied: %+v", o)
	}
}

// Plugins loaded from the same bytes share compiled code, which lives until the last of them closes.
func TestSameBytesShareCompiledCode(t *testing.T) {
	rt, _ := newTestRuntime(t, Options{})
	a := load(t, rt, "echo")
	b, err := rt.Load(context.Background(), "echo-again", guestWasm["echo"])
	if err != nil {
		t.Fatal(err)
	}
	if a.code != b.code || a.code.refs != 2 {
		t.Fatalf("two loads of the same bytes compiled twice (refs %d)", a.code.refs)
	}
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Call(context.Background(), echoEntry, []byte("x")); err != nil {
		t.Fatalf("plugin sharing code with a closed one: %v", err)
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(rt.compiled); n != 0 {
		t.Fatalf("%d compiled modules kept after their plugins closed", n)
	}
}

func TestCompilationCacheDir(t *testing.T) {
	dir := t.TempDir()
	var took [2]time.Duration
	for i := range took {
		rt, err := New(context.Background(), Options{CacheDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := rt.Load(context.Background(), "echo", guestWasm["echo"]); err != nil {
			t.Fatal(err)
		}
		took[i] = time.Since(start)
		if err := rt.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("load with an empty cache dir: %v; from the cache dir: %v", took[0], took[1])
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		t.Fatalf("cache dir is empty after a load (%v)", err)
	}
}

// Configure runs on every instance before it serves a call: instances started later (after a discard) get it too,
// and a configuration the plugin refuses fails at Configure, not on a later call.
func TestConfigureRunsOnEveryInstance(t *testing.T) {
	rt, _ := newTestRuntime(t, Options{Pool: 1, Timeout: 300 * time.Millisecond})
	p := load(t, rt, "echo")
	ctx := context.Background()
	// Entry 1 echoes: a harmless setup call that must succeed on each new instance.
	if err := p.Configure(ctx, 1, []byte("cfg")); err != nil {
		t.Fatal(err)
	}
	createdBefore := p.Stats().Created
	// Kill the instance with a sleep past the deadline (entry 4): the next call needs a fresh, configured one.
	sleep := []byte{0xe8, 0x03, 0, 0} // 1000 ms
	if _, err := p.Call(ctx, 4, sleep); !errors.Is(err, ErrTimeout) {
		t.Fatalf("want a timeout, got %v", err)
	}
	if out, err := p.Call(ctx, 1, []byte("x")); err != nil || string(out) != "x" {
		t.Fatalf("call after discard: %q %v", out, err)
	}
	if p.Stats().Created <= createdBefore {
		t.Fatalf("no new instance was created after the discard")
	}
	// Entry 2 answers with an error: a refused configuration fails Configure itself.
	// It is a fault of the start (ErrProtocol), not a guest answer, so the manager counts it against the plugin.
	if err := p.Configure(ctx, 2, []byte("bad setting")); !errors.Is(err, ErrProtocol) || errors.Is(err, ErrGuest) || !strings.Contains(err.Error(), "bad setting") {
		t.Fatalf("refused configuration: %v", err)
	}
}
