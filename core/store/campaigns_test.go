package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/crosscast/crosscast/core/campaigns"
	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/events"
	"github.com/hashicorp/go-hclog"
	bolt "go.etcd.io/bbolt"
)

// cmpID and ctID make campaign and contact ids of the shapes campaigns.ParseMessageID accepts.
func cmpID(n int) string { return fmt.Sprintf("cmp_%026d", n) }
func ctID(n int) string  { return fmt.Sprintf("%026d", n) }

var campaignBuckets = [][]byte{bucketCampaigns, bucketCampaignAudit, bucketCampaignCounts, bucketOutbox, bucketOutboxDue, bucketOutboxPlan, bucketCampaignTriggers}

func planned(campaign string, run, contact, slot int, due time.Time) campaigns.Message {
	return campaigns.Message{
		Campaign: campaign, Run: run, Contact: ctID(contact), Slot: slot, Status: campaigns.Queued,
		Due: due, PlannedAt: fixedTime,
	}
}

func isValidation(err error) bool {
	var ve *errs.ValidationError
	return errors.As(err, &ve)
}

// running records campaign id as running its run (only such a campaign plans).
func running(t testing.TB, s *Store, ws, id string, run int) {
	t.Helper()
	if err := s.PutCampaign(context.Background(), ws, campaigns.Campaign{ID: id, Name: "test", Status: campaigns.Running, Runs: run}); err != nil {
		t.Fatal(err)
	}
}

func mustPlan(t *testing.T, s *Store, msgs []campaigns.Message, after string) int {
	t.Helper()
	if len(msgs) > 0 {
		running(t, s, "acme", msgs[0].Campaign, msgs[0].Run)
	}
	n, err := s.PlanMessages(context.Background(), "acme", msgs, after)
	if err != nil {
		t.Fatalf("PlanMessages: %v", err)
	}
	return n
}

func mustClaim(t *testing.T, s *Store, campaign string, now time.Time, lease time.Duration, limit int) []campaigns.Message {
	t.Helper()
	out, err := s.ClaimMessages(context.Background(), "acme", campaign, now, lease, limit)
	if err != nil {
		t.Fatalf("ClaimMessages: %v", err)
	}
	return out
}

func mustGetMessage(t *testing.T, s *Store, id string) campaigns.Message {
	t.Helper()
	m, err := s.GetMessage(context.Background(), "acme", id)
	if err != nil {
		t.Fatalf("GetMessage(%s): %v", id, err)
	}
	return m
}

func contactsOf(ms []campaigns.Message) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, fmt.Sprintf("%s/%d/%d", m.Contact[len(m.Contact)-3:], m.Slot, m.Attempts))
	}
	return out
}

