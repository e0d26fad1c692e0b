package sdk

import (
	"errors"
	"fmt"
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
	r, err := callCapability(capSMTP, callSMTP, msg.Encode)
	if err != nil {
		return SMTPReply{}, smtpError(err.Error())
	}
	return wire.DecodeSMTPAnswer(r)
}

func smtpError(text string) *SMTPError {
	return &SMTPError{Permanent: strings.HasPrefix(text, "smtp 5"), Message: text}
}

// SMTPOutcome is what became of one message of SendMails: Reply and Err as SendMail returns them.
type SMTPOutcome struct {
	Reply SMTPReply
	Err   error
}

// MaxSendMails is the most messages one SendMails call takes.
const MaxSendMails = wire.MaxSMTPBatch

// SendMails hands several messages to the relay in one call: the host sends them at the same time over its pool
// of connections, where SendMail waits for each message before the next. The outcomes are in the order of msgs,
// each as SendMail would have returned it. The error is for the call as a whole (the capability is not granted,
// more than MaxSendMails messages); then no message was sent.
func SendMails(msgs []SMTPMessage) ([]SMTPOutcome, error) {
	if len(msgs) > MaxSendMails {
		return nil, fmt.Errorf("smtp: %d messages in one call, over the limit of %d", len(msgs), MaxSendMails)
	}
	batch := wire.SMTPBatchRequest{Messages: msgs}
	r, err := callCapability(capSMTPBatch, callSMTPBatch, batch.Encode)
	if err != nil {
		return nil, err
	}
	a, err := wire.DecodeSMTPBatchAnswer(r)
	if err != nil {
		return nil, err
	}
	if len(a.Items) != len(msgs) {
		return nil, fmt.Errorf("smtp: %d answers for %d messages", len(a.Items), len(msgs))
	}
	out := make([]SMTPOutcome, len(msgs))
	for i, it := range a.Items {
		if it.Error != "" {
			out[i].Err = smtpError(it.Error)
			continue
		}
		out[i].Reply = it.Answer
	}
	return out, nil
}

// IsPermanent reports whether err is an SMTP refusal that retrying will not fix.
func IsPermanent(err error) bool {
	var se *SMTPError
	return errors.As(err, &se) && se.Permanent
}
