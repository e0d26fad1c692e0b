package netguard_test

import (
	"errors"
	"fmt"

	"github.com/crosscast/crosscast/plugins/netguard"
)

// ExampleParseGrant validates the origins an operator grants a plugin; every bad entry is named.
func ExampleParseGrant() {
	g, err := netguard.ParseGrant([]string{"https://API.example.com:443/", "https://*.twilio.com", "http://10.0.0.5:9000"}, false)
	fmt.Println(g.Hosts, err)

	_, err = netguard.ParseGrant([]string{"https://api.example.com/v1", "*"}, false)
	fmt.Println(errors.Is(err, netguard.ErrInvalidGrant))
	fmt.Println(err)
	// Output:
	// [https://api.example.com https://*.twilio.com http://10.0.0.5:9000] <nil>
	// true
	// grant entry 0 "https://api.example.com/v1": path "/v1" not allowed: an origin is scheme://host[:port]: invalid grant
	// grant entry 1 "*": a bare "*" is not allowed: grant explicit origins such as https://api.example.com or https://*.example.com: invalid grant
}