// checkOutbox recounts a campaign's messages from outbox/, compares the stored counts with it, and checks that
// outbox_due holds exactly one entry per pending message, at its Due. It returns the recount.
func checkOutbox(t *testing.T, s *Store, campaign string) campaigns.Counts {
	t.Helper()
	var recount campaigns.Counts
	prefix := idPrefix(campaign)
	want, got := map[string]bool{}, map[string]bool{}
	err := workspaceDB(t, s).View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			m, err := decodeMessage(campaign, k[len(prefix):], v)
			if err != nil {
				return fmt.Errorf("%q: %w", k, err)
			}
			recount.Planned++
			recount.Add(m.Status, 1)
			if m.Status == campaigns.Sent {
				recount.Units += m.Units
			}
			if !m.Status.Final() {
				want[string(dueKey(nil, prefix, eventTime(m.Due), k[len(prefix):]))] = true
			}
		}
		c = tx.Bucket(bucketOutboxDue).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			got[string(k)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	counts, err := s.CampaignCounts(context.Background(), "acme", campaign)
	if err != nil {
		t.Fatal(err)
	}
	if counts != recount {
		t.Errorf("stored counts %+v, recount %+v", counts, recount)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("due entries %q, want %q", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	return recount
}

// campaignRows dumps the campaign buckets of the open workspace file as "bucket/key" -> value.
func campaignRows(t *testing.T, s *Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	_ = workspaceDB(t, s).View(func(tx *bolt.Tx) error {
		for _, name := range campaignBuckets {
			_ = tx.Bucket(name).ForEach(func(k, v []byte) error { out[string(name)+"/"+string(k)] = string(v); return nil })
		}
		return nil
	})
	return out
}

func TestPlanMessages(t *testing.T) {
	ctx := context.Background()
	s := segStore(t)
	c := cmpID(1)
	t0 := fixedTime
	first := []campaigns.Message{planned(c, 1, 1, 0, t0), planned(c, 1, 1, 1, t0), planned(c, 1, 2, 0, t0.Add(time.Minute))}
	first[1].Status = campaigns.Sent // ignored: planned messages are queued

	if n := mustPlan(t, s, first, ctID(2)); n != 3 {
		t.Fatalf("first plan added %d, want 3", n)
	}
	before := mustGetMessage(t, s, first[1].ID())
	if before.Status != campaigns.Queued || !before.Due.Equal(t0) || !before.PlannedAt.Equal(fixedTime) {
		t.Errorf("planned message %+v", before)
	}
	// Planning again (a crash between planning and recording the cursor) adds only what is new.
	again := append(slices.Clone(first), planned(c, 1, 3, 0, t0))
	again[1].Due, again[1].Attempts = t0.Add(time.Hour), 7
	if n := mustPlan(t, s, again, ctID(3)); n != 1 {
		t.Fatalf("second plan added %d, want 1", n)
	}
	if got := mustGetMessage(t, s, first[1].ID()); !reflect.DeepEqual(got, before) {
		t.Errorf("re-planning changed %+v to %+v", before, got)
	}
	if got := checkOutbox(t, s, c); got != (campaigns.Counts{Planned: 4, Queued: 4}) {
		t.Errorf("counts %+v", got)
	}

	// Cursor and done round-trip; runs are apart.
	for _, step := range []struct {
		name      string
		do        func() error
		run       int
		wantAfter string
		wantDone  bool
	}{
		{"after planning", func() error { return nil }, 1, ctID(3), false},
		{"another run", func() error { return nil }, 2, "", false},
		{"finished", func() error { return s.FinishPlan(ctx, "acme", c, 1) }, 1, ctID(3), true},
		{"finished twice", func() error { return s.FinishPlan(ctx, "acme", c, 1) }, 1, ctID(3), true},
		{"finish keeps run 2 apart", func() error { return nil }, 2, "", false},
	} {
		t.Run(step.name, func(t *testing.T) {
			if err := step.do(); err != nil {
				t.Fatal(err)
			}
			after, done, err := s.PlanCursor(ctx, "acme", c, step.run)
			if err != nil || after != step.wantAfter || done != step.wantDone {
				t.Errorf("PlanCursor = %q, %v, %v; want %q, %v", after, done, err, step.wantAfter, step.wantDone)
			}
		})
	}

	for _, tc := range []struct {
		name string
		msgs []campaigns.Message
	}{
		{"empty campaign", []campaigns.Message{planned("", 1, 9, 0, t0)}},
		{"NUL in campaign", []campaigns.Message{planned("cmp\x00x", 1, 9, 0, t0)}},
		{"empty contact", []campaigns.Message{{Campaign: c, Run: 1, Contact: ""}}},
		{"NUL in contact", []campaigns.Message{{Campaign: c, Run: 1, Contact: "a\x00b"}}},
		{"run 0", []campaigns.Message{planned(c, 0, 9, 0, t0)}},
		{"slot 256", []campaigns.Message{planned(c, 1, 9, 256, t0)}},
		{"negative slot", []campaigns.Message{planned(c, 1, 9, -1, t0)}},
		{"two campaigns", []campaigns.Message{planned(c, 1, 9, 0, t0), planned(cmpID(2), 1, 9, 0, t0)}},
		{"two runs", []campaigns.Message{planned(c, 1, 9, 0, t0), planned(c, 2, 9, 0, t0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows := campaignRows(t, s)
			if n, err := s.PlanMessages(ctx, "acme", tc.msgs, "x"); !isValidation(err) || n != 0 {
				t.Errorf("PlanMessages = %d, %v; want a validation error", n, err)
			}
			if diff := diffDumps(rows, campaignRows(t, s)); len(diff) > 0 {
				t.Errorf("refused plan wrote: %v", diff)
			}
		})
	}
}

func TestClaimMessages(t *testing.T) {
	c := cmpID(1)
	t0 := fixedTime
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	s := segStore(t)
	// Due order differs from key order; contact 6 is due later.
	mustPlan(t, s, []campaigns.Message{
		planned(c, 1, 1, 0, at(3)), planned(c, 1, 2, 0, at(1)), planned(c, 1, 3, 0, at(2)),
		planned(c, 1, 4, 0, at(0)), planned(c, 1, 5, 0, at(2)), planned(c, 1, 6, 0, at(15)),
	}, "")
	// Another campaign's due messages are never claimed with this one.
	mustPlan(t, s, []campaigns.Message{planned(cmpID(2), 1, 1, 0, at(0))}, "")
	lease := 10 * time.Minute

	for _, step := range []struct {
		name   string
		now    time.Time
		limit  int
		want   []string // contact suffix / slot / attempts
		counts campaigns.Counts
	}{
		{"before anything is due", at(-1), 10, []string{}, campaigns.Counts{Planned: 6, Queued: 6}},
		{"limit", at(2), 2, []string{"004/0/1", "002/0/1"}, campaigns.Counts{Planned: 6, Queued: 4, Sending: 2}},
		{"due ones only, ties in key order", at(2), 10, []string{"003/0/1", "005/0/1"}, campaigns.Counts{Planned: 6, Queued: 2, Sending: 4}},
		{"nothing left due", at(2), 10, []string{}, campaigns.Counts{Planned: 6, Queued: 2, Sending: 4}},
		{"leases passed: due order, then key order", at(12), 10, []string{"001/0/1", "002/0/2", "003/0/2", "004/0/2", "005/0/2"}, campaigns.Counts{Planned: 6, Queued: 1, Sending: 5}},
		{"the later one, leases not passed", at(15), 10, []string{"006/0/1"}, campaigns.Counts{Planned: 6, Sending: 6}},
		{"leases passed again", at(22), 3, []string{"001/0/2", "002/0/3", "003/0/3"}, campaigns.Counts{Planned: 6, Sending: 6}},
	} {
		t.Run(step.name, func(t *testing.T) {
			got := mustClaim(t, s, c, step.now, lease, step.limit)
			if !reflect.DeepEqual(contactsOf(got), step.want) {
				t.Errorf("claimed %v, want %v", contactsOf(got), step.want)
			}
			for _, m := range got {
				if m.Status != campaigns.Sending || !m.Due.Equal(step.now.Add(lease)) {
					t.Errorf("claimed %+v: want sending, due %v", m, step.now.Add(lease))
				}
				if stored := mustGetMessage(t, s, m.ID()); !reflect.DeepEqual(stored, m) {
					t.Errorf("stored %+v, returned %+v", stored, m)
				}
			}
			if counts := checkOutbox(t, s, c); counts != step.counts {
				t.Errorf("counts %+v, want %+v", counts, step.counts)
			}
		})
	}

	t.Run("refused arguments", func(t *testing.T) {
		for _, args := range []struct {
			lease time.Duration
			limit int
		}{{0, 10}, {time.Minute, 0}} {
			if _, err := s.ClaimMessages(context.Background(), "acme", c, at(100), args.lease, args.limit); !isValidation(err) {
				t.Errorf("lease %v limit %d: want a validation error, got %v", args.lease, args.limit, err)
			}
		}
	})

	t.Run("entries of missing or final messages are repaired", func(t *testing.T) {
		c := cmpID(3)
		prefix := idPrefix(c)
		mustPlan(t, s, []campaigns.Message{planned(c, 1, 1, 0, at(0)), planned(c, 1, 2, 0, at(1)), planned(c, 1, 3, 0, at(2))}, "")
		// Corrupt by hand: message 1 vanishes, message 2 is final but keeps its due entry.
		err := workspaceDB(t, s).Update(context.Background(), func(tx *bolt.Tx) error {
			m1, m2 := planned(c, 1, 1, 0, at(0)), planned(c, 1, 2, 0, at(1))
			if err := tx.Bucket(bucketOutbox).Delete(outboxKey(nil, &m1)); err != nil {
				return err
			}
			m2.Status = campaigns.Sent
			return tx.Bucket(bucketOutbox).Put(outboxKey(nil, &m2), appendMessage(nil, &m2, codeSent))
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := contactsOf(mustClaim(t, s, c, at(5), lease, 1)); !reflect.DeepEqual(got, []string{"003/0/1"}) {
			t.Errorf("claimed %v, want only contact 3", got)
		}
		_ = workspaceDB(t, s).View(func(tx *bolt.Tx) error {
			var left []string
			cur := tx.Bucket(bucketOutboxDue).Cursor()
			for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
				left = append(left, fmt.Sprintf("%q", k))
			}
			if len(left) != 1 {
				t.Errorf("due entries left: %v, want only the claimed message's", left)
			}
			return nil
		})
	})
}

func TestSaveMessages(t *testing.T) {
	ctx := context.Background()
	c := cmpID(1)
	t0 := fixedTime
	lease := time.Minute
	for _, tc := range []struct {
		name   string
		edit   func(m *campaigns.Message)
		claims []time.Time // claim attempts after the save and whether each should find the message
		finds  []bool
		counts campaigns.Counts
	}{
		{
			name: "sent",
			edit: func(m *campaigns.Message) {
				m.Status, m.Channel, m.To, m.ProviderID, m.SentAt = campaigns.Sent, "smtp", "a@example.com", "p-1", t0.Add(time.Second)
			},
			claims: []time.Time{t0.Add(time.Hour)}, finds: []bool{false},
			counts: campaigns.Counts{Planned: 2, Queued: 1, Sent: 1},
		},
		{
			name: "sent, billed as 3 SMS segments",
			edit: func(m *campaigns.Message) {
				m.Status, m.Channel, m.To, m.ProviderID, m.SentAt, m.Units = campaigns.Sent, "sms", "+33612345678", "SM1", t0.Add(time.Second), 3
			},
			claims: []time.Time{t0.Add(time.Hour)}, finds: []bool{false},
			counts: campaigns.Counts{Planned: 2, Queued: 1, Sent: 1, Units: 3},
		},
		{
			name: "sent with a variant, a trigger and units",
			edit: func(m *campaigns.Message) {
				m.Status, m.Channel, m.SentAt, m.Units, m.Variant, m.Trigger = campaigns.Sent, "sms", t0, 1, 2, "evt_1"
			},
			claims: []time.Time{t0.Add(time.Hour)}, finds: []bool{false},
			counts: campaigns.Counts{Planned: 2, Queued: 1, Sent: 1, Units: 1},
		},
		{
			name:   "failed",
			edit:   func(m *campaigns.Message) { m.Status, m.Error = campaigns.Failed, "refused: bad address" },
			claims: []time.Time{t0.Add(time.Hour)}, finds: []bool{false},
			counts: campaigns.Counts{Planned: 2, Queued: 1, Failed: 1},
		},
		{
			name: "retry later",
			edit: func(m *campaigns.Message) {
				m.Status, m.Due, m.Error = campaigns.Queued, t0.Add(30*time.Minute), "timeout"
			},
			claims: []time.Time{t0.Add(29 * time.Minute), t0.Add(30 * time.Minute)}, finds: []bool{false, true},
			counts: campaigns.Counts{Planned: 2, Queued: 2},
		},
		{
			name:   "still sending, longer lease",
			edit:   func(m *campaigns.Message) { m.Due = t0.Add(2 * time.Hour) },
			claims: []time.Time{t0.Add(time.Hour), t0.Add(2 * time.Hour)}, finds: []bool{false, true},
			counts: campaigns.Counts{Planned: 2, Queued: 1, Sending: 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := segStore(t)
			mustPlan(t, s, []campaigns.Message{planned(c, 1, 1, 0, t0), planned(c, 1, 2, 0, t0.Add(24*time.Hour))}, "")
			claimed := mustClaim(t, s, c, t0, lease, 10)
			if len(claimed) != 1 {
				t.Fatalf("claimed %d", len(claimed))
			}
			m := claimed[0]
			tc.edit(&m)
			if err := s.SaveMessages(ctx, "acme", []campaigns.Message{m}); err != nil {
				t.Fatal(err)
			}
			want := m
			want.Due, want.SentAt = storedTime(m.Due), storedTime(m.SentAt)
			if got := mustGetMessage(t, s, m.ID()); !reflect.DeepEqual(got, want) {
				t.Errorf("stored %+v, want %+v", got, want)
			}
			if counts := checkOutbox(t, s, c); counts != tc.counts {
				t.Errorf("counts %+v, want %+v", counts, tc.counts)
			}
			if tc.counts.Units > 0 {
				_, byChannel, err := s.CampaignBreakdown(ctx, "acme", c)
				if err != nil || byChannel[m.Channel].Units != tc.counts.Units {
					t.Errorf("breakdown by channel %+v, %v: want %d units on %s", byChannel, err, tc.counts.Units, m.Channel)
				}
			}
			for i, now := range tc.claims {
				got := mustClaim(t, s, c, now, lease, 10)
				if found := len(got) == 1 && got[0].ID() == m.ID(); found != tc.finds[i] || len(got) > 1 {
					t.Errorf("claim at %v: %v, want found=%v", now, contactsOf(got), tc.finds[i])
				}
			}
			checkOutbox(t, s, c)
		})
	}

	t.Run("a key given twice is applied in order", func(t *testing.T) {
		s := segStore(t)
		mustPlan(t, s, []campaigns.Message{planned(c, 1, 1, 0, t0), planned(c, 1, 2, 0, t0)}, "")
		claimed := mustClaim(t, s, c, t0, lease, 10)
		retry, sent, other := claimed[0], claimed[0], claimed[1]
		retry.Status, retry.Due = campaigns.Queued, t0.Add(time.Hour)
		sent.Status, sent.SentAt = campaigns.Sent, t0
		other.Status = campaigns.Skipped
		if err := s.SaveMessages(ctx, "acme", []campaigns.Message{retry, other, sent}); err != nil {
			t.Fatal(err)
		}
		if got := mustGetMessage(t, s, sent.ID()); got.Status != campaigns.Sent {
			t.Errorf("stored %+v, want the later save", got)
		}
		if counts := checkOutbox(t, s, c); counts != (campaigns.Counts{Planned: 2, Sent: 1, Skipped: 1}) {
			t.Errorf("counts %+v", counts)
		}
		// A final message never goes back to the queue.
		retry.Due = t0.Add(2 * time.Hour)
		if err := s.SaveMessages(ctx, "acme", []campaigns.Message{retry}); err != nil {
			t.Fatal(err)
		}
		if got := mustGetMessage(t, s, sent.ID()); got.Status != campaigns.Sent {
			t.Errorf("a sent message saved queued: %+v", got)
		}
	})

	t.Run("unknown key fails, nothing written", func(t *testing.T) {
		s := segStore(t)
		mustPlan(t, s, []campaigns.Message{planned(c, 1, 1, 0, t0)}, "")
		known := mustClaim(t, s, c, t0, lease, 1)[0]
		known.Status = campaigns.Sent
		rows := campaignRows(t, s)
		err := s.SaveMessages(ctx, "acme", []campaigns.Message{known, planned(c, 1, 9, 0, t0)})
		if !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("SaveMessages with an unknown key: want ErrNotFound, got %v", err)
		}
		if diff := diffDumps(rows, campaignRows(t, s)); len(diff) > 0 {
			t.Errorf("failed save wrote: %v", diff)
		}
		bad := known
		bad.Status = "lost"
		if err := s.SaveMessages(ctx, "acme", []campaigns.Message{bad}); !isValidation(err) {
			t.Errorf("unknown status: want a validation error, got %v", err)
		}
	})
}

func TestCancelAndReleaseMessages(t *testing.T) {
	ctx := context.Background()
	c := cmpID(1)
	t0 := fixedTime
	s := segStore(t)
	var msgs []campaigns.Message
	for i := range 6 {
		msgs = append(msgs, planned(c, 1, i, 0, t0.Add(time.Duration(i)*time.Second)))
	}
	msgs = append(msgs, planned(c, 1, 6, 0, t0.Add(24*time.Hour)))
	mustPlan(t, s, msgs, "")
	claimed := mustClaim(t, s, c, t0.Add(3*time.Second), time.Hour, 3) // contacts 0, 1, 2
	sent := claimed[0]
	sent.Status = campaigns.Sent
	if err := s.SaveMessages(ctx, "acme", []campaigns.Message{sent}); err != nil {
		t.Fatal(err)
	}

	// At start, what was sending is handed back at once: claimable at now, with its attempts.
	now := t0.Add(time.Minute)
	if n, err := s.ReleaseClaims(ctx, "acme", c, now); err != nil || n != 2 {
		t.Fatalf("ReleaseClaims = %d, %v; want 2", n, err)
	}
	checkOutbox(t, s, c)
	// The released ones are due at now, after the queued ones due earlier.
	if got := contactsOf(mustClaim(t, s, c, now, time.Hour, 10)); !reflect.DeepEqual(got, []string{"003/0/1", "004/0/1", "005/0/1", "001/0/2", "002/0/2"}) {
		t.Errorf("claimed after release %v", got)
	}
	if n, err := s.ReleaseClaims(ctx, "acme", cmpID(2), now); err != nil || n != 0 {
		t.Errorf("ReleaseClaims of another campaign = %d, %v", n, err)
	}

	n, err := s.CancelMessages(ctx, "acme", c)
	if err != nil || n != 6 {
		t.Fatalf("CancelMessages = %d, %v; want 6 (1 queued, 5 sending)", n, err)
	}
	if counts := checkOutbox(t, s, c); counts != (campaigns.Counts{Planned: 7, Sent: 1, Cancelled: 6}) {
		t.Errorf("counts %+v", counts)
	}
	if got := mustGetMessage(t, s, msgs[6].ID()); got.Status != campaigns.MessageCancelled || got.Attempts != 0 {
		t.Errorf("cancelled message %+v", got)
	}
	if got := mustClaim(t, s, c, t0.Add(24*time.Hour), time.Hour, 10); len(got) != 0 {
		t.Errorf("claimed after cancel: %v", contactsOf(got))
	}
	if n, err := s.CancelMessages(ctx, "acme", c); err != nil || n != 0 {
		t.Errorf("second CancelMessages = %d, %v", n, err)
	}
}

func TestListAndGetMessages(t *testing.T) {
	ctx := context.Background()
	c := cmpID(1)
	t0 := fixedTime
	s := segStore(t)
	var all []string
	for run := 1; run <= 2; run++ {
		var msgs []campaigns.Message
		for i := range 4 {
			for slot := range 2 {
				m := planned(c, run, i, slot, t0)
				msgs = append(msgs, m)
				all = append(all, m.ID())
			}
		}
		mustPlan(t, s, msgs, "")
	}
	mustPlan(t, s, []campaigns.Message{planned(cmpID(2), 1, 0, 0, t0)}, "")
	// Every third message sent.
	var sent []string
	var save []campaigns.Message
	for i, id := range all {
		if i%3 == 0 {
			m := mustGetMessage(t, s, id)
			m.Status = campaigns.Sent
			save = append(save, m)
			sent = append(sent, id)
		}
	}
	if err := s.SaveMessages(ctx, "acme", save); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		status campaigns.MessageStatus
		limit  int
		want   []string
	}{
		{"all, pages of 3", "", 3, all},
		{"all, one page", "", 1000, all},
		{"sent, pages of 2", campaigns.Sent, 2, sent},
		{"queued, pages of 5", campaigns.Queued, 5, slices.DeleteFunc(slices.Clone(all), func(id string) bool { return slices.Contains(sent, id) })},
		{"none failed", campaigns.Failed, 10, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			after := ""
			for pages := 0; ; pages++ {
				if pages > len(all) {
					t.Fatal("paging does not end")
				}
				page, next, err := s.ListMessages(ctx, "acme", c, tc.status, after, tc.limit)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) > tc.limit {
					t.Fatalf("page of %d, limit %d", len(page), tc.limit)
				}
				for _, m := range page {
					if tc.status != "" && m.Status != tc.status {
						t.Errorf("%s has status %s", m.ID(), m.Status)
					}
					got = append(got, m.ID())
				}
				if next == "" {
					break
				}
				if next != page[len(page)-1].ID() {
					t.Errorf("next cursor %q is not the page's last id", next)
				}
				after = next
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("listed\n%v\nwant\n%v", got, tc.want)
			}
		})
	}

	for _, tc := range []struct {
		name   string
		status campaigns.MessageStatus
		after  string
		limit  int
		field  string
	}{
		{"garbage cursor", "", "nope", 10, "cursor"},
		{"another campaign's id as cursor", "", cmpID(2) + ".1." + ctID(0) + ".0", 10, "cursor"},
		{"limit 0", "", "", 0, "limit"},
		{"limit 1001", "", "", 1001, "limit"},
		{"unknown status", "lost", "", 10, "status"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := s.ListMessages(ctx, "acme", c, tc.status, tc.after, tc.limit)
			var ve *errs.ValidationError
			if !errors.As(err, &ve) || ve.Fields[0].Field != tc.field {
				t.Errorf("want a validation error on %q, got %v", tc.field, err)
			}
		})
	}

	t.Run("get", func(t *testing.T) {
		m := mustGetMessage(t, s, all[0])
		want := planned(c, 1, 0, 0, t0)
		want.Status = campaigns.Sent
		if !reflect.DeepEqual(m, want) {
			t.Errorf("GetMessage = %+v, want %+v", m, want)
		}
		if _, err := s.GetMessage(ctx, "acme", "not.an.id"); !isValidation(err) {
			t.Errorf("bad id: want a validation error, got %v", err)
		}
		if _, err := s.GetMessage(ctx, "acme", c+".3."+ctID(0)+".0"); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("absent id: want ErrNotFound, got %v", err)
		}
	})
}

