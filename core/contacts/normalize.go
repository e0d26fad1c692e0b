package contacts

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// NormalizeEmail trims and lower-cases an address and checks that it is one plain address (no display name, no
// group), at most 254 bytes.
func NormalizeEmail(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return "", fmt.Errorf("email is empty")
	}
	if len(s) > 254 || !utf8.ValidString(s) {
		return "", fmt.Errorf("%q is not a valid email address", clip(s))
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s || !strings.Contains(s[strings.LastIndexByte(s, '@')+1:], ".") {
		return "", fmt.Errorf("%q is not a valid email address", clip(s))
	}
	return s, nil
}

// NormalizePhone returns the E.164 form (+ and 8 to 15 digits, no leading zero) of a phone number written in
// international form: "+33 6 12-34.56 (78)" and "0033612345678" both give "+33612345678". A national number without a
// country code is refused: it cannot be normalised without knowing the country.
func NormalizePhone(s string) (string, error) {
	in := strings.TrimSpace(s)
	var b strings.Builder
	b.Grow(16)
	for i, r := range in {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0:
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')' || r == '\u00a0':
		default:
			return "", fmt.Errorf("%q is not a phone number: only digits, spaces, '-', '.', '(', ')' and a leading '+' are allowed", clip(in))
		}
	}
	digits := b.String()
	switch {
	case strings.HasPrefix(in, "+"):
	case strings.HasPrefix(digits, "00"):
		digits = digits[2:]
	default:
		return "", fmt.Errorf("%q has no country code: write it in international form, such as +33612345678", clip(in))
	}
	if len(digits) < 8 || len(digits) > 15 || digits[0] == '0' {
		return "", fmt.Errorf("%q is not an E.164 number: a country code and 8-15 digits in all", clip(in))
	}
	return "+" + digits, nil
}

var (
	tagPattern     = regexp.MustCompile(`^[\p{L}\p{N}][\p{L}\p{N} _:./-]{0,63}$`)
	channelPattern = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)
	localePattern  = regexp.MustCompile(`^[a-zA-Z]{2,3}(?:[-_][a-zA-Z0-9]{2,8})*$`)
)

// NormalizeTag trims a tag and checks it: 1-64 letters, digits, spaces and _ : . / - starting with a letter or digit.
func NormalizeTag(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !tagPattern.MatchString(s) {
		return "", fmt.Errorf("%q is not a valid tag: use 1-64 letters, digits, spaces or _ : . / -, starting with a letter or digit", clip(s))
	}
	return s, nil
}

// ValidateChannel checks a consent channel name against the workspace's known channels.
func ValidateChannel(name string, known []string) error {
	if !channelPattern.MatchString(name) {
		return fmt.Errorf("%q is not a channel name", clip(name))
	}
	for _, k := range known {
		if k == name {
			return nil
		}
	}
	return fmt.Errorf("unknown channel %q: consent is kept for %s", name, strings.Join(known, ", "))
}

// NormalizeTimezone checks an IANA zone name ("Europe/Paris").
func NormalizeTimezone(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 64 {
		return "", fmt.Errorf("%q is not an IANA time zone", clip(s))
	}
	if _, err := time.LoadLocation(s); err != nil || s == "Local" {
		return "", fmt.Errorf("%q is not an IANA time zone such as Europe/Paris", clip(s))
	}
	return s, nil
}

// NormalizeLocale checks a BCP 47-like locale ("fr", "fr-FR", "en_US") and writes it with a dash.
func NormalizeLocale(s string) (string, error) {
	s = strings.TrimSpace(s)
	if len(s) > 35 || !localePattern.MatchString(s) {
		return "", fmt.Errorf("%q is not a locale such as fr-FR", clip(s))
	}
	return strings.ReplaceAll(s, "_", "-"), nil
}

// SuppressionHash is what the suppression list keeps of an erased contact's email or phone: a SHA-256 of the
// normalised value with its kind, so the list can refuse the value again without holding it.
func SuppressionHash(kind, normalized string) string {
	h := sha256.Sum256([]byte(kind + ":" + normalized))
	return hex.EncodeToString(h[:])
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
