package netguard

import (
	"errors"
	"net/netip"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestParseGrant(t *testing.T) {
	ok := []struct {
		name string
		in   []string
		want []string
	}{
		{"plain https", []string{"https://api.example.com"}, []string{"https://api.example.com"}},
		{"explicit port", []string{"https://api.example.com:8443"}, []string{"https://api.example.com:8443"}},
		{"default port folded", []string{"https://api.example.com:443", "http://a.example.com:80"}, []string{"https://api.example.com", "http://a.example.com"}},
		{"private IP with port", []string{"http://10.0.0.5:9000"}, []string{"http://10.0.0.5:9000"}},
		{"IPv6 literal", []string{"http://[FD00::1]:9000"}, []string{"http://[fd00::1]:9000"}},
		{"case and trailing dot and slash", []string{"HTTPS://API.Example.COM./"}, []string{"https://api.example.com"}},
		{"wildcard", []string{"https://*.twilio.com"}, []string{"https://*.twilio.com"}},
		{"duplicates folded", []string{"https://a.example.com", "https://a.example.com:443"}, []string{"https://a.example.com"}},
		{"empty list grants nothing", nil, nil},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			g, err := ParseGrant(tc.in, true)
			if err != nil {
				t.Fatalf("ParseGrant(%q): %v", tc.in, err)
			}
			if !reflect.DeepEqual(g.Hosts, tc.want) || !g.AllowPrivate {
				t.Fatalf("ParseGrant(%q) = %+v, want Hosts %q and AllowPrivate", tc.in, g, tc.want)
			}
		})
	}

	bad := []struct {
		entry   string
		mention string // part of the explanation
	}{
		{"https://api.example.com/v1", "path"},
		{"ftp://files.example.com", `scheme "ftp"`},
		{"*", `bare "*"`},
		{"https://*", `bare "*"`},
		{"https://*:8443", `bare "*"`},
		{"https://user:pw@api.example.com", "userinfo"},
		{"https://token@api.example.com", "userinfo"},
		{"https://api.example.com?key=1", "query"},
		{"https://api.example.com#frag", "fragment"},
		{"api.example.com", "missing scheme"},
		{"api.example.com:443", "missing scheme"},
		{"", "empty"},
		{"https://api.example.com:0", "out of range"},
		{"https://api.example.com:70000", ""},
		{"https://api.example.com:", "empty port"},
		{"https://*.com", "too broad"},
		{"https://a.*.example.com", "wildcard"},
		{"https://*.*.example.com", "wildcard"},
		{"https://*.10.0.0.1", ""},
		{"http://[fe80::1%25eth0]", "zone"},
		{"https://bücher.example", "punycode"},
		{"http://0177.0.0.1", "non-canonical IP"},
		{"https:api.example.com", ""},
		{"https://", "missing host"},
	}
	for _, tc := range bad {
		t.Run("refuses "+tc.entry, func(t *testing.T) {
			_, err := ParseGrant([]string{"https://fine.example.com", tc.entry}, false)
			if !errors.Is(err, ErrInvalidGrant) {
				t.Fatalf("ParseGrant(%q) err = %v, want ErrInvalidGrant", tc.entry, err)
			}
			if !strings.Contains(err.Error(), "grant entry 1 ") || !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("error %q should name entry 1 and mention %q", err, tc.mention)
			}
		})
	}

	t.Run("reports every bad entry", func(t *testing.T) {
		_, err := ParseGrant([]string{"ftp://a.example.com", "https://ok.example.com", "*"}, false)
		if err == nil || !strings.Contains(err.Error(), `"ftp://a.example.com"`) || !strings.Contains(err.Error(), `"*"`) {
			t.Fatalf("err = %v, want both bad entries named", err)
		}
	})
}