func TestCampaignRecordsAndAudit(t *testing.T) {
	ctx := context.Background()
	s := segStore(t)
	camp := func(n int) campaigns.Campaign {
		return campaigns.Campaign{
			ID: cmpID(n), Name: fmt.Sprintf("Campaign %d", n), Status: campaigns.Draft, Strategy: campaigns.StrategyAll,
			Audience: campaigns.Audience{Include: []string{"seg"}}, Channels: []campaigns.Channel{{Plugin: "smtp", Content: map[string]string{"subject": "Hi"}}},
			Schedule: campaigns.Schedule{Kind: campaigns.SendNow}, CreatedAt: fixedTime, UpdatedAt: fixedTime,
		}
	}
	for _, n := range []int{2, 1, 3} {
		if err := s.PutCampaign(ctx, "acme", camp(n)); err != nil {
			t.Fatal(err)
		}
	}
	edited := camp(2)
	edited.Name = "Renamed"
	if err := s.PutCampaign(ctx, "acme", edited); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetCampaign(ctx, "acme", cmpID(2)); err != nil || !reflect.DeepEqual(got, edited) {
		t.Errorf("GetCampaign = %+v, %v", got, err)
	}
	if _, err := s.GetCampaign(ctx, "acme", cmpID(9)); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("GetCampaign of an absent id: want ErrNotFound, got %v", err)
	}
	list, err := s.ListCampaigns(ctx, "acme")
	if err != nil || !reflect.DeepEqual(list, []campaigns.Campaign{camp(1), edited, camp(3)}) {
		t.Errorf("ListCampaigns = %+v, %v", list, err)
	}

	entries := []campaigns.AuditEntry{
		{At: fixedTime.Add(time.Minute), Action: "launched", Actor: "user:1"},
		{At: fixedTime.Add(time.Minute), Action: "paused", Actor: "engine", Detail: "channel failing"}, // same time: append order
		{At: fixedTime, Action: "created", Actor: "user:1"},                                            // earlier: first
	}
	for _, e := range entries {
		if err := appendAudit(ctx, s, cmpID(1), e); err != nil {
			t.Fatal(err)
		}
	}
	if err := appendAudit(ctx, s, cmpID(2), entries[0]); err != nil {
		t.Fatal(err)
	}
	got, err := s.Audit(ctx, "acme", cmpID(1))
	if want := []campaigns.AuditEntry{entries[2], entries[0], entries[1]}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Audit = %+v, %v; want %+v", got, err, want)
	}
}

