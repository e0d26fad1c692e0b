package campaigns_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crosscast/crosscast/core/campaigns"
	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/segments"
	"github.com/crosscast/crosscast/core/store"
	"github.com/crosscast/crosscast/core/workspaces"
	"github.com/hashicorp/go-hclog"
)

// receiver is a channel standing in for a provider: it keeps what it receives and, like a provider that honours
// idempotency keys, stores a key's message once however often it is sent. fail makes whole batches fail; retry
// answers "retry" to a message the first time it sees it.
type receiver struct {
	mu    sync.Mutex
	info  campaigns.ChannelInfo
	got   map[string]campaigns.Outgoing // by idempotency key
	sends int                           // messages received, repeats included
	fail  error
	// partial, when set, makes each batch stop after its first message, as a plugin whose second call fails.
	partial error
	retry   map[string]bool
	retried map[string]bool
	times   []time.Time // when each message was received (real time)
}

func newReceiver(info campaigns.ChannelInfo) *receiver {
	return &receiver{info: info, got: map[string]campaigns.Outgoing{}, retry: map[string]bool{}, retried: map[string]bool{}}
}

func (r *receiver) setFail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = err
}

func (r *receiver) setPartial(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.partial = err
}

func (r *receiver) received() map[string]campaigns.Outgoing {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]campaigns.Outgoing, len(r.got))
	for k, v := range r.got {
		out[k] = v
	}
	return out
}

// channels is a campaigns.Channels over receivers, by name.
type channels map[string]*receiver

func (cs channels) Channel(name string) (campaigns.ChannelInfo, bool) {
	r, ok := cs[name]
	if !ok {
		return campaigns.ChannelInfo{}, false
	}
	return r.info, true
}

func (cs channels) Send(_ context.Context, _, name string, _ time.Time, msgs []campaigns.Outgoing) ([]campaigns.Outcome, error) {
	r := cs[name]
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return nil, r.fail
	}
	out := make([]campaigns.Outcome, len(msgs))
	for i, m := range msgs {
		if r.partial != nil && i > 0 {
			out[i] = campaigns.Outcome{Status: campaigns.Retry, Error: r.partial.Error()}
			continue
		}
		if r.retry[m.ContactID] && !r.retried[m.IdempotencyKey] {
			r.retried[m.IdempotencyKey] = true
			out[i] = campaigns.Outcome{Status: campaigns.Retry, Error: "mailbox busy", RetryAfter: time.Millisecond}
			continue
		}
		r.sends++
		r.times = append(r.times, time.Now())
		if _, dup := r.got[m.IdempotencyKey]; !dup {
			r.got[m.IdempotencyKey] = m
		}
		out[i] = campaigns.Outcome{Status: campaigns.Delivered, ProviderID: "p-" + m.ID}
		if name == "sms" { // billed by the segment, as sms-http reports it
			out[i].Units = 2
		}
	}
	if r.partial != nil && len(msgs) > 1 {
		return out, &campaigns.PartialError{Err: r.partial}
	}
	return out, nil
}

var (
	emailInfo = campaigns.ChannelInfo{Address: "email", Consent: "email",
		Fields: []campaigns.ContentField{{Name: "subject", Required: true}, {Name: "html"}, {Name: "text"}, {Name: "headers", SingleLine: true}}}
	smsInfo = campaigns.ChannelInfo{Address: "phone", Consent: "sms", Fields: []campaigns.ContentField{{Name: "text", Required: true}}}
)

// world is a real store with contacts, segments and campaigns services, and two channels.
type world struct {
	t     *testing.T
	dir   string
	log   hclog.Logger
	st    *store.Store
	cs    *contacts.Service
	ss    *segments.Service
	camp  *campaigns.Service
	chans channels
	opts  campaigns.Options
	stop  context.CancelFunc
	// offset moves the services' clock ahead of the real one (advance).
	mu     sync.Mutex
	offset time.Duration
}

func (w *world) now() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return time.Now().Add(w.offset)
}

func (w *world) advance(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.offset += d
}

func newWorld(t *testing.T, opts campaigns.Options) *world {
	w := &world{t: t, dir: t.TempDir(), log: hclog.New(&hclog.LoggerOptions{Output: t.Output(), Level: hclog.Warn}),
		chans: channels{"email": newReceiver(emailInfo), "sms": newReceiver(smsInfo)}, opts: opts}
	w.open()
	if _, err := workspaces.NewService(w.st, w.log, nil).Create(context.Background(), workspaces.CreateInput{ID: "acme"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.close)
	return w
}

// open starts the store and the services (again after close: a restart).
func (w *world) open() {
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{Dir: w.dir, Logger: w.log})
	if err != nil {
		w.t.Fatal(err)
	}
	stream := contacts.NewStream()
	w.st = st
	w.ss = segments.NewService(st, stream, w.log, w.now)
	w.cs = contacts.NewService(st, nil, stream, w.log, w.now)
	w.camp = campaigns.NewService(st, w.ss, w.chans, w.log, w.now, w.opts)
	stream.Subscribe(w.camp.OnChange)
	w.ss.Subscribe(w.camp.OnTransitions)
	var run context.Context
	run, w.stop = context.WithCancel(ctx)
	var spaces []string
	if _, err := st.GetWorkspace(ctx, "acme"); err == nil {
		spaces = []string{"acme"} // a restart
	}
	if err := w.camp.Start(run, spaces); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) close() {
	if w.st == nil {
		return
	}
	w.stop()
	w.camp.Close()
	w.ss.Close()
	_ = w.st.Close()
	w.st = nil
}

