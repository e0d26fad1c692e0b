// Command email-smtp is the bundled email channel: it builds a standards-correct MIME message for each campaign
// message (multipart/alternative text and HTML in UTF-8, encoded headers, Message-ID, Date, the campaign engine's
// List-Unsubscribe headers) and hands it to the SMTP relay the operator granted (capability "smtp"; the host keeps
// the connections, TLS, authentication and pipelining). The relay's answer decides the result: 2xx delivered, 4xx
// retry, 5xx failed for good.
//
// Written with the public SDK only, as any channel author would. See docs/channels/email-smtp.md.
package main

import (
	"crypto"
	"errors"
	"fmt"
	"net/mail"
	"sort"
	"strings"
	"time"

	"github.com/crosscast/crosscast/sdk"
)

func main() {}

func init() {
	sdk.RegisterChannel(sdk.Manifest{
		ID: "email-smtp", Version: "1.0.0",
		Capabilities: []string{"smtp", "secrets"},
		// http only fetches Amazon SNS signing certificates, for SES events.
		OptionalCapabilities: []string{"http"},
		Config: append([]sdk.ConfigField{
			{Name: "from", Type: "string", Required: true, Description: `The default sender: "Acme <news@acme.example>". A campaign's from field replaces it.`},
			{Name: "reply_to", Type: "string", Description: "The default Reply-To address."},
			{Name: "return_path", Type: "string", Description: "The envelope sender (MAIL FROM) bounces go to; default: the From address."},
			{Name: "headers", Type: "map(string)", Description: "Headers added to every message: Feedback-ID for Gmail's feedback loop, X-Mailer, a provider's tracking header. Not the ones this channel writes (From, To, Subject, Date, Message-ID, Content-*, List-Unsubscribe...)."},
			{Name: "message_id_domain", Type: "string", Description: "The domain of Message-ID headers; default: the From address's domain."},
			{Name: "dkim_domain", Type: "string", Description: "Sign messages with DKIM for this domain (d=); with dkim_selector and dkim_key."},
			{Name: "dkim_selector", Type: "string", Description: "The DKIM selector (s=): the key's DNS record is <selector>._domainkey.<domain>."},
			{Name: "dkim_key", Type: "string", Secret: true, Description: "The DKIM private key, PEM (PKCS#8 Ed25519 or RSA, or PKCS#1 RSA)."},
		}, eventsConfig...),
		Channel: &sdk.ChannelSpec{Address: "email", Consent: "email", Fields: []sdk.ContentField{
			{Name: "subject", Required: true, Description: "The subject line.", SingleLine: true},
			{Name: "preheader", Description: "The preview text mail clients show after the subject (hidden in the HTML).", SingleLine: true},
			{Name: "html", Description: "The HTML body."},
			{Name: "text", Description: "The plain-text body; recommended with html (some clients and spam filters read it)."},
			{Name: "from", Description: "The sender, replacing the configured one.", SingleLine: true},
			{Name: "reply_to", Description: "The Reply-To address, replacing the configured one.", SingleLine: true},
			{Name: "headers", Description: "More headers for this campaign, one \"Name: value\" per line; they replace configured headers of the same name.", SingleLine: true},
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
	// dateAt and dateText are the last Date header formatted.
	dateAt   time.Time
	dateText string
	// headers are the configured headers, in name order.
	headers []extraHeader
	// events is the provider whose webhooks Receive reads (nil: none).
	events *eventsProvider
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
	c.headers = nil
	if hs, ok := cfg["headers"].(map[string]any); ok {
		for name, v := range hs {
			value, _ := v.(string)
			h, err := checkHeader(name, value)
			if err != nil {
				return fmt.Errorf("headers: %w", err)
			}
			c.headers = append(c.headers, h)
		}
		sort.Slice(c.headers, func(i, j int) bool { return c.headers[i].name < c.headers[j].name })
	}
	if err := c.configureEvents(str); err != nil {
		return err
	}
	if d := str("message_id_domain"); d != "" {
		c.domain = d
	}
	return nil
}

var errNoBody = errors.New("the message has neither html nor text")
