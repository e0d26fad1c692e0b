package segments

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/events"
	"github.com/crosscast/crosscast/core/segments/index"
	"github.com/hashicorp/go-hclog"
)

// RebuildTx is what rebuilding an index reads beyond contacts.Tx; core/store's transactions have it.
type RebuildTx interface {
	// ChangeSeq is the last number of the workspace's change sequence (contacts.Change.Seq) committed.
	ChangeSeq() uint64
	// TrackEventNames returns the names of track events by code, as ScanTrackEvents gives them.
	TrackEventNames() ([]string, error)
	// ScanTrackEvents walks the stored track events contact by contact, in contact id order, without decoding
	// them: fn gets a contact's events' times (Unix nanoseconds) and name codes, in no particular order, and may
	// keep neither slice (both are reused). It stops when fn returns false.
	ScanTrackEvents(fn func(contactID string, at []int64, codes []uint32) bool) error
	// Snapshot identifies the committed state the transaction reads: two transactions with the same Snapshot
	// see the same data, so a rebuild can read in two at once.
	Snapshot() uint64
}

// space is one workspace's live state: its index, built once.
type space struct {
	once sync.Once
	ix   *index.Index
	err  error
}

// TransitionListener receives a workspace's transitions as they happen, synchronously and in order for a contact;
// like a contacts.Subscriber it must be quick and must not block on I/O. Campaign triggers subscribe.
type TransitionListener func(ctx context.Context, ws string, ts []Transition)

// Subscribe adds fn to the transition listeners.
func (s *Service) Subscribe(fn TransitionListener) {
	s.listenMu.Lock()
	defer s.listenMu.Unlock()
	s.listeners = append(s.listeners, fn)
}

// space returns the workspace's index, building it from the store the first time.
func (s *Service) space(ctx context.Context, ws string) (*index.Index, error) {
	s.spacesMu.Lock()
	sp := s.spaces[ws]
	if sp == nil {
		sp = &space{}
		s.spaces[ws] = sp
	}
	s.spacesMu.Unlock()
	sp.once.Do(func() { sp.ix, sp.err = s.build(ctx, ws) })
	if sp.err != nil {
		// Let a later call try again (the workspace may have been created since).
		s.spacesMu.Lock()
		if s.spaces[ws] == sp {
			delete(s.spaces, ws)
		}
		s.spacesMu.Unlock()
	}
	return sp.ix, sp.err
}

// Forget drops a deleted workspace's index.
func (s *Service) Forget(ws string) {
	s.spacesMu.Lock()
	defer s.spacesMu.Unlock()
	delete(s.spaces, ws)
}

// Start builds the index of each workspace (so that the first request does not pay for it) and logs what it took.
func (s *Service) Start(ctx context.Context, workspaces []string) error {
	for _, ws := range workspaces {
		began := time.Now()
		ix, err := s.space(ctx, ws)
		if err != nil {
			return fmt.Errorf("building the segment index of workspace %q: %w", ws, err)
		}
		st := ix.Stats()
		s.log.Info("segment index built", "workspace", ws, "contacts", st.Contacts, "events", st.Events,
			"segments", st.Segments, "bytes", st.Bytes, "took", time.Since(began).Round(time.Millisecond))
	}
	return nil
}

// build reads the workspace's contacts and events in one snapshot, then its segments, and records what changed
// while the server was down (or was lost in a crash before it was recorded) as transitions with ReasonStart.
func (s *Service) build(ctx context.Context, ws string) (*index.Index, error) {
	ix := index.New(storeEvents{s.store, ws})
	if err := s.loadIndex(ctx, ws, ix); err != nil {
		return nil, err
	}
	cat, err := s.catalog(ctx, ws)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	defs := make([]index.Def, 0, len(cat.list))
	for _, seg := range cat.list {
		defs = append(defs, seg.def())
	}
	ix.PutSegments(ctx, defs, now)
	var start []Transition
	for _, seg := range cat.list {
		var members []string
		if err := s.store.StoredMembers(ctx, ws, seg.ID, func(id string, _ time.Time) bool {
			members = append(members, id)
			return true
		}); err != nil {
			return nil, err
		}
		if seg.static() {
			ix.SetMembers(ctx, seg.ID, members, true, now)
			continue
		}
		left, kept := ix.Sort(seg.ID, members)
		for _, id := range left {
			start = append(start, Transition{Segment: seg.ID, Contact: id, Entered: false, At: now, Reason: ReasonStart})
		}
		if n, _ := ix.Count(seg.ID); kept == n {
			continue // nobody entered while the server was down: the common case, without a set of the recorded
		}
		stored := make(map[string]bool, len(members))
		for _, id := range members {
			stored[id] = true
		}
		ix.EachMember(seg.ID, func(id string) {
			if !stored[id] {
				start = append(start, Transition{Segment: seg.ID, Contact: id, Entered: true, At: now, Reason: ReasonStart})
			}
		})
	}
	if len(start) > 0 {
		s.log.Info("segment changes found at start", "workspace", ws, "transitions", len(start))
		s.publish(ctx, ws, start)
	}
	return ix, nil
}

