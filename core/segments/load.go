package segments

import (
	"context"
	"errors"
	"fmt"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/segments/index"
)

// Loading a workspace's index at start (Service.build) reads every contact and every track event. It runs on
// three goroutines: one walks and decodes the contacts, one puts them in the index, and one reads the track events
// in a second read transaction. bbolt transactions are not shared between goroutines, so the two transactions must
// see the same committed state: both are opened first and their snapshots compared before anything is read; when
// a write committed in between, loading starts again, and after loadTries it reads everything in one transaction,
// one step after the other.

const (
	// loadTries is how many times loading in parallel is tried before reading in one transaction.
	loadTries = 3
	// loadBatch is how many decoded contacts go to the index at once: one lock and one channel send per batch.
	loadBatch = 512
)

// errMoved reports that a write committed between opening the contacts and the events transactions.
var errMoved = errors.New("the store changed while loading began")

// eventRuns holds the track events read for loading, contact by contact: run i's events are at[from[i]:from[i+1]]
// (the last run's end is len(at)), with codes[...] the store's name codes, names their table.
type eventRuns struct {
	ids   []string
	from  []int
	at    []int64
	codes []uint32
	names []string
}

func (r *eventRuns) add(id string, at []int64, codes []uint32) {
	r.ids = append(r.ids, id)
	r.from = append(r.from, len(r.at))
	r.at = append(r.at, at...)
	r.codes = append(r.codes, codes...)
}

// into hands every run to the index, its codes translated to the index's.
func (r *eventRuns) into(ix *index.Index) {
	xlate := ix.EventCodes(r.names)
	for i, c := range r.codes {
		r.codes[i] = xlate[c]
	}
	for i, id := range r.ids {
		end := len(r.at)
		if i+1 < len(r.from) {
			end = r.from[i+1]
		}
		ix.LoadEvents(id, r.at[r.from[i]:end], r.codes[r.from[i]:end])
	}
}

// loadEvents reads the track events of rt into the index, one contact at a time.
func loadEvents(ctx context.Context, rt RebuildTx, ix *index.Index) error {
	names, err := rt.TrackEventNames()
	if err != nil {
		return err
	}
	xlate := ix.EventCodes(names)
	var codes []uint32
	return rt.ScanTrackEvents(func(id string, at []int64, stored []uint32) bool {
		codes = codes[:0]
		for _, c := range stored {
			codes = append(codes, xlate[c])
		}
		ix.LoadEvents(id, at, codes)
		return ctx.Err() == nil
	})
}

// loadIndex fills ix, a new index, from the store.
func (s *Service) loadIndex(ctx context.Context, ws string, ix *index.Index) error {
	for range loadTries {
		err := s.loadParallel(ctx, ws, ix)
		if !errors.Is(err, errMoved) {
			return err
		}
		s.log.Debug("the store changed as loading began; trying again", "workspace", ws)
	}
	return s.store.ViewContacts(ctx, ws, func(tx contacts.Tx) error {
		rt, err := rebuildTx(tx)
		if err != nil {
			return err
		}
		ix.SetSeq(rt.ChangeSeq())
		ix.Grow(tx.Count())
		if err := tx.Scan("", func(c contacts.Contact) bool {
			ix.Load(c)
			return ctx.Err() == nil
		}); err != nil {
			return err
		}
		if err := loadEvents(ctx, rt, ix); err != nil {
			return err
		}
		return ctx.Err()
	})
}

func rebuildTx(tx contacts.Tx) (RebuildTx, error) {
	rt, ok := tx.(RebuildTx)
	if !ok {
		return nil, fmt.Errorf("the store cannot rebuild a segment index (%T)", tx)
	}
	return rt, nil
}

// loadParallel loads with three goroutines (see above). It returns errMoved, having loaded nothing, when the two
// transactions do not see the same state.
func (s *Service) loadParallel(ctx context.Context, ws string, ix *index.Index) error {
	snapshot := make(chan uint64, 1) // the events transaction's
	agree := make(chan bool, 1)      // whether the contacts transaction's is the same
	done := make(chan error, 1)      // the events goroutine's result
	runs := &eventRuns{}
	go func() {
		done <- s.store.ViewContacts(ctx, ws, func(tx contacts.Tx) error {
			rt, err := rebuildTx(tx)
			if err != nil {
				return err
			}
			snapshot <- rt.Snapshot()
			if !<-agree {
				return errMoved
			}
			if runs.names, err = rt.TrackEventNames(); err != nil {
				return err
			}
			n := tx.EventCount() // all types: at least the track events
			runs.at, runs.codes = make([]int64, 0, n), make([]uint32, 0, n)
			return rt.ScanTrackEvents(func(id string, at []int64, codes []uint32) bool {
				runs.add(id, at, codes)
				return ctx.Err() == nil
			})
		})
	}()
	var eventsErr error
	eventsDone := false
	err := s.store.ViewContacts(ctx, ws, func(tx contacts.Tx) error {
		rt, err := rebuildTx(tx)
		if err != nil {
			return err
		}
		select {
		case theirs := <-snapshot:
			same := theirs == rt.Snapshot()
			agree <- same
			if !same {
				return errMoved
			}
		case eventsErr = <-done: // the events transaction failed before comparing
			eventsDone = true
			return eventsErr
		}
		ix.SetSeq(rt.ChangeSeq())
		ix.Grow(tx.Count())
		batches := make(chan []contacts.Contact, 4)
		loaded := make(chan struct{})
		go func() {
			defer close(loaded)
			for b := range batches {
				ix.Load(b...)
			}
		}()
		batch := make([]contacts.Contact, 0, loadBatch)
		err = tx.Scan("", func(c contacts.Contact) bool {
			batch = append(batch, c)
			if len(batch) == loadBatch {
				batches <- batch
				batch = make([]contacts.Contact, 0, loadBatch)
			}
			return ctx.Err() == nil
		})
		batches <- batch
		close(batches)
		<-loaded
		return err
	})
	if !eventsDone {
		if err != nil {
			// The events goroutine may wait on agree when the contacts transaction failed before comparing.
			select {
			case agree <- false:
			default:
			}
		}
		eventsErr = <-done
	}
	if err != nil {
		return err
	}
	if eventsErr != nil {
		return eventsErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	runs.into(ix)
	return nil
}
