//go:build !wasip1

package sdk

import (
	"errors"
	"log"
)

// logLine outside wasm (tests of plugin code run natively) prints to the standard logger.
func logLine(level Level, msg string) { log.Printf("plugin log level=%d: %s", level, msg) }

// Outside wasm there is no host to call: test code that uses a capability under the real host, with
// sdk/plugintest.
func noHost(c capability) ([]byte, error) {
	return nil, errors.New("sdk: the " + string(c) + " capability needs the crosscast host: test this code with sdk/plugintest")
}

func callHTTP([]byte) ([]byte, error)      { return noHost(capHTTP) }
func callSMTP([]byte) ([]byte, error)      { return noHost(capSMTP) }
func callSMTPBatch([]byte) ([]byte, error) { return noHost(capSMTPBatch) }
func callKV([]byte) ([]byte, error)        { return noHost(capKV) }
func callSecret([]byte) ([]byte, error)    { return noHost(capSecret) }
func callMetric([]byte) ([]byte, error)    { return noHost(capMetric) }
