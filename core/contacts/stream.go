package contacts

import (
	"context"
	"sync"

	"github.com/crosscast/crosscast/core/events"
)

// Change is what one committed write did to a workspace: the contacts as they now are, the events stored, the ids
// merged away and the contacts deleted. Segments, scoring and campaign triggers subscribe to changes.
type Change struct {
	Workspace string
	// Seq orders the changes of a workspace as they were committed. Subscribers are called in the writers'
	// goroutines, so two changes committed together may arrive in either order: a subscriber keeping state per
	// contact ignores a change older than the one it applied (UpsertMany's merged change carries its last row's).
	Seq uint64
	// Contacts holds every contact the write created or changed, as stored.
	Contacts []Contact
	// Events holds the events stored, with their ContactID resolved.
	Events []events.Event
	// Merged lists the merges the write made; the From contacts no longer exist.
	Merged []Merge
	// Deleted lists contacts deleted (or erased).
	Deleted []string
}

func (c *Change) empty() bool {
	return len(c.Contacts) == 0 && len(c.Events) == 0 && len(c.Merged) == 0 && len(c.Deleted) == 0
}

// Subscriber receives changes. It is called synchronously after the write is durable and before the caller gets
// its answer, so that a read made right after a 2xx already sees the change's consequences; it must be quick and
// must not block on I/O. A Change shares its contacts' maps and slices with the writer's answer: subscribers read
// them and must not modify them (Clone what they keep and change).
type Subscriber func(ctx context.Context, c Change)

// Stream is the in-process stream of contact and event changes.
type Stream struct {
	mu   sync.RWMutex
	subs []Subscriber
}

// NewStream returns a stream with no subscribers.
func NewStream() *Stream { return &Stream{} }

// Subscribe adds fn to the subscribers; it returns a function that removes it.
func (s *Stream) Subscribe(fn Subscriber) (cancel func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs = append(s.subs, fn)
	idx := len(s.subs) - 1
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if idx < len(s.subs) {
			s.subs[idx] = nil
		}
	}
}

// Publish hands c to every subscriber in order.
func (s *Stream) Publish(ctx context.Context, c Change) {
	if s == nil || c.empty() {
		return
	}
	s.mu.RLock()
	subs := s.subs
	s.mu.RUnlock()
	for _, fn := range subs {
		if fn != nil {
			fn(ctx, c)
		}
	}
}