func TestDeleteCampaign(t *testing.T) {
	ctx := context.Background()
	s := segStore(t)
	gone, kept := cmpID(1), cmpID(10) // cmpID(10) does not start with cmpID(1)'s prefix, but sorts right after it
	for _, c := range []string{gone, kept} {
		if err := s.PutCampaign(ctx, "acme", campaigns.Campaign{ID: c, Name: c}); err != nil {
			t.Fatal(err)
		}
		if err := appendAudit(ctx, s, c, campaigns.AuditEntry{At: fixedTime, Action: "created"}); err != nil {
			t.Fatal(err)
		}
		n := 10
		if c == gone {
			n = 2*deleteChunk + 100 // several chunks of prefix deletes
		}
		var msgs []campaigns.Message
		for i := range n {
			msgs = append(msgs, planned(c, 1, i, 0, fixedTime))
		}
		mustPlan(t, s, msgs, ctID(n-1))
		mustPlan(t, s, []campaigns.Message{planned(c, 2, 0, 0, fixedTime)}, "")
		if err := s.FinishPlan(ctx, "acme", c, 1); err != nil {
			t.Fatal(err)
		}
		mustClaim(t, s, c, fixedTime, time.Hour, 5)
	}
	rowsOf := func(rows map[string]string, c string) map[string]string {
		out := map[string]string{}
		for k, v := range rows {
			for _, name := range campaignBuckets {
				p := string(name) + "/" + c
				if k == p || len(k) > len(p) && k[:len(p)] == p && k[len(p)] == 0 {
					out[k] = v
				}
			}
		}
		return out
	}
	before := campaignRows(t, s)
	if len(rowsOf(before, gone)) < 2*(2*deleteChunk+100) {
		t.Fatalf("setup: only %d rows of the campaign", len(rowsOf(before, gone)))
	}
	if err := s.DeleteCampaign(ctx, "acme", gone); err != nil {
		t.Fatal(err)
	}
	after := campaignRows(t, s)
	if left := rowsOf(after, gone); len(left) > 0 {
		t.Errorf("%d rows of the deleted campaign left, e.g. %q", len(left), slices.Sorted(maps.Keys(left))[0])
	}
	if diff := diffDumps(rowsOf(before, kept), after); len(diff) > 0 {
		t.Errorf("other campaign's rows changed: %v", diff)
	}
	checkOutbox(t, s, kept)
	if err := s.DeleteCampaign(ctx, "acme", gone); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("second delete: want ErrNotFound, got %v", err)
	}
}

