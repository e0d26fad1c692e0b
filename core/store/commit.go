package store

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/metrics"
	bolt "go.etcd.io/bbolt"
)

// ErrClosed is returned for writes to a file that is closing or closed (shutdown, or a workspace being deleted).
// It is an errs.ErrUnavailable: the HTTP layer answers 503, not 500.
var ErrClosed = fmt.Errorf("store closed: %w", errs.ErrUnavailable)

// committer is the single writer of one bbolt file. Callers hand it functions; it runs as many as are waiting (up
// to maxBatch, optionally waiting maxDelay for more) in one read-write transaction with one fsync, and tells each
// caller the outcome. Measured on 2 cores: one transaction per write is ~2k writes/s with fsync; this path reaches
// tens of thousands (docs/benchmarks.md).
//
// A function that returns an error (or panics) must not undo the others: the transaction is rolled back, that
// caller gets its error, and the rest run again in a fresh transaction. Functions may therefore run more than once
// and must only depend on the transaction they are given, like bbolt's own DB.Batch.
type committer struct {
	db   *bolt.DB
	reqs chan *writeReq
	// many carries groups of writes handed over at once (writeEach), so that one caller can fill a batch.
	many     chan []*writeReq
	closing  chan struct{}
	done     chan struct{}
	maxBatch int
	maxDelay time.Duration
	lastErr  atomic.Pointer[error]
	// waiting counts writes handed to write() that the writer has not taken yet: the queue depth.
	waiting atomic.Int64

	commitSeconds *metrics.Histogram
	batchSize     *metrics.Histogram
}

type writeReq struct {
	fn  func(*bolt.Tx) error
	err chan error
}

func newCommitter(db *bolt.DB, maxBatch int, maxDelay time.Duration, commitSeconds, batchSize *metrics.Histogram) *committer {
	c := &committer{
		db: db, reqs: make(chan *writeReq), many: make(chan []*writeReq), closing: make(chan struct{}), done: make(chan struct{}),
		maxBatch: maxBatch, maxDelay: maxDelay, commitSeconds: commitSeconds, batchSize: batchSize,
	}
	go c.loop()
	return c
}

// write runs fn in a group commit and returns once the transaction holding it is durable, or with fn's error.
func (c *committer) write(ctx context.Context, fn func(*bolt.Tx) error) error {
	r := &writeReq{fn: fn, err: make(chan error, 1)}
	c.waiting.Add(1)
	select {
	case c.reqs <- r:
		c.waiting.Add(-1)
	case <-c.closing:
		c.waiting.Add(-1)
		return ErrClosed
	case <-ctx.Done():
		c.waiting.Add(-1)
		return ctx.Err()
	}
	// Once handed over the write will be committed or fail shortly; report that truthfully rather than a
	// cancellation that would leave the caller unsure.
	return <-r.err
}

// writeEach runs each function as its own write (a failing one is rolled back alone, as with write) and returns one
// outcome per function once all are durable. The functions are handed over in groups of up to maxBatch, so a single
// caller fills whole transactions.
func (c *committer) writeEach(ctx context.Context, fns []func(*bolt.Tx) error) []error {
	out := make([]error, len(fns))
	reqs := make([]*writeReq, len(fns))
	for i, fn := range fns {
		reqs[i] = &writeReq{fn: fn, err: make(chan error, 1)}
	}
	sent := 0
	for sent < len(reqs) {
		end := min(sent+c.maxBatch, len(reqs))
		group := reqs[sent:end]
		c.waiting.Add(int64(len(group)))
		select {
		case c.many <- group:
			c.waiting.Add(-int64(len(group)))
		case <-c.closing:
			c.waiting.Add(-int64(len(group)))
			for i := sent; i < len(reqs); i++ {
				out[i] = ErrClosed
			}
			return c.collect(reqs[:sent], out)
		case <-ctx.Done():
			c.waiting.Add(-int64(len(group)))
			for i := sent; i < len(reqs); i++ {
				out[i] = ctx.Err()
			}
			return c.collect(reqs[:sent], out)
		}
		sent = end
	}
	return c.collect(reqs, out)
}

