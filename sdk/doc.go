// Package sdk is what a Crosscast plugin author writes against: implement a typed interface (Channel, optionally
// with Receiver for provider webhooks; Scorer; Connector), register it from an init function (RegisterChannel,
// RegisterScorer, RegisterConnector), and build with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugin.wasm .
//
// The SDK hides the ABI (sdk/ABI.md): memory handed between host and guest, the binary encoding (sdk/wire), entry
// points, error statuses, panics, and letting the guest's garbage collector run. It imports only the standard
// library and its own wire package.
package sdk