// After any sequence of plans, claims, saves, releases and cancels, the stored counts equal a recount of the outbox
// and every pending message has exactly one due entry.
func TestOutboxCountsStayExact(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 11))
	s := segStore(t)
	c := cmpID(1)
	now := fixedTime
	var claimed []campaigns.Message
	statuses := []campaigns.MessageStatus{campaigns.Sent, campaigns.Failed, campaigns.Skipped, campaigns.Queued, campaigns.Sending}
	for step := range 300 {
		now = now.Add(time.Duration(rng.IntN(30)) * time.Second)
		switch op := rng.IntN(20); {
		case op < 6:
			run := 1 + rng.IntN(2)
			var msgs []campaigns.Message
			for range rng.IntN(40) {
				msgs = append(msgs, planned(c, run, rng.IntN(200), rng.IntN(3), now.Add(time.Duration(rng.IntN(120)-60)*time.Second)))
			}
			running(t, s, "acme", c, run)
			if _, err := s.PlanMessages(ctx, "acme", msgs, "x"); err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
		case op < 12:
			got, err := s.ClaimMessages(ctx, "acme", c, now, time.Duration(1+rng.IntN(60))*time.Second, 1+rng.IntN(50))
			if err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
			claimed = append(claimed, got...)
		case op < 18:
			rng.Shuffle(len(claimed), func(i, j int) { claimed[i], claimed[j] = claimed[j], claimed[i] })
			n := rng.IntN(len(claimed) + 1)
			batch := claimed[:n]
			for i := range batch {
				batch[i].Status = statuses[rng.IntN(len(statuses))]
				batch[i].Due = now.Add(time.Duration(rng.IntN(120)) * time.Second)
			}
			if err := s.SaveMessages(ctx, "acme", batch); err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
			claimed = slices.Clone(claimed[n:])
		case op < 19:
			if _, err := s.ReleaseClaims(ctx, "acme", c, now); err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
		default:
			if _, err := s.CancelMessages(ctx, "acme", c); err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
		}
		checkOutbox(t, s, c)
		if t.Failed() {
			t.Fatalf("inconsistent after step %d", step)
		}
	}
	if counts := checkOutbox(t, s, c); counts.Planned < 100 || counts.Sent == 0 || counts.Cancelled == 0 {
		t.Errorf("the sequence exercised too little: %+v", counts)
	}
}

