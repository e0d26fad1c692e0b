//go:build !wasip1

package sdk

import "log"

// logLine outside wasm (tests of plugin code run natively) prints to the standard logger.
func logLine(level Level, msg string) { log.Printf("plugin log level=%d: %s", level, msg) }
