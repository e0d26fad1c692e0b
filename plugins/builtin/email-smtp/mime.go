package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"

	"github.com/crosscast/crosscast/sdk"
)

// build returns the message as RFC 5322 text with CRLF line ends, and its recipient.
func (c *channel) build(call sdk.Call, m sdk.Message) ([]byte, string, error) {
	to, err := mail.ParseAddress(m.To)
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
	header("Message-ID", messageID(m.ID, c.domain))
	header("MIME-Version", "1.0")
	header("X-Crosscast-Message-ID", m.ID)
	for _, h := range m.Headers {
		if !safeHeader(h.Key, h.Value) {
			return nil, "", fmt.Errorf("header %q: not a header name, or a value with a line break", h.Key)
		}
		header(h.Key, h.Value)
	}
	switch {
	case html != "" && text != "":
		boundary := "=_" + hash(m.ID)[:24]
		header("Content-Type", `multipart/alternative; boundary="`+boundary+`"`)
		b.WriteString("\r\n")
		for _, part := range []struct{ typ, body string }{{"text/plain", text}, {"text/html", html}} {
			b.WriteString("--" + boundary + "\r\n")
			b.WriteString("Content-Type: " + part.typ + "; charset=utf-8\r\n")
			b.WriteString("Content-Transfer-Encoding: quoted-printable\r\n\r\n")
			writeQP(&b, part.body)
			b.WriteString("\r\n")
		}
		b.WriteString("--" + boundary + "--\r\n")
	case html != "":
		header("Content-Type", "text/html; charset=utf-8")
		header("Content-Transfer-Encoding", "quoted-printable")
		b.WriteString("\r\n")
		writeQP(&b, html)
	default:
		header("Content-Type", "text/plain; charset=utf-8")
		header("Content-Transfer-Encoding", "quoted-printable")
		b.WriteString("\r\n")
		writeQP(&b, text)
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