func TestGrantMatching(t *testing.T) {
	grant := []string{
		"https://api.example.com",
		"https://api.example.com:8443",
		"http://10.0.0.5:9000",
		"https://*.twilio.com",
		"http://[fd00::1]:9000",
	}
	c := NewClient(Grant{Hosts: grant}, testLogger(t))
	cases := []struct {
		url  string
		want bool
	}{
		{"https://api.example.com/v1/x?y=1", true},
		{"https://api.example.com:443/", true},
		{"https://API.EXAMPLE.com./v1", true},
		{"https://api.example.com:8443/", true},
		{"https://api.example.com:8444/", false}, // port mismatch
		{"http://api.example.com/", false},       // scheme mismatch
		{"https://api.example.com:80/", false},
		{"https://www.example.com/", false},
		{"https://example.com/", false},
		{"https://api.example.com.evil.test/", false},
		{"http://10.0.0.5:9000/", true},
		{"http://10.0.0.5/", false},
		{"https://10.0.0.5:9000/", false},
		{"https://api.twilio.com/", true},
		{"https://a.b.twilio.com/", true},
		{"https://twilio.com/", false}, // bare apex is not matched by *.twilio.com
		{"https://eviltwilio.com/", false},
		{"https://api.twilio.com.evil.test/", false},
		{"http://api.twilio.com/", false},
		{"https://api.twilio.com:8443/", false},
		{"http://[fd00::1]:9000/", true},
		{"http://[fd00:0::1]:9000/", true},
		{"http://[::ffff:10.0.0.5]:9000/", false}, // a different spelling is a different origin
	}
	for _, tc := range cases {
		t.Run(tc.url, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			o, err := requestOrigin(u)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.granted(o); got != tc.want {
				t.Fatalf("granted(%s) = %v, want %v", tc.url, got, tc.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		addr         string
		plain        bool // allowed without AllowPrivate
		private      bool // allowed with AllowPrivate, reached through a name
		literalPrivy bool // allowed with AllowPrivate, as a granted IP literal
	}{
		{"93.184.215.14", true, true, true},
		{"2606:2800:21f:cb07:6820:80da:af6b:8b2c", true, true, true},
		{"127.0.0.1", false, true, true},
		{"127.255.0.9", false, true, true},
		{"::1", false, true, true},
		{"10.0.0.1", false, true, true},
		{"172.16.0.1", false, true, true},
		{"172.31.255.255", false, true, true},
		{"172.32.0.1", true, true, true},
		{"192.168.1.1", false, true, true},
		{"fc00::1", false, true, true},
		{"fd12:3456::1", false, true, true},
		{"169.254.1.1", false, true, true},
		{"fe80::1", false, true, true},
		{"fe80::1%eth0", false, true, true},
		{"100.64.0.1", false, true, true},
		{"100.127.255.254", false, true, true},
		{"169.254.169.254", false, false, true},
		{"fd00:ec2::254", false, false, true},
		{"169.254.170.2", false, false, true},
		{"100.100.100.200", false, false, true},
		{"0.0.0.0", false, false, false},
		{"0.1.2.3", false, false, false},
		{"::", false, false, false},
		{"224.0.0.1", false, false, false},
		{"239.255.255.250", false, false, false},
		{"ff02::1", false, false, false},
		{"255.255.255.255", false, false, false},
		{"240.0.0.1", false, false, false},
		{"::ffff:127.0.0.1", false, true, true},
		{"::ffff:169.254.169.254", false, false, true},
		{"::ffff:10.0.0.1", false, true, true},
		{"::ffff:0.0.0.0", false, false, false},
		{"::ffff:93.184.215.14", true, true, true},
		{"::127.0.0.1", false, false, false},       // IPv4-compatible, deprecated
		{"64:ff9b::7f00:1", false, true, true},     // NAT64 of 127.0.0.1
		{"64:ff9b::a9fe:a9fe", false, false, true}, // NAT64 of 169.254.169.254
		{"64:ff9b::5db8:d70e", true, true, true},   // NAT64 of a public address
		{"2002:7f00:1::1", false, true, true},      // 6to4 of 127.0.0.1
		{"2002:5db8:d70e::1", true, true, true},
		{"::ffff:0:7f00:1", false, true, true}, // SIIT of 127.0.0.1
		{"2001:db8::1", false, true, true},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", false, true, true}, // Teredo
	}
	plain := NewClient(Grant{}, nil)
	private := NewClient(Grant{AllowPrivate: true}, nil)
	for _, tc := range cases {
		t.Run(tc.addr, func(t *testing.T) {
			ap := netip.AddrPortFrom(netip.MustParseAddr(tc.addr), 443)
			check := func(c *Client, literal, want bool) {
				t.Helper()
				err := c.checkAddr(ap, literal)
				if (err == nil) != want || err != nil && !errors.Is(err, ErrForbiddenAddress) {
					t.Errorf("checkAddr(%s, allowPrivate=%v, literal=%v) = %v, want allowed=%v", tc.addr, c.allowPrivate, literal, err, want)
				}
			}
			check(plain, false, tc.plain)
			check(plain, true, tc.plain)
			check(private, false, tc.private)
			check(private, true, tc.literalPrivy)
		})
	}
}
