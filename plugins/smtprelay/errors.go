package smtprelay

import (
	"errors"
	"strconv"
)

// ErrClosed is the cause of the *Error that Send returns once Close has been called: errors.Is(err, ErrClosed).
var ErrClosed = errors.New("relay closed")

// Reply is the relay's answer to the end of DATA when it accepted the message, with the recipients it refused at
// RCPT TO (the message was delivered to the others).
type Reply struct {
	// Code is the reply code, 250 in practice.
	Code int
	// Message is the text of the reply, multi-line replies joined with spaces ("2.0.0 Ok: queued as 4F1A2").
	Message string
	// Rejected lists the recipients the relay refused, in the order given to Send.
	Rejected []Rejection
}

// Rejection is one recipient the relay refused at RCPT TO.
type Rejection struct {
	Recipient string
	Code      int
	Message   string
}

// Error is a refusal of the whole message, or a failure to reach the relay.
//
// Code is the relay's reply code (4xx or 5xx) when it replied, or 0 for a transport failure (connect, TLS,
// timeout, a malformed reply, a cancelled ctx). Some refusals are made by this package before anything is sent,
// with the codes a relay would use: 501 for an address that could inject commands, 552 for a message over the
// relay's SIZE, 553 for a non-ASCII address the relay cannot take.
type Error struct {
	Code    int
	Message string

	cause error
}

// Error renders "smtp CODE MESSAGE" ("smtp 550 5.1.1 <x@example.com>: user unknown") when the relay replied, and
// "smtp: MESSAGE" for transport failures. Callers across the wasm boundary rely on these prefixes.
func (e *Error) Error() string {
	if e.Code == 0 {
		return "smtp: " + e.Message
	}
	return "smtp " + strconv.Itoa(e.Code) + " " + e.Message
}

// Temporary reports whether sending the same message later may succeed: a 4xx reply or a transport failure.
func (e *Error) Temporary() bool {
	return e.Code == 0 || e.Code/100 == 4
}

// Unwrap returns the underlying cause of a transport failure (a net error, context.Canceled,
// context.DeadlineExceeded, ErrClosed), or nil.
func (e *Error) Unwrap() error { return e.cause }

// replyError is the *Error for a refusal reply.
func replyError(code int, msg string) *Error {
	return &Error{Code: code, Message: msg}
}
