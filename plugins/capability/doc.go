// Package capability implements the host side of the plugin capabilities of ABI v1 (sdk/ABI.md, "Host imports"):
// http, smtp, kv, secrets and metrics. Each constructor turns a backend (a netguard client, an SMTP relay, the
// store's plugin key-value spaces, the operator's secret values, the metrics registry) into a runtime.HostFunc that
// decodes the guest's request, checks it, serves it and encodes the answer. The plugin manager builds them from the
// operator's grants; sdk/plugintest's host builds the same functions over fakes of the outside world.
//
// Calls are scoped to a workspace by the caller (WithWorkspace); the kv capability refuses calls without one.
//
// It imports core (store, metrics), the runtime and netguard; core never imports it.
package capability

import "context"

type workspaceKey struct{}

// WithWorkspace scopes the plugin calls made with ctx to a workspace: kv reads and writes that workspace's space.
func WithWorkspace(ctx context.Context, workspace string) context.Context {
	return context.WithValue(ctx, workspaceKey{}, workspace)
}

// Workspace returns the workspace ctx is scoped to, or "".
func Workspace(ctx context.Context) string {
	ws, _ := ctx.Value(workspaceKey{}).(string)
	return ws
}
