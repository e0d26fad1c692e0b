package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/jobs"
	bolt "go.etcd.io/bbolt"
)

var _ jobs.Store = (*Store)(nil)

// PutJob creates or replaces a job record in system.db/jobs. Ids sort by creation time, so the bucket is in
// creation order.
func (s *Store) PutJob(ctx context.Context, j jobs.Job) error {
	if j.ID == "" {
		return errs.Invalid("id", "a job needs an id")
	}
	data, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("encoding job %q: %w", j.ID, err)
	}
	return s.system.Update(ctx, func(tx *bolt.Tx) error {
		// A job of a deleted workspace is not recorded again (its records went with the workspace).
		if j.Workspace != "" && tx.Bucket(bucketWorkspaces).Get([]byte(j.Workspace)) == nil {
			return fmt.Errorf("job %q: workspace %q: %w", j.ID, j.Workspace, errs.ErrNotFound)
		}
		return tx.Bucket(bucketJobs).Put([]byte(j.ID), data)
	})
}

// GetJob reads one job record.
func (s *Store) GetJob(_ context.Context, id string) (jobs.Job, error) {
	var j jobs.Job
	err := s.system.View(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bucketJobs), id, &j) })
	if err != nil {
		return jobs.Job{}, fmt.Errorf("job %q: %w", id, err)
	}
	return j, nil
}

// ListJobs returns up to limit jobs (0 for all) of workspace ws ("" for every workspace), newest first, with ids
// below before ("" to start at the newest).
func (s *Store) ListJobs(_ context.Context, ws, before string, limit int) ([]jobs.Job, error) {
	var out []jobs.Job
	err := s.system.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketJobs).Cursor()
		var k, v []byte
		if before == "" {
			k, v = c.Last()
		} else {
			// Seek lands on the first key >= before; step back to the first one below it.
			if k, _ = c.Seek([]byte(before)); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		}
		for ; k != nil && (limit == 0 || len(out) < limit); k, v = c.Prev() {
			if before != "" && string(k) >= before {
				continue
			}
			var j jobs.Job
			if err := json.Unmarshal(v, &j); err != nil {
				return fmt.Errorf("decoding job %q: %w", k, err)
			}
			if ws != "" && j.Workspace != ws {
				continue
			}
			out = append(out, j)
		}
		return nil
	})
	return out, err
}
