package campaigns

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"strings"
)

// Links are the signed URLs a message carries on server.public_url: its unsubscribe link (a preference page, and
// RFC 8058's one-click POST), its open pixel, and its tracked clicks. Each names the workspace and the message and
// ends with an HMAC-SHA256 of them (and, for a click, of the target URL) under the server's link key, so a link
// cannot be forged for another message, and a click link cannot send a browser anywhere it was not written to go:
// no open redirect.
//
//	{public_url}/u/{workspace}/{message id}/{sig}          unsubscribe: GET the page, POST to unsubscribe
//	{public_url}/o/{workspace}/{message id}/{sig}.gif      open pixel
//	{public_url}/c/{workspace}/{message id}/{sig}?u={url}  click, redirected to url
type Links struct {
	key  []byte
	base string
}

// NewLinks returns the links of a server reached at base (server.public_url) signing with key.
func NewLinks(base string, key []byte) *Links {
	return &Links{key: key, base: strings.TrimRight(base, "/")}
}

// Link kinds, as the first path segment.
const (
	LinkUnsubscribe = "u"
	LinkOpen        = "o"
	LinkClick       = "c"
)

// sigLen is the signature's length in the URL: 16 bytes of the HMAC, base64url.
const sigLen = 22

func (l *Links) sign(kind, ws, msgID, target string) string {
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(ws))
	m.Write([]byte{0})
	m.Write([]byte(msgID))
	m.Write([]byte{0})
	m.Write([]byte(target))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// Unsubscribe is a message's unsubscribe link.
func (l *Links) Unsubscribe(ws, msgID string) string {
	return l.base + "/u/" + ws + "/" + msgID + "/" + l.sign(LinkUnsubscribe, ws, msgID, "")
}

// Open is a message's open pixel.
func (l *Links) Open(ws, msgID string) string {
	return l.base + "/o/" + ws + "/" + msgID + "/" + l.sign(LinkOpen, ws, msgID, "") + ".gif"
}

// Click is a message's tracked link to target.
func (l *Links) Click(ws, msgID, target string) string {
	return l.base + "/c/" + ws + "/" + msgID + "/" + l.sign(LinkClick, ws, msgID, target) + "?u=" + url.QueryEscape(target)
}

// Verify checks a link's signature (target: a click's URL, "" otherwise).
func (l *Links) Verify(kind, ws, msgID, sig, target string) bool {
	if len(sig) != sigLen {
		return false
	}
	return hmac.Equal([]byte(sig), []byte(l.sign(kind, ws, msgID, target)))
}

// linkAt reads the http(s) link of the <a> tag starting at html[i] ('<'): the tag's first href="..." or href='...'
// (before the tag's ">") whose value starts with http:// or https://, in any case. It returns where the quoted value
// starts and ends (quotes included); ok is false when the tag has none. It is what the pattern
// (?i)(<a\s[^>]*?href\s*=\s*)("https?://[^"]*"|'https?://[^']*') matches at i (a test holds it to that), without
// a regular expression: one over every byte of a 20 KB newsletter took 2-3 ms a message.
func linkAt(html string, i int) (start, end int, ok bool) {
	if i+2 >= len(html) || html[i+1]|0x20 != 'a' || !isSpace(html[i+2]) {
		return 0, 0, false
	}
	tagEnd := len(html)
	if j := strings.IndexByte(html[i:], '>'); j >= 0 {
		tagEnd = i + j
	}
	for k := i + 3; k+4 <= tagEnd; k++ {
		if html[k]|0x20 != 'h' || !strings.EqualFold(html[k:k+4], "href") {
			continue
		}
		p := skipSpace(html, k+4)
		if p >= len(html) || html[p] != '=' {
			continue
		}
		p = skipSpace(html, p+1)
		if p >= len(html) || html[p] != '"' && html[p] != '\'' {
			continue
		}
		rest := html[p+1:]
		if !hasPrefixFold(rest, "http://") && !hasPrefixFold(rest, "https://") {
			continue
		}
		if q := strings.IndexByte(rest, html[p]); q >= 0 {
			return p, p + 1 + q + 1, true
		}
	}
	return 0, 0, false
}

// isSpace is \s of Go's regular expressions: tab, line feed, form feed, carriage return, space.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' }

func skipSpace(s string, i int) int {
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return i
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// trackHTML rewrites an HTML body's http(s) links into tracked clicks and adds the open pixel (before </body>, or
// at the end). Links marked data-crosscast-notrack, and the unsubscribe link, are left as they are.
func (l *Links) trackHTML(ws, msgID, html string) string {
	unsubscribe := l.Unsubscribe(ws, msgID)
	var out strings.Builder
	out.Grow(len(html) + len(html)/8 + 256)
	done := 0 // html[:done] is written
	for i := 0; ; {
		j := strings.IndexByte(html[i:], '<')
		if j < 0 {
			break
		}
		i += j
		start, end, ok := linkAt(html, i)
		if !ok {
			i++
			continue
		}
		prefix, value := html[i:start], html[start:end]
		target := htmlUnescape(value[1 : len(value)-1])
		if !strings.Contains(strings.ToLower(prefix), "data-crosscast-notrack") && target != unsubscribe {
			out.WriteString(html[done:i])
			out.WriteString(prefix)
			out.WriteString(value[:1])
			out.WriteString(htmlEscape(l.Click(ws, msgID, target)))
			out.WriteString(value[:1])
			done = end
		}
		i = end
	}
	out.WriteString(html[done:])
	body := out.String()
	pixel := `<img src="` + htmlEscape(l.Open(ws, msgID)) + `" width="1" height="1" alt="" style="display:block;border:0">`
	if i := lastTagFold(body, "</body>"); i >= 0 {
		return body[:i] + pixel + body[i:]
	}
	return body + pixel
}

// lastTagFold is the index of the last tag in text, ignoring ASCII case; -1 if none. tag starts with "<".
func lastTagFold(text, tag string) int {
	for i := len(text) - len(tag); i >= 0; i-- {
		if j := strings.LastIndexByte(text[:i+1], '<'); j < 0 {
			return -1
		} else if i = j; strings.EqualFold(text[i:i+len(tag)], tag) {
			return i
		}
	}
	return -1
}

func htmlEscape(s string) string   { return strings.ReplaceAll(s, "&", "&amp;") }
func htmlUnescape(s string) string { return strings.ReplaceAll(s, "&amp;", "&") }
