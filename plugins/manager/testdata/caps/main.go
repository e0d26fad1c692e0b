// Command caps is a test channel that exercises the smtp (one message or a batch), kv, secrets and metrics capabilities, one per message,
// chosen by the message's "op" field. The manager's tests load it with real components behind each capability.
package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/crosscast/crosscast/sdk"
)

func main() {}

func init() {
	sdk.RegisterChannel(sdk.Manifest{
		ID: "caps", Version: "0.1.0",
		Capabilities: []string{"smtp", "kv", "secrets", "metrics"},
		Config: []sdk.ConfigField{
			{Name: "from", Type: "string", Required: true},
			{Name: "api_key", Type: "string", Required: true, Secret: true},
		},
		Metrics: []sdk.Metric{{Name: "caps_ops_total", Type: "counter", Help: "Operations run by the caps test plugin.", Labels: []string{"op"}}},
	}, &channel{})
}

type channel struct {
	from          string
	configSeesKey bool
}

func (c *channel) Configure(cfg map[string]any) error {
	c.from, _ = cfg["from"].(string)
	_, c.configSeesKey = cfg["api_key"]
	return nil
}

func (c *channel) Send(call sdk.Call, msgs []sdk.Message) ([]sdk.Result, error) {
	out := make([]sdk.Result, len(msgs))
	for i, m := range msgs {
		op := m.Fields.Get("op")
		id, err := c.run(op, m)
		out[i] = sdk.Result{ID: m.ID, Status: sdk.Delivered, ProviderID: id}
		if err != nil {
			out[i].Status, out[i].Error = sdk.Retry, err.Error()
			if sdk.IsPermanent(err) {
				out[i].Status = sdk.Failed
			}
		}
		if err := sdk.Count("caps_ops_total", 1, "op", op); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (c *channel) run(op string, m sdk.Message) (string, error) {
	switch op {
	case "mail":
		data := "From: " + c.from + "\r\nTo: " + m.To + "\r\nSubject: " + m.Fields.Get("subject") + "\r\n\r\n" + m.Fields.Get("text") + "\r\n"
		reply, err := sdk.SendMail(sdk.SMTPMessage{From: c.from, To: []string{m.To}, Data: []byte(data)})
		if err != nil {
			return "", err
		}
		return strconv.Itoa(int(reply.Code)), nil
	case "noop":
		return "ok", nil
	case "panic": // the whole call fails
		panic("asked to")
	case "mails": // one message to each address of "to_list" (comma-separated), in one SendMails call
		var batch []sdk.SMTPMessage
		for _, to := range strings.Split(m.Fields.Get("to_list"), ",") {
			data := "From: " + c.from + "\r\nTo: " + to + "\r\nSubject: batch\r\n\r\nHello\r\n"
			batch = append(batch, sdk.SMTPMessage{From: c.from, To: []string{to}, Data: []byte(data)})
		}
		outcomes, err := sdk.SendMails(batch)
		if err != nil {
			return "", err
		}
		codes := make([]string, len(outcomes))
		for i, o := range outcomes {
			codes[i] = strconv.Itoa(int(o.Reply.Code))
			if o.Err != nil {
				codes[i] = fmt.Sprintf("permanent=%v %s", sdk.IsPermanent(o.Err), o.Err)
			}
		}
		return strings.Join(codes, ";"), nil
	case "count": // a shared counter, incremented with compare-and-swap
		for {
			old, found, err := sdk.KV.Get("count")
			if err != nil {
				return "", err
			}
			n := 0
			if found {
				n, _ = strconv.Atoi(string(old))
			}
			if !found {
				old = nil
			}
			next := []byte(strconv.Itoa(n + 1))
			ok, err := sdk.KV.CompareAndSwap("count", old, next)
			if err != nil {
				return "", err
			}
			if ok {
				return string(next), nil
			}
		}
	case "fill": // writes a value of "size" bytes
		size, _ := strconv.Atoi(m.Fields.Get("size"))
		err := sdk.KV.Put("fill/"+m.ID, []byte(strings.Repeat("x", size)))
		if sdk.IsKVQuotaExceeded(err) {
			return "quota", nil
		}
		return "stored", err
	case "secret":
		key, set, err := sdk.Secret("api_key")
		if err != nil {
			return "", err
		}
		sdk.Log(sdk.LevelWarn, "calling the provider with key %s", key)
		return fmt.Sprintf("set=%v len=%d config_sees_key=%v", set, len(key), c.configSeesKey), nil
	case "undeclared-secret":
		_, _, err := sdk.Secret("from")
		return "", err
	case "undeclared-metric":
		return "", sdk.Count("nope_total", 1)
	}
	return "", fmt.Errorf("unknown op %q", op)
}
