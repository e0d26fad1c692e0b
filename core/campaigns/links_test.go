package campaigns

import (
	"math/rand/v2"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

func TestLinksAreSignedForOneMessage(t *testing.T) {
	l := NewLinks("https://cc.example.com/", []byte("0123456789abcdef0123456789abcdef"))
	other := NewLinks("https://cc.example.com", []byte("another key, another server......"))
	msg := "cmp_01m824qepjsazfbkb1zv5tyx1a.1.01m824qekv0zwg7h8k772gvv3a.0"
	parts := func(link string) (kind, ws, id, sig, target string) {
		u, err := url.Parse(link)
		if err != nil {
			t.Fatal(err)
		}
		p := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
		return p[0], p[1], p[2], strings.TrimSuffix(p[3], ".gif"), u.Query().Get("u")
	}
	for _, link := range []string{l.Unsubscribe("acme", msg), l.Open("acme", msg), l.Click("acme", msg, "https://shop.example.com/p?id=1&x=2")} {
		if !strings.HasPrefix(link, "https://cc.example.com/") {
			t.Fatalf("link %s not on the public URL", link)
		}
		kind, ws, id, sig, target := parts(link)
		if !l.Verify(kind, ws, id, sig, target) {
			t.Fatalf("%s does not verify", link)
		}
		for name, bad := range map[string]func() bool{
			"another workspace": func() bool { return l.Verify(kind, "globex", id, sig, target) },
			"another message":   func() bool { return l.Verify(kind, ws, strings.Replace(id, ".0", ".1", 1), sig, target) },
			"another kind": func() bool {
				return l.Verify(map[string]string{"u": "o", "o": "c", "c": "u"}[kind], ws, id, sig, target)
			},
			"another target":  func() bool { return l.Verify(kind, ws, id, sig, "https://evil.example.com/") },
			"another key":     func() bool { return other.Verify(kind, ws, id, sig, target) },
			"a cut signature": func() bool { return l.Verify(kind, ws, id, sig[:len(sig)-1], target) },
		} {
			if kind != LinkClick && name == "another target" {
				continue
			}
			if bad() {
				t.Errorf("%s: %s verifies", link, name)
			}
		}
	}
}

func TestTrackHTML(t *testing.T) {
	l := NewLinks("https://cc.example.com", []byte("0123456789abcdef0123456789abcdef"))
	msg := "cmp_01m824qepjsazfbkb1zv5tyx1a.1.01m824qekv0zwg7h8k772gvv3a.0"
	unsub := l.Unsubscribe("acme", msg)
	html := `<html><body><a href="https://shop.example.com/?a=1&amp;b=2">Shop</a> <A class="x" HREF='http://blog.example.com/'>Blog</A>
<a href="mailto:hi@example.com">Mail</a> <a data-crosscast-notrack href="https://keep.example.com/">Keep</a>
<a href="` + unsub + `">Unsubscribe</a></body></html>`
	out := l.trackHTML("acme", msg, html)
	for _, want := range []string{
		`href="` + htmlEscape(l.Click("acme", msg, "https://shop.example.com/?a=1&b=2")) + `"`,
		`HREF='` + htmlEscape(l.Click("acme", msg, "http://blog.example.com/")) + `'`,
		`href="mailto:hi@example.com"`,
		`href="https://keep.example.com/"`,
		`href="` + unsub + `"`,
		`<img src="` + l.Open("acme", msg) + `" width="1" height="1" alt="" style="display:block;border:0"></body>`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s in\n%s", want, out)
		}
	}
	if got := l.trackHTML("acme", msg, "<p>no body tag</p>"); !strings.HasSuffix(got, `style="display:block;border:0">`) {
		t.Errorf("pixel not appended: %s", got)
	}
}

// BenchmarkTrackHTML rewrites the links of a 20 KB newsletter (40 links) for one message.
//
//	go test -run '^$' -bench BenchmarkTrackHTML ./core/campaigns/
func BenchmarkTrackHTML(b *testing.B) {
	l := NewLinks("https://cc.example.com", []byte("0123456789abcdef0123456789abcdef"))
	msg := "cmp_01m824qepjsazfbkb1zv5tyx1a.1.01m824qekv0zwg7h8k772gvv3a.0"
	row := `<tr><td style="padding:8px;font-family:Arial,sans-serif;color:#333">Spring sale: 20% off <a href="https://shop.example.com/p/123?utm_source=news">everything</a></td></tr>` + "\n"
	html := "<html><body><table>\n" + strings.Repeat(row, 20<<10/len(row)) + "</table></body></html>"
	b.SetBytes(int64(len(html)))
	for b.Loop() {
		_ = l.trackHTML("acme", msg, html)
	}
}

// linkAt matches what the regular expression it replaced matched, on random markup.
func TestLinkAtMatchesThePattern(t *testing.T) {
	pattern := regexp.MustCompile(`^(?i)(<a\s[^>]*?href\s*=\s*)("https?://[^"]*"|'https?://[^']*')`)
	pieces := []string{"<a", "<A", " ", "\n", "\t", "href", "HREF", "hRef", "=", " = ", `"`, "'", "http://", "HTTPS://",
		"https:/", "mailto:x", ">", "x", "data-crosscast-notrack", "class=\"b\"", "<p>", "&amp;", "é"}
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 200000; n++ {
		var b strings.Builder
		b.WriteString("<a")
		for k := r.IntN(12); k > 0; k-- {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		html := b.String()
		start, end, ok := linkAt(html, 0)
		m := pattern.FindStringSubmatchIndex(html)
		if ok != (m != nil) || ok && (start != m[4] || end != m[5]) {
			t.Fatalf("%q: linkAt %d %d %v, pattern %v", html, start, end, ok, m)
		}
	}
}

func TestLastTagFold(t *testing.T) {
	for _, tt := range []struct {
		text string
		want int
	}{{"<p></BODY></html>", 3}, {"</body></body>", 7}, {"no tag", -1}, {"</bod", -1}, {"<", -1}, {"</body", -1}} {
		if got := lastTagFold(tt.text, "</body>"); got != tt.want {
			t.Errorf("%q: %d, want %d", tt.text, got, tt.want)
		}
	}
}
