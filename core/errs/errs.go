// Package errs holds the error kinds that core packages return and that the HTTP layer maps to status codes in one
// place. It imports only the standard library and must stay that way: every core package depends on it.
//
// Core code wraps these with context (fmt.Errorf("creating workspace %q: %w", id, errs.ErrConflict)); callers test
// them with errors.Is / errors.As.
package errs

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrNotFound means the addressed object does not exist (or is not visible to the caller).
	ErrNotFound = errors.New("not found")
	// ErrConflict means the request collides with the current state: a duplicate id, a unique key taken, an object
	// managed elsewhere.
	ErrConflict = errors.New("conflict")
	// ErrUnauthorized means the caller could not be identified: missing, malformed, unknown or revoked credentials.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden means the caller is identified but its role or scope does not allow the action.
	ErrForbidden = errors.New("forbidden")
	// ErrUnavailable means a dependency (a store, a plugin) cannot serve right now; retrying later may succeed.
	ErrUnavailable = errors.New("unavailable")
)

// FieldError is one problem with one input field. Field is a dotted path ("name", "items.3.email"); Message says
// what is wrong in words a user understands.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError reports every problem found in an input at once, so a user can fix them in one go.
type ValidationError struct {
	Fields []FieldError
}

// Invalid returns a ValidationError with a single field problem.
func Invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Fields: []FieldError{{Field: field, Message: fmt.Sprintf(format, args...)}}}
}

// Add records one more field problem.
func (e *ValidationError) Add(field, format string, args ...any) {
	e.Fields = append(e.Fields, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// OrNil returns e as an error if it holds any problem, and nil otherwise. It avoids the typed-nil trap of returning a
// nil *ValidationError as a non-nil error.
func (e *ValidationError) OrNil() error {
	if e == nil || len(e.Fields) == 0 {
		return nil
	}
	return e
}

// Error lists every field problem.
func (e *ValidationError) Error() string {
	parts := make([]string, 0, len(e.Fields))
	for _, f := range e.Fields {
		if f.Field == "" {
			parts = append(parts, f.Message)
			continue
		}
		parts = append(parts, f.Field+": "+f.Message)
	}
	return "invalid input: " + strings.Join(parts, "; ")
}
