package capability

import (
	"context"
	"fmt"

	"github.com/crosscast/crosscast/plugins/runtime"
	"github.com/crosscast/crosscast/sdk/wire"
)

// Secrets serves the secret import from values, the plugin's secret config fields the operator set (name ->
// value). declared are every secret field the manifest declares: one of them left out by the operator answers
// "not set"; any other name is refused, so a plugin cannot probe for values it did not declare.
func Secrets(declared []string, values map[string]string) runtime.HostFunc {
	known := make(map[string]bool, len(declared))
	for _, n := range declared {
		known[n] = true
	}
	return func(_ context.Context, b []byte, w *wire.Writer) error {
		q, err := wire.DecodeSecretRequest(b)
		if err != nil {
			return errMalformed("secret", err)
		}
		if !known[q.Name] {
			return fmt.Errorf("%q is not a secret config field of this plugin's manifest", q.Name)
		}
		v, ok := values[q.Name]
		a := wire.SecretAnswer{Set: ok, Value: v}
		a.Encode(w)
		return nil
	}
}
