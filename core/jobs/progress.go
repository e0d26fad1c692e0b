package jobs

import (
	"math"
	"slices"
	"sync"
	"time"
)

// Progress is what a running job reports: counters and row errors. Its methods are safe for concurrent use; the
// runner reads it to save and show the job while the job writes it.
type Progress struct {
	mu                              sync.Mutex
	total, created, updated, failed int64
	errorCount                      int64
	errors                          []RowError
	message                         string
}

// SetTotal sets the number of rows the job expects to process.
func (p *Progress) SetTotal(n int64) {
	p.mu.Lock()
	p.total = n
	p.mu.Unlock()
}

// Add counts rows processed: created, updated (found and upserted, changed or not) and failed.
func (p *Progress) Add(created, updated, failed int64) {
	p.mu.Lock()
	p.created += created
	p.updated += updated
	p.failed += failed
	p.mu.Unlock()
}

// RowError records one problem with the row starting at line. Only the first MaxRowErrors are kept; all are
// counted. Callers report rows in input order, so the kept ones are the first of the input.
func (p *Progress) RowError(line int64, column, field, message string) {
	p.mu.Lock()
	p.errorCount++
	if len(p.errors) < MaxRowErrors {
		p.errors = append(p.errors, RowError{Line: line, Column: column, Field: field, Message: message})
	}
	p.mu.Unlock()
}

// SetMessage sets a note shown with the job (what it is doing now, or a summary).
func (p *Progress) SetMessage(msg string) {
	p.mu.Lock()
	p.message = msg
	p.mu.Unlock()
}

// Processed is the number of rows processed so far.
func (p *Progress) Processed() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.created + p.updated + p.failed
}

// fill copies the progress into j; now ends the running time of a job not finished yet.
func (p *Progress) fill(j *Job, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	j.Total = p.total
	j.Created, j.Updated, j.Failed = p.created, p.updated, p.failed
	j.Processed = p.created + p.updated + p.failed
	j.ErrorCount = p.errorCount
	j.Errors = slices.Clone(p.errors)
	if j.Errors == nil {
		j.Errors = []RowError{}
	}
	if p.message != "" && !j.Status.Done() {
		j.Message = p.message
	}
	j.Rate = 0
	if !j.StartedAt.IsZero() {
		end := now
		if !j.FinishedAt.IsZero() {
			end = j.FinishedAt
		}
		if secs := end.Sub(j.StartedAt).Seconds(); secs > 0 {
			j.Rate = math.Round(float64(j.Processed)/secs*10) / 10
		}
	}
}
