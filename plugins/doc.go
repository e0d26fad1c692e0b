// Package plugins will host Crosscast's sandboxed WebAssembly plugins (message channels, scoring models, tag
// connectors) on wazero, and adapt them to the interfaces core packages declare (campaigns.Channel, ...).
//
// It imports core; core never imports it (a test walks the dependency graph). Nothing here yet: the plugin platform
// is the next piece of work, and docs/RATIONALE.md records the measurements its design starts from.
package plugins
