// Package netguard is the only road from a Crosscast plugin to the network: the policy that decides which HTTP
// requests a plugin may make under the operator's grant, and the client that makes them.
//
// It owns the grant (allowed origins, parsed and validated by ParseGrant), the origin check made before any network
// activity, the address check made at dial time on every resolved IP (so a granted name that resolves, or rebinds,
// to a loopback, private, link-local, CGNAT, metadata, multicast or otherwise non-public address is refused unless
// the grant opts in), the redirect loop (every hop re-checked against the grant and the address rules before it is
// followed), header hygiene (CR/LF and control characters refused, hop-by-hop headers dropped, Host only to a
// granted origin), body caps both ways, one deadline for the whole exchange, and TLS with system roots and TLS 1.2
// at least. It reads no proxy settings from the environment and keeps no cookies.
//
// The wasm host function in plugins/ calls it; it knows nothing of wasm. It must import only the standard library
// and go-hclog: never wazero, fiber, core/... or other plugins/... packages, so the policy can be read and tested
// on its own.
package netguard
