package sdk

import (
	"errors"

	"github.com/crosscast/crosscast/sdk/wire"
)

// capability names a host capability, as a manifest requests it.
type capability string

// The capabilities a manifest may request. Logging needs none.
const (
	capHTTP capability = "http"
	capSMTP capability = "smtp"
	// capSMTPBatch is the smtp capability's import for several messages at once.
	capSMTPBatch capability = "smtp_batch"
	capKV        capability = "kv"
	capSecret    capability = "secrets"
	capMetric    capability = "metrics"
)

// callCapability sends an encoded request to capability c and opens the host's answer: an error when the host
// refused or failed it, otherwise a reader over the answer.
// call is the capability's import (callHTTP, ...): each SDK function names its own, so that a plugin links only the
// imports of the capabilities its code uses.
func callCapability(c capability, call func(req []byte) ([]byte, error), encode func(*wire.Writer)) (*wire.Reader, error) {
	w := wire.NewWriter(nil)
	encode(w)
	out, err := call(w.Bytes())
	if err != nil {
		return nil, err
	}
	msg, r, err := wire.OpenAnswer(out)
	if err != nil {
		return nil, err
	}
	if msg != "" {
		return nil, errors.New(msg)
	}
	return r, nil
}
