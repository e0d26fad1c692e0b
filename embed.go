// Package crosscast holds the files that ship inside the binary from the repository root: today the annotated
// example configuration. It imports only the standard library.
package crosscast

import _ "embed"

//go:embed config.example.hcl
var exampleConfig string

// ExampleConfig returns the annotated example configuration (config.example.hcl) embedded at build time. A test in
// core/config decodes and validates it, so it cannot drift from the code.
func ExampleConfig() string { return exampleConfig }
