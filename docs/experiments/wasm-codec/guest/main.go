package main

import (
	"encoding/binary"
	"encoding/json"
	"unsafe"
)

func main() {}

var keep = map[uintptr][]byte{}

//go:wasmexport cc_alloc
func alloc(n uint32) uint32 {
	b := make([]byte, n)
	p := uintptr(unsafe.Pointer(&b[0]))
	keep[p] = b
	return uint32(p)
}

//go:wasmexport cc_free
func free(p uint32) { delete(keep, uintptr(p)) }

var out []byte

type msg struct {
	ID      string            `json:"id"`
	To      string            `json:"to"`
	Subject string            `json:"subject"`
	Body    string            `json:"body"`
	Headers map[string]string `json:"headers"`
}
type result struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	PID    string `json:"provider_id"`
}

// JSON entry: input is a JSON array of msg, output JSON array of result.
//
//go:wasmexport cc_send_json
func sendJSON(p, n uint32) uint64 {
	in := unsafe.Slice((*byte)(unsafe.Pointer(uintptr(p))), n)
	var msgs []msg
	if err := json.Unmarshal(in, &msgs); err != nil {
		return 0
	}
	res := make([]result, len(msgs))
	for i, m := range msgs {
		res[i] = result{ID: m.ID, Status: "delivered", PID: "null-" + m.ID}
	}
	out, _ = json.Marshal(res)
	return uint64(uintptr(unsafe.Pointer(&out[0])))<<32 | uint64(len(out))
}

// Binary entry: count u32, then per item: 5 length-prefixed strings (id,to,subject,body,headers-blob).
//
//go:wasmexport cc_send_bin
func sendBin(p, n uint32) uint64 {
	in := unsafe.Slice((*byte)(unsafe.Pointer(uintptr(p))), n)
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
		out = append(out, 1) // status
		out = binary.LittleEndian.AppendUint32(out, uint32(len(id)))
		out = append(out, id...)
		pid := "null-" + id
		out = binary.LittleEndian.AppendUint32(out, uint32(len(pid)))
		out = append(out, pid...)
	}
	return uint64(uintptr(unsafe.Pointer(&out[0])))<<32 | uint64(len(out))
}

//go:wasmexport cc_spin
func spin() {
	for {
	}
}
