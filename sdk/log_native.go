//go:build !wasip1

package sdk

import (
	"errors"
	"log"
)

// logLine outside wasm (tests of plugin code run natively) prints to the standard logger.
func logLine(level Level, msg string) { log.Printf("plugin log level=%d: %s", level, msg) }

// hostCall outside wasm has no host to call: plugin code that uses HTTP is tested under the real host.
func hostCall([]byte) ([]byte, error) {
	return nil, errors.New("sdk.HTTP needs the crosscast host: test this code by loading the built plugin")
}
