package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/segments"
	bolt "go.etcd.io/bbolt"
)

var _ segments.Store = (*Store)(nil)

// PutSegment creates or replaces a segment in the workspace's file.
func (s *Store) PutSegment(ctx context.Context, ws string, seg segments.Segment) error {
	db, err := s.Workspace(ws)
	if err != nil {
		return err
	}
	data, err := json.Marshal(seg)
	if err != nil {
		return err
	}
	return db.Update(ctx, func(tx *bolt.Tx) error { return tx.Bucket(bucketSegments).Put([]byte(seg.ID), data) })
}

// DeleteSegment removes a segment.
func (s *Store) DeleteSegment(ctx context.Context, ws, id string) error {
	db, err := s.Workspace(ws)
	if err != nil {
		return err
	}
	return db.Update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSegments)
		if b.Get([]byte(id)) == nil {
			return fmt.Errorf("segment %q: %w", id, errs.ErrNotFound)
		}
		return b.Delete([]byte(id))
	})
}

// ListSegments returns the workspace's segments in id order.
func (s *Store) ListSegments(_ context.Context, ws string) ([]segments.Segment, error) {
	db, err := s.Workspace(ws)
	if err != nil {
		return nil, err
	}
	var out []segments.Segment
	err = db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSegments).ForEach(func(k, v []byte) error {
			var seg segments.Segment
			if err := json.Unmarshal(v, &seg); err != nil {
				return fmt.Errorf("decoding segment %q: %w", k, err)
			}
			out = append(out, seg)
			return nil
		})
	})
	return out, err
}
