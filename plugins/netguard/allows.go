package netguard

import (
	"fmt"
	"net/netip"
	"net/url"
)

// Allows reports whether the grant lets a plugin request rawURL, with the checks Client.Do makes before any network
// activity: the URL must be absolute http or https without userinfo, its origin must be granted, and a URL naming
// an IP literal must point to an address the grant permits (loopback, private, link-local and the like only with
// AllowPrivate; unspecified, multicast and broadcast never). Names are not resolved: what a name resolves to is
// checked by the client at dial time. It returns nil or an error wrapping ErrInvalidRequest, ErrNotGranted or
// ErrForbiddenAddress, worded as Client.Do words it, so a fake of the network (sdk/plugintest's recorded
// responses) refuses exactly what production refuses. Entries of g.Hosts that do not parse grant nothing.
func (g Grant) Allows(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("parsing request URL: %w: %w", urlError(err), ErrInvalidRequest)
	}
	o, err := requestOrigin(u)
	if err != nil {
		return fmt.Errorf("request URL: %w: %w", err, ErrInvalidRequest)
	}
	granted := false
	for _, h := range g.Hosts {
		if gr, err := parseOrigin(h); err == nil && gr.matches(o) {
			granted = true
			break
		}
	}
	if !granted {
		return fmt.Errorf("requesting %s: %w", o, ErrNotGranted)
	}
	a, err := netip.ParseAddr(o.host)
	if err != nil {
		return nil // a name: checked when it is resolved
	}
	kind, why := classify(a)
	switch {
	case kind == kindPublic:
		return nil
	case kind == kindPrivate && g.AllowPrivate:
		return nil
	case kind == kindMetadata && g.AllowPrivate: // granted as this very literal, as Client.Do requires
		return nil
	}
	return fmt.Errorf("requesting %s: address %s is %s: %w", o, a, why, ErrForbiddenAddress)
}
