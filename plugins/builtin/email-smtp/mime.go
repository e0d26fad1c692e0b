package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"slices"
	"strings"

	"github.com/crosscast/crosscast/sdk"
)

// build returns the message as RFC 5322 text with CRLF line ends, and its recipient.
func (c *channel) build(call sdk.Call, m sdk.Message) ([]byte, string, error) {
	to, err := parseAddress(m.To)
	if err != nil {
		return nil, "", fmt.Errorf("to: %q is not an address", m.To)
	}
	from := c.from
	if f := m.Fields.Get("from"); f != "" {
		a, err := mail.ParseAddress(f)
		if err != nil {
			return nil, "", fmt.Errorf("from: %q is not an address", f)
		}
		from = a.String()
	}
	replyTo := c.replyTo
	if r := m.Fields.Get("reply_to"); r != "" {
		a, err := mail.ParseAddress(r)
		if err != nil {
			return nil, "", fmt.Errorf("reply_to: %q is not an address", r)
		}
		replyTo = a.String()
	}
	subject := m.Fields.Get("subject")
	html, text := m.Fields.Get("html"), m.Fields.Get("text")
	if html == "" && text == "" {
		return nil, "", errNoBody
	}
	if pre := m.Fields.Get("preheader"); pre != "" && html != "" {
		html = `<div style="display:none;max-height:0;overflow:hidden;mso-hide:all">` + escapeHTML(pre) + `</div>` + html
	}
	var b bytes.Buffer
	b.Grow(len(html) + len(text) + 1024)
	sum := hash(m.ID)
	header := func(name, value string) {
		b.WriteString(name)
		b.WriteString(": ")
		b.WriteString(value)
		b.WriteString("\r\n")
	}
	header("From", from)
	header("To", to.String())
	if replyTo != "" {
		header("Reply-To", replyTo)
	}
	header("Subject", encodeHeader(subject))
	header("Date", call.Now.UTC().Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	header("Message-ID", "<"+sum[:32]+"@"+c.domain+">")
	header("MIME-Version", "1.0")
	header("X-Crosscast-Message-ID", m.ID)
	if c.events != nil && c.events.tag != nil {
		c.events.tag(header, m.ID)
	}
	for _, h := range m.Headers { // the engine's (List-Unsubscribe)
		if !safeHeader(h.Key, h.Value) {
			return nil, "", fmt.Errorf("header %q: not a header name, or a value with a line break", h.Key)
		}
		header(h.Key, h.Value)
	}
	extra, err := parseHeaders(m.Fields.Get("headers"))
	if err != nil {
		return nil, "", err
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
		boundary := "=_" + sum[:24]
		header("Content-Type", `multipart/alternative; boundary="`+boundary+`"`)
		b.WriteString("\r\n")
		for _, part := range []struct{ typ, body string }{{"text/plain", text}, {"text/html", html}} {
			b.WriteString("--" + boundary + "\r\n")
			b.WriteString("Content-Type: " + part.typ + "; charset=utf-8\r\n")
			writeBody(&b, part.body, func(name, value string) { b.WriteString(name + ": " + value + "\r\n") })
			b.WriteString("\r\n")
		}
		b.WriteString("--" + boundary + "--\r\n")
	case html != "":
		header("Content-Type", "text/html; charset=utf-8")
		writeBody(&b, html, header)
	default:
		header("Content-Type", "text/plain; charset=utf-8")
		writeBody(&b, text, header)
	}
	return b.Bytes(), to.Address, nil
}

// encodeHeader encodes a header value with RFC 2047 when it is not plain ASCII.
func encodeHeader(s string) string {
	s = strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return mime.QEncoding.Encode("utf-8", s)
		}
	}
	return s
}

// writeBody writes a body's Content-Transfer-Encoding header, the blank line, and the body: as it is (7bit, line
// ends made CRLF) when it is ASCII with short lines, the common case and the cheap one; quoted-printable otherwise.
func writeBody(b *bytes.Buffer, body string, header func(name, value string)) {
	if plain7bit(body) {
		header("Content-Transfer-Encoding", "7bit")
		b.WriteString("\r\n")
		for len(body) > 0 {
			i := strings.IndexByte(body, '\n')
			if i < 0 {
				b.WriteString(body)
				break
			}
			b.WriteString(strings.TrimSuffix(body[:i], "\r"))
			b.WriteString("\r\n")
			body = body[i+1:]
		}
		return
	}
	header("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	writeQP(b, body)
}

// plain7bit tells whether body is ASCII without NUL or lone CR, in lines of at most 998 bytes (RFC 5322).
func plain7bit(body string) bool {
	line := 0
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case c >= 0x80 || c == 0:
			return false
		case c == '\r':
			if i+1 >= len(body) || body[i+1] != '\n' {
				return false
			}
		case c == '\n':
			line = 0
			continue
		}
		if line++; line > 998 {
			return false
		}
	}
	return true
}

// parseAddress reads an address: a plain one (what the host gives for contacts) without the cost of a full
// parse, anything else with net/mail.
func parseAddress(s string) (*mail.Address, error) {
	at := strings.IndexByte(s, '@')
	if at > 0 && at < len(s)-1 && !strings.ContainsAny(s, " <>\"()[],;:\\\r\n\t") && strings.Count(s, "@") == 1 {
		return &mail.Address{Address: s}, nil
	}
	return mail.ParseAddress(s)
}

// writeQP writes body quoted-printable, with CRLF line ends.
func writeQP(b *bytes.Buffer, body string) {
	body = strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\r", "\n")
	w := quotedprintable.NewWriter(b)
	lines := strings.Split(body, "\n")
	for i, line := range lines {
		_, _ = w.Write([]byte(line))
		if i < len(lines)-1 {
			_, _ = w.Write([]byte("\r\n"))
		}
	}
	_ = w.Close()
}

// messageID is the Message-ID of a message: its host id, hashed (ids hold dots and may be long), at domain.
func messageID(id, domain string) string { return "<" + hash(id)[:32] + "@" + domain + ">" }

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
}

// checkHeader checks an extra header and encodes its value (RFC 2047 when it is not ASCII).
func checkHeader(name, value string) (extraHeader, error) {
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	switch {
	case !safeHeader(name, value):
		return extraHeader{}, fmt.Errorf("%q: not a header name, or a value with a line break", name)
	case reservedHeaders[strings.ToLower(name)]:
		return extraHeader{}, fmt.Errorf("%q: the channel writes this header itself (use the campaign's fields, or the channel's config)", name)
	case strings.HasPrefix(strings.ToLower(name), "content-"):
		return extraHeader{}, fmt.Errorf("%q: the channel writes the Content-* headers itself", name)
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
	if name == "" || strings.ContainsAny(value, "\r\n") {
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
