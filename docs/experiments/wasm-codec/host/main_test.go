package host

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

type msg struct {
	ID      string            `json:"id"`
	To      string            `json:"to"`
	Subject string            `json:"subject"`
	Body    string            `json:"body"`
	Headers map[string]string `json:"headers"`
}

func mkMsgs(n int) []msg {
	ms := make([]msg, n)
	for i := range ms {
		ms[i] = msg{ID: fmt.Sprintf("m%07d", i), To: "user@example.com", Subject: "Hello there, a subject line", Body: strings.Repeat("Hello {{first_name}}, our spring sale starts now. ", 12), Headers: map[string]string{"X-A": "1", "List-Unsubscribe": "<https://x/u>"}}
	}
	return ms
}

func encBin(ms []msg) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(ms)))
	for _, m := range ms {
		h, _ := json.Marshal(m.Headers)
		for _, f := range []string{m.ID, m.To, m.Subject, m.Body, string(h)} {
			b = binary.LittleEndian.AppendUint32(b, uint32(len(f)))
			b = append(b, f...)
		}
	}
	return b
}

func setup(b *testing.B, closeOnDone bool) (api.Module, context.Context) {
	ctx := context.Background()
	cfg := wazero.NewRuntimeConfig().WithCloseOnContextDone(closeOnDone).WithMemoryLimitPages(1024)
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	code, _ := os.ReadFile("../guest/guest.wasm")
	cm, err := rt.CompileModule(ctx, code)
	if err != nil {
		b.Fatal(err)
	}
	mod, err := rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithStartFunctions("_initialize").WithSysNanotime().WithSysWalltime().WithName(""))
	if err != nil {
		b.Fatal(err)
	}
	return mod, ctx
}

func call(b *testing.B, mod api.Module, ctx context.Context, fn string, in []byte) []byte {
	alloc := mod.ExportedFunction("cc_alloc")
	free := mod.ExportedFunction("cc_free")
	r, err := alloc.Call(ctx, uint64(len(in)))
	if err != nil {
		b.Fatal(err)
	}
	p := uint32(r[0])
	mod.Memory().Write(p, in)
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	r, err = mod.ExportedFunction(fn).Call(cctx, uint64(p), uint64(len(in)))
	cancel()
	if err != nil {
		b.Fatal(err)
	}
	out, _ := mod.Memory().Read(uint32(r[0]>>32), uint32(r[0]))
	res := append([]byte(nil), out...)
	free.Call(ctx, uint64(p))
	return res
}

func BenchmarkGuest(b *testing.B) {
	for _, cod := range []bool{false, true} {
		for _, enc := range []string{"json", "bin"} {
			for _, batch := range []int{1, 100} {
				b.Run(fmt.Sprintf("close=%v/%s/batch=%d", cod, enc, batch), func(b *testing.B) {
					mod, ctx := setup(b, cod)
					ms := mkMsgs(batch)
					var in []byte
					fn := "cc_send_bin"
					if enc == "json" {
						in, _ = json.Marshal(ms)
						fn = "cc_send_json"
					} else {
						in = encBin(ms)
					}
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						if enc == "bin" {
							in = encBin(ms) // host-side encode counted, as in the native run
						}
						call(b, mod, ctx, fn, in)
					}
					b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "items/s")
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/item")
				})
			}
		}
	}
}

type result struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	PID    string `json:"provider_id"`
}

func BenchmarkNative(b *testing.B) {
	for _, batch := range []int{1, 100} {
		b.Run(fmt.Sprintf("json/batch=%d", batch), func(b *testing.B) {
			in, _ := json.Marshal(mkMsgs(batch))
			for i := 0; i < b.N; i++ {
				var msgs []msg
				json.Unmarshal(in, &msgs)
				res := make([]result, len(msgs))
				for i, m := range msgs {
					res[i] = result{ID: m.ID, Status: "delivered", PID: "null-" + m.ID}
				}
				out, _ := json.Marshal(res)
				var back []result
				json.Unmarshal(out, &back)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/item")
		})
	}
}

func nativeBin(in []byte, out []byte) []byte {
	cnt := binary.LittleEndian.Uint32(in)
	in = in[4:]
	out = out[:0]
	out = binary.LittleEndian.AppendUint32(out, cnt)
	for i := uint32(0); i < cnt; i++ {
		var fields [5][]byte
		for f := 0; f < 5; f++ {
			l := binary.LittleEndian.Uint32(in)
			fields[f] = in[4 : 4+l]
			in = in[4+l:]
		}
		id := string(fields[0])
		out = append(out, 1)
		out = binary.LittleEndian.AppendUint32(out, uint32(len(id)))
		out = append(out, id...)
		pid := "null-" + id
		out = binary.LittleEndian.AppendUint32(out, uint32(len(pid)))
		out = append(out, pid...)
	}
	return out
}

func BenchmarkNativeBin(b *testing.B) {
	for _, batch := range []int{1, 100} {
		b.Run(fmt.Sprintf("bin/batch=%d", batch), func(b *testing.B) {
			ms := mkMsgs(batch)
			var out []byte
			for i := 0; i < b.N; i++ {
				in := encBin(ms) // host-side encode is part of both paths
				out = nativeBin(in, out)
				_ = append([]byte(nil), out...)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/item")
		})
	}
}
