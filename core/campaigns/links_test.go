package campaigns

import (
	"net/url"
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
