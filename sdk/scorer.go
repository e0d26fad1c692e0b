package sdk

import (
	"errors"

	"github.com/crosscast/crosscast/sdk/wire"
)

// The types a scorer handles, from the shared wire package.
type (
	ScoreItem   = wire.ScoreItem
	ScoreEvent  = wire.ScoreEvent
	ScoreResult = wire.ScoreResult
	Score       = wire.Score
)

// Scorer is a scoring model: it scores contacts (engagement, fit, churn risk) from their traits and events. The
// host calls it with batches of contacts of one workspace whose events changed, stores the scores for segments and
// the admin, and keeps each contact's State for the next call.
type Scorer interface {
	// Configure receives the plugin's config block (already checked against Manifest.Config), once per instance
	// before any Score. Return an error to refuse it.
	Configure(config map[string]any) error
	// Score scores a batch and returns one result per item, matched by ContactID. A result carries the contact's
	// scores (finite values, distinct non-empty names), the reasons for them, and the State to keep; an item
	// without a result keeps its scores and state. Return an error only when the whole batch failed.
	Score(call Call, items []ScoreItem) ([]ScoreResult, error)
}

// RegisterScorer registers the plugin's scorer implementation. Call it exactly once, from an init function.
func RegisterScorer(m Manifest, s Scorer) {
	m.Kind, m.ABI, m.Receives = KindScorer, ABIVersion, false
	register(&plugin{manifest: m, scorer: s})
}

// score runs entry score.
func score(p *plugin, input []byte, out *wire.Writer) []byte {
	if p.scorer == nil {
		return errorOutput(out, errors.New("this plugin is not a scorer"))
	}
	req, err := wire.DecodeScoreRequest(input)
	if err != nil {
		return errorOutput(out, err)
	}
	results, err := p.scorer.Score(Call{Now: timeOf(req.NowUnixMilli), Workspace: req.Workspace}, req.Items)
	if err != nil {
		return errorOutput(out, err)
	}
	resp := wire.ScoreResponse{Results: results}
	resp.Encode(out)
	return out.Bytes()
}
