package admin

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"net/url"
	"strconv"
	"strings"

	"github.com/crosscast/crosscast/core/auth"
	"github.com/gofiber/fiber/v2"
)

// static holds the website tag, t.js (docs/tag.md). It is embedded so the single binary serves it.
//
//go:embed static/t.js
var tagFS embed.FS

// tagMaxAge is how long browsers and CDNs may reuse t.js without asking again; after that the ETag makes the check
// a 304. Five minutes bounds how long a fixed tag takes to reach every visitor.
const tagMaxAge = 300

// tagFile is one encoding of t.js with its strong ETag.
type tagFile struct {
	body []byte
	etag string
}

// tagRoutes serves the website tag (GET /t.js, no authentication, any origin) and the per-workspace snippet that
// embeds it (under the authenticated api group).
func (s *Server) tagRoutes(app *fiber.App, api fiber.Router) {
	plain, gz := loadTag()
	app.Get("/t.js", func(c *fiber.Ctx) error { return serveTag(c, plain, gz) })
	api.Get("/workspaces/:id/tracking-snippet", s.trackingSnippet)
}

// loadTag reads the embedded t.js and gzips it once, so that no request pays for compression.
func loadTag() (plain, gz tagFile) {
	body, err := tagFS.ReadFile("static/t.js")
	if err != nil {
		panic("admin: t.js is not embedded: " + err.Error()) // a build defect, caught by every test
	}
	sum := sha256.Sum256(body)
	tag := base64.RawURLEncoding.EncodeToString(sum[:12])
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(body)
	_ = zw.Close()
	return tagFile{body: body, etag: `"` + tag + `"`}, tagFile{body: buf.Bytes(), etag: `"` + tag + `-gz"`}
}

// serveTag answers GET and HEAD /t.js: gzip when the client takes it, 304 when its copy is current.
func serveTag(c *fiber.Ctx, plain, gz tagFile) error {
	f := plain
	if acceptsGzip(c.Get(fiber.HeaderAcceptEncoding)) {
		f = gz
		c.Set(fiber.HeaderContentEncoding, "gzip")
	}
	c.Set(fiber.HeaderContentType, "application/javascript; charset=utf-8")
	c.Set(fiber.HeaderCacheControl, "public, max-age="+strconv.Itoa(tagMaxAge))
	c.Set(fiber.HeaderETag, f.etag)
	c.Set(fiber.HeaderVary, fiber.HeaderAcceptEncoding)
	// A script may be loaded from anywhere anyway; these let pages that isolate themselves (COEP) or fetch the
	// script with CORS (integrity checks with crossorigin) load it too.
	c.Set(fiber.HeaderAccessControlAllowOrigin, "*")
	c.Set("Cross-Origin-Resource-Policy", "cross-origin")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	if etagMatches(c.Get(fiber.HeaderIfNoneMatch), plain.etag, gz.etag) {
		c.Response().Header.Del(fiber.HeaderContentEncoding)
		return c.SendStatus(fiber.StatusNotModified)
	}
	return c.Send(f.body)
}

// acceptsGzip reports whether an Accept-Encoding header takes gzip (and does not refuse it with q=0).
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		if coding = strings.TrimSpace(coding); !strings.EqualFold(coding, "gzip") && coding != "*" {
			continue
		}
		name, value, _ := strings.Cut(strings.TrimSpace(params), "=")
		if q, err := strconv.ParseFloat(strings.TrimSpace(value), 64); strings.TrimSpace(name) == "q" && err == nil && q <= 0 {
			return false
		}
		return true
	}
	return false
}

// etagMatches applies If-None-Match: "*" or any listed tag equal to one of ours (weak comparison, as RFC 9110
// wants for If-None-Match). Both encodings count: they are the same script.
func etagMatches(header string, ours ...string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" {
			return true
		}
		for _, o := range ours {
			if t == o {
				return true
			}
		}
	}
	return false
}

// trackingSnippet is the answer of GET /api/v1/workspaces/{id}/tracking-snippet: how a website embeds the tag.
type trackingSnippet struct {
	// Snippet is the HTML to paste into every page: an inline stub that queues calls and loads t.js async.
	Snippet string `json:"snippet"`
	// ScriptTag is the same without inline code, for pages whose Content-Security-Policy forbids inline scripts
	// (calls made before it loads go through window.crosscast = window.crosscast || []; crosscast.push([...])).
	ScriptTag string `json:"script_tag"`
	// CSPHash is the CSP source that allows the snippet's inline script ('sha256-...').
	CSPHash string `json:"csp_hash"`
	// CSPScriptSrc and CSPConnectSrc are what a page's script-src and connect-src must add for the tag.
	CSPScriptSrc  string `json:"csp_script_src"`
	CSPConnectSrc string `json:"csp_connect_src"`
	WriteKey      string `json:"write_key"`
	ScriptURL     string `json:"script_url"`
}

func (s *Server) trackingSnippet(c *fiber.Ctx) error {
	id, err := s.visibleWorkspace(c, auth.RoleEditor)
	if err != nil {
		return err
	}
	w, err := s.deps.Workspaces.Get(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(buildSnippet(s.publicBase(c), w.WriteKey))
}

// publicBase is the address browsers reach this server at, without a trailing slash: server.public_url, or, for a
// server built without one (tests), the scheme and host the caller used.
func (s *Server) publicBase(c *fiber.Ctx) string {
	if s.opts.PublicURL != "" {
		return strings.TrimRight(s.opts.PublicURL, "/")
	}
	return strings.TrimRight(c.BaseURL(), "/")
}

// snippetCode is the inline stub: window.crosscast becomes an array that records calls until t.js replays them.
// It is plain ES5 so that it never fails where t.js would not load anyway.
const snippetCode = `
!function(w,d,u,k){var c=w.crosscast=w.crosscast||[];if(c.__cc||c.__stub)return;c.__stub=1;
["page","track","identify","alias","group","reset","optOut","optIn","ready"].forEach(function(m){
c[m]=function(){c.push([m].concat([].slice.call(arguments)))}});
var s=d.createElement("script");s.async=true;s.src=u+"/t.js";s.setAttribute("data-write-key",k);
(d.head||d.documentElement).appendChild(s)}(window,document,%s,%s);
`

// buildSnippet fills the snippet for one workspace. Values go in as JSON strings (HTML-escaped by json.Marshal,
// so they cannot end the script element) and as HTML-escaped attributes.
func buildSnippet(base, writeKey string) trackingSnippet {
	script := base + "/t.js"
	u, _ := json.Marshal(base)
	k, _ := json.Marshal(writeKey)
	code := fmt.Sprintf(snippetCode, u, k)
	sum := sha256.Sum256([]byte(code))
	hash := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	origin := base
	if p, err := url.Parse(base); err == nil && p.Scheme != "" && p.Host != "" {
		origin = p.Scheme + "://" + p.Host
	}
	return trackingSnippet{
		Snippet: "<script>" + code + "</script>",
		ScriptTag: `<script async src="` + html.EscapeString(script) + `" data-write-key="` +
			html.EscapeString(writeKey) + `"></script>`,
		CSPHash:       hash,
		CSPScriptSrc:  origin + " " + hash,
		CSPConnectSrc: origin,
		WriteKey:      writeKey,
		ScriptURL:     script,
	}
}
