package sdk

import (
	"github.com/crosscast/crosscast/sdk/wire"
)

// HTTP request and response of the http capability.
type (
	HTTPRequest  = wire.HTTPRequest
	HTTPResponse = wire.HTTPResponse
	Pairs        = wire.Pairs
	Pair         = wire.Pair
)

// HTTP sends a request through the host, which checks it against the operator's grants: the origin must be
// granted, every redirect is checked again, and loopback, private and link-local addresses are refused unless
// granted. Request "http" in Manifest.Capabilities. A refused or failed request returns an error; an HTTP error
// status (4xx, 5xx) is a response, not an error.
func HTTP(req HTTPRequest) (HTTPResponse, error) {
	r, err := callCapability(capHTTP, callHTTP, req.Encode)
	if err != nil {
		return HTTPResponse{}, err
	}
	return wire.DecodeHTTPResponse(r)
}
