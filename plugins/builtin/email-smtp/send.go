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

	"github.com/crosscast/crosscast/sdk"
	"github.com/emersion/go-msgauth/dkim"
)

// Send builds every message, then hands them to the relay together (sdk.SendMails), so that the host sends them
// over all of its connections at once. Each message gets its own result: a relay that cannot be reached fails it
// for now (retry), not the batch. The messages are built one after the other in one buffer: an allocation per
// message cost the guest about 10 us.
func (c *channel) Send(call sdk.Call, msgs []sdk.Message) ([]sdk.Result, error) {
	if err := c.loadDKIM(); err != nil {
		return nil, err
	}
	out := make([]sdk.Result, len(msgs))
	var (
		batch []sdk.SMTPMessage
		index []int // index[k] is the message of batch[k]
		size  int
	)
	estimate := 0
	for _, m := range msgs {
		estimate += messageSize(m.Fields.Get("html"), m.Fields.Get("text"))
	}
	arena := make([]byte, 0, min(estimate, maxBatchBytes+1<<20))
	flush := func() {
		if len(batch) == 0 {
			return
		}
		outcomes, err := sdk.SendMails(batch)
		for k, i := range index {
			if err != nil {
				out[i].Status, out[i].Error = sdk.Retry, err.Error()
				continue
			}
			out[i] = c.result(msgs[i], outcomes[k].Reply, outcomes[k].Err)
		}
		batch, index, size, arena = batch[:0], index[:0], 0, arena[:0] // SendMails copied the messages
	}
	for i, m := range msgs {
		out[i].ID = m.ID
		if len(batch) == sdk.MaxSendMails || size >= maxBatchBytes {
			flush()
		}
		start := len(arena)
		next, to, err := c.build(arena, call, m)
		if err != nil {
			out[i].Status, out[i].Error = sdk.Failed, err.Error()
			continue
		}
		arena = next
		data := arena[start:len(arena):len(arena)]
		if c.dkimSigner != nil {
			if data, err = c.sign(data); err != nil {
				out[i].Status, out[i].Error = sdk.Failed, err.Error()
				continue
			}
		}
		batch = append(batch, sdk.SMTPMessage{From: c.returnPath, To: []string{to}, Data: data})
		index = append(index, i)
		size += len(data)
	}
	flush()
	return out, nil
}

// maxBatchBytes bounds the messages handed to the relay in one call (the host takes requests up to 32 MiB).
const maxBatchBytes = 8 << 20

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

// result reads the relay's answer to message m.
func (c *channel) result(m sdk.Message, reply sdk.SMTPReply, err error) sdk.Result {
	r := sdk.Result{ID: m.ID}
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
