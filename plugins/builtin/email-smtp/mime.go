package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"mime"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/crosscast/crosscast/sdk"
)

// build appends the message to dst as RFC 5322 text with CRLF line ends, and returns dst extended and the
// recipient. On an error dst is returned as it was given, the message's bytes (if any) past its length.
func (c *channel) build(dst []byte, call sdk.Call, m sdk.Message) ([]byte, string, error) {
	to, err := parseAddress(m.To)
	if err != nil {
		return dst, "", fmt.Errorf("to: %q is not an address", m.To)
	}
	from := c.from
	if f := m.Fields.Get("from"); f != "" {
		a, err := mail.ParseAddress(f)
		if err != nil {
			return dst, "", fmt.Errorf("from: %q is not an address", f)
		}
		from = a.String()
	}
	replyTo := c.replyTo
	if r := m.Fields.Get("reply_to"); r != "" {
		a, err := mail.ParseAddress(r)
		if err != nil {
			return dst, "", fmt.Errorf("reply_to: %q is not an address", r)
		}
		replyTo = a.String()
	}
	subject := m.Fields.Get("subject")
	html, text := m.Fields.Get("html"), m.Fields.Get("text")
	if html == "" && text == "" {
		return dst, "", errNoBody
	}
	if pre := m.Fields.Get("preheader"); pre != "" && html != "" {
		html = `<div style="display:none;max-height:0;overflow:hidden;mso-hide:all">` + escapeHTML(pre) + `</div>` + html
	}
	for _, h := range m.Headers { // the engine's (List-Unsubscribe)
		if !safeHeader(h.Key, h.Value) {
			return dst, "", fmt.Errorf("header %q: not a header name, or a value with a line break", h.Key)
		}
	}
	extra, err := parseHeaders(m.Fields.Get("headers"))
	if err != nil {
		return dst, "", err
	}
	b := slices.Grow(dst, messageSize(html, text))
	header := func(name, value string) {
		b = append(b, name...)
		b = append(b, ": "...)
		b = append(b, value...)
		b = append(b, "\r\n"...)
	}
	header("From", from)
	header("To", to.String())
	if replyTo != "" {
		header("Reply-To", replyTo)
	}
	header("Subject", encodeHeader(subject))
	header("Date", c.date(call.Now))
	header("Message-ID", messageID(m.ID, c.domain))
	header("MIME-Version", "1.0")
	header("X-Crosscast-Message-ID", m.ID)
	if c.events != nil && c.events.tag != nil {
		c.events.tag(header, m.ID)
	}
	for _, h := range m.Headers {
		header(h.Key, h.Value)
	}
	for _, h := range c.headers {
		if !slices.ContainsFunc(extra, func(e extraHeader) bool { return strings.EqualFold(e.name, h.name) }) {
			header(h.name, h.value)
		}
	}
	for _, h := range extra {
		header(h.name, h.value)
	}
	switch {
	case html != "" && text != "":
		boundary := newBoundary()
		header("Content-Type", `multipart/alternative; boundary="`+boundary+`"`)
		b = append(b, "\r\n"...)
		for _, part := range [...]struct{ typ, body string }{{"text/plain", text}, {"text/html", html}} {
			b = append(b, "--"...)
			b = append(b, boundary...)
			b = append(b, "\r\nContent-Type: "...)
			b = append(b, part.typ...)
			b = append(b, "; charset=utf-8\r\n"...)
			b = appendBody(b, part.body)
			b = append(b, "\r\n"...)
		}
		b = append(b, "--"...)
		b = append(b, boundary...)
		b = append(b, "--\r\n"...)
	case html != "":
		header("Content-Type", "text/html; charset=utf-8")
		b = appendBody(b, html)
	default:
		header("Content-Type", "text/plain; charset=utf-8")
		b = appendBody(b, text)
	}
	return b, to.Address, nil
}

// newBoundary is a MIME boundary no body can foresee: "=_" (which quoted-printable never writes) and 96 random
// bits. A 7bit body is copied as it is, so a boundary derived from the message id (which rides in a header) could
// be planted in a contact's attribute to break the message's structure.
func newBoundary() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "=_" + hex.EncodeToString(b[:])
}

// messageSize is about what a message with these bodies takes: the bodies, their line breaks made CRLF, and the
// headers. Quoted-printable needs more, and gets it as it goes.
func messageSize(html, text string) int {
	return len(html) + len(text) + (len(html)+len(text))/32 + 1024
}

// appendBody appends a part's Content-Transfer-Encoding header, the blank line, and its body: as it is (7bit, line
// ends made CRLF) when it is ASCII with short lines, the common case and the cheap one; quoted-printable otherwise.
func appendBody(b []byte, body string) []byte {
	mark := len(b)
	b = append(b, "Content-Transfer-Encoding: 7bit\r\n\r\n"...)
	if out, ok := append7bit(b, body); ok {
		return out
	}
	b = append(b[:mark], "Content-Transfer-Encoding: quoted-printable\r\n\r\n"...)
	return appendQP(b, body)
}

