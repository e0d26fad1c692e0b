//go:build !wasip1

package sdk

import (
	"errors"
	"log"
)

// logLine outside wasm (tests of plugin code run natively) prints to the standard logger.
func logLine(level Level, msg string) { log.Printf("plugin log level=%d: %s", level, msg) }

// hostCall outside wasm has no host to call: test code that uses a capability under the real host, with
// sdk/plugintest.
func hostCall(c capability, _ []byte) ([]byte, error) {
	return nil, errors.New("sdk: the " + string(c) + " capability needs the crosscast host: test this code with sdk/plugintest")
}
