package main

import (
	"io"
	"math/rand/v2"
	"mime/quotedprintable"
	"strings"
	"testing"
)

// crlf is s with every line break (LF or CRLF) made CRLF: what a body becomes on the wire.
func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

// randomBody mixes what bodies hold: words, spaces and tabs before line breaks, both line ends, "=", control bytes,
// UTF-8, and long lines.
func randomBody(r *rand.Rand) string {
	pieces := []string{"word", " ", "\t", "\n", "\r\n", "=", "==3D", "é", "✓", "\x00", "\r", "\x7f", "\xff",
		strings.Repeat("x", 70), strings.Repeat("ab ", 40), "<a href=\"https://x.example/?a=1&b=2\">", "12345678"}
	var b strings.Builder
	for n := r.IntN(60); n > 0; n-- {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	return b.String()
}

func TestQuotedPrintableRoundTrips(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	cases := []string{"", "plain", "ends with space ", "ends with tab\t", "space before break \nnext", "tab\t\r\nnext",
		"lone\rcr", "a=b", strings.Repeat("é", 100), strings.Repeat("y", 300), strings.Repeat("x", 74) + "=", "\t"}
	for range 5000 {
		cases = append(cases, randomBody(r))
	}
	for _, body := range cases {
		enc := string(appendQP(nil, body))
		for _, line := range strings.Split(enc, "\r\n") {
			if len(line) > maxLineQP {
				t.Fatalf("%q: encoded line of %d characters: %q", body, len(line), line)
			}
			if strings.HasSuffix(line, " ") || strings.HasSuffix(line, "\t") {
				t.Fatalf("%q: encoded line ends with white space: %q", body, line)
			}
			if strings.ContainsAny(line, "\r\n") {
				t.Fatalf("%q: a bare CR or LF in %q", body, enc)
			}
			for i := 0; i < len(line); i++ {
				if c := line[i]; c >= 0x7f || c < ' ' && c != '\t' {
					t.Fatalf("%q: byte %#x left unencoded in %q", body, c, line)
				}
			}
		}
		dec, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(enc)))
		if err != nil {
			t.Fatalf("%q: %v\n%s", body, err, enc)
		}
		if want := crlf(body); string(dec) != want {
			t.Fatalf("%q: decoded %q, want %q (encoded %q)", body, dec, want, enc)
		}
	}
}

func TestSevenBit(t *testing.T) {
	for _, tt := range []struct {
		body string
		ok   bool
	}{
		{"", true},
		{"Hello\nworld\r\nagain\n", true},
		{strings.Repeat("12345678", 124) + "123456", true}, // 998 bytes
		{strings.Repeat("12345678", 124) + "1234567", false},
		{strings.Repeat("a", 990) + "\n" + strings.Repeat("b", 990), true},
		{"café", false},
		{"nul\x00", false},
		{"lone\rcr", false},
		{"ends\r", false},
	} {
		out, ok := append7bit([]byte("prefix:"), tt.body)
		if ok != tt.ok || ok && string(out) != "prefix:"+crlf(tt.body) {
			t.Errorf("%.40q: %v %.40q, want %v", tt.body, ok, out, tt.ok)
		}
	}
	r := rand.New(rand.NewPCG(3, 5))
	for range 5000 {
		body := randomBody(r)
		out, ok := append7bit(nil, body)
		want := true
		for _, line := range strings.Split(crlf(body), "\r\n") {
			if len(line) > maxLine7bit || strings.ContainsAny(line, "\x00\r\n") || strings.ContainsFunc(line, func(c rune) bool { return c >= 0x80 }) {
				want = false
			}
		}
		if ok != want || ok && string(out) != crlf(body) {
			t.Fatalf("%q: %v %q, want %v", body, ok, out, want)
		}
	}
}

// A 20 KB newsletter, ASCII and not: run natively these say little about the guest (see docs/benchmarks.md), but
// they catch a return to byte-at-a-time work.
func BenchmarkBodies(b *testing.B) {
	ascii := strings.Repeat("<tr><td style=\"padding:8px;font-family:Arial\">Spring sale: 20% off everything</td></tr>\n", 220)
	french := strings.Repeat("<tr><td style=\"padding:8px\">Soldes de printemps : -20 % sur tout, été compris</td></tr>\n", 220)
	var out []byte
	b.Run("7bit", func(b *testing.B) {
		b.SetBytes(int64(len(ascii)))
		for b.Loop() {
			out, _ = append7bit(out[:0], ascii)
		}
	})
	b.Run("quoted-printable", func(b *testing.B) {
		b.SetBytes(int64(len(french)))
		for b.Loop() {
			out = appendQP(out[:0], french)
		}
	})
}
