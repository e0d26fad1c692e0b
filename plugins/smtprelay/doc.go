// Package smtprelay is the host-owned SMTP client behind the plugins' smtp capability: a plugin hands over an
// envelope and an RFC 5322 message, and this package delivers it to the relay the operator configured.
//
// It owns the connections to one relay (a bounded pool, reused with RSET, closed when idle, retried once when a
// reused connection turns out dead), TLS (STARTTLS required by default, implicit TLS, or plain for a local relay),
// authentication (AUTH PLAIN, or LOGIN when only that is offered, never in clear text except to loopback),
// PIPELINING (RFC 2920), SIZE (RFC 1870), 8BITMIME and SMTPUTF8, and the hygiene an untrusted caller needs:
// addresses that could inject commands are refused before any network activity, and message data is sent with
// bare CR and LF normalised to CRLF and leading dots stuffed, so that no data can end the DATA phase early.
//
// The client is written on net/textproto rather than net/smtp, which cannot pipeline. Every read and write has a
// deadline of min(ctx deadline, now+Config.Timeout), and cancelling the ctx of a Send closes its connection.
//
// It must import only the standard library and go-hclog: never wazero, fiber, core/... or other plugins/...
// packages. The wasm host function in plugins/ adapts it to the capability.
package smtprelay