// A workspace file at schema 5 (before campaigns) opens and gets the campaign buckets.
func TestMigrateToCampaignBuckets(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	mustCreateWorkspaces(t, s, "acme")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, workspaceDir, "acme.db")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	db := openRawBolt(t, path)
	if err := migrate(db, kindWorkspace, "acme", workspaceMigrations()[:5]); err != nil {
		t.Fatal(err)
	}
	_ = db.View(func(tx *bolt.Tx) error {
		for _, name := range campaignBuckets {
			if tx.Bucket(name) != nil {
				t.Errorf("schema 5 file has bucket %s", name)
			}
		}
		return nil
	})
	if v := storedVersion(t, db); v != 5 {
		t.Fatalf("built a version %d file", v)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, dir)
	_ = workspaceDB(t, s).View(func(tx *bolt.Tx) error {
		if v, latest := schemaVersion(tx), workspaceMigrations()[len(workspaceMigrations())-1].version; v != latest {
			t.Errorf("schema version %d after opening, want %d", v, latest)
		}
		for _, name := range campaignBuckets {
			if tx.Bucket(name) == nil {
				t.Errorf("bucket %s missing after the migration", name)
			}
		}
		return nil
	})
	running(t, s, "acme", cmpID(1), 1)
	if n, err := s.PlanMessages(context.Background(), "acme", []campaigns.Message{planned(cmpID(1), 1, 1, 0, fixedTime)}, ""); err != nil || n != 1 {
		t.Errorf("PlanMessages after the migration = %d, %v", n, err)
	}
}

