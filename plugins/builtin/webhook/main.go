// Command webhook is the bundled webhook channel: each campaign message is a JSON POST of its rendered payload to
// the URL the operator configured, signed with an X-Crosscast-Signature header (HMAC-SHA256 over a timestamp and
// the body, under a secret), so the receiver can check it came from this server and is not a replay. The host's
// http capability makes the request (the operator grants the URL's origin). 2xx: delivered; 408, 429 and 5xx,
// timeouts and connection failures: retry; other 4xx: failed for good.
//
// Written with the public SDK only. See docs/channels/webhook.md for the receiver's verification.
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/crosscast/crosscast/sdk"
)

func main() {}

func init() {
	sdk.RegisterChannel(sdk.Manifest{
		ID: "webhook", Version: "1.0.0",
		Capabilities: []string{"http", "secrets"},
		Config: []sdk.ConfigField{
			{Name: "url", Type: "string", Required: true, Description: "Where messages are POSTed (grant its origin in http_hosts)."},
			{Name: "secret", Type: "string", Required: true, Secret: true, Description: "The HMAC-SHA256 key of X-Crosscast-Signature; at least 16 bytes."},
		},
		Channel: &sdk.ChannelSpec{Address: "none", Fields: []sdk.ContentField{
			{Name: "payload", Required: true, Description: "The JSON body (a Liquid template that renders to JSON)."},
		}},
		SelfTests: []sdk.SelfTest{{
			Name:     "refuses a payload that is not JSON, without sending",
			Messages: []sdk.SelfTestMessage{{ID: "t1", Fields: map[string]string{"payload": "{not json"}}},
			Want:     []string{"failed"},
		}},
	}, &channel{})
}

type channel struct {
	url string
}

func (c *channel) Configure(cfg map[string]any) error {
	raw, _ := cfg["url"].(string)
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("url: %q is not an http(s) URL", raw)
	}
	c.url = raw
	return nil
}

// Send posts each message; it reads the secret once per batch.
func (c *channel) Send(call sdk.Call, msgs []sdk.Message) ([]sdk.Result, error) {
	secret, ok, err := sdk.Secret("secret")
	if err != nil {
		return nil, fmt.Errorf("reading the secret: %w", err)
	}
	if !ok || len(secret) < 16 {
		return nil, fmt.Errorf("the secret is missing or shorter than 16 bytes")
	}
	out := make([]sdk.Result, len(msgs))
	for i, m := range msgs {
		out[i] = c.send(call, m, []byte(secret))
	}
	return out, nil
}

func (c *channel) send(call sdk.Call, m sdk.Message, secret []byte) sdk.Result {
	r := sdk.Result{ID: m.ID}
	payload := m.Fields.Get("payload")
	if !json.Valid([]byte(payload)) {
		r.Status, r.Error = sdk.Failed, "the payload is not JSON"
		return r
	}
	ts := strconv.FormatInt(call.Now.Unix(), 10)
	resp, err := sdk.HTTP(sdk.HTTPRequest{Method: "POST", URL: c.url, Body: []byte(payload), Headers: sdk.Pairs{
		{Key: "Content-Type", Value: "application/json"},
		{Key: "Idempotency-Key", Value: m.IdempotencyKey},
		{Key: "X-Crosscast-Message-Id", Value: m.ID},
		{Key: "X-Crosscast-Signature", Value: "t=" + ts + ",v1=" + Sign(secret, ts, []byte(payload))},
	}})
	switch {
	case err != nil:
		r.Status, r.Error = sdk.Retry, err.Error()
	case resp.Status >= 200 && resp.Status < 300:
		r.Status = sdk.Delivered
	case resp.Status == 408 || resp.Status == 429 || resp.Status >= 500:
		r.Status, r.Error = sdk.Retry, fmt.Sprintf("HTTP %d: %s", resp.Status, snippet(resp.Body))
	default:
		r.Status, r.Error = sdk.Failed, fmt.Sprintf("HTTP %d: %s", resp.Status, snippet(resp.Body))
	}
	return r
}

// Sign is the v1 signature: hex HMAC-SHA256 of "<timestamp>.<body>" under secret.
func Sign(secret []byte, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

func snippet(b []byte) string {
	s := strings.ToValidUTF8(string(b), "?")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
