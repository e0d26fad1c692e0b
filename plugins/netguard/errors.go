package netguard

import "errors"

// Sentinel errors returned by ParseGrant and Client.Do. They are always wrapped with the origin of the URL
// concerned (scheme://host[:port]), never with the full URL, whose query may hold secrets; test with errors.Is.
var (
	// ErrNotGranted: the origin of the request, of a redirect target or of a Host header is not in the grant.
	ErrNotGranted = errors.New("origin not granted")
	// ErrForbiddenAddress: a name resolved (or a literal pointed) to an address the grant does not permit, such as
	// loopback, private, link-local, CGNAT or a cloud metadata endpoint.
	ErrForbiddenAddress = errors.New("forbidden address")
	// ErrTooLarge: the request body or the response body is over its cap. A response is never truncated.
	ErrTooLarge = errors.New("body too large")
	// ErrTooManyRedirects: the server redirected more than Grant.MaxRedirects times.
	ErrTooManyRedirects = errors.New("too many redirects")
	// ErrInvalidRequest: the request is malformed: bad method, URL, header name or value (CR/LF), redirect Location.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrInvalidGrant: an entry given to ParseGrant is not a valid origin.
	ErrInvalidGrant = errors.New("invalid grant")
)
