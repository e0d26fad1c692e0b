package netguard

import (
	"fmt"
	"net/netip"
)

// addrKind says what a destination address needs from the grant.
type addrKind int

const (
	kindPublic   addrKind = iota // globally routable unicast: allowed
	kindPrivate                  // not globally routable: allowed only with Grant.AllowPrivate
	kindMetadata                 // cloud metadata endpoint: AllowPrivate and an origin granted as the IP literal
	kindNever                    // never a valid HTTP destination: refused whatever the grant
)

type addrRange struct {
	prefix netip.Prefix
	kind   addrKind
	reason string
}

// addrRanges is checked in order, first match wins, so the single metadata addresses come before their ranges.
// IPv4-mapped IPv6 addresses are unmapped before the lookup; NAT64, 6to4 and SIIT addresses are judged by the IPv4
// address they embed.
var addrRanges = func() []addrRange {
	mk := func(p string, k addrKind, reason string) addrRange {
		return addrRange{netip.MustParsePrefix(p), k, reason}
	}
	return []addrRange{
		// Cloud metadata endpoints: AWS, GCP, Azure, Oracle, OpenStack (IMDS), AWS ECS and EKS, Alibaba, Azure wireserver.
		mk("169.254.169.254/32", kindMetadata, "a cloud metadata endpoint"),
		mk("169.254.170.2/32", kindMetadata, "a cloud metadata endpoint (ECS)"),
		mk("169.254.170.23/32", kindMetadata, "a cloud metadata endpoint (EKS)"),
		mk("100.100.100.200/32", kindMetadata, "a cloud metadata endpoint (Alibaba)"),
		mk("168.63.129.16/32", kindMetadata, "a cloud platform endpoint (Azure)"),
		mk("fd00:ec2::254/128", kindMetadata, "a cloud metadata endpoint (AWS IPv6)"),
		mk("fd00:ec2::23/128", kindMetadata, "a cloud metadata endpoint (EKS IPv6)"),

		mk("0.0.0.0/32", kindNever, "unspecified"),
		mk("0.0.0.0/8", kindNever, `"this network" (0.0.0.0/8)`),
		mk("255.255.255.255/32", kindNever, "broadcast"),
		mk("224.0.0.0/4", kindNever, "multicast"),
		mk("240.0.0.0/4", kindNever, "reserved (240.0.0.0/4)"),
		mk("127.0.0.0/8", kindPrivate, "loopback"),
		mk("10.0.0.0/8", kindPrivate, "private (10.0.0.0/8)"),
		mk("172.16.0.0/12", kindPrivate, "private (172.16.0.0/12)"),
		mk("192.168.0.0/16", kindPrivate, "private (192.168.0.0/16)"),
		mk("169.254.0.0/16", kindPrivate, "link-local"),
		mk("100.64.0.0/10", kindPrivate, "carrier-grade NAT (100.64.0.0/10)"),
		mk("192.0.0.0/24", kindPrivate, "IETF protocol assignments (192.0.0.0/24)"),
		mk("192.0.2.0/24", kindPrivate, "documentation (192.0.2.0/24)"),
		mk("198.51.100.0/24", kindPrivate, "documentation (198.51.100.0/24)"),
		mk("203.0.113.0/24", kindPrivate, "documentation (203.0.113.0/24)"),
		mk("198.18.0.0/15", kindPrivate, "benchmarking (198.18.0.0/15)"),
		mk("192.88.99.0/24", kindPrivate, "6to4 relay anycast (192.88.99.0/24)"),

		mk("::/128", kindNever, "unspecified"),
		mk("::1/128", kindPrivate, "loopback"),
		mk("::/96", kindNever, "IPv4-compatible IPv6 (deprecated)"),
		mk("ff00::/8", kindNever, "multicast"),
		mk("100::/64", kindNever, "discard-only (100::/64)"),
		mk("64:ff9b:1::/48", kindPrivate, "local-use NAT64 (64:ff9b:1::/48)"),
		mk("2001::/32", kindPrivate, "Teredo (2001::/32)"),
		mk("2001:db8::/32", kindPrivate, "documentation (2001:db8::/32)"),
		mk("fc00::/7", kindPrivate, "unique local (fc00::/7)"),
		mk("fe80::/10", kindPrivate, "link-local"),
		mk("fec0::/10", kindPrivate, "site-local (deprecated)"),
	}
}()

var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96")
	siitPrefix  = netip.MustParsePrefix("::ffff:0:0:0/96")
	sixToFour   = netip.MustParsePrefix("2002::/16")
)

// classify says what kind of destination a is and why.
func classify(a netip.Addr) (addrKind, string) {
	if !a.IsValid() {
		return kindNever, "invalid"
	}
	a = a.WithZone("").Unmap()
	if a.Is6() {
		b := a.As16()
		var embedded netip.Addr
		var via string
		switch {
		case nat64Prefix.Contains(a):
			embedded, via = netip.AddrFrom4([4]byte(b[12:16])), "NAT64"
		case siitPrefix.Contains(a):
			embedded, via = netip.AddrFrom4([4]byte(b[12:16])), "IPv4-translated"
		case sixToFour.Contains(a):
			embedded, via = netip.AddrFrom4([4]byte(b[2:6])), "6to4"
		}
		if embedded.IsValid() {
			if k, why := classify(embedded); k != kindPublic {
				return k, fmt.Sprintf("%s for %s (%s)", via, embedded, why)
			}
			return kindPublic, ""
		}
	}
	for _, r := range addrRanges {
		if r.prefix.Contains(a) {
			return r.kind, r.reason
		}
	}
	return kindPublic, ""
}

// checkAddr decides whether the client may connect to ap. literal says the URL named this IP itself (so an origin
// granted as that literal led here) rather than a name that resolved to it.
func (c *Client) checkAddr(ap netip.AddrPort, literal bool) error {
	if c.treatAsPublic != nil && c.treatAsPublic(ap) {
		return nil
	}
	kind, why := classify(ap.Addr())
	switch {
	case kind == kindPublic:
		return nil
	case kind == kindPrivate && c.allowPrivate:
		return nil
	case kind == kindMetadata && c.allowPrivate && literal:
		return nil
	}
	return fmt.Errorf("address %s is %s: %w", ap.Addr(), why, ErrForbiddenAddress)
}