func (w *world) contact(email, phone string, consent map[string]contacts.ConsentStatus, attrs map[string]any) contacts.Contact {
	w.t.Helper()
	f := contacts.Fields{Attributes: attrs, Consent: consent}
	if email != "" {
		f.Email = &email
	}
	if phone != "" {
		f.Phone = &phone
	}
	c, _, err := w.cs.Upsert(context.Background(), "acme", f, "api")
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

func (w *world) segment(name, rule string) string {
	w.t.Helper()
	raw, _ := json.Marshal(rule)
	seg, err := w.ss.Create(context.Background(), "acme", segments.Input{Name: &name, Rule: raw})
	if err != nil {
		w.t.Fatal(err)
	}
	return seg.ID
}

func (w *world) create(in campaigns.Input) campaigns.View {
	w.t.Helper()
	v, err := w.camp.Create(context.Background(), "acme", in, "test")
	if err != nil {
		w.t.Fatal(err)
	}
	return v
}

// wait polls the campaign until cond holds, or fails after a deadline.
func (w *world) wait(id string, what string, cond func(campaigns.View) bool) campaigns.View {
	w.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, err := w.camp.Get(context.Background(), "acme", id)
		if err != nil {
			w.t.Fatal(err)
		}
		if cond(v) {
			return v
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%s: still %s, progress %+v, reason %q", what, v.Status, v.Progress, v.Reason)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ptr[T any](v T) *T { return &v }

var sub = contacts.Subscribed

func emailCampaign(name, seg string) campaigns.Input {
	return campaigns.Input{
		Name:     ptr(name),
		Audience: &campaigns.Audience{Include: []string{seg}},
		Channels: &[]campaigns.Channel{{Plugin: "email", Content: map[string]string{
			"subject": "Hello {{ contact.first_name | default: \"there\" }}",
			"html":    "<p>{{ contact.plan | upcase }} plan, {{ campaign.name }}</p>",
		}}},
	}
}

func TestOneOffCampaignSendsOnceToEachContactItMay(t *testing.T) {
	w := newWorld(t, campaigns.Options{Batch: 7})
	ctx := context.Background()
	want := map[string]string{} // contact -> subject
	for i := range 40 {
		consent := map[string]contacts.ConsentStatus{"email": sub}
		switch i % 10 {
		case 3:
			consent["email"] = contacts.Unsubscribed
		case 4:
			consent = nil // never asked: marketing needs a yes
		}
		attrs := map[string]any{"plan": "pro", "country": "FR"}
		if i%2 == 0 {
			attrs["first_name"] = fmt.Sprint("Ana", i)
		}
		c := w.contact(fmt.Sprintf("c%02d@example.com", i), "", consent, attrs)
		if i%10 != 3 && i%10 != 4 {
			want[c.ID] = "Hello there"
			if i%2 == 0 {
				want[c.ID] = fmt.Sprint("Hello Ana", i)
			}
		}
	}
	w.contact("de@example.com", "", map[string]contacts.ConsentStatus{"email": sub}, map[string]any{"country": "DE"})
	seg := w.segment("France", `country = "FR"`)
	c := w.create(emailCampaign("Launch", seg))
	if c.Status != campaigns.Draft {
		t.Fatalf("created as %s", c.Status)
	}
	if _, err := w.camp.Launch(ctx, "acme", c.ID, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.camp.Launch(ctx, "acme", c.ID, "test"); err != nil { // idempotent
		t.Fatalf("launching twice: %v", err)
	}
	v := w.wait(c.ID, "completion", func(v campaigns.View) bool { return v.Status == campaigns.Completed })
	if p := v.Progress; p.Planned != 40 || p.Sent != len(want) || p.Skipped != 40-len(want) || p.Remaining != 0 || p.Failed != 0 {
		t.Fatalf("progress %+v, want 40 planned, %d sent, %d skipped", p, len(want), 40-len(want))
	}
	got := w.chans["email"].received()
	if len(got) != len(want) || w.chans["email"].sends != len(want) {
		t.Fatalf("%d messages received (%d sends), want %d", len(got), w.chans["email"].sends, len(want))
	}
	for _, m := range got {
		subject := field(m, "subject")
		if want[m.ContactID] != subject {
			t.Errorf("contact %s got subject %q, want %q", m.ContactID, subject, want[m.ContactID])
		}
		if html := field(m, "html"); html != "<p>PRO plan, Launch</p>" {
			t.Errorf("html %q", html)
		}
		if !strings.HasSuffix(m.To, "@example.com") || m.IdempotencyKey != m.ID {
			t.Errorf("message %+v", m)
		}
	}
	skipped, _, err := w.camp.Messages(ctx, "acme", c.ID, campaigns.Skipped, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]int{}
	for _, m := range skipped {
		reasons[m.Error]++
	}
	if reasons["email: unsubscribed from email"] != 4 || reasons["email: not subscribed to email"] != 4 {
		t.Fatalf("skipped for %v", reasons)
	}
	// Each status change and its audit entry are one transaction: completed, and audited so.
	audit, err := w.camp.Audit(ctx, "acme", c.ID)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range audit {
		actions = append(actions, e.Action)
	}
	if strings.Join(actions, ",") != "created,launched,run started,completed" {
		t.Fatalf("audit trail %v", actions)
	}
}

func field(m campaigns.Outgoing, name string) string {
	for _, f := range m.Fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

func TestFallbackStrategyPicksTheFirstChannelTheContactCanReceive(t *testing.T) {
	w := newWorld(t, campaigns.Options{})
	ctx := context.Background()
	both := w.contact("both@example.com", "+33600000001", map[string]contacts.ConsentStatus{"email": sub, "sms": sub}, map[string]any{"vip": true})
	smsOnly := w.contact("nomail@example.com", "+33600000002", map[string]contacts.ConsentStatus{"sms": sub}, map[string]any{"vip": true})
	none := w.contact("", "+33600000003", nil, map[string]any{"vip": true})
	seg := w.segment("VIP", `vip = true`)
	in := emailCampaign("Fallback", seg)
	in.Strategy = ptr(campaigns.StrategyFallback)
	*in.Channels = append(*in.Channels, campaigns.Channel{Plugin: "sms", Content: map[string]string{"text": "Hi from {{ campaign.name }}"}})
	c := w.create(in)
	if _, err := w.camp.Launch(ctx, "acme", c.ID, "test"); err != nil {
		t.Fatal(err)
	}
	v := w.wait(c.ID, "completion", func(v campaigns.View) bool { return v.Status == campaigns.Completed })
	if v.Progress.Planned != 3 || v.Progress.Sent != 2 || v.Progress.Skipped != 1 || v.Progress.Units != 2 {
		t.Fatalf("progress %+v", v.Progress)
	}
	sent, _, _ := w.camp.Messages(ctx, "acme", c.ID, campaigns.Sent, "", 10)
	for _, m := range sent {
		if want := map[string]int{"email": 0, "sms": 2}[m.Channel]; m.Units != want {
			t.Fatalf("message on %s with %d units, want %d", m.Channel, m.Units, want)
		}
	}
	emails, texts := w.chans["email"].received(), w.chans["sms"].received()
	if len(emails) != 1 || len(texts) != 1 {
		t.Fatalf("%d emails, %d texts", len(emails), len(texts))
	}
	for _, m := range emails {
		if m.ContactID != both.ID {
			t.Fatalf("email to %s", m.ContactID)
		}
	}
	for _, m := range texts {
		if m.ContactID != smsOnly.ID || m.To != "+33600000002" || field(m, "text") != "Hi from Fallback" {
			t.Fatalf("text %+v", m)
		}
	}
	skipped, _, _ := w.camp.Messages(ctx, "acme", c.ID, campaigns.Skipped, "", 10)
	if len(skipped) != 1 || skipped[0].Contact != none.ID || skipped[0].Error != "email: no email; sms: not subscribed to sms" {
		t.Fatalf("skipped %+v", skipped)
	}
}

func TestAFailingChannelPausesTheCampaignAndNothingIsLost(t *testing.T) {
	w := newWorld(t, campaigns.Options{Batch: 5, PauseAfter: 3, RetryBase: time.Millisecond, MaxAttempts: 100, Tick: 10 * time.Millisecond})
	ctx := context.Background()
	for i := range 12 {
		w.contact(fmt.Sprintf("p%02d@example.com", i), "", map[string]contacts.ConsentStatus{"email": sub}, map[string]any{"country": "FR"})
	}
	seg := w.segment("France", `country = "FR"`)
	c := w.create(emailCampaign("Outage", seg))
	w.chans["email"].setFail(fmt.Errorf("plugin %q is quarantined: %w", "email", errs.ErrUnavailable))
	if _, err := w.camp.Launch(ctx, "acme", c.ID, "test"); err != nil {
		t.Fatal(err)
	}
	v := w.wait(c.ID, "the pause", func(v campaigns.View) bool { return v.Status == campaigns.Paused })
	if !strings.Contains(v.Reason, "quarantined") || v.Progress.Sent != 0 || v.Progress.Queued != 12 {
		t.Fatalf("paused with reason %q, progress %+v", v.Reason, v.Progress)
	}
	w.chans["email"].setFail(nil)
	if _, err := w.camp.Resume(ctx, "acme", c.ID, "test"); err != nil {
		t.Fatal(err)
	}
	v = w.wait(c.ID, "completion", func(v campaigns.View) bool { return v.Status == campaigns.Completed })
	if v.Progress.Sent != 12 || len(w.chans["email"].received()) != 12 || w.chans["email"].sends != 12 {
		t.Fatalf("after resuming: %+v, %d received", v.Progress, len(w.chans["email"].received()))
	}
}

// A channel that fails part-way through each batch: what it sent stays sent (never sent again), the rest waits,
// and the failures count toward pausing the campaign.
func TestAChannelFailingPartWayKeepsWhatItSent(t *testing.T) {
	w := newWorld(t, campaigns.Options{Batch: 4, PauseAfter: 3, RetryBase: time.Millisecond, MaxAttempts: 100, Tick: 10 * time.Millisecond})
	ctx := context.Background()
	for i := range 12 {
		w.contact(fmt.Sprintf("q%02d@example.com", i), "", map[string]contacts.ConsentStatus{"email": sub}, map[string]any{"country": "FR"})
	}
	seg := w.segment("France", `country = "FR"`)
	c := w.create(emailCampaign("Halfway", seg))
	w.chans["email"].setPartial(errors.New("plugin trapped on its second call"))
	if _, err := w.camp.Launch(ctx, "acme", c.ID, "test"); err != nil {
		t.Fatal(err)
	}
	v := w.wait(c.ID, "the pause", func(v campaigns.View) bool { return v.Status == campaigns.Paused })
	// Each failed batch sent its first message (two workers may run a batch or two past the third failure).
	if sent := v.Progress.Sent; !strings.Contains(v.Reason, "second call") || sent < 3 || sent > 6 || v.Progress.Queued != 12-sent || w.chans["email"].sends != sent {
		t.Fatalf("paused with reason %q, progress %+v, %d sends", v.Reason, v.Progress, w.chans["email"].sends)
	}
	w.chans["email"].setPartial(nil)
	if _, err := w.camp.Resume(ctx, "acme", c.ID, "test"); err != nil {
		t.Fatal(err)
	}
	v = w.wait(c.ID, "completion", func(v campaigns.View) bool { return v.Status == campaigns.Completed })
	if v.Progress.Sent != 12 || w.chans["email"].sends != 12 {
		t.Fatalf("after resuming: %+v, %d sends (each message once)", v.Progress, w.chans["email"].sends)
	}
}

func TestRetriedMessagesAreSentOnceWithTheirAttempts(t *testing.T) {
	w := newWorld(t, campaigns.Options{RetryBase: time.Millisecond, Tick: 10 * time.Millisecond})
	ctx := context.Background()
	busy := w.contact("busy@example.com", "", map[string]contacts.ConsentStatus{"email": sub}, map[string]any{"country": "FR"})
	w.contact("ok@example.com", "", map[string]contacts.ConsentStatus{"email": sub}, map[string]any{"country": "FR"})
	w.chans["email"].retry[busy.ID] = true
	seg := w.segment("France", `country = "FR"`)
	c := w.create(emailCampaign("Retry", seg))
	if _, err := w.camp.Launch(ctx, "acme", c.ID, "test"); err != nil {
		t.Fatal(err)
	}
	w.wait(c.ID, "completion", func(v campaigns.View) bool { return v.Status == campaigns.Completed })
	sent, _, err := w.camp.Messages(ctx, "acme", c.ID, campaigns.Sent, "", 10)
	if err != nil || len(sent) != 2 {
		t.Fatalf("sent %+v, %v", sent, err)
	}
	for _, m := range sent {
		want := 1
		if m.Contact == busy.ID {
			want = 2
		}
		if m.Attempts != want || m.ProviderID == "" || m.SentAt.IsZero() {
			t.Fatalf("message %+v: want %d attempts", m, want)
		}
	}
}

func TestRestartSendsWhatWasLeftSendingWithTheSameKeys(t *testing.T) {
	w := newWorld(t, campaigns.Options{})
	ctx := context.Background()
	for i := range 30 {
		w.contact(fmt.Sprintf("r%02d@example.com", i), "", map[string]contacts.ConsentStatus{"email": sub}, map[string]any{"country": "FR"})
	}
	seg := w.segment("France", `country = "FR"`)
	c := w.create(emailCampaign("Crash", seg))
	// The channel hangs on its first batch; the process "dies" with the batch claimed, maybe delivered, not
	// recorded: the store is closed under the engine.
	hang := make(chan struct{})
	w.chans["email"].setFail(nil)
	blocking := &blockingChannel{channels: w.chans, release: hang, entered: make(chan struct{})}
	w.camp = campaigns.NewService(w.st, w.ss, blocking, w.log, nil, campaigns.Options{Batch: 10})
	run, stop := context.WithCancel(ctx)
	if err := w.camp.Start(run, []string{"acme"}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.camp.Launch(ctx, "acme", c.ID, "test"); err != nil {
		t.Fatal(err)
	}
	<-blocking.entered // a batch of 10 is claimed and being delivered
	stop()
	w.stop()
	_ = w.st.Close() // the crash: nothing after this is recorded
	close(hang)
	w.camp.Close()
	w.ss.Close()
	w.st = nil

	w.open() // restart with the plain channels: the claimed batch is sent again, with the same keys
	w.wait(c.ID, "completion after the restart", func(v campaigns.View) bool { return v.Status == campaigns.Completed })
	got := w.chans["email"].received()
	if len(got) != 30 {
		t.Fatalf("%d distinct messages received, want 30", len(got))
	}
	if w.chans["email"].sends < 30 {
		t.Fatalf("%d sends", w.chans["email"].sends)
	}
	v, _ := w.camp.Get(ctx, "acme", c.ID)
	if v.Progress.Sent != 30 || v.Progress.Planned != 30 {
		t.Fatalf("progress %+v", v.Progress)
	}
}

// blockingChannel delivers its first batch and then blocks until release, as a process killed mid-send.
type blockingChannel struct {
	channels
	release chan struct{}
	entered chan struct{}
	once    sync.Once
}

func (b *blockingChannel) Send(ctx context.Context, ws, name string, now time.Time, msgs []campaigns.Outgoing) ([]campaigns.Outcome, error) {
	first := false
	b.once.Do(func() { first = true })
	if !first {
		<-b.release
		return nil, errors.New("the process is gone")
	}
	out, err := b.channels.Send(ctx, ws, name, now, msgs)
	close(b.entered)
	<-b.release
	return out, err
}

func TestCampaignInputErrors(t *testing.T) {
	w := newWorld(t, campaigns.Options{})
	ctx := context.Background()
	seg := w.segment("France", `country = "FR"`)
	valid := func() campaigns.Input { return emailCampaign("Valid", seg) }
	for _, tt := range []struct {
		name  string
		edit  func(*campaigns.Input)
		field string
		msg   string
	}{
		{"no name", func(in *campaigns.Input) { in.Name = nil }, "name", "is required"},
		{"unknown channel", func(in *campaigns.Input) { (*in.Channels)[0].Plugin = "fax" }, "channels[0].plugin", `no channel plugin "fax"`},
		{"unknown field", func(in *campaigns.Input) { (*in.Channels)[0].Content["title"] = "x" }, "channels[0].content.title", `has no field "title"`},
		{"template syntax", func(in *campaigns.Input) {
			(*in.Channels)[0].Content["html"] = "<p>\n{% if contact.vip %}\nVIP\n"
		}, "channels[0].content.html", "line 2"},
		{"unknown filter", func(in *campaigns.Input) {
			(*in.Channels)[0].Content["text"] = "Hi\n\n{{ contact.first_name | shout }}"
		}, "channels[0].content.text", `line 3: undefined filter "shout"`},
		{"bad strategy", func(in *campaigns.Input) { in.Strategy = ptr("some") }, "strategy", "must be"},
		{"cron syntax", func(in *campaigns.Input) { in.Schedule = &campaigns.Schedule{Kind: "recurring", Cron: "every monday"} }, "schedule.cron", "invalid cron spec"},
		{"at without a time", func(in *campaigns.Input) { in.Schedule = &campaigns.Schedule{Kind: "at"} }, "schedule.at", "is required"},
		{"unknown zone", func(in *campaigns.Input) {
			in.Schedule = &campaigns.Schedule{Kind: "recurring", Cron: "@daily", Timezone: "Mars/Olympus"}
		}, "schedule.timezone", "IANA"},
		{"bad goal window", func(in *campaigns.Input) { in.Goal = &campaigns.Goal{Event: "Order Completed", Within: "forever"} }, "goal.within", "not a duration"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := valid()
			tt.edit(&in)
			_, err := w.camp.Create(ctx, "acme", in, "test")
			var ve *errs.ValidationError
			if !errors.As(err, &ve) || len(ve.Fields) != 1 || ve.Fields[0].Field != tt.field || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("got %v, want a validation error on %s containing %q", err, tt.field, tt.msg)
			}
		})
	}
	list, err := w.camp.List(ctx, "acme")
	if err != nil || len(list) != 0 {
		t.Fatalf("refused campaigns were stored: %d, %v", len(list), err)
	}

	// Launch checks.
	empty := valid()
	empty.Audience = &campaigns.Audience{}
	noAudience := w.create(empty)
	if _, err := w.camp.Launch(ctx, "acme", noAudience.ID, "test"); !isInvalid(err, "audience.include") {
		t.Fatalf("launch without audience: %v", err)
	}
	gone := w.segment("Gone", `country = "XX"`)
	in := valid()
	in.Audience = &campaigns.Audience{Include: []string{seg}, Exclude: []string{gone}}
	orphan := w.create(in)
	if err := w.ss.Delete(ctx, "acme", gone); err != nil {
		t.Fatal(err)
	}
	if _, err := w.camp.Launch(ctx, "acme", orphan.ID, "test"); !isInvalid(err, "audience.exclude") {
		t.Fatalf("launch with a deleted segment: %v", err)
	}
	noSubject := valid()
	delete((*noSubject.Channels)[0].Content, "subject")
	missing := w.create(noSubject)
	if _, err := w.camp.Launch(ctx, "acme", missing.ID, "test"); !isInvalid(err, "channels[0].content.subject") {
		t.Fatalf("launch without a required field: %v", err)
	}

	// A running campaign is frozen; a cancelled one is final.
	w.contact("x@example.com", "", nil, map[string]any{"country": "FR"})
	running := w.create(valid())
	if _, err := w.camp.Pause(ctx, "acme", running.ID, "test"); !errors.Is(err, errs.ErrConflict) {
		t.Fatalf("pausing a draft: %v", err)
	}
	future := time.Now().Add(time.Hour)
	if _, err := w.camp.Update(ctx, "acme", running.ID, campaigns.Input{Schedule: &campaigns.Schedule{Kind: "at", At: &future}}, "test"); err != nil {
		t.Fatal(err)
	}
	v, err := w.camp.Launch(ctx, "acme", running.ID, "test")
	if err != nil || v.Status != campaigns.Scheduled || v.NextRunAt == nil || !v.NextRunAt.Equal(future.UTC()) {
		t.Fatalf("launching a scheduled campaign: %+v, %v", v, err)
	}
	if _, err := w.camp.Update(ctx, "acme", running.ID, campaigns.Input{Name: ptr("Renamed")}, "test"); !errors.Is(err, errs.ErrConflict) {
		t.Fatalf("editing a scheduled campaign: %v", err)
	}
	if err := w.camp.Delete(ctx, "acme", running.ID); !errors.Is(err, errs.ErrConflict) {
		t.Fatalf("deleting a scheduled campaign: %v", err)
	}
	if v, err := w.camp.Cancel(ctx, "acme", running.ID, "test"); err != nil || v.Status != campaigns.Cancelled || v.FinishedAt == nil {
		t.Fatalf("cancel: %+v, %v", v, err)
	}
	if _, err := w.camp.Resume(ctx, "acme", running.ID, "test"); !errors.Is(err, errs.ErrConflict) {
		t.Fatalf("resuming a cancelled campaign: %v", err)
	}
	if err := w.camp.Delete(ctx, "acme", running.ID); err != nil {
		t.Fatalf("deleting a cancelled campaign: %v", err)
	}
}

func isInvalid(err error, field string) bool {
	var ve *errs.ValidationError
	return errors.As(err, &ve) && len(ve.Fields) == 1 && ve.Fields[0].Field == field
}

// A field read line by line (SingleLine) shows a contact's attribute on one line: its line breaks cannot add
// header lines. Other text fields keep them; HTML escapes.
func TestSingleLineFieldsKeepVariablesOnOneLine(t *testing.T) {
	w := newWorld(t, campaigns.Options{})
	ctx := context.Background()
	eve := w.contact("eve@example.com", "", map[string]contacts.ConsentStatus{"email": sub},
		map[string]any{"country": "FR", "first_name": "Eve\r\nBcc: spy@example.com\n<b>"})
	seg := w.segment("France", `country = "FR"`)
	in := emailCampaign("Lines", seg)
	(*in.Channels)[0].Content["headers"] = "X-Ref: {{ contact.first_name }}\nX-Campaign: spring"
	(*in.Channels)[0].Content["text"] = "Hi {{ contact.first_name }}"
	(*in.Channels)[0].Content["html"] = "<p>{{ contact.first_name }}</p>"
	c := w.create(in)
	check := func(where string, fields map[string]string) {
		t.Helper()
		if got := fields["headers"]; got != "X-Ref: Eve Bcc: spy@example.com <b>\nX-Campaign: spring" {
			t.Errorf("%s: headers %q", where, got)
		}
		if got := fields["text"]; got != "Hi Eve\r\nBcc: spy@example.com\n<b>" {
			t.Errorf("%s: text %q", where, got)
		}
		if got := fields["html"]; !strings.Contains(got, "&lt;b&gt;") {
			t.Errorf("%s: html %q", where, got)
		}
	}
	out, err := w.camp.Preview(ctx, "acme", c.ID, eve.ID)
	if err != nil || len(out) != 1 {
		t.Fatalf("preview: %+v, %v", out, err)
	}
	check("preview", out[0].Fields)
	if _, err := w.camp.Launch(ctx, "acme", c.ID, "test"); err != nil {
		t.Fatal(err)
	}
	w.wait(c.ID, "completion", func(v campaigns.View) bool { return v.Status == campaigns.Completed })
	if n := len(w.chans["email"].received()); n != 1 {
		t.Fatalf("%d messages sent, want 1", n)
	}
	for _, m := range w.chans["email"].received() {
		fields := map[string]string{}
		for _, f := range m.Fields {
			fields[f.Name] = f.Value
		}
		check("sent", fields)
	}
}

func TestPreviewAndStrictVariables(t *testing.T) {
	w := newWorld(t, campaigns.Options{})
	ctx := context.Background()
	ana := w.contact("ana@example.com", "", map[string]contacts.ConsentStatus{"email": sub}, map[string]any{"country": "FR", "first_name": "Ana"})
	bob := w.contact("bob@example.com", "", map[string]contacts.ConsentStatus{"email": sub}, map[string]any{"country": "FR"})
	seg := w.segment("France", `country = "FR"`)
	in := emailCampaign("Strict", seg)
	(*in.Channels)[0].Content["subject"] = "Hello {{ contact.first_name }}"
	in.StrictVariables = ptr(true)
	c := w.create(in)
	out, err := w.camp.Preview(ctx, "acme", c.ID, ana.ID)
	if err != nil || len(out) != 1 || out[0].Fields["subject"] != "Hello Ana" || out[0].To != "ana@example.com" || out[0].Error != "" {
		t.Fatalf("preview for Ana: %+v, %v", out, err)
	}
	out, err = w.camp.Preview(ctx, "acme", c.ID, bob.ID)
	if err != nil || len(out) != 1 || !strings.Contains(out[0].Error, "first_name") {
		t.Fatalf("preview for Bob (no first_name, strict): %+v, %v", out, err)
	}
	if _, err := w.camp.Launch(ctx, "acme", c.ID, "test"); err != nil {
		t.Fatal(err)
	}
	v := w.wait(c.ID, "completion", func(v campaigns.View) bool { return v.Status == campaigns.Completed })
	if v.Progress.Sent != 1 || v.Progress.Failed != 1 {
		t.Fatalf("progress %+v", v.Progress)
	}
	failed, _, _ := w.camp.Messages(ctx, "acme", c.ID, campaigns.Failed, "", 10)
	if len(failed) != 1 || failed[0].Contact != bob.ID || !strings.Contains(failed[0].Error, "first_name") {
		t.Fatalf("failed %+v", failed)
	}
	// A test send goes to the address given, rendered for a contact.
	res, err := w.camp.Test(ctx, "acme", c.ID, campaigns.TestInput{To: "qa@example.com", ContactID: ana.ID})
	if err != nil || len(res) != 1 || res[0].Outcome != "delivered" || res[0].To != "qa@example.com" {
		t.Fatalf("test send: %+v, %v", res, err)
	}
	var tests []string
	for _, m := range w.chans["email"].received() {
		if m.To == "qa@example.com" {
			tests = append(tests, field(m, "subject"))
		}
	}
	sort.Strings(tests)
	if len(tests) != 1 || tests[0] != "Hello Ana" {
		t.Fatalf("test messages %v", tests)
	}
}

func TestRateLimitHoldsAcrossCampaigns(t *testing.T) {
	w := newWorld(t, campaigns.Options{Batch: 50})
	ctx := context.Background()
	info := emailInfo
	info.Rate = 20
	w.chans["email"].info = info
	for i := range 45 {
		w.contact(fmt.Sprintf("q%02d@example.com", i), "", map[string]contacts.ConsentStatus{"email": sub}, map[string]any{"country": "FR"})
	}
	seg := w.segment("France", `country = "FR"`)
	a, b := w.create(emailCampaign("A", seg)), w.create(emailCampaign("B", seg))
	for _, c := range []campaigns.View{a, b} {
		if _, err := w.camp.Launch(ctx, "acme", c.ID, "test"); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []campaigns.View{a, b} {
		w.wait(c.ID, "completion", func(v campaigns.View) bool { return v.Status == campaigns.Completed })
	}
	r := w.chans["email"]
	r.mu.Lock()
	times := append([]time.Time(nil), r.times...)
	r.mu.Unlock()
	if len(times) != 90 {
		t.Fatalf("%d messages", len(times))
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	// The limit is kept over every 900 ms span (the window is ten 100 ms buckets).
	for i, at := range times {
		n := sort.Search(len(times), func(k int) bool { return times[k].After(at.Add(900 * time.Millisecond)) }) - i
		if n > 20 {
			t.Fatalf("%d messages within 900 ms from %s: the limit is 20 per second", n, at.Format("15:04:05.000"))
		}
	}
}

func TestFrequencyCapAndQuietHours(t *testing.T) {
	var rulesMu sync.Mutex
	rules := workspaces.CampaignRules{FrequencyCap: &workspaces.FrequencyCap{Messages: 1, Period: "7d"}}
	w := newWorld(t, campaigns.Options{Tick: 10 * time.Millisecond, Rules: func(context.Context, string) (workspaces.CampaignRules, error) {
		rulesMu.Lock()
		defer rulesMu.Unlock()
		return rules, nil
	}})
	ctx := context.Background()
	for i := range 5 {
		w.contact(fmt.Sprintf("f%d@example.com", i), "", map[string]contacts.ConsentStatus{"email": sub}, map[string]any{"country": "FR"})
	}
	seg := w.segment("France", `country = "FR"`)
	run := func(name string, transactional bool) campaigns.View {
		t.Helper()
		in := emailCampaign(name, seg)
		in.Transactional = ptr(transactional)
		c := w.create(in)
		if _, err := w.camp.Launch(ctx, "acme", c.ID, "test"); err != nil {
			t.Fatal(err)
		}
		return w.wait(c.ID, name+" to complete", func(v campaigns.View) bool { return v.Status == campaigns.Completed })
	}
	// The cap is one marketing message a week: the second campaign is skipped for everyone; a transactional one
	// is neither capped nor counted.
	if v := run("First", false); v.Progress.Sent != 5 {
		t.Fatalf("first: %+v", v.Progress)
	}
	if v := run("Receipt", true); v.Progress.Sent != 5 {
		t.Fatalf("transactional: %+v", v.Progress)
	}
	second := run("Second", false)
	if second.Progress.Sent != 0 || second.Progress.Skipped != 5 {
		t.Fatalf("second: %+v", second.Progress)
	}
	skipped, _, _ := w.camp.Messages(ctx, "acme", second.ID, campaigns.Skipped, "", 1)
	if len(skipped) != 1 || skipped[0].Error != "frequency cap: 1 messages in 7d already" {
		t.Fatalf("skipped %+v", skipped)
	}
	// A week later the cap allows one more; quiet hours around the clock hold it back until they end.
	w.advance(8 * 24 * time.Hour)
	now := w.now().UTC()
	rulesMu.Lock()
	rules.QuietHours = &workspaces.QuietHours{Start: now.Add(-time.Hour).Format("15:04"), End: now.Add(time.Hour).Format("15:04")}
	rulesMu.Unlock()
	in := emailCampaign("Night", seg)
	c := w.create(in)
	if _, err := w.camp.Launch(ctx, "acme", c.ID, "test"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the messages to be held", func() bool {
		list, _, _ := w.camp.Messages(ctx, "acme", c.ID, campaigns.Queued, "", 10)
		return len(list) == 5 && strings.HasPrefix(list[0].Error, "quiet hours: held until ") && list[0].Attempts == 0
	})
	before := len(w.chans["email"].received())
	w.advance(61 * time.Minute)
	w.camp.Wake()
	v := w.wait(c.ID, "the held messages after the quiet hours", func(v campaigns.View) bool { return v.Status == campaigns.Completed })
	if v.Progress.Sent != 5 || len(w.chans["email"].received()) != before+5 {
		t.Fatalf("after the quiet hours: %+v", v.Progress)
	}
}

func TestLinksUnsubscribeOpensAndClicks(t *testing.T) {
	links := campaigns.NewLinks("https://cc.example.com", []byte("0123456789abcdef0123456789abcdef"))
	var w *world
	w = newWorld(t, campaigns.Options{Links: links, Consent: func(ctx context.Context, ws, id, channel string, st contacts.ConsentStatus, source string) error {
		_, err := w.cs.SetConsent(ctx, ws, id, channel, st, source)
		return err
	}})
	ctx := context.Background()
	ana := w.contact("ana@example.com", "", map[string]contacts.ConsentStatus{"email": sub, "sms": sub}, map[string]any{"country": "FR"})
	seg := w.segment("France", `country = "FR"`)
	in := emailCampaign("Links", seg)
	(*in.Channels)[0].Content["html"] = `<body><a href="https://shop.example.com/sale">Sale</a> <a href="{{ unsubscribe_url }}">Unsubscribe</a></body>`
	c := w.create(in)
	if _, err := w.camp.Launch(ctx, "acme", c.ID, "test"); err != nil {
		t.Fatal(err)
	}
	w.wait(c.ID, "completion", func(v campaigns.View) bool { return v.Status == campaigns.Completed })
	var m campaigns.Outgoing
	for _, got := range w.chans["email"].received() {
		m = got
	}
	unsub := links.Unsubscribe("acme", m.ID)
	headers := map[string]string{}
	for _, h := range m.Headers {
		headers[h.Name] = h.Value
	}
	if headers["List-Unsubscribe"] != "<"+unsub+">" || headers["List-Unsubscribe-Post"] != "List-Unsubscribe=One-Click" {
		t.Fatalf("headers %v", headers)
	}
	html := field(m, "html")
	click := links.Click("acme", m.ID, "https://shop.example.com/sale")
	if !strings.Contains(html, `href="`+click+`"`) || !strings.Contains(html, `href="`+unsub+`"`) || !strings.Contains(html, links.Open("acme", m.ID)) {
		t.Fatalf("html %s", html)
	}
	sig := func(link string) string {
		p := strings.Split(strings.SplitN(link, "?", 2)[0], "/")
		return strings.TrimSuffix(p[len(p)-1], ".gif")
	}
	// Two opens, a click (and a forged one), then the one-click unsubscribe.
	for range 2 {
		if err := w.camp.Opened(ctx, "acme", m.ID, sig(links.Open("acme", m.ID))); err != nil {
			t.Fatal(err)
		}
	}
	if to, err := w.camp.Clicked(ctx, "acme", m.ID, sig(click), "https://shop.example.com/sale"); err != nil || to != "https://shop.example.com/sale" {
		t.Fatalf("click: %q, %v", to, err)
	}
	if _, err := w.camp.Clicked(ctx, "acme", m.ID, sig(click), "https://evil.example.com/"); !errors.Is(err, campaigns.ErrBadLink) {
		t.Fatalf("a click to another target: %v", err)
	}
	p, err := w.camp.Preferences(ctx, "acme", m.ID, sig(unsub))
	if err != nil || p.Campaign != "Links" || p.Channel != "email" || len(p.Consent) != 2 {
		t.Fatalf("preferences %+v, %v", p, err)
	}
	if err := w.camp.Unsubscribe(ctx, "acme", m.ID, sig(unsub), nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.camp.Unsubscribe(ctx, "acme", m.ID, sig(unsub), nil, nil); err != nil { // again: counted once
		t.Fatal(err)
	}
	v, _ := w.camp.Get(ctx, "acme", c.ID)
	if p := v.Progress; p.Opened != 2 || p.OpenedUnique != 1 || p.Clicked != 1 || p.ClickedUnique != 1 || p.Unsubscribed != 1 {
		t.Fatalf("engagement %+v", p.Counts)
	}
	after, err := w.cs.Get(ctx, "acme", ana.ID)
	if err != nil || after.ConsentOn("email") != contacts.Unsubscribed || after.ConsentOn("sms") != contacts.Subscribed {
		t.Fatalf("consent after the one-click unsubscribe: %v, %v", after.Consent, err)
	}
	// The preference page's form keeps only what is ticked: nothing here, so sms goes too.
	if err := w.camp.Unsubscribe(ctx, "acme", m.ID, sig(unsub), []string{}, []string{}); err != nil {
		t.Fatal(err)
	}
	if after, _ := w.cs.Get(ctx, "acme", ana.ID); after.ConsentOn("sms") != contacts.Unsubscribed {
		t.Fatalf("sms consent %v", after.ConsentOn("sms"))
	}
}

func TestDeliveryFeedback(t *testing.T) {
	var w *world
	w = newWorld(t, campaigns.Options{Consent: func(ctx context.Context, ws, id, channel string, st contacts.ConsentStatus, source string) error {
		_, err := w.cs.SetConsent(ctx, ws, id, channel, st, source)
		return err
	}})
	ctx := context.Background()
	people := map[string]contacts.Contact{}
	for _, name := range []string{"delivered", "hard", "soft", "spam", "stop"} {
		people[name] = w.contact(name+"@example.com", "", map[string]contacts.ConsentStatus{"email": sub}, map[string]any{"country": "FR"})
	}
	seg := w.segment("France", `country = "FR"`)
	c := w.create(emailCampaign("Feedback", seg))
	if _, err := w.camp.Launch(ctx, "acme", c.ID, "test"); err != nil {
		t.Fatal(err)
	}
	w.wait(c.ID, "completion", func(v campaigns.View) bool { return v.Status == campaigns.Completed })
	id := func(name string) string {
		m := campaigns.Message{Campaign: c.ID, Run: 1, Contact: people[name].ID}
		return m.ID()
	}
	events := []campaigns.Feedback{
		{Type: "delivered", MessageID: id("delivered")},
		{Type: "delivered", MessageID: id("delivered")}, // a webhook delivered twice: counted once
		{Type: "bounced", MessageID: id("hard"), Permanent: true, Detail: "550 no such user"},
		{Type: "bounced", MessageID: id("soft"), Detail: "452 mailbox full"},
		{Type: "complained", MessageID: id("spam")},
		{Type: "unsubscribed", MessageID: id("stop")},
		{Type: "opened", MessageID: id("delivered")},
		{Type: "bounced", MessageID: "cmp_00000000000000000000000000.1.01m824qekv0zwg7h8k772gvv3a.0"}, // not ours: skipped
		{Type: "replied", MessageID: id("delivered"), Detail: "thanks"},
	}
	if err := w.camp.Feedback(ctx, "acme", "email", events); err != nil {
		t.Fatal(err)
	}
	v, _ := w.camp.Get(ctx, "acme", c.ID)
	if p := v.Progress; p.Delivered != 1 || p.BouncedHard != 1 || p.BouncedSoft != 1 || p.Complained != 1 || p.Unsubscribed != 1 || p.Opened != 1 {
		t.Fatalf("counts %+v", p.Counts)
	}
	for name, want := range map[string]contacts.ConsentStatus{"delivered": sub, "hard": contacts.Unsubscribed, "soft": sub,
		"spam": contacts.Unsubscribed, "stop": contacts.Unsubscribed} {
		got, err := w.cs.Get(ctx, "acme", people[name].ID)
		if err != nil || got.ConsentOn("email") != want {
			t.Errorf("%s: consent %v, want %v (%v)", name, got.ConsentOn("email"), want, err)
		}
	}
	if got, _ := w.cs.Get(ctx, "acme", people["hard"].ID); got.Consent["email"].Source != "hard bounce" {
		t.Errorf("hard bounce consent source %q", got.Consent["email"].Source)
	}
	// The next campaign skips whoever bounced hard, complained or stopped.
	next := w.create(emailCampaign("Next", seg))
	if _, err := w.camp.Launch(ctx, "acme", next.ID, "test"); err != nil {
		t.Fatal(err)
	}
	if v := w.wait(next.ID, "completion", func(v campaigns.View) bool { return v.Status == campaigns.Completed }); v.Progress.Sent != 2 || v.Progress.Skipped != 3 {
		t.Fatalf("next campaign %+v", v.Progress)
	}
}

func TestGoalConversions(t *testing.T) {
	w := newWorld(t, campaigns.Options{})
	ctx := context.Background()
	ana, bob := w.userContact("u-ana", "ana@example.com"), w.userContact("u-bob", "bob@example.com")
	cleo := w.userContact("u-cleo", "cleo@example.com")
	seg := w.segment("Everyone", `email exists`)
	in := emailCampaign("Goal", seg)
	in.Goal = &campaigns.Goal{Event: "Order Completed", Within: "7d"}
	c := w.create(in)
	w.track(cleo, "Order Completed", "before", nil) // before the message: not a conversion
	if _, err := w.camp.Launch(ctx, "acme", c.ID, "test"); err != nil {
		t.Fatal(err)
	}
	w.wait(c.ID, "completion", func(v campaigns.View) bool { return v.Status == campaigns.Completed })
	w.advance(time.Hour)
	w.track(ana, "Order Completed", "o1", map[string]any{"total": 80})
	w.track(ana, "Order Completed", "o2", map[string]any{"total": 20}) // a second order: the message converted once
	w.track(bob, "Page Viewed", "p1", nil)
	w.advance(8 * 24 * time.Hour)
	w.track(bob, "Order Completed", "o3", nil) // after the window
	eventually(t, "the conversion", func() bool {
		v, _ := w.camp.Get(ctx, "acme", c.ID)
		return v.Progress.Converted == 1
	})
	time.Sleep(50 * time.Millisecond) // a wrong conversion would show now
	st, err := w.camp.Stats(ctx, "acme", c.ID)
	if err != nil || st.Total.Converted != 1 || st.Rates.ConversionRate != 1.0/3 {
		t.Fatalf("stats %+v, %v", st, err)
	}
}

func TestReviewFixes(t *testing.T) {
	t.Run("variables are text in html", func(t *testing.T) {
		w := newWorld(t, campaigns.Options{})
		ctx := context.Background()
		evil := `<a href="https://evil.example.com/login">Log in</a>`
		w.contact("eve@example.com", "", map[string]contacts.ConsentStatus{"email": sub}, map[string]any{"country": "FR", "first_name": evil})
		seg := w.segment("France", `country = "FR"`)
		in := emailCampaign("Escape", seg)
		(*in.Channels)[0].Content["subject"] = "Hi {{ contact.first_name }}"
		(*in.Channels)[0].Content["html"] = "<p>Hi {{ contact.first_name }}</p>"
		c := w.create(in)
		if _, err := w.camp.Launch(ctx, "acme", c.ID, "test"); err != nil {
			t.Fatal(err)
		}
		w.wait(c.ID, "completion", func(v campaigns.View) bool { return v.Status == campaigns.Completed })
		for _, m := range w.chans["email"].received() {
			if html := field(m, "html"); strings.Contains(html, "<a ") || !strings.Contains(html, "&lt;a href=") {
				t.Fatalf("html %s", html)
			}
			if field(m, "subject") != "Hi "+evil { // a subject is not HTML
				t.Fatalf("subject %q", field(m, "subject"))
			}
		}
	})
	t.Run("a recurring campaign paused mid-run resumes its run", func(t *testing.T) {
		w := newWorld(t, campaigns.Options{Batch: 1, Tick: 10 * time.Millisecond, RetryBase: time.Millisecond, MaxAttempts: 1000, PauseAfter: 1000})
		ctx := context.Background()
		for i := range 5 {
			w.contact(fmt.Sprintf("r%d@example.com", i), "", map[string]contacts.ConsentStatus{"email": sub}, map[string]any{"country": "FR"})
		}
		seg := w.segment("France", `country = "FR"`)
		in := emailCampaign("Weekly", seg)
		in.Schedule = &campaigns.Schedule{Kind: campaigns.SendRecurring, Cron: "@every 1h"}
		c := w.create(in)
		w.chans["email"].setFail(errors.New("down")) // the run stays in progress
		if _, err := w.camp.Launch(ctx, "acme", c.ID, "test"); err != nil {
			t.Fatal(err)
		}
		w.advance(time.Hour + time.Second)
		w.camp.Wake()
		w.wait(c.ID, "the first run", func(v campaigns.View) bool { return v.Runs == 1 && v.Status == campaigns.Running })
		if _, err := w.camp.Pause(ctx, "acme", c.ID, "test"); err != nil {
			t.Fatal(err)
		}
		w.chans["email"].setFail(nil)
		v, err := w.camp.Resume(ctx, "acme", c.ID, "test")
		if err != nil || v.Status != campaigns.Running {
			t.Fatalf("resumed as %s, %v", v.Status, err)
		}
		w.wait(c.ID, "the run to finish", func(v campaigns.View) bool { return v.Status == campaigns.Scheduled && v.Progress.Sent == 5 })
		if v, _ := w.camp.Get(ctx, "acme", c.ID); v.Runs != 1 {
			t.Fatalf("runs %d", v.Runs)
		}
	})
	t.Run("feedback from another channel is ignored", func(t *testing.T) {
		w := newWorld(t, campaigns.Options{Consent: func(context.Context, string, string, string, contacts.ConsentStatus, string) error {
			return errors.New("must not be called")
		}})
		ctx := context.Background()
		ana := w.contact("ana@example.com", "", map[string]contacts.ConsentStatus{"email": sub}, map[string]any{"country": "FR"})
		seg := w.segment("France", `country = "FR"`)
		c := w.create(emailCampaign("Other channel", seg))
		if _, err := w.camp.Launch(ctx, "acme", c.ID, "test"); err != nil {
			t.Fatal(err)
		}
		w.wait(c.ID, "completion", func(v campaigns.View) bool { return v.Status == campaigns.Completed })
		m := campaigns.Message{Campaign: c.ID, Run: 1, Contact: ana.ID}
		if err := w.camp.Feedback(ctx, "acme", "sms", []campaigns.Feedback{{Type: "complained", MessageID: m.ID()}}); err != nil {
			t.Fatal(err)
		}
		if v, _ := w.camp.Get(ctx, "acme", c.ID); v.Progress.Complained != 0 {
			t.Fatalf("a complaint from another channel counted: %+v", v.Progress.Counts)
		}
	})
}

func TestSoftBouncesInARowWithdrawConsent(t *testing.T) {
	var w *world
	w = newWorld(t, campaigns.Options{Consent: func(ctx context.Context, ws, id, channel string, st contacts.ConsentStatus, source string) error {
		_, err := w.cs.SetConsent(ctx, ws, id, channel, st, source)
		return err
	}})
	ctx := context.Background()
	flaky := w.contact("flaky@example.com", "", map[string]contacts.ConsentStatus{"email": sub}, map[string]any{"country": "FR"})
	mended := w.contact("mended@example.com", "", map[string]contacts.ConsentStatus{"email": sub}, map[string]any{"country": "FR"})
	seg := w.segment("France", `country = "FR"`)
	var ids []string
	for i := range 4 {
		c := w.create(emailCampaign(fmt.Sprint("Issue ", i), seg))
		if _, err := w.camp.Launch(ctx, "acme", c.ID, "test"); err != nil {
			t.Fatal(err)
		}
		w.wait(c.ID, "completion", func(v campaigns.View) bool { return v.Status == campaigns.Completed })
		ids = append(ids, c.ID)
	}
	msg := func(campaign string, ct contacts.Contact) string {
		m := campaigns.Message{Campaign: campaign, Run: 1, Contact: ct.ID}
		return m.ID()
	}
	feedback := func(typ, campaign string, ct contacts.Contact) {
		t.Helper()
		if err := w.camp.Feedback(ctx, "acme", "email", []campaigns.Feedback{{Type: typ, MessageID: msg(campaign, ct)}}); err != nil {
			t.Fatal(err)
		}
	}
	consent := func(ct contacts.Contact) contacts.Consent {
		got, err := w.cs.Get(ctx, "acme", ct.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.Consent["email"]
	}
	feedback("bounced", ids[0], flaky)
	feedback("bounced", ids[0], flaky) // the same message again: not a second bounce
	feedback("bounced", ids[1], flaky)
	if consent(flaky).Status != sub {
		t.Fatal("withdrawn after two soft bounces")
	}
	feedback("bounced", ids[2], flaky)
	if c := consent(flaky); c.Status != contacts.Unsubscribed || c.Source != "soft bounces" {
		t.Fatalf("after three soft bounces in a row: %+v", c)
	}
	// A delivery between bounces starts the count again.
	feedback("bounced", ids[0], mended)
	feedback("bounced", ids[1], mended)
	feedback("delivered", ids[2], mended)
	feedback("bounced", ids[3], mended)
	if consent(mended).Status != sub {
		t.Fatalf("withdrawn although a delivery came between: %+v", consent(mended))
	}
}

func TestTopics(t *testing.T) {
	links := campaigns.NewLinks("https://cc.example.com", []byte("0123456789abcdef0123456789abcdef"))
	var w *world
	w = newWorld(t, campaigns.Options{Links: links,
		Rules: func(context.Context, string) (workspaces.CampaignRules, error) {
			return workspaces.CampaignRules{Topics: []workspaces.Topic{{ID: "newsletter", Name: "The newsletter"}, {ID: "offers", Name: "Offers"}}}, nil
		},
		Consent: func(ctx context.Context, ws, id, channel string, st contacts.ConsentStatus, source string) error {
			_, err := w.cs.SetConsent(ctx, ws, id, channel, st, source)
			return err
		},
		SetAttributes: func(ctx context.Context, ws, id string, attrs map[string]any, source string) error {
			_, err := w.cs.Update(ctx, ws, id, contacts.Fields{Attributes: attrs}, source)
			return err
		}})
	ctx := context.Background()
	out := w.contact("out@example.com", "", map[string]contacts.ConsentStatus{"email": sub}, map[string]any{"country": "FR", "unsubscribed_topics": []string{"newsletter"}})
	in := w.contact("in@example.com", "", map[string]contacts.ConsentStatus{"email": sub}, map[string]any{"country": "FR"})
	seg := w.segment("France", `country = "FR"`)
	bad := emailCampaign("Unknown topic", seg)
	bad.Topic = ptr("sports")
	if _, err := w.camp.Create(ctx, "acme", bad, "test"); !isInvalid(err, "topic") {
		t.Fatalf("an unknown topic: %v", err)
	}
	news := emailCampaign("News", seg)
	news.Topic = ptr("newsletter")
	c := w.create(news)
	if _, err := w.camp.Launch(ctx, "acme", c.ID, "test"); err != nil {
		t.Fatal(err)
	}
	v := w.wait(c.ID, "completion", func(v campaigns.View) bool { return v.Status == campaigns.Completed })
	if v.Progress.Sent != 1 || v.Progress.Skipped != 1 {
		t.Fatalf("progress %+v", v.Progress)
	}
	skipped, _, _ := w.camp.Messages(ctx, "acme", c.ID, campaigns.Skipped, "", 10)
	if len(skipped) != 1 || skipped[0].Contact != out.ID || skipped[0].Error != `unsubscribed from topic "newsletter"` {
		t.Fatalf("skipped %+v", skipped)
	}
	m := campaigns.Message{Campaign: c.ID, Run: 1, Contact: in.ID}
	unsub := links.Unsubscribe("acme", m.ID())
	sig := unsub[strings.LastIndex(unsub, "/")+1:]
	p, err := w.camp.Preferences(ctx, "acme", m.ID(), sig)
	if err != nil || p.Topic != "The newsletter" || len(p.Topics) != 2 || !p.Topics[0].Subscribed || !p.Topics[1].Subscribed {
		t.Fatalf("preferences %+v, %v", p, err)
	}
	// One click drops the campaign's topic, not the channel.
	if err := w.camp.Unsubscribe(ctx, "acme", m.ID(), sig, nil, nil); err != nil {
		t.Fatal(err)
	}
	got, _ := w.cs.Get(ctx, "acme", in.ID)
	if got.ConsentOn("email") != sub || fmt.Sprint(got.Attributes["unsubscribed_topics"].List) != "[newsletter]" {
		t.Fatalf("after one click: consent %v, topics %+v", got.ConsentOn("email"), got.Attributes["unsubscribed_topics"])
	}
	// The page's form keeps the email channel and only the offers.
	if err := w.camp.Unsubscribe(ctx, "acme", m.ID(), sig, []string{"email"}, []string{"newsletter"}); err != nil {
		t.Fatal(err)
	}
	got, _ = w.cs.Get(ctx, "acme", in.ID)
	if got.ConsentOn("email") != sub || fmt.Sprint(got.Attributes["unsubscribed_topics"].List) != "[offers]" {
		t.Fatalf("after the form: consent %v, topics %+v", got.ConsentOn("email"), got.Attributes["unsubscribed_topics"])
	}
}

func TestStopReplyWithdrawsSMSConsent(t *testing.T) {
	var w *world
	w = newWorld(t, campaigns.Options{Consent: func(ctx context.Context, ws, id, channel string, st contacts.ConsentStatus, source string) error {
		_, err := w.cs.SetConsent(ctx, ws, id, channel, st, source)
		return err
	}})
	ctx := context.Background()
	ana := w.contact("ana@example.com", "+33612345678", map[string]contacts.ConsentStatus{"email": sub, "sms": sub}, nil)
	if err := w.camp.Feedback(ctx, "acme", "sms", []campaigns.Feedback{{Type: "unsubscribed", Address: "+33612345678", Detail: "STOP"},
		{Type: "unsubscribed", Address: "+33699999999"}}); err != nil { // an unknown number: nothing
		t.Fatal(err)
	}
	got, err := w.cs.Get(ctx, "acme", ana.ID)
	if err != nil || got.ConsentOn("sms") != contacts.Unsubscribed || got.ConsentOn("email") != sub || got.Consent["sms"].Source != "provider unsubscribe" {
		t.Fatalf("consent after STOP: %+v, %v", got.Consent, err)
	}
}
