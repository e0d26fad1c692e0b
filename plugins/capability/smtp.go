package capability

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/crosscast/crosscast/plugins/runtime"
	"github.com/crosscast/crosscast/plugins/smtprelay"
	"github.com/crosscast/crosscast/sdk/wire"
)

// Mailer sends one message through an SMTP relay: a *smtprelay.Relay in production, an in-memory relay in plugin
// tests. A refusal of the whole message is a *smtprelay.Error.
type Mailer interface {
	Send(ctx context.Context, from string, to []string, data []byte) (smtprelay.Reply, error)
}

var _ Mailer = (*smtprelay.Relay)(nil)

// SMTP serves the smtp import with m. A relay's refusal reaches the plugin as an error starting "smtp 4xx" or
// "smtp 5xx", which the SDK turns into a temporary or permanent SMTPError.
func SMTP(m Mailer) runtime.HostFunc {
	return func(ctx context.Context, b []byte, w *wire.Writer) error {
		req, err := wire.DecodeSMTPRequest(b)
		if err != nil {
			return errMalformed("smtp", err)
		}
		a, err := send(ctx, m, req)
		if err != nil {
			return err
		}
		a.Encode(w)
		return nil
	}
}

// SMTPBatch serves the smtp_batch import with m: the messages of a batch are sent at the same time (the relay's
// pool bounds how many are on the wire), and each gets its own answer or error, as the smtp import would give it.
// It returns when every message has its outcome.
func SMTPBatch(m Mailer) runtime.HostFunc {
	return func(ctx context.Context, b []byte, w *wire.Writer) error {
		req, err := wire.DecodeSMTPBatchRequest(b)
		if err != nil {
			return errMalformed("smtp_batch", err)
		}
		out := wire.SMTPBatchAnswer{Items: make([]wire.SMTPBatchItem, len(req.Messages))}
		var wg sync.WaitGroup
		senders := make(chan struct{}, maxBatchSenders)
		for i := range req.Messages {
			senders <- struct{}{}
			wg.Go(func() {
				defer func() { <-senders }()
				a, err := send(ctx, m, req.Messages[i])
				if err != nil {
					out.Items[i].Error = errorText(err)
					return
				}
				out.Items[i].Answer = a
			})
		}
		wg.Wait()
		out.Encode(w)
		return nil
	}
}

// maxBatchSenders bounds the goroutines a batch uses: more than any relay's pool of connections (the pool makes
// the rest wait anyway), far fewer than a batch's 1000 messages.
const maxBatchSenders = 32

// send hands one message to m.
func send(ctx context.Context, m Mailer, req wire.SMTPRequest) (wire.SMTPAnswer, error) {
	if len(req.To) == 0 {
		return wire.SMTPAnswer{}, errors.New("smtp 501 the message has no recipient")
	}
	reply, err := m.Send(ctx, req.From, req.To, req.Data)
	if err != nil {
		return wire.SMTPAnswer{}, err
	}
	a := wire.SMTPAnswer{Code: uint32(reply.Code), Message: reply.Message}
	for _, rj := range reply.Rejected {
		a.Rejected = append(a.Rejected, wire.SMTPRejection{Recipient: rj.Recipient, Code: uint32(rj.Code), Message: rj.Message})
	}
	return a, nil
}

// maxItemError caps the error text of one message of a batch.
const maxItemError = 1 << 10

// errorText is err as a batch item's error: never empty, at most maxItemError bytes of valid UTF-8.
func errorText(err error) string {
	s := err.Error()
	if len(s) > maxItemError {
		s = strings.ToValidUTF8(s[:maxItemError], "")
	}
	if s == "" {
		s = "smtp failed"
	}
	return s
}
