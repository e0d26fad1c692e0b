// Command null is the bundled "null" channel: it accepts every message and sends nothing. It is for development,
// load tests and benchmarks of the campaign engine without any provider.
package main

import (
	"strconv"

	"github.com/crosscast/crosscast/sdk"
)

func main() {}

func init() {
	sdk.RegisterChannel(sdk.Manifest{
		ID: "null", Version: "1.0.0",
		SelfTests: []sdk.SelfTest{{
			Name:     "accepts every message",
			Messages: []sdk.SelfTestMessage{{ID: "t1", To: "anyone@example.com"}, {ID: "t2", To: "+33600000000"}},
			Want:     []string{"delivered", "delivered"},
		}},
	}, &channel{})
}

type channel struct {
	accepted uint64
}

func (c *channel) Configure(map[string]any) error { return nil }

// Send marks every message delivered, with a provider id counting the messages this instance accepted.
func (c *channel) Send(_ sdk.Call, msgs []sdk.Message) ([]sdk.Result, error) {
	out := make([]sdk.Result, len(msgs))
	for i := range msgs {
		c.accepted++
		out[i] = sdk.Result{ID: msgs[i].ID, Status: sdk.Delivered, ProviderID: "null-" + strconv.FormatUint(c.accepted, 10)}
	}
	return out, nil
}
