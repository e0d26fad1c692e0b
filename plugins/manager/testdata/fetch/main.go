// Command fetch is a test channel that POSTs each message's text to its To URL through the host's http capability.
package main

import "github.com/crosscast/crosscast/sdk"

func main() {}

func init() {
	sdk.RegisterChannel(sdk.Manifest{ID: "fetch", Version: "0.1.0", Capabilities: []string{"http"}}, channel{})
}

type channel struct{}

func (channel) Configure(map[string]any) error { return nil }

func (channel) Send(_ sdk.Call, msgs []sdk.Message) ([]sdk.Result, error) {
	out := make([]sdk.Result, len(msgs))
	for i, m := range msgs {
		resp, err := sdk.HTTP(sdk.HTTPRequest{Method: "POST", URL: m.To, Headers: sdk.Pairs{{Key: "Content-Type", Value: "text/plain"}}, Body: []byte(m.Fields.Get("text"))})
		switch {
		case err != nil:
			out[i] = sdk.Result{ID: m.ID, Status: sdk.Failed, Error: err.Error()}
		case resp.Status >= 300:
			out[i] = sdk.Result{ID: m.ID, Status: sdk.Retry, Error: resp.Headers.Get("Content-Type")}
		default:
			out[i] = sdk.Result{ID: m.ID, Status: sdk.Delivered, ProviderID: string(resp.Body)}
		}
	}
	return out, nil
}
