// Command email-smtp is the bundled email channel: it builds a standards-correct MIME message for each campaign
// message (multipart/alternative text and HTML in UTF-8, encoded headers, Message-ID, Date, the campaign engine's
// List-Unsubscribe headers) and hands it to the SMTP relay the operator granted (capability "smtp"; the host keeps
// the connections, TLS, authentication and pipelining). The relay's answer decides the result: 2xx delivered, 4xx
// retry, 5xx failed for good.
//
// Written with the public SDK only, as any channel author would. See docs/channels/email-smtp.md.
package main

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/mail"
	"strings"

	"github.com/crosscast/crosscast/sdk"
	"github.com/emersion/go-msgauth/dkim"
)

func main() {}

func init() {
	sdk.RegisterChannel(sdk.Manifest{
		ID: "email-smtp", Version: "1.0.0",
		Capabilities: []string{"smtp", "secrets"},
		Config: []sdk.ConfigField{
			{Name: "from", Type: "string", Required: true, Description: `The default sender: "Acme <news@acme.example>". A campaign's from field replaces it.`},
			{Name: "reply_to", Type: "string", Description: "The default Reply-To address."},
			{Name: "return_path", Type: "string", Description: "The envelope sender (MAIL FROM) bounces go to; default: the From address."},
			{Name: "message_id_domain", Type: "string", Description: "The domain of Message-ID headers; default: the From address's domain."},
			{Name: "dkim_domain", Type: "string", Description: "Sign messages with DKIM for this domain (d=); with dkim_selector and dkim_key."},
			{Name: "dkim_selector", Type: "string", Description: "The DKIM selector (s=): the key's DNS record is <selector>._domainkey.<domain>."},
			{Name: "dkim_key", Type: "string", Secret: true, Description: "The DKIM private key, PEM (PKCS#8 Ed25519 or RSA, or PKCS#1 RSA)."},
			{Name: "events", Type: "string", Description: `The provider whose event webhooks receive reads: "mailgun" or "postmark" (delivered, bounces, complaints, unsubscribes, opens, clicks); empty: none.`},
			{Name: "webhook_signing_key", Type: "string", Secret: true, Description: "Mailgun: its HTTP webhook signing key. Postmark: the password of the Basic auth in the webhook URL you give it (user crosscast)."},
		},
		Channel: &sdk.ChannelSpec{Address: "email", Consent: "email", Fields: []sdk.ContentField{
			{Name: "subject", Required: true, Description: "The subject line."},
			{Name: "preheader", Description: "The preview text mail clients show after the subject (hidden in the HTML)."},
			{Name: "html", Description: "The HTML body."},
			{Name: "text", Description: "The plain-text body; recommended with html (some clients and spam filters read it)."},
			{Name: "from", Description: "The sender, replacing the configured one."},
			{Name: "reply_to", Description: "The Reply-To address, replacing the configured one."},
		}},
		SelfTests: []sdk.SelfTest{{
			Name:     "refuses an address that is not one, without sending",
			Messages: []sdk.SelfTestMessage{{ID: "t1", To: "not an address", Fields: map[string]string{"subject": "Hello", "text": "Hi"}}},
			Want:     []string{"failed"},
		}},
	}, &channel{})
}

type channel struct {
	from, replyTo, returnPath, domain string
	events                            string
	// dkimDomain and dkimSelector, when set, sign every message; the key is read with Secret and parsed once.
	dkimDomain, dkimSelector string
	dkimPEM                  string
	dkimSigner               crypto.Signer
}

func (c *channel) Configure(cfg map[string]any) error {
	str := func(name string) string { s, _ := cfg[name].(string); return s }
	from, err := mail.ParseAddress(str("from"))
	if err != nil {
		return fmt.Errorf("from: %q is not an address (%v)", str("from"), err)
	}
	c.from = from.String()
	if r := str("reply_to"); r != "" {
		a, err := mail.ParseAddress(r)
		if err != nil {
			return fmt.Errorf("reply_to: %q is not an address (%v)", r, err)
		}
		c.replyTo = a.String()
	}
	c.returnPath = from.Address
	if rp := str("return_path"); rp != "" {
		a, err := mail.ParseAddress(rp)
		if err != nil {
			return fmt.Errorf("return_path: %q is not an address (%v)", rp, err)
		}
		c.returnPath = a.Address
	}
	c.domain = from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	c.dkimDomain, c.dkimSelector = str("dkim_domain"), str("dkim_selector")
	if (c.dkimDomain == "") != (c.dkimSelector == "") {
		return fmt.Errorf("dkim_domain and dkim_selector: set both to sign with DKIM, or neither")
	}
	switch c.events = str("events"); c.events {
	case "", "mailgun", "postmark":
	default:
		return fmt.Errorf("events: %q is not a provider this channel reads (mailgun, postmark)", c.events)
	}
	if d := str("message_id_domain"); d != "" {
		c.domain = d
	}
	return nil
}

