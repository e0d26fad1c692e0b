package wire

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"
)

func sampleScoreRequest() ScoreRequest {
	return ScoreRequest{NowUnixMilli: 1_790_000_000_000, Workspace: "acme", Items: []ScoreItem{
		{ContactID: "k1", Traits: Pairs{{"country", "FR"}, {"plan", "pro"}},
			Events: []ScoreEvent{
				{Name: "email_opened", AtUnixMilli: 1_789_999_000_000, Properties: Pairs{{"campaign", "c1"}}},
				{Name: "Order Completed", AtUnixMilli: 1_789_999_500_000, Properties: Pairs{{"currency", "EUR"}, {"total", "42.50"}}},
			},
			State: []byte(`{"opens":3}`)},
		{ContactID: "k2", Events: []ScoreEvent{{Name: "page_viewed"}}},
		{},
	}}
}

func TestScoreRequestCodec(t *testing.T) {
	tests := []struct {
		name string
		q    ScoreRequest
	}{
		{"items", sampleScoreRequest()},
		{"empty", ScoreRequest{}},
		{"binary state", ScoreRequest{Items: []ScoreItem{{ContactID: "k", State: []byte{0, 1, 0xfe}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkCodec(t, tt.q, (*ScoreRequest).Encode, DecodeScoreRequest)
		})
	}
}

// A decoded request owns its memory, and appending to one item's state does not write over the next field.
func TestScoreRequestDecodeDoesNotAlias(t *testing.T) {
	q := ScoreRequest{Items: []ScoreItem{{ContactID: "a", State: []byte("s1")}, {ContactID: "b", State: []byte("s2")}}}
	in := encodeBytes(q, (*ScoreRequest).Encode)
	got, err := DecodeScoreRequest(in)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		in[i] = 0
	}
	_ = append(got.Items[0].State, "XXXXXXXX"...)
	if !reflect.DeepEqual(got, q) {
		t.Fatalf("got %+v, want %+v", got, q)
	}
}

func TestScoreRequestRefusesBadValues(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"huge item count", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f}},
		{"over MaxItems", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00, 0x10, 0x00}},
		{"huge event count", append([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0xff, 0xff, 0x0f, 0, 0, 0, 0, 0)},
		{"huge string", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeScoreRequest(tt.in); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	wantRefused(t, ScoreRequest{Items: []ScoreItem{{Events: []ScoreEvent{{Properties: Pairs{{"a", "1"}, {"a", "2"}}}}}}},
		(*ScoreRequest).Encode, DecodeScoreRequest, "not strictly ascending")
}

func sampleScoreResponse() ScoreResponse {
	return ScoreResponse{Results: []ScoreResult{
		{ContactID: "k1", Scores: []Score{{"engagement", 72.5}, {"fit", -1}}, Reasons: []string{"opened 3 emails this week", "plan: pro"},
			State: []byte(`{"opens":4}`)},
		{ContactID: "k2", Scores: []Score{{"engagement", 0}}},
		{ContactID: "k3"},
	}}
}

func TestScoreResponseCodec(t *testing.T) {
	tests := []struct {
		name string
		p    ScoreResponse
	}{
		{"results", sampleScoreResponse()},
		{"empty", ScoreResponse{}},
		{"extreme values", ScoreResponse{Results: []ScoreResult{{Scores: []Score{{"max", math.MaxFloat64}, {"min", -math.SmallestNonzeroFloat64}, {"zero", math.Copysign(0, -1)}}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkCodec(t, tt.p, (*ScoreResponse).Encode, DecodeScoreResponse)
		})
	}
}

func TestScoreResponseRefusesBadScores(t *testing.T) {
	tests := []struct {
		name  string
		score []Score
		want  string
	}{
		{"NaN", []Score{{"e", math.NaN()}}, `score "e" is NaN, not a finite number`},
		{"+Inf", []Score{{"e", math.Inf(1)}}, `score "e" is +Inf`},
		{"-Inf", []Score{{"ok", 1}, {"e", math.Inf(-1)}}, `score "e" is -Inf`},
		{"no name", []Score{{"", 1}}, "a score has no name"},
		{"twice", []Score{{"e", 1}, {"f", 2}, {"e", 3}}, `score "e" is given twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := ScoreResponse{Results: []ScoreResult{{ContactID: "k1"}, {ContactID: "k2", Scores: tt.score}}}
			wantRefused(t, p, (*ScoreResponse).Encode, DecodeScoreResponse, `result 1 (contact "k2"): `+tt.want)
		})
	}
	huge := []byte{1, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0x0f, 0}
	if _, err := DecodeScoreResponse(huge); !errors.Is(err, ErrShort) {
		t.Fatalf("huge score count: %v", err)
	}
}

func FuzzDecodeScoreRequest(f *testing.F) {
	f.Add(encodeBytes(sampleScoreRequest(), (*ScoreRequest).Encode))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := DecodeScoreRequest(b)
		if err != nil {
			return
		}
		again, err := DecodeScoreRequest(encodeBytes(q, (*ScoreRequest).Encode))
		if err != nil || !reflect.DeepEqual(again, q) {
			t.Fatalf("re-encoding changed the request: %v", err)
		}
	})
}

func FuzzDecodeScoreResponse(f *testing.F) {
	f.Add(encodeBytes(sampleScoreResponse(), (*ScoreResponse).Encode))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = DecodeScoreResponse(b) // must not panic or allocate without bound
	})
}

// BenchmarkScoreRequestDecode decodes a batch of 100 contacts, each with 3 traits, 5 events of 2 properties and a
// 32-byte state: what a scorer's guest pays per call before scoring anything.
func BenchmarkScoreRequestDecode(b *testing.B) {
	items := make([]ScoreItem, 100)
	for i := range items {
		events := make([]ScoreEvent, 5)
		for j := range events {
			events[j] = ScoreEvent{Name: "email_opened", AtUnixMilli: 1_789_999_000_000 + int64(j),
				Properties: Pairs{{"campaign", "c-2026-05"}, {"link", "https://example.com/offer"}}}
		}
		items[i] = ScoreItem{ContactID: fmt.Sprintf("contact-%06d", i),
			Traits: Pairs{{"country", "FR"}, {"created_at", "2025-01-02"}, {"plan", "pro"}},
			Events: events, State: []byte(`{"opens":12,"clicks":3,"v":1}   `)}
	}
	in := encodeBytes(ScoreRequest{NowUnixMilli: 1_790_000_000_000, Workspace: "acme", Items: items}, (*ScoreRequest).Encode)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeScoreRequest(in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/item")
}