// BenchmarkOutbox runs a campaign's outbox through the store as the engine does, with fsync on: plan 100k messages
// in pages of 1000, claim them in batches of 500, save each batch sent. It reports messages per second per phase.
// OUTBOX_NOFSYNC=1 runs it with fsync off, to see the CPU cost alone.
func BenchmarkOutbox(b *testing.B) {
	const total, planBatch, claimBatch = 100_000, 1000, 500
	ctx := context.Background()
	s, err := Open(ctx, Options{Dir: b.TempDir(), Fsync: os.Getenv("OUTBOX_NOFSYNC") == "", Logger: hclog.NewNullLogger()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	if err := s.CreateWorkspace(ctx, testWorkspace("bench")); err != nil {
		b.Fatal(err)
	}
	var planT, claimT, saveT time.Duration
	iter := 0
	for b.Loop() {
		iter++
		c := cmpID(iter)
		now := fixedTime
		running(b, s, "bench", c, 1)
		start := time.Now()
		msgs := make([]campaigns.Message, 0, planBatch)
		for i := 0; i < total; i += planBatch {
			msgs = msgs[:0]
			for j := i; j < i+planBatch; j++ {
				msgs = append(msgs, campaigns.Message{Campaign: c, Run: 1, Contact: ctID(j), Due: now, PlannedAt: now})
			}
			if n, err := s.PlanMessages(ctx, "bench", msgs, ctID(i+planBatch-1)); err != nil || n != planBatch {
				b.Fatalf("PlanMessages = %d, %v", n, err)
			}
		}
		planT += time.Since(start)
		done := 0
		for done < total {
			start = time.Now()
			batch, err := s.ClaimMessages(ctx, "bench", c, now, time.Minute, claimBatch)
			if err != nil || len(batch) == 0 {
				b.Fatalf("ClaimMessages = %d, %v", len(batch), err)
			}
			claimT += time.Since(start)
			start = time.Now()
			for i := range batch {
				m := &batch[i]
				m.Status, m.Channel, m.To, m.ProviderID, m.SentAt = campaigns.Sent, "smtp", "someone@example.com", "0100018f-provider-id", now
			}
			if err := s.SaveMessages(ctx, "bench", batch); err != nil {
				b.Fatal(err)
			}
			saveT += time.Since(start)
			done += len(batch)
		}
	}
	n := float64(iter * total)
	b.ReportMetric(n/planT.Seconds(), "plan-msgs/s")
	b.ReportMetric(n/claimT.Seconds(), "claim-msgs/s")
	b.ReportMetric(n/saveT.Seconds(), "save-msgs/s")
	b.ReportMetric(n/(planT+claimT+saveT).Seconds(), "msgs/s")
}

func TestPlanTriggered(t *testing.T) {
	ctx := context.Background()
	s := segStore(t)
	c := cmpID(7)
	running(t, s, "acme", c, 1)
	hit := func(contact, run int, at time.Time, gap time.Duration) campaigns.TriggerHit {
		m := planned(c, run, contact, 0, at)
		m.Trigger = fmt.Sprintf("event-%d-%d", contact, run)
		return campaigns.TriggerHit{Campaign: c, Contact: ctID(contact), At: at, Gap: gap, Messages: []campaigns.Message{m}}
	}
	t0 := fixedTime
	for _, tt := range []struct {
		name     string
		hits     []campaigns.TriggerHit
		accepted int
		planned  int // the campaign's planned count after the step
	}{
		{"first triggers", []campaigns.TriggerHit{hit(1, 1, t0, -1), hit(2, 5, t0, time.Hour), hit(3, 9, t0, 0)}, 3, 3},
		{"once ever: dropped", []campaigns.TriggerHit{hit(1, 2, t0.Add(48*time.Hour), -1)}, 0, 3},
		{"within the gap: dropped", []campaigns.TriggerHit{hit(2, 6, t0.Add(59*time.Minute), time.Hour)}, 0, 3},
		{"after the gap: planned", []campaigns.TriggerHit{hit(2, 7, t0.Add(61*time.Minute), time.Hour)}, 1, 4},
		{"always: planned", []campaigns.TriggerHit{hit(3, 10, t0.Add(time.Second), 0)}, 1, 5},
		{"always, the same trigger again: accepted, nothing planned twice", []campaigns.TriggerHit{hit(3, 10, t0.Add(2*time.Second), 0)}, 1, 5},
		{"two hits of one contact in one call: the second within the gap", []campaigns.TriggerHit{hit(4, 1, t0, time.Hour), hit(4, 2, t0.Add(time.Minute), time.Hour)}, 1, 6},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n, err := s.PlanTriggered(ctx, "acme", tt.hits)
			if err != nil || n != tt.accepted {
				t.Fatalf("accepted %d, %v; want %d", n, err, tt.accepted)
			}
			counts, err := s.CampaignCounts(ctx, "acme", c)
			if err != nil || counts.Planned != tt.planned || counts.Queued != tt.planned {
				t.Fatalf("counts %+v, %v; want %d planned", counts, err, tt.planned)
			}
		})
	}
	want := hit(2, 7, t0, 0).Messages[0]
	got := mustGetMessage(t, s, want.ID())
	if got.Trigger != "event-2-7" || got.Status != campaigns.Queued {
		t.Fatalf("triggered message read back: %+v", got)
	}
	// The first hit's message too (messages planned by PlanMessages, without a trigger, are read back by the tests above).
	first := planned(c, 1, 1, 0, t0)
	if m := mustGetMessage(t, s, first.ID()); m.Trigger != "event-1-1" {
		t.Fatalf("%+v", m)
	}
	// Refused: a hit whose messages are another contact's.
	bad := hit(5, 1, t0, 0)
	bad.Messages[0].Contact = ctID(6)
	if _, err := s.PlanTriggered(ctx, "acme", []campaigns.TriggerHit{bad}); !isValidation(err) {
		t.Fatalf("mismatched hit: %v", err)
	}
	// A paused or deleted campaign takes no trigger; deleting it forgets its triggers, so the once-ever contact may
	// enter a new campaign of that id.
	if err := s.PutCampaign(ctx, "acme", campaigns.Campaign{ID: c, Name: "x", Status: campaigns.Paused, Runs: 1}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PlanTriggered(ctx, "acme", []campaigns.TriggerHit{hit(8, 1, t0, 0)}); err != nil || n != 0 {
		t.Fatalf("a paused campaign's trigger: %d, %v", n, err)
	}
	if err := s.DeleteCampaign(ctx, "acme", c); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PlanTriggered(ctx, "acme", []campaigns.TriggerHit{hit(1, 3, t0, -1)}); err != nil || n != 0 {
		t.Fatalf("a deleted campaign's trigger: %d, %v", n, err)
	}
	running(t, s, "acme", c, 1)
	if n, err := s.PlanTriggered(ctx, "acme", []campaigns.TriggerHit{hit(1, 3, t0, -1)}); err != nil || n != 1 {
		t.Fatalf("after deleting the campaign: %d, %v", n, err)
	}
}

func TestPlanningStopsWithTheCampaign(t *testing.T) {
	ctx := context.Background()
	s := segStore(t)
	c := cmpID(9)
	for _, tt := range []struct {
		name   string
		record *campaigns.Campaign
	}{
		{"no campaign", nil},
		{"cancelled", &campaigns.Campaign{ID: c, Name: "x", Status: campaigns.Cancelled, Runs: 1}},
		{"another run", &campaigns.Campaign{ID: c, Name: "x", Status: campaigns.Running, Runs: 2}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.record != nil {
				if err := s.PutCampaign(ctx, "acme", *tt.record); err != nil {
					t.Fatal(err)
				}
			}
			if n, err := s.PlanMessages(ctx, "acme", []campaigns.Message{planned(c, 1, 1, 0, fixedTime)}, "x"); !errors.Is(err, errs.ErrConflict) || n != 0 {
				t.Fatalf("PlanMessages = %d, %v; want a conflict", n, err)
			}
			if counts, _ := s.CampaignCounts(ctx, "acme", c); counts.Planned != 0 {
				t.Fatalf("counts %+v", counts)
			}
		})
	}
}

