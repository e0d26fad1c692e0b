package wire

import (
	"reflect"
	"strings"
	"testing"
)

// Every capability answer goes through the envelope: round trips, refusals, and truncations are checked alike.
func TestCapabilityAnswersRoundTrip(t *testing.T) {
	cases := []struct {
		name   string
		encode func(*Writer)
		decode func(*Reader) (any, error)
		want   any
	}{
		{"secret", (&SecretAnswer{Set: true, Value: "s3cr3t"}).Encode,
			func(r *Reader) (any, error) { return DecodeSecretAnswer(r) }, SecretAnswer{Set: true, Value: "s3cr3t"}},
		{"smtp", (&SMTPAnswer{Code: 250, Message: "2.0.0 queued as X", Rejected: []SMTPRejection{{"b@x.test", 550, "no such user"}}}).Encode,
			func(r *Reader) (any, error) { return DecodeSMTPAnswer(r) },
			SMTPAnswer{Code: 250, Message: "2.0.0 queued as X", Rejected: []SMTPRejection{{"b@x.test", 550, "no such user"}}}},
		{"smtp batch", (&SMTPBatchAnswer{Items: []SMTPBatchItem{{Answer: SMTPAnswer{Code: 250, Message: "ok"}}, {Error: "smtp 451 try later"}}}).Encode,
			func(r *Reader) (any, error) { return DecodeSMTPBatchAnswer(r) },
			SMTPBatchAnswer{Items: []SMTPBatchItem{{Answer: SMTPAnswer{Code: 250, Message: "ok"}}, {Error: "smtp 451 try later"}}}},
		{"kv", (&KVAnswer{Results: []KVResult{{OK: true, Value: []byte("v")}, {OK: true, Entries: []KVEntry{{"a", []byte("1")}, {"b", nil}}, Next: "b"}}}).Encode,
			func(r *Reader) (any, error) { return DecodeKVAnswer(r) },
			KVAnswer{Results: []KVResult{{OK: true, Value: []byte("v")}, {OK: true, Entries: []KVEntry{{"a", []byte("1")}, {"b", nil}}, Next: "b"}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := NewWriter(nil)
			EncodeAnswer(w, "", c.encode)
			full := w.Bytes()
			msg, r, err := OpenAnswer(full)
			if err != nil || msg != "" {
				t.Fatalf("envelope: %q %v", msg, err)
			}
			got, err := c.decode(r)
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
			}
			for n := 0; n < len(full); n++ {
				msg, r, err := OpenAnswer(full[:n])
				if err == nil && msg == "" {
					_, err = c.decode(r)
				}
				if err == nil {
					t.Fatalf("truncated to %d bytes: accepted", n)
				}
			}
			w.Reset()
			EncodeAnswer(w, "not granted", c.encode)
			if msg, _, err := OpenAnswer(w.Bytes()); err != nil || msg != "not granted" {
				t.Fatalf("refusal: %q %v", msg, err)
			}
			if _, _, err := OpenAnswer(append(w.Bytes(), 0)); err == nil {
				t.Fatal("a refusal followed by bytes was accepted")
			}
		})
	}
}

func TestCapabilityRequestsRoundTrip(t *testing.T) {
	kv := KVRequest{Ops: []KVOp{
		{Kind: KVGet, Key: "a"},
		{Kind: KVCompareAndSwap, Key: "seq", Value: []byte("2"), ExpectPresent: true, Expect: []byte("1")},
		{Kind: KVList, Key: "msg/", After: "msg/1", Limit: 10},
	}}
	smtp := SMTPRequest{From: "news@a.test", To: []string{"x@b.test", "y@b.test"}, Data: []byte("Subject: hi\r\n\r\nbody\r\n")}
	batch := SMTPBatchRequest{Messages: []SMTPRequest{smtp, {From: "", To: []string{"z@b.test"}, Data: []byte("x")}}}
	metric := MetricRequest{Name: "sent_total", Value: 1, Labels: Pairs{{"provider", "x"}}}
	secret := SecretRequest{Name: "api_key"}
	cases := []struct {
		name   string
		encode func(*Writer)
		decode func([]byte) (any, error)
		want   any
	}{
		{"kv", kv.Encode, func(b []byte) (any, error) { return DecodeKVRequest(b) }, kv},
		{"smtp", smtp.Encode, func(b []byte) (any, error) { return DecodeSMTPRequest(b) }, smtp},
		{"smtp batch", batch.Encode, func(b []byte) (any, error) { return DecodeSMTPBatchRequest(b) }, batch},
		{"metric", metric.Encode, func(b []byte) (any, error) { return DecodeMetricRequest(b) }, metric},
		{"secret", secret.Encode, func(b []byte) (any, error) { return DecodeSecretRequest(b) }, secret},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := NewWriter(nil)
			c.encode(w)
			got, err := c.decode(w.Bytes())
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
			}
			for n := 0; n < len(w.Bytes()); n++ {
				if _, err := c.decode(w.Bytes()[:n]); err == nil {
					t.Fatalf("truncated to %d bytes: accepted", n)
				}
			}
		})
	}
	w := NewWriter(nil)
	(&KVRequest{Ops: []KVOp{{Kind: 9}}}).Encode(w)
	if _, err := DecodeKVRequest(w.Bytes()); err == nil {
		t.Fatal("unknown kv operation accepted")
	}
}

func TestSMTPBatchRequestLimit(t *testing.T) {
	q := SMTPBatchRequest{Messages: make([]SMTPRequest, MaxSMTPBatch+1)}
	w := NewWriter(nil)
	q.Encode(w)
	if _, err := DecodeSMTPBatchRequest(w.Bytes()); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Fatalf("a batch over the limit: %v", err)
	}
}
