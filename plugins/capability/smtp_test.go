package capability

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crosscast/crosscast/plugins/smtprelay"
	"github.com/crosscast/crosscast/sdk/wire"
)

// barrierMailer answers by recipient, and holds each Send until `together` Sends are in flight at once (or a
// deadline passes, which the test reports): a batch sent one message after another never gets through.
type barrierMailer struct {
	together int
	mu       sync.Mutex
	inFlight int
	arrived  chan struct{}
	timedOut bool
}

func (m *barrierMailer) Send(ctx context.Context, from string, to []string, data []byte) (smtprelay.Reply, error) {
	m.mu.Lock()
	m.inFlight++
	if m.inFlight == m.together {
		close(m.arrived)
	}
	m.mu.Unlock()
	select {
	case <-m.arrived:
	case <-time.After(10 * time.Second):
		m.mu.Lock()
		m.timedOut = true
		m.mu.Unlock()
	}
	switch {
	case strings.HasPrefix(to[0], "later@"):
		return smtprelay.Reply{}, &smtprelay.Error{Code: 451, Message: "4.3.0 try again later"}
	case strings.HasPrefix(to[0], "nobody@"):
		return smtprelay.Reply{}, &smtprelay.Error{Code: 550, Message: "5.1.1 no such user"}
	}
	return smtprelay.Reply{Code: 250, Message: "2.0.0 queued as " + to[0]}, nil
}

func TestSMTPBatch(t *testing.T) {
	m := &barrierMailer{together: 3, arrived: make(chan struct{})}
	fn := SMTPBatch(m)
	q := wire.SMTPBatchRequest{Messages: []wire.SMTPRequest{
		{From: "news@a.test", To: []string{"ana@b.test"}, Data: []byte("x")},
		{From: "news@a.test", To: []string{"later@b.test"}, Data: []byte("x")},
		{From: "news@a.test", To: []string{"nobody@b.test"}, Data: []byte("x")},
		{From: "news@a.test", Data: []byte("no recipient")},
	}}
	msg, r := call(t, context.Background(), fn, q.Encode)
	if msg != "" {
		t.Fatal(msg)
	}
	a, err := wire.DecodeSMTPBatchAnswer(r)
	if err != nil {
		t.Fatal(err)
	}
	if m.timedOut {
		t.Fatal("the batch's messages were not sent at the same time")
	}
	want := []wire.SMTPBatchItem{
		{Answer: wire.SMTPAnswer{Code: 250, Message: "2.0.0 queued as ana@b.test"}},
		{Error: "smtp 451 4.3.0 try again later"},
		{Error: "smtp 550 5.1.1 no such user"},
		{Error: "smtp 501 the message has no recipient"},
	}
	if len(a.Items) != len(want) {
		t.Fatalf("%d items for %d messages", len(a.Items), len(want))
	}
	for i := range want {
		if a.Items[i].Error != want[i].Error || a.Items[i].Answer.Code != want[i].Answer.Code || a.Items[i].Answer.Message != want[i].Answer.Message {
			t.Errorf("item %d: %+v, want %+v", i, a.Items[i], want[i])
		}
	}

	if msg, _ := call(t, context.Background(), fn, func(w *wire.Writer) { w.U32(3) }); !strings.Contains(msg, "smtp_batch") {
		t.Fatalf("a malformed batch: %q", msg)
	}
}