// collect waits for the outcome of every handed-over request.
func (c *committer) collect(reqs []*writeReq, out []error) []error {
	for i, r := range reqs {
		out[i] = <-r.err
	}
	return out
}

func (c *committer) loop() {
	defer close(c.done)
	batch := make([]*writeReq, 0, c.maxBatch)
	for {
		select {
		case r := <-c.reqs:
			batch = append(batch[:0], r)
		case g := <-c.many:
			batch = append(batch[:0], g...)
		case <-c.closing:
			// Senders blocked in write() see closing too; nothing handed over is left unanswered.
			return
		}
		batch = c.gather(batch)
		c.run(batch)
	}
}

// gather adds the writes already waiting, then, if maxDelay is set, those arriving within it.
func (c *committer) gather(batch []*writeReq) []*writeReq {
drain:
	for len(batch) < c.maxBatch {
		select {
		case r := <-c.reqs:
			batch = append(batch, r)
		case g := <-c.many:
			batch = append(batch, g...)
		default:
			break drain
		}
	}
	if c.maxDelay <= 0 || len(batch) >= c.maxBatch {
		return batch
	}
	timer := time.NewTimer(c.maxDelay)
	defer timer.Stop()
	for len(batch) < c.maxBatch {
		select {
		case r := <-c.reqs:
			batch = append(batch, r)
		case g := <-c.many:
			batch = append(batch, g...)
		case <-timer.C:
			return batch
		}
	}
	return batch
}

func (c *committer) run(batch []*writeReq) {
	pending := batch
	for len(pending) > 0 {
		start := time.Now()
		failed, refused, err := c.attempt(pending)
		if failed >= 0 {
			pending[failed].err <- err
			pending = append(pending[:failed:failed], pending[failed+1:]...)
			continue
		}
		if err != nil {
			c.lastErr.Store(&err)
		} else {
			c.lastErr.Store(nil)
		}
		c.commitSeconds.ObserveDuration(time.Since(start))
		c.batchSize.Observe(float64(len(pending)))
		for i, r := range pending {
			if rerr, ok := refused[i]; ok {
				r.err <- rerr
				continue
			}
			r.err <- err
		}
		return
	}
}

// NothingWritten is implemented by errors of write functions that failed before writing anything (a refused import
// row, say). The group commit then answers that function with its error and goes on with the others in the same
// transaction, instead of rolling it back and running them again: a chunk of rows with many bad ones stays linear.
type NothingWritten interface {
	NothingWritten() bool
}

func nothingWritten(err error) bool {
	var nw NothingWritten
	return errors.As(err, &nw) && nw.NothingWritten()
}

// attempt runs every function in one transaction. It returns the index of a function that failed after writing
// (the transaction is then rolled back) or -1 and the commit's outcome, with the functions that failed without
// writing (by index) and their errors.
func (c *committer) attempt(pending []*writeReq) (int, map[int]error, error) {
	tx, err := c.db.Begin(true)
	if err != nil {
		return -1, nil, fmt.Errorf("beginning transaction: %w", err)
	}
	var refused map[int]error
	for i, r := range pending {
		if err := call(r.fn, tx); err != nil {
			if nothingWritten(err) {
				if refused == nil {
					refused = map[int]error{}
				}
				refused[i] = err
				continue
			}
			_ = tx.Rollback()
			return i, nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return -1, refused, fmt.Errorf("committing: %w", err)
	}
	return -1, refused, nil
}

func call(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("write function panicked: %v", p)
		}
	}()
	return fn(tx)
}

// health returns the error of the last commit, nil if it succeeded.
func (c *committer) health() error {
	if p := c.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// close stops accepting writes, lets the write in progress finish, and waits for the loop to end.
func (c *committer) close() {
	select {
	case <-c.closing:
	default:
		close(c.closing)
	}
	<-c.done
}
