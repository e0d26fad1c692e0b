package campaigns

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"regexp"
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

// hrefPattern finds the http(s) links of an HTML body: href="..." or href='...'.
var hrefPattern = regexp.MustCompile(`(?i)(<a\s[^>]*?href\s*=\s*)("https?://[^"]*"|'https?://[^']*')`)

// trackHTML rewrites an HTML body's http(s) links into tracked clicks and adds the open pixel (before </body>, or
// at the end). Links marked data-crosscast-notrack, and the unsubscribe link, are left as they are.
func (l *Links) trackHTML(ws, msgID, html string) string {
	unsubscribe := l.Unsubscribe(ws, msgID)
	out := hrefPattern.ReplaceAllStringFunc(html, func(tag string) string {
		m := hrefPattern.FindStringSubmatch(tag)
		if strings.Contains(strings.ToLower(m[1]), "data-crosscast-notrack") {
			return tag
		}
		quote := m[2][:1]
		target := htmlUnescape(m[2][1 : len(m[2])-1])
		if target == unsubscribe {
			return tag
		}
		return m[1] + quote + htmlEscape(l.Click(ws, msgID, target)) + quote
	})
	pixel := `<img src="` + htmlEscape(l.Open(ws, msgID)) + `" width="1" height="1" alt="" style="display:block;border:0">`
	if i := strings.LastIndex(strings.ToLower(out), "</body>"); i >= 0 {
		return out[:i] + pixel + out[i:]
	}
	return out + pixel
}

func htmlEscape(s string) string   { return strings.ReplaceAll(s, "&", "&amp;") }
func htmlUnescape(s string) string { return strings.ReplaceAll(s, "&amp;", "&") }
