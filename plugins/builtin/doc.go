// Package builtin holds the sources of the plugins bundled with Crosscast, one folder (one main package) each. They
// use only the public SDK, like any third-party plugin, and `make plugins` builds them to wasm for embedding.
package builtin