// encodeHeader encodes a header value with RFC 2047 when it is not plain ASCII.
func encodeHeader(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 0x80:
			ascii = false
		case c == '\r' || c == '\n':
			s = lineBreaks.Replace(s)
		}
	}
	if ascii {
		return s
	}
	return mime.QEncoding.Encode("utf-8", s)
}

// lineBreaks makes a header value one line.
var lineBreaks = strings.NewReplacer("\r", " ", "\n", " ")

// parseAddress reads an address: a plain one (what the host gives for contacts) without the cost of a full
// parse, anything else with net/mail.
func parseAddress(s string) (*mail.Address, error) {
	at := strings.IndexByte(s, '@')
	if at > 0 && at < len(s)-1 && !strings.ContainsAny(s, " <>\"()[],;:\\\r\n\t") && strings.Count(s, "@") == 1 {
		return &mail.Address{Address: s}, nil
	}
	return mail.ParseAddress(s)
}

// messageID is the Message-ID of a message: its token at domain.
func messageID(id, domain string) string { return "<" + token(id) + "@" + domain + ">" }

// token is a message's host id as it can appear in a Message-ID: the id itself when it is a dot-atom of letters,
// digits, "_", "-" and "." of at most 68 bytes (the campaign engine's ids are), its hash otherwise. Hashing every
// id cost the guest 24 us a message.
func token(id string) string {
	if len(id) == 0 || len(id) > 68 || id[0] == '.' || id[len(id)-1] == '.' {
		return hash(id)[:32]
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		case c == '.' && id[i-1] != '.':
		default:
			return hash(id)[:32]
		}
	}
	return id
}

// date is the Date header of messages sent at now, formatted once per instant (a batch shares its call's).
func (c *channel) date(now time.Time) string {
	if !now.Equal(c.dateAt) || c.dateText == "" {
		c.dateAt, c.dateText = now, now.UTC().Format("Mon, 02 Jan 2006 15:04:05 -0700")
	}
	return c.dateText
}

func hash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// extraHeader is an extra header: configured, or from a campaign's headers field.
type extraHeader struct{ name, value string }

// reservedHeaders are written by the channel, or by the relay: an extra header may not repeat or replace them.
var reservedHeaders = map[string]bool{
	"from": true, "to": true, "cc": true, "bcc": true, "subject": true, "date": true, "message-id": true,
	"reply-to": true, "sender": true, "return-path": true, "received": true, "mime-version": true,
	"content-type": true, "content-transfer-encoding": true, "list-unsubscribe": true, "list-unsubscribe-post": true,
	"dkim-signature": true, "x-crosscast-message-id": true,
	// The event providers' control headers (the channel writes them for events; X-SMTPAPI can even add recipients).
	"x-smtpapi": true, "x-mailgun-variables": true, "x-ses-message-tags": true, "x-ses-configuration-set": true,
}

// reservedPrefixes are header name prefixes the channel or a provider owns.
var reservedPrefixes = []string{"content-", "x-pm-metadata-", "x-mailgun-", "x-ses-"}

// checkHeader checks an extra header and encodes its value (RFC 2047 when it is not ASCII).
func checkHeader(name, value string) (extraHeader, error) {
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	switch {
	case !safeHeader(name, value):
		return extraHeader{}, fmt.Errorf("%q: not a header name, or a value with a line break", name)
	case reservedHeaders[strings.ToLower(name)] || slices.ContainsFunc(reservedPrefixes, func(p string) bool { return strings.HasPrefix(strings.ToLower(name), p) }):
		return extraHeader{}, fmt.Errorf("%q: the channel, or an email provider, owns this header (use the campaign's fields, or the channel's config)", name)
	case value == "":
		return extraHeader{}, fmt.Errorf("%q: an empty value", name)
	}
	return extraHeader{name: name, value: encodeHeader(value)}, nil
}

// parseHeaders reads a campaign's headers field: one "Name: value" per line; blank lines are skipped.
func parseHeaders(text string) ([]extraHeader, error) {
	if strings.TrimSpace(text) == "" {
		return nil, nil
	}
	var out []extraHeader
	for i, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("headers line %d: %q is not \"Name: value\"", i+1, line)
		}
		h, err := checkHeader(name, value)
		if err != nil {
			return nil, fmt.Errorf("headers line %d: %w", i+1, err)
		}
		out = append(out, h)
	}
	return out, nil
}

// safeHeader refuses header names that are not tokens and values that would start another header.
func safeHeader(name, value string) bool {
	if name == "" || strings.IndexByte(value, '\n') >= 0 || strings.IndexByte(value, '\r') >= 0 {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return true
}

func escapeHTML(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
