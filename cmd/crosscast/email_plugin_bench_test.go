package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crosscast/crosscast/core/config"
	"github.com/crosscast/crosscast/plugins/capability"
	"github.com/crosscast/crosscast/plugins/manager"
	"github.com/crosscast/crosscast/plugins/smtprelay"
	"github.com/crosscast/crosscast/sdk/wire"
	"github.com/hashicorp/go-hclog"
)

// acceptAll is a relay that accepts every message at once: what is left to measure is the plugin.
type acceptAll struct{}

func (acceptAll) Send(context.Context, string, []string, []byte) (smtprelay.Reply, error) {
	return smtprelay.Reply{Code: 250, Message: "2.0.0 ok"}, nil
}

// BenchmarkEmailPlugin measures the bundled email-smtp channel alone, one instance under the default sandbox
// (deadline checks on): batches of 100 rendered messages in, MIME messages out to a relay that accepts them at
// once. "small" is BenchmarkCampaignEmail's message (1.3 KB); "newsletter" has 20 KB of ASCII HTML; "accented"
// has 20 KB of French HTML, which takes quoted-printable.
//
//	go test -run '^$' -bench BenchmarkEmailPlugin ./cmd/crosscast/
func BenchmarkEmailPlugin(b *testing.B) {
	ctx := context.Background()
	cfg, err := config.Parse([]byte(`plugin "email" {
  source = "builtin:email-smtp"
  pool   = 1
  grants { smtp_relay = "relay" }
  config { from = "Acme News <news@acme.example>" }
}
smtp "relay" {
  host = "127.0.0.1"
  tls  = "none"
}
`), "email.hcl", func(string) (string, bool) { return "", false })
	if err != nil {
		b.Fatal(err)
	}
	plugins, err := manager.New(ctx, manager.Options{CacheDir: filepath.Join(b.TempDir(), "plugin-cache"), Logger: hclog.NewNullLogger(),
		Mailers: map[string]capability.Mailer{"relay": acceptAll{}}}, cfg.Plugins)
	if err != nil {
		b.Fatal(err)
	}
	defer plugins.Close(ctx)
	link := func(kind string, n int) string {
		return "http://localhost:8080/" + kind + "/bench/" + strings.Repeat("A", n)
	}
	small := `<p>Hi Name42, <a href="` + link("c", 90) + `">our sale</a> is on.</p><img src="` + link("o", 60) + `" width="1" height="1" alt="">`
	row := `<tr><td style="padding:8px;font-family:Arial,sans-serif;color:#333">Spring sale: 20% off everything</td></tr>` + "\n"
	rowFR := `<tr><td style="padding:8px;font-family:Arial,sans-serif;color:#333">Soldes : -20 % sur tout, été compris</td></tr>` + "\n"
	for _, bc := range []struct{ name, html string }{
		{"small", small},
		{"newsletter", small + strings.Repeat(row, 20<<10/len(row))},
		{"accented", small + strings.Repeat(rowFR, 20<<10/len(rowFR))},
	} {
		msgs := make([]wire.Message, 100)
		for i := range msgs {
			id := fmt.Sprintf("cmp_01JDX3K5Z8Q9W7E6R5T4Y3U2I1.1.01JDX3K5Z8Q9W7E6R5T4Y3U%03d.0", i)
			msgs[i] = wire.Message{ID: id, IdempotencyKey: id, To: fmt.Sprintf("c%07d@example.com", i),
				Fields:  wire.PairsOf(map[string]string{"subject": "Hello Name42", "text": "Hi Name42, our sale is on.", "html": bc.html}),
				Headers: wire.Pairs{{Key: "List-Unsubscribe", Value: "<" + link("u", 60) + ">"}, {Key: "List-Unsubscribe-Post", Value: "List-Unsubscribe=One-Click"}}}
		}
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				res, err := plugins.Send(ctx, "bench", "email", time.Now(), msgs)
				if err != nil || len(res) != len(msgs) || res[0].Status != wire.StatusDelivered {
					b.Fatalf("%v %+v", err, res[:1])
				}
			}
			b.ReportMetric(float64(b.N*len(msgs))/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