// Send builds and relays each message; a relay that cannot be reached fails the message for now (retry), not the
// batch, so that the messages already relayed keep their result.
func (c *channel) Send(call sdk.Call, msgs []sdk.Message) ([]sdk.Result, error) {
	if err := c.loadDKIM(); err != nil {
		return nil, err
	}
	out := make([]sdk.Result, len(msgs))
	for i, m := range msgs {
		out[i] = c.send(call, m)
	}
	return out, nil
}

// loadDKIM reads the DKIM key (a secret, so not in Configure) and parses it when it changed.
func (c *channel) loadDKIM() error {
	if c.dkimDomain == "" {
		return nil
	}
	pemText, ok, err := sdk.Secret("dkim_key")
	if err != nil || !ok {
		return fmt.Errorf("dkim_key: the key is missing (%v)", err)
	}
	if pemText == c.dkimPEM && c.dkimSigner != nil {
		return nil
	}
	signer, err := parseKey(pemText)
	if err != nil {
		return fmt.Errorf("dkim_key: %w", err)
	}
	c.dkimPEM, c.dkimSigner = pemText, signer
	return nil
}

// parseKey reads a PEM private key for DKIM: Ed25519 or RSA.
func parseKey(text string) (crypto.Signer, error) {
	block, _ := pem.Decode([]byte(text))
	if block == nil {
		return nil, errors.New("not a PEM key")
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		switch key := k.(type) {
		case ed25519.PrivateKey:
			return key, nil
		case *rsa.PrivateKey:
			return key, nil
		}
		return nil, errors.New("neither an Ed25519 nor an RSA key")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	return nil, errors.New("not a PKCS#8 or PKCS#1 private key")
}

// dkimHeaders are the headers a DKIM signature covers (signing an absent one protects against its addition).
var dkimHeaders = []string{"From", "To", "Subject", "Date", "Message-ID", "Reply-To", "MIME-Version", "Content-Type",
	"List-Unsubscribe", "List-Unsubscribe-Post"}

// sign prefixes the message with its DKIM-Signature header.
func (c *channel) sign(data []byte) ([]byte, error) {
	var out bytes.Buffer
	out.Grow(len(data) + 512)
	err := dkim.Sign(&out, bytes.NewReader(data), &dkim.SignOptions{Domain: c.dkimDomain, Selector: c.dkimSelector,
		Signer: c.dkimSigner, HeaderKeys: dkimHeaders, HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization: dkim.CanonicalizationRelaxed})
	return out.Bytes(), err
}

func (c *channel) send(call sdk.Call, m sdk.Message) sdk.Result {
	r := sdk.Result{ID: m.ID}
	data, to, err := c.build(call, m)
	if err == nil && c.dkimSigner != nil {
		data, err = c.sign(data)
	}
	if err != nil {
		r.Status, r.Error = sdk.Failed, err.Error()
		return r
	}
	reply, err := sdk.SendMail(sdk.SMTPMessage{From: c.returnPath, To: []string{to}, Data: data})
	switch {
	case err != nil && sdk.IsPermanent(err):
		r.Status, r.Error = sdk.Failed, err.Error()
	case err != nil:
		r.Status, r.Error = sdk.Retry, err.Error()
	case len(reply.Rejected) > 0:
		rej := reply.Rejected[0]
		r.Status, r.Error = sdk.Retry, fmt.Sprintf("%d %s", rej.Code, rej.Message)
		if rej.Code >= 500 {
			r.Status = sdk.Failed
		}
	default:
		r.Status, r.ProviderID = sdk.Delivered, messageID(m.ID, c.domain)
	}
	return r
}

var errNoBody = errors.New("the message has neither html nor text")