// onChange is the contacts stream subscriber: it brings the workspace's index in step and publishes what entered
// and left.
func (s *Service) onChange(ctx context.Context, ch contacts.Change) {
	ix, err := s.space(ctx, ch.Workspace)
	if err != nil {
		s.log.Error("segment index unavailable", "workspace", ch.Workspace, "error", err)
		return
	}
	now := s.now().UTC()
	changed, gone := ix.Apply(ctx, ch, now)
	out := s.stamp(changed, now, ReasonChange)
	out = append(out, s.stamp(gone, now, ReasonDeleted)...)
	s.publish(ctx, ch.Workspace, out)
	forget := append([]string{}, ch.Deleted...)
	for _, m := range ch.Merged {
		forget = append(forget, m.From)
	}
	if len(forget) > 0 {
		s.rec.forget(ch.Workspace, forget)
	}
}

func (s *Service) stamp(ts []index.Transition, at time.Time, reason string) []Transition {
	out := make([]Transition, len(ts))
	for i, t := range ts {
		out[i] = Transition{Segment: t.Segment, Contact: t.Contact, Entered: t.Entered, At: at, Reason: reason}
	}
	return out
}

// publish hands transitions to the listeners and to the recorder.
func (s *Service) publish(ctx context.Context, ws string, ts []Transition) {
	if len(ts) == 0 {
		return
	}
	s.notify(ctx, ws, ts)
	s.rec.add(ws, ts)
}

// notify hands transitions to the listeners.
func (s *Service) notify(ctx context.Context, ws string, ts []Transition) {
	s.listenMu.Lock()
	listeners := s.listeners
	s.listenMu.Unlock()
	for _, fn := range listeners {
		fn(ctx, ws, ts)
	}
}

// Recheck re-evaluates, in every workspace, the contacts whose timed conditions may have changed by now (a window
// ended), and publishes the transitions. The scheduler runs it every minute.
func (s *Service) Recheck(ctx context.Context) {
	s.spacesMu.Lock()
	list := make([]string, 0, len(s.spaces))
	for ws := range s.spaces {
		list = append(list, ws)
	}
	s.spacesMu.Unlock()
	now := s.now().UTC()
	for _, ws := range list {
		ix, err := s.space(ctx, ws) // waits for a build in progress
		if err != nil {
			continue
		}
		s.publish(ctx, ws, s.stamp(ix.Recheck(ctx, now), now, ReasonTime))
	}
}

// storeEvents reads a contact's events with their properties from the store, for where: conditions.
type storeEvents struct {
	store Store
	ws    string
}

func (e storeEvents) Events(ctx context.Context, contactID, name string, fn func(time.Time, map[string]any) bool) {
	_ = e.store.ViewContacts(ctx, e.ws, func(tx contacts.Tx) error {
		return tx.Events(contactID, "", func(ev events.Event, _ string) bool {
			if ev.Type != events.Track || ev.Name != name {
				return true
			}
			return fn(ev.Timestamp, properties(ev.Properties))
		})
	})
}

// properties decodes event properties as rules read them (numbers kept exact).
func properties(raw json.RawMessage) map[string]any {
	if len(raw) == 0 {
		return nil
	}
	var props map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	_ = dec.Decode(&props)
	return props
}

// recorder writes transitions (and erasures) to the store in the background, in batches, so that the contact
// write that caused them never waits for a second commit. What a crash loses is found again at the next start
// (ReasonStart).
type recorder struct {
	store Store
	log   hclog.Logger
	segs  func(ws string) []string

	mu      sync.Mutex
	pending map[string][]Transition
	forgets map[string][]string
	wake    chan struct{}
	quit    chan struct{}
	done    chan struct{}
	once    sync.Once
}

func newRecorder(store Store, log hclog.Logger, segs func(string) []string) *recorder {
	r := &recorder{store: store, log: log, segs: segs, pending: map[string][]Transition{}, forgets: map[string][]string{},
		wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go r.run()
	return r
}

func (r *recorder) add(ws string, ts []Transition) {
	r.mu.Lock()
	r.pending[ws] = append(r.pending[ws], ts...)
	r.mu.Unlock()
	r.signal()
}

func (r *recorder) forget(ws string, ids []string) {
	r.mu.Lock()
	r.forgets[ws] = append(r.forgets[ws], ids...)
	r.mu.Unlock()
	r.signal()
}

func (r *recorder) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *recorder) run() {
	defer close(r.done)
	for {
		select {
		case <-r.wake:
			r.flush(context.Background())
		case <-r.quit:
			r.flush(context.Background())
			return
		}
	}
}

// maxRecord bounds one commit of transitions.
const maxRecord = 5000

// flush writes everything pending.
func (r *recorder) flush(ctx context.Context) {
	for {
		r.mu.Lock()
		pending, forgets := r.pending, r.forgets
		r.pending, r.forgets = map[string][]Transition{}, map[string][]string{}
		r.mu.Unlock()
		if len(pending) == 0 && len(forgets) == 0 {
			return
		}
		for ws, ts := range pending {
			for len(ts) > 0 {
				n := min(len(ts), maxRecord)
				if err := r.store.RecordTransitions(ctx, ws, ts[:n]); err != nil {
					r.log.Warn("recording segment transitions", "workspace", ws, "count", n, "error", err)
				}
				ts = ts[n:]
			}
		}
		for ws, ids := range forgets {
			segs := r.segs(ws)
			for _, id := range ids {
				if err := r.store.ForgetContact(ctx, ws, id, segs); err != nil {
					r.log.Warn("forgetting a contact's segment history", "workspace", ws, "error", err)
				}
			}
		}
	}
}

// close writes what is pending and stops.
func (r *recorder) close() {
	r.once.Do(func() { close(r.quit) })
	<-r.done
}