func TestACancelledMessageStaysCancelled(t *testing.T) {
	ctx := context.Background()
	s := segStore(t)
	c := cmpID(10)
	mustPlan(t, s, []campaigns.Message{planned(c, 1, 1, 0, fixedTime), planned(c, 1, 2, 0, fixedTime)}, "")
	claimed, err := s.ClaimMessages(ctx, "acme", c, fixedTime, time.Minute, 10)
	if err != nil || len(claimed) != 2 {
		t.Fatalf("claim: %d, %v", len(claimed), err)
	}
	if n, err := s.CancelMessages(ctx, "acme", c); err != nil || n != 2 {
		t.Fatalf("cancel: %d, %v", n, err)
	}
	// The batch claimed before the Cancel answers: one retry, one sent.
	claimed[0].Status, claimed[0].Due = campaigns.Queued, fixedTime.Add(time.Minute)
	claimed[1].Status, claimed[1].SentAt, claimed[1].Channel = campaigns.Sent, fixedTime, "email"
	if err := s.SaveMessages(ctx, "acme", claimed); err != nil {
		t.Fatal(err)
	}
	first := planned(c, 1, 1, 0, fixedTime)
	if m := mustGetMessage(t, s, first.ID()); m.Status != campaigns.MessageCancelled {
		t.Fatalf("a cancelled message back to %s", m.Status)
	}
	counts, _ := s.CampaignCounts(ctx, "acme", c)
	if counts.Queued != 0 || counts.Sending != 0 || counts.Cancelled != 1 || counts.Sent != 1 {
		t.Fatalf("counts %+v", counts)
	}
	_, channels, err := s.CampaignBreakdown(ctx, "acme", c)
	if err != nil || channels["email"].Sent != 1 {
		t.Fatalf("breakdown %+v, %v", channels, err)
	}
	if got, _ := s.ClaimMessages(ctx, "acme", c, fixedTime.Add(time.Hour), time.Minute, 10); len(got) != 0 {
		t.Fatalf("claimed %d after the cancel", len(got))
	}
}

func TestTrackedEvent(t *testing.T) {
	ctx := context.Background()
	s := segStore(t)
	putTestEvents(t, s, testEvent("c1", "m-1", events.Track, "Cart Abandoned", fixedTime))
	e, ok, err := s.TrackedEvent(ctx, "acme", "m-1")
	if err != nil || !ok || e.Name != "Cart Abandoned" || e.ContactID != "c1" || string(e.Properties) == "" {
		t.Fatalf("TrackedEvent: %+v, %v, %v", e, ok, err)
	}
	if _, ok, err := s.TrackedEvent(ctx, "acme", "m-2"); ok || err != nil {
		t.Fatalf("an unknown id: %v, %v", ok, err)
	}
}

func TestSendLog(t *testing.T) {
	ctx := context.Background()
	s := segStore(t)
	c := cmpID(8)
	msgs := []campaigns.Message{planned(c, 1, 1, 0, fixedTime), planned(c, 1, 1, 1, fixedTime), planned(c, 1, 2, 0, fixedTime), planned(c, 1, 3, 0, fixedTime)}
	mustPlan(t, s, msgs, "")
	for i := range msgs {
		msgs[i].Status, msgs[i].SentAt = campaigns.Sent, fixedTime.Add(time.Duration(i)*time.Hour)
	}
	msgs[2].Transactional = true                                   // contact 2: not counted
	msgs[3].Status, msgs[3].SentAt = campaigns.Failed, time.Time{} // contact 3: not sent
	if err := s.SaveMessages(ctx, "acme", msgs); err != nil {
		t.Fatal(err)
	}
	// Saving a sent message again (no status change) logs nothing more.
	if err := s.SaveMessages(ctx, "acme", msgs[:1]); err != nil {
		t.Fatal(err)
	}
	ids := []string{ctID(1), ctID(2), ctID(3), ctID(1)}
	for _, tt := range []struct {
		since time.Time
		want  map[string]int
	}{
		{fixedTime, map[string]int{ctID(1): 2}},
		{fixedTime.Add(30 * time.Minute), map[string]int{ctID(1): 1}},
		{fixedTime.Add(2 * time.Hour), map[string]int{}},
	} {
		got, err := s.CountSends(ctx, "acme", ids, tt.since)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Fatalf("CountSends since %s = %v, %v; want %v", tt.since, got, err, tt.want)
		}
	}
	sent, err := s.SentSince(ctx, "acme", ctID(1), fixedTime.Add(30*time.Minute))
	if err != nil || len(sent) != 1 || sent[0].Campaign != c || sent[0].Slot != 1 || sent[0].Run != 1 || !sent[0].At.Equal(fixedTime.Add(time.Hour)) {
		t.Fatalf("SentSince: %+v, %v", sent, err)
	}
	if err := s.ForgetSends(ctx, "acme", ctID(1)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.CountSends(ctx, "acme", ids, fixedTime); err != nil || len(got) != 0 {
		t.Fatalf("after ForgetSends: %v, %v", got, err)
	}
}

func TestForgetAddresses(t *testing.T) {
	ctx := context.Background()
	s := segStore(t)
	a, b := cmpID(21), cmpID(22)
	msgs := []campaigns.Message{planned(a, 1, 1, 0, fixedTime), planned(a, 1, 2, 0, fixedTime), planned(b, 3, 1, 1, fixedTime)}
	for _, m := range msgs {
		mustPlan(t, s, []campaigns.Message{m}, "")
	}
	for i := range msgs {
		msgs[i].Status, msgs[i].To, msgs[i].Channel, msgs[i].SentAt = campaigns.Sent, fmt.Sprintf("c%d@example.com", i), "email", fixedTime
	}
	if err := s.SaveMessages(ctx, "acme", msgs); err != nil {
		t.Fatal(err)
	}
	n, err := s.ForgetAddresses(ctx, "acme", ctID(1))
	if err != nil || n != 2 {
		t.Fatalf("ForgetAddresses: %d, %v", n, err)
	}
	for i, want := range []string{"", "c1@example.com", ""} {
		got := mustGetMessage(t, s, msgs[i].ID())
		if got.To != want || got.Status != campaigns.Sent || got.Channel != "email" {
			t.Errorf("message %d after erasure: %+v, want to %q", i, got, want)
		}
	}
}

// appendAudit appends an audit entry to a campaign, as the service does: with the campaign's record.
func appendAudit(ctx context.Context, s *Store, id string, e campaigns.AuditEntry) error {
	c, err := s.GetCampaign(ctx, "acme", id)
	if err != nil {
		return err
	}
	return s.PutCampaign(ctx, "acme", c, e)
}
