// Command everything is plugintest's test channel: it uses every capability, one per message, chosen by the
// message's "op" field, and receives webhooks. plugintest's tests load it under the real host.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/crosscast/crosscast/sdk"
)

func main() {}

func init() {
	sdk.RegisterChannel(sdk.Manifest{
		ID: "everything", Version: "0.1.0",
		Capabilities: []string{"http", "smtp", "kv", "secrets", "metrics"},
		Config: []sdk.ConfigField{
			{Name: "api_url", Type: "string", Required: true},
			{Name: "from", Type: "string"},
			{Name: "api_key", Type: "string", Required: true, Secret: true},
		},
		Metrics: []sdk.Metric{{Name: "everything_ops_total", Type: "counter", Help: "Operations run by plugintest's test channel.", Labels: []string{"op"}}},
	}, &channel{})
}

type channel struct {
	apiURL, from  string
	configSeesKey bool
}

func (c *channel) Configure(cfg map[string]any) error {
	c.apiURL, _ = cfg["api_url"].(string)
	c.from, _ = cfg["from"].(string)
	_, c.configSeesKey = cfg["api_key"]
	if !strings.HasPrefix(c.apiURL, "https://") {
		return fmt.Errorf("api_url %q must start with https://", c.apiURL)
	}
	return nil
}

func (c *channel) Send(call sdk.Call, msgs []sdk.Message) ([]sdk.Result, error) {
	out := make([]sdk.Result, len(msgs))
	for i, m := range msgs {
		op := m.Fields.Get("op")
		if op == "fail_batch" {
			return nil, errors.New("the whole batch failed on purpose")
		}
		out[i] = c.run(call, op, m)
		out[i].ID = m.ID
		if err := sdk.Count("everything_ops_total", 1, "op", op); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func delivered(providerID string) sdk.Result {
	return sdk.Result{Status: sdk.Delivered, ProviderID: providerID}
}

func failed(err error) sdk.Result { return sdk.Result{Status: sdk.Failed, Error: err.Error()} }

func (c *channel) run(call sdk.Call, op string, m sdk.Message) sdk.Result {
	switch op {
	case "post": // POST to the configured API, authenticated with the secret
		key, _, err := sdk.Secret("api_key")
		if err != nil {
			return failed(err)
		}
		body, _ := json.Marshal(map[string]string{"to": m.To, "idempotency_key": m.IdempotencyKey})
		resp, err := sdk.HTTP(sdk.HTTPRequest{Method: "POST", URL: c.apiURL, Body: body, Headers: sdk.Pairs{
			{Key: "Authorization", Value: "Bearer " + key}, {Key: "Content-Type", Value: "application/json"}}})
		if err != nil {
			return sdk.Result{Status: sdk.Retry, Error: err.Error()}
		}
		if resp.Status/100 != 2 {
			return failed(fmt.Errorf("the API answered %d: %s", resp.Status, resp.Body))
		}
		var answer struct{ ID string }
		if err := json.Unmarshal(resp.Body, &answer); err != nil {
			return failed(err)
		}
		return sdk.Result{Status: sdk.Accepted, ProviderID: answer.ID}
	case "get": // GET the URL in To
		resp, err := sdk.HTTP(sdk.HTTPRequest{Method: "GET", URL: m.To})
		if err != nil {
			return failed(err)
		}
		return delivered(fmt.Sprintf("%d %s", resp.Status, resp.Body))
	case "mail":
		data := "From: " + c.from + "\r\nTo: " + m.To + "\r\nSubject: " + m.Fields.Get("subject") + "\r\n\r\nHello\r\n"
		to := strings.Split(m.To, ",")
		reply, err := sdk.SendMail(sdk.SMTPMessage{From: c.from, To: to, Data: []byte(data)})
		if err != nil {
			r := sdk.Result{Status: sdk.Retry, Error: err.Error()}
			if sdk.IsPermanent(err) {
				r.Status = sdk.Failed
			}
			return r
		}
		id := strconv.Itoa(int(reply.Code))
		for _, rj := range reply.Rejected {
			id += fmt.Sprintf(" rejected %s %d", rj.Recipient, rj.Code)
		}
		return delivered(id)
	case "count": // a counter shared by every instance, with compare-and-swap
		for {
			old, found, err := sdk.KV.Get("count")
			if err != nil {
				return failed(err)
			}
			n := 0
			if found {
				n, _ = strconv.Atoi(string(old))
			}
			next := []byte(strconv.Itoa(n + 1))
			if !found {
				old = nil
			}
			swapped, err := sdk.KV.CompareAndSwap("count", old, next)
			if err != nil {
				return failed(err)
			}
			if swapped {
				return delivered(string(next))
			}
		}
	case "put":
		if err := sdk.KV.Put(m.Fields.Get("key"), []byte(m.Fields.Get("value"))); err != nil {
			if sdk.IsKVQuotaExceeded(err) {
				return sdk.Result{Status: sdk.Failed, Error: "quota exceeded: " + err.Error()}
			}
			return failed(err)
		}
		return delivered("ok")
	case "get_key":
		v, found, err := sdk.KV.Get(m.Fields.Get("key"))
		if err != nil {
			return failed(err)
		}
		if !found {
			return delivered("absent")
		}
		return delivered(string(v))
	case "list":
		entries, _, err := sdk.KV.List(m.Fields.Get("prefix"), "", 100)
		if err != nil {
			return failed(err)
		}
		keys := make([]string, len(entries))
		for i, e := range entries {
			keys[i] = e.Key
		}
		return delivered(strings.Join(keys, ","))
	case "secret":
		key, ok, err := sdk.Secret("api_key")
		if err != nil {
			return failed(err)
		}
		sdk.Log(sdk.LevelInfo, "calling the API with key %s", key)
		return delivered(fmt.Sprintf("set=%v len=%d configure_saw_it=%v", ok, len(key), c.configSeesKey))
	case "now":
		sdk.Log(sdk.LevelDebug, "now is %s", call.Now.UTC().Format(time.RFC3339))
		return delivered(call.Now.UTC().Format(time.RFC3339Nano))
	}
	return failed(fmt.Errorf("unknown op %q", op))
}

// Receive reports the delivery the provider's JSON body announces, if its token header is right.
func (c *channel) Receive(call sdk.Call, req sdk.HookRequest) (sdk.HookReply, error) {
	if req.Headers.Get("X-Token") != "t0ken" {
		return sdk.HookReply{Status: 401}, nil
	}
	var body struct{ ID, To string }
	if err := json.Unmarshal(req.Body, &body); err != nil {
		return sdk.HookReply{Status: 400, Body: []byte(err.Error())}, nil
	}
	return sdk.HookReply{Status: 200, Events: []sdk.ChannelEvent{{
		Type: sdk.EventDelivered, ProviderID: body.ID, Address: body.To, AtUnixMilli: call.Now.UnixMilli(),
		Detail: "workspace " + call.Workspace,
	}}}, nil
}
