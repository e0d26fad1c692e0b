package capability

import (
	"context"
	"errors"

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
		if len(req.To) == 0 {
			return errors.New("smtp 501 the message has no recipient")
		}
		reply, err := m.Send(ctx, req.From, req.To, req.Data)
		if err != nil {
			return err
		}
		a := wire.SMTPAnswer{Code: uint32(reply.Code), Message: reply.Message}
		for _, rj := range reply.Rejected {
			a.Rejected = append(a.Rejected, wire.SMTPRejection{Recipient: rj.Recipient, Code: uint32(rj.Code), Message: rj.Message})
		}
		a.Encode(w)
		return nil
	}
}
