package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/crosscast/crosscast/core/campaigns"
	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/segments"
	"github.com/crosscast/crosscast/core/store"
	"github.com/crosscast/crosscast/core/workspaces"
	"github.com/crosscast/crosscast/plugins/manager"
	"github.com/hashicorp/go-hclog"
)

// BenchmarkCampaignNull measures issue 6's throughput goal (>= 20,000 messages/s end to end): a one-off campaign
// to CROSSCAST_BENCH_CAMPAIGN_CONTACTS subscribed contacts (default 100,000) through the bundled null channel,
// loaded by the plugin manager with its default sandbox limits (a pool of 2 instances, 64 MiB, a 5 s timeout,
// calls stopped at their deadline), wired as `crosscast serve` wires it: the real store (fsync on), the segment
// index, the campaign engine with its default options. Each iteration creates and launches a new campaign over
// the same audience and waits until it is completed: planning, rendering a Liquid subject and body per message,
// sending in batches, and recording every outcome. Run:
//
//	go test -run '^$' -bench BenchmarkCampaignNull -benchtime 3x -timeout 30m ./cmd/crosscast/
func BenchmarkCampaignNull(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("CROSSCAST_BENCH_CAMPAIGN_CONTACTS")); err == nil && v > 0 {
		n = v
	}
	ctx := context.Background()
	log := hclog.NewNullLogger()
	dir := b.TempDir()
	st, err := store.Open(ctx, store.Options{Dir: dir, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	if _, err := workspaces.NewService(st, log, nil).Create(ctx, workspaces.CreateInput{ID: "bench"}); err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	for i := 0; i < n; i += 5000 {
		err := st.UpdateContacts(ctx, "bench", func(tx contacts.Tx) error {
			for k := i; k < min(n, i+5000); k++ {
				c := contacts.Contact{ID: contacts.NewID(now), Email: fmt.Sprintf("c%07d@example.com", k), CreatedAt: now, UpdatedAt: now,
					Attributes: map[string]contacts.Value{"first_name": contacts.StringValue(fmt.Sprint("Name", k)), "plan": contacts.StringValue("pro")},
					Consent:    map[string]contacts.Consent{"email": {Status: contacts.Subscribed, At: now}}}
				if err := tx.Put(c); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	segs := segments.NewService(st, nil, log, nil)
	defer segs.Close()
	if err := segs.Start(ctx, []string{"bench"}); err != nil {
		b.Fatal(err)
	}
	name, rule := "Pro", `plan = "pro"`
	raw, _ := json.Marshal(rule)
	seg, err := segs.Create(ctx, "bench", segments.Input{Name: &name, Rule: raw})
	if err != nil {
		b.Fatal(err)
	}
	if seg.Count != n {
		b.Fatalf("segment of %d contacts, want %d", seg.Count, n)
	}
	plugins, err := manager.New(ctx, manager.Options{CacheDir: filepath.Join(dir, "plugin-cache"), Logger: log, KV: st}, manager.DefaultSpecs())
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = plugins.Close(context.Background()) }()
	linkKey, err := st.LinkKey(ctx)
	if err != nil {
		b.Fatal(err)
	}
	// As serve wires it: signed links (List-Unsubscribe headers on every message), no workspace rules.
	svc := campaigns.NewService(st, segs, manager.Campaigns{M: plugins}, log, nil, campaigns.Options{
		Links: campaigns.NewLinks("http://localhost:8080", linkKey)})
	run, stop := context.WithCancel(ctx)
	defer func() { stop(); svc.Close() }()
	if err := svc.Start(run, []string{"bench"}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		campaignName := fmt.Sprint("Bench ", i)
		c, err := svc.Create(ctx, "bench", campaigns.Input{
			Name:     &campaignName,
			Audience: &campaigns.Audience{Include: []string{seg.ID}},
			Channels: &[]campaigns.Channel{{Plugin: "null", Content: map[string]string{
				"subject": "Hello {{ contact.first_name | default: \"there\" }}",
				"text":    "Your {{ contact.plan }} plan: {{ campaign.name }}.",
			}}},
		}, "bench")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := svc.Launch(ctx, "bench", c.ID, "bench"); err != nil {
			b.Fatal(err)
		}
		for {
			v, err := svc.Get(ctx, "bench", c.ID)
			if err != nil {
				b.Fatal(err)
			}
			if v.Status == campaigns.Completed {
				if v.Progress.Sent != n {
					b.Fatalf("progress %+v", v.Progress)
				}
				break
			}
			if v.Status == campaigns.Paused {
				b.Fatalf("paused: %s", v.Reason)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(n), "contacts")
}
