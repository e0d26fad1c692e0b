package manager

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/crosscast/crosscast/plugins/runtime"
	"github.com/crosscast/crosscast/sdk/wire"
)

// entrySend is a channel's send (sdk/ABI.md).
const entrySend = 16

// runSelfTests runs the self-tests a channel declares, under its configuration, and reports every mismatch.
func runSelfTests(ctx context.Context, p *runtime.Plugin, man Manifest, now time.Time) error {
	if len(man.SelfTests) == 0 {
		return nil
	}
	if man.Kind != "channel" {
		return fmt.Errorf("self-tests are only defined for channels, not %s plugins", man.Kind)
	}
	var problems []string
	for _, st := range man.SelfTests {
		if len(st.Want) != len(st.Messages) {
			problems = append(problems, fmt.Sprintf("self-test %q declares %d messages but %d expected statuses", st.Name, len(st.Messages), len(st.Want)))
			continue
		}
		req := wire.SendRequest{NowUnixMilli: now.UnixMilli()}
		for _, m := range st.Messages {
			req.Messages = append(req.Messages, wire.Message{ID: m.ID, IdempotencyKey: "self-test:" + m.ID, To: m.To, Fields: wire.PairsOf(m.Fields)})
		}
		w := wire.NewWriter(nil)
		req.Encode(w)
		out, err := p.Call(ctx, entrySend, w.Bytes())
		if err != nil {
			problems = append(problems, fmt.Sprintf("self-test %q: %v", st.Name, err))
			continue
		}
		resp, err := wire.DecodeSendResponse(out)
		if err != nil {
			problems = append(problems, fmt.Sprintf("self-test %q: %v", st.Name, err))
			continue
		}
		problems = append(problems, compareSelfTest(st, resp.Results)...)
	}
	if len(problems) > 0 {
		return fmt.Errorf("self-tests failed: %s", strings.Join(problems, "; "))
	}
	return nil
}

// compareSelfTest matches results to the test's messages by id and checks each status.
func compareSelfTest(st SelfTest, results []wire.Result) []string {
	byID := make(map[string]wire.Result, len(results))
	for _, r := range results {
		byID[r.ID] = r
	}
	var problems []string
	for i, m := range st.Messages {
		r, ok := byID[m.ID]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("self-test %q: no result for message %q", st.Name, m.ID))
		case r.Status.String() != st.Want[i]:
			detail := ""
			if r.Error != "" {
				detail = " (" + r.Error + ")"
			}
			problems = append(problems, fmt.Sprintf("self-test %q: message %q is %s, want %s%s", st.Name, m.ID, r.Status, st.Want[i], detail))
		}
	}
	return problems
}
