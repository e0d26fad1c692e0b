package netguard

import (
	"errors"
	"strings"
	"testing"
)

func TestGrantAllows(t *testing.T) {
	cases := []struct {
		name    string
		hosts   []string
		private bool
		url     string
		want    error  // nil: allowed
		mention string // part of the error's text
	}{
		{"granted origin", []string{"https://api.example.com"}, false, "https://api.example.com/v1/send?key=k", nil, ""},
		{"default port folded", []string{"https://api.example.com:443"}, false, "https://API.example.com./x", nil, ""},
		{"wildcard covers a subdomain", []string{"https://*.example.com"}, false, "https://eu.api.example.com/", nil, ""},
		{"wildcard does not cover its apex", []string{"https://*.example.com"}, false, "https://example.com/", ErrNotGranted, "requesting https://example.com: origin not granted"},
		{"other host", []string{"https://api.example.com"}, false, "https://evil.example.net/", ErrNotGranted, "requesting https://evil.example.net: origin not granted"},
		{"scheme mismatch", []string{"https://api.example.com"}, false, "http://api.example.com/", ErrNotGranted, ""},
		{"port mismatch", []string{"https://api.example.com"}, false, "https://api.example.com:8443/", ErrNotGranted, ""},
		{"empty grant", nil, false, "https://api.example.com/", ErrNotGranted, ""},
		{"invalid entries grant nothing", []string{"*", "api.example.com"}, false, "https://api.example.com/", ErrNotGranted, ""},
		{"ftp", []string{"https://api.example.com"}, false, "ftp://api.example.com/", ErrInvalidRequest, `scheme "ftp"`},
		{"relative", []string{"https://api.example.com"}, false, "/v1/send", ErrInvalidRequest, ""},
		{"userinfo", []string{"https://api.example.com"}, false, "https://u:p@api.example.com/", ErrInvalidRequest, "userinfo"},
		{"control character", []string{"https://api.example.com"}, false, "https://api.example.com/a\r\nb", ErrInvalidRequest, ""},
		{"loopback literal refused", []string{"http://127.0.0.1:8080"}, false, "http://127.0.0.1:8080/", ErrForbiddenAddress, "loopback"},
		{"loopback literal with allow_private", []string{"http://127.0.0.1:8080"}, true, "http://127.0.0.1:8080/", nil, ""},
		{"private literal refused", []string{"http://10.0.0.5:9000"}, false, "http://10.0.0.5:9000/", ErrForbiddenAddress, "private"},
		{"IPv6 loopback refused", []string{"http://[::1]:9000"}, false, "http://[::1]:9000/", ErrForbiddenAddress, "loopback"},
		{"metadata literal refused", []string{"http://169.254.169.254"}, false, "http://169.254.169.254/latest", ErrForbiddenAddress, "metadata"},
		{"metadata literal granted with allow_private", []string{"http://169.254.169.254"}, true, "http://169.254.169.254/latest", nil, ""},
		{"broadcast never", []string{"http://255.255.255.255"}, true, "http://255.255.255.255/", ErrForbiddenAddress, "broadcast"},
		{"public literal", []string{"https://8.8.8.8"}, false, "https://8.8.8.8/", nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Grant{Hosts: tc.hosts, AllowPrivate: tc.private}.Allows(tc.url)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Allows(%q) = %v, want nil", tc.url, err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Allows(%q) = %v, want %v", tc.url, err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("Allows(%q) = %q, want it to mention %q", tc.url, err, tc.mention)
			}
			if strings.Contains(err.Error(), "?key=") || strings.Contains(err.Error(), "/v1") {
				t.Fatalf("Allows(%q) = %q: an error must name the origin, never the full URL", tc.url, err)
			}
		})
	}
}

// Allows agrees with the client: whatever Client.Do refuses before the network, Allows refuses with the same text.
func TestGrantAllowsMatchesClient(t *testing.T) {
	g := Grant{Hosts: []string{"https://api.example.com"}}
	c := NewClient(g, testLogger(t))
	for _, u := range []string{"https://other.example.com/x?secret=1", "ftp://api.example.com/", "https://u@api.example.com/"} {
		_, want := c.Do(t.Context(), Request{URL: u})
		got := g.Allows(u)
		if want == nil || got == nil || got.Error() != want.Error() {
			t.Errorf("%s: Allows = %v, Client.Do = %v: want the same refusal", u, got, want)
		}
	}
}
