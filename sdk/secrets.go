package sdk

import "github.com/crosscast/crosscast/sdk/wire"

// Secret returns the value of a config field the manifest declares with Secret set (request "secrets" in
// Manifest.Capabilities). The host resolves it from the operator's config block (usually env("...")), never logs
// it, masks it in the plugin's log lines, and does not pass it to Configure: ask for it when you need it. ok is
// false when the operator left an optional secret out.
func Secret(name string) (value string, ok bool, err error) {
	q := wire.SecretRequest{Name: name}
	r, err := callCapability(capSecret, callSecret, q.Encode)
	if err != nil {
		return "", false, err
	}
	a, err := wire.DecodeSecretAnswer(r)
	return a.Value, a.Set, err
}
