package imports

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/errs"
)

// Upserter writes rows of contacts, each atomically on its own; *contacts.Service implements it.
type Upserter interface {
	UpsertMany(ctx context.Context, ws string, rows []contacts.Fields, source string) ([]contacts.UpsertOutcome, error)
}

// Reporter receives an import's progress; *jobs.Progress implements it.
type Reporter interface {
	// SetTotal sets the number of rows expected.
	SetTotal(n int64)
	// Add counts rows done: created, updated (found and upserted, changed or not) and failed.
	Add(created, updated, failed int64)
	// RowError reports one problem of the row starting at line; rows come in input order.
	RowError(line int64, column, field, message string)
}

// DefaultChunk is how many rows go to one UpsertMany call: large enough that group commits are full, small enough
// that a cancelled import stops within a fraction of a second.
const DefaultChunk = 1000

// Source is the source recorded on consents that an import sets.
const Source = "import"

// item is one row of a chunk: fields to write, or why the row could not be read.
type item struct {
	line int64
	bad  *RowError
}

type chunk struct {
	items []item
	rows  []contacts.Fields
	idx   []int // items index of each row
}

// Run reads every row of rd and upserts them into workspace ws in chunks of size rows (DefaultChunk if <= 0),
// reporting progress and row errors to rep in input order. A bad row is reported and skipped: it writes nothing,
// and the rows around it are kept. Reading the next chunk overlaps writing the current one.
//
// Run returns nil once every row was processed, ctx's error if ctx was cancelled (after the chunk being written,
// which completes), or the fatal error that stopped it (the input cannot be read further, the workspace was
// deleted, the store is closed), saying at which line. At the end, the total is set to the rows actually read.
func Run(ctx context.Context, u Upserter, ws string, rd Reader, rep Reporter, size int) error {
	if size <= 0 {
		size = DefaultChunk
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks := make(chan *chunk, 2)
	readErr := make(chan error, 1)
	var rowsRead int64
	go func() {
		defer close(chunks)
		readErr <- readChunks(ctx, rd, size, chunks, &rowsRead)
	}()
	// A chunk being written completes even when ctx is cancelled: its rows are then all reported, and cancelling
	// stops the import between chunks.
	writeCtx := context.WithoutCancel(ctx)
	for c := range chunks {
		if ctx.Err() != nil {
			break
		}
		if err := writeChunk(writeCtx, u, ws, rd, rep, c); err != nil {
			cancel()
			for range chunks { // let the reader stop
			}
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		for range chunks {
		}
		return err
	}
	if err := <-readErr; err != nil {
		return err
	}
	rep.SetTotal(rowsRead)
	return nil
}

// readChunks reads rows into chunks until the input ends, fails or ctx is cancelled.
func readChunks(ctx context.Context, rd Reader, size int, out chan<- *chunk, rowsRead *int64) error {
	c := &chunk{}
	send := func() bool {
		if len(c.items) == 0 {
			return true
		}
		select {
		case out <- c:
			c = &chunk{items: make([]item, 0, size), rows: make([]contacts.Fields, 0, size), idx: make([]int, 0, size)}
			return true
		case <-ctx.Done():
			return false
		}
	}
	c.items, c.rows, c.idx = make([]item, 0, size), make([]contacts.Fields, 0, size), make([]int, 0, size)
	for {
		row, err := rd.Next()
		if errors.Is(err, io.EOF) {
			send()
			return nil
		}
		if err != nil {
			var bad *RowError
			if !errors.As(err, &bad) {
				// Rows read before the fatal error are still written.
				send()
				return err
			}
			c.items = append(c.items, item{line: bad.Line, bad: bad})
		} else {
			c.idx = append(c.idx, len(c.items))
			c.items = append(c.items, item{line: row.Line})
			c.rows = append(c.rows, row.Fields)
		}
		*rowsRead++
		if len(c.items) >= size && !send() {
			return ctx.Err()
		}
	}
}

// writeChunk upserts a chunk's rows and reports every row of it in order.
func writeChunk(ctx context.Context, u Upserter, ws string, rd Reader, rep Reporter, c *chunk) error {
	var outs []contacts.UpsertOutcome
	if len(c.rows) > 0 {
		var err error
		outs, err = u.UpsertMany(ctx, ws, c.rows, Source)
		if err != nil {
			line := c.items[c.idx[0]].line
			if errors.Is(err, errs.ErrNotFound) {
				return fmt.Errorf("the workspace is gone (deleted during the import?); stopped at line %d: %w", line, err)
			}
			return fmt.Errorf("writing the rows from line %d: %w", line, err)
		}
		if len(outs) != len(c.rows) {
			return fmt.Errorf("writing the rows from line %d: %d outcomes for %d rows", c.items[c.idx[0]].line, len(outs), len(c.rows))
		}
	}
	outcome := make([]*contacts.UpsertOutcome, len(c.items))
	for k, i := range c.idx {
		outcome[i] = &outs[k]
	}
	var created, updated, failed int64
	for i, it := range c.items {
		switch {
		case it.bad != nil:
			failed++
			for _, p := range it.bad.Problems {
				rep.RowError(it.line, p.Column, p.Field, p.Message)
			}
		case outcome[i].Err != nil && fatalRowError(outcome[i].Err):
			// Not a problem of this row (the workspace was deleted, the store closed): every row would fail alike.
			rep.Add(created, updated, failed)
			if errors.Is(outcome[i].Err, errs.ErrNotFound) {
				return fmt.Errorf("the workspace is gone (deleted during the import?); stopped at line %d: %w", it.line, outcome[i].Err)
			}
			return fmt.Errorf("stopped at line %d: %w", it.line, outcome[i].Err)
		case outcome[i].Err != nil:
			failed++
			for _, p := range upsertProblems(rd, outcome[i].Err) {
				rep.RowError(it.line, p.Column, p.Field, p.Message)
			}
		case outcome[i].Created:
			created++
		default:
			updated++
		}
	}
	rep.Add(created, updated, failed)
	return nil
}

// fatalRowError reports whether a row's error is about the import as a whole rather than the row: the workspace
// is not found, the store is unavailable, or the write was cancelled.
func fatalRowError(err error) bool {
	return errors.Is(err, errs.ErrNotFound) || errors.Is(err, errs.ErrUnavailable) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// upsertProblems turns a row's upsert error into problems, naming the input column of each field.
func upsertProblems(rd Reader, err error) []Problem {
	var v *errs.ValidationError
	if errors.As(err, &v) {
		out := make([]Problem, 0, len(v.Fields))
		for _, f := range v.Fields {
			out = append(out, Problem{Column: rd.Column(f.Field), Field: f.Field, Message: f.Message})
		}
		return out
	}
	return []Problem{{Message: err.Error()}}
}
