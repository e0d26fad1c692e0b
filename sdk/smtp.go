package sdk

import (
	"errors"
	"strings"

	"github.com/crosscast/crosscast/sdk/wire"
)

// The smtp capability's request and answer.
type (
	SMTPMessage   = wire.SMTPRequest
	SMTPReply     = wire.SMTPAnswer
	SMTPRejection = wire.SMTPRejection
)

// SMTPError is a relay's refusal of a whole message, or a failure to reach it.
type SMTPError struct {
	// Permanent is true when the relay answered 5xx: sending the same message again will fail again.
	Permanent bool
	Message   string
}

func (e *SMTPError) Error() string { return e.Message }

// SendMail hands a message to the SMTP relay the operator granted (request "smtp" in Manifest.Capabilities). The
// host owns the connections, TLS, authentication and pipelining. msg.Data is the complete RFC 5322 message with
// CRLF line ends. A nil error means the relay accepted the message for every recipient but those in
// reply.Rejected; an *SMTPError says whether trying again can help.
func SendMail(msg SMTPMessage) (SMTPReply, error) {
	r, err := callCapability(capSMTP, msg.Encode)
	if err != nil {
		return SMTPReply{}, &SMTPError{Permanent: strings.HasPrefix(err.Error(), "smtp 5"), Message: err.Error()}
	}
	return wire.DecodeSMTPAnswer(r)
}

// IsPermanent reports whether err is an SMTP refusal that retrying will not fix.
func IsPermanent(err error) bool {
	var se *SMTPError
	return errors.As(err, &se) && se.Permanent
}
