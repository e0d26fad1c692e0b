// Package jobs owns background jobs: the job record (status, progress counters, rate, per-row errors with their
// line numbers), and a small runner that executes jobs off the request path, a few at a time, saves their progress
// at most about once a second, lets callers cancel them, and on start-up fails the jobs a crash left behind.
//
// What a job does is a Func handed over by the caller (admin/ builds contact imports from core/imports); storage is
// the Store interface below, implemented on the system file by core/store. The package imports only the standard
// library, go-hclog and core/errs: never HTTP, bbolt or another domain package.
package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"
)

// Status is where a job is in its life.
type Status string

// Job statuses. Queued and Running are live; the others are final.
const (
	StatusQueued    Status = "queued"
	StatusRunning   Status = "running"
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
	StatusCancelled Status = "cancelled"
)

// Done reports whether s is a final status.
func (s Status) Done() bool { return s == StatusSucceeded || s == StatusFailed || s == StatusCancelled }

// MaxRowErrors is how many row errors a job keeps; ErrorCount counts them all.
const MaxRowErrors = 1000

// RowError is one problem with one input row. Line is the 1-based line of the input where the row starts; Column
// names the input column (CSV header) when known; Field is the contact field ("email", "attributes.age", "" for the
// row as a whole).
type RowError struct {
	Line    int64  `json:"line"`
	Column  string `json:"column,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// Job is a background job as stored and as the API shows it.
type Job struct {
	ID        string `json:"id"`
	Workspace string `json:"workspace"`
	// Kind says what the job does ("contacts.import").
	Kind   string `json:"kind"`
	Status Status `json:"status"`
	// Params are the job's settings (an import's format, delimiter, mapping), for display. Values are plain JSON
	// values: strings, numbers, booleans, and maps and lists of them.
	Params map[string]any `json:"params,omitempty"`
	// CreatedBy is the id of the API token that started the job.
	CreatedBy string `json:"created_by,omitempty"`

	// Total is the number of rows to process, counted when the input was received (corrected at the end when a
	// malformed input held fewer). Processed = Created + Updated + Failed.
	Total     int64 `json:"total"`
	Processed int64 `json:"processed"`
	Created   int64 `json:"created"`
	Updated   int64 `json:"updated"`
	Failed    int64 `json:"failed"`
	// Rate is rows processed per second of running time.
	Rate float64 `json:"rate"`
	// Errors are the first MaxRowErrors row errors in input order; ErrorCount counts every one.
	Errors     []RowError `json:"errors"`
	ErrorCount int64      `json:"error_count"`
	// Message says why a job failed or was cancelled, or sums up a finished one.
	Message string `json:"message,omitempty"`

	CreatedAt  time.Time `json:"created_at"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// Store keeps job records. core/store implements it on the system file.
type Store interface {
	// PutJob creates or replaces a job record; it returns once the write is durable.
	PutJob(ctx context.Context, j Job) error
	// GetJob reads one job; errs.ErrNotFound if there is none.
	GetJob(ctx context.Context, id string) (Job, error)
	// ListJobs returns up to limit jobs (0 for all) of workspace ws ("" for every workspace), newest first, whose
	// ids sort below before ("" to start at the newest).
	ListJobs(ctx context.Context, ws, before string, limit int) ([]Job, error)
}

// NewID returns a job id: 22 lower-case hex digits, the creation time in milliseconds then 40 random bits, so ids
// sort by creation time.
func NewID(now time.Time) string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%012x%s", uint64(now.UnixMilli())&(1<<48-1), hex.EncodeToString(b[:]))
}

// ValidID reports whether id has the form NewID gives, so that ids from URLs are checked before lookups.
func ValidID(id string) bool {
	if len(id) != 22 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
