package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"time"

	"github.com/crosscast/crosscast/core/auth"
	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/workspaces"
	bolt "go.etcd.io/bbolt"
)

var (
	_ workspaces.Store = (*Store)(nil)
	_ auth.Store       = (*Store)(nil)
)

// workspaceRecord is a workspace as stored in system.db/workspaces.
type workspaceRecord struct {
	ID              string    `json:"id"`
	Name            string    `json:"name"`
	WriteKey        string    `json:"write_key"`
	Managed         bool      `json:"managed,omitempty"`
	ManagedWriteKey bool      `json:"managed_write_key,omitempty"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
	// Settings was added in schema 2; records written before have none (defaults apply).
	Settings workspaces.Settings `json:"settings,omitzero"`
}

// tokenRecord is an API token as stored in system.db/tokens.
type tokenRecord struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Role       auth.Role `json:"role"`
	Workspace  string    `json:"workspace,omitempty"`
	SecretHash []byte    `json:"secret_sha256"`
	CreatedAt  time.Time `json:"created_at"`
	CreatedBy  string    `json:"created_by"`
}

func getJSON(b *bolt.Bucket, key string, v any) error {
	data := b.Get([]byte(key))
	if data == nil {
		return errs.ErrNotFound
	}
	return json.Unmarshal(data, v)
}

func putJSON(b *bolt.Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), data)
}

// CreateWorkspace creates the workspace's file, then records it. If recording fails, the new file is removed again.
func (s *Store) CreateWorkspace(ctx context.Context, w workspaces.Workspace) error {
	if err := s.system.View(func(tx *bolt.Tx) error { return checkFree(tx, w.ID, w.WriteKey) }); err != nil {
		return err
	}
	// Holding the lifecycle lock across file creation and the record's commit keeps two creations of one id from
	// racing and backups from seeing one without the other.
	s.lifecycle.Lock()
	defer s.lifecycle.Unlock()
	if _, err := s.Workspace(w.ID); err == nil {
		return fmt.Errorf("workspace %q already exists: %w", w.ID, errs.ErrConflict)
	}
	db, err := s.createWorkspaceFile(w.ID)
	if err != nil {
		return err
	}
	err = s.system.Update(ctx, func(tx *bolt.Tx) error {
		if err := checkFree(tx, w.ID, w.WriteKey); err != nil {
			return err
		}
		if err := putJSON(tx.Bucket(bucketWorkspaces), w.ID, workspaceRecord(w)); err != nil {
			return err
		}
		return tx.Bucket(bucketWriteKeys).Put([]byte(w.WriteKey), []byte(w.ID))
	})
	if err != nil {
		_ = db.close()
		_ = removeFile(db.path)
		return err
	}
	s.mu.Lock()
	s.workspaces[w.ID] = db
	s.mu.Unlock()
	return nil
}

func checkFree(tx *bolt.Tx, id, writeKey string) error {
	if tx.Bucket(bucketWorkspaces).Get([]byte(id)) != nil {
		return fmt.Errorf("workspace %q already exists: %w", id, errs.ErrConflict)
	}
	if owner := tx.Bucket(bucketWriteKeys).Get([]byte(writeKey)); owner != nil {
		return fmt.Errorf("write key is already used by another workspace: %w", errs.ErrConflict)
	}
	return nil
}

// GetWorkspace reads one workspace.
func (s *Store) GetWorkspace(_ context.Context, id string) (workspaces.Workspace, error) {
	var r workspaceRecord
	err := s.system.View(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bucketWorkspaces), id, &r) })
	if err != nil {
		return workspaces.Workspace{}, err
	}
	return workspaces.Workspace(r), nil
}

// ListWorkspaces lists workspaces in id order after the given id; limit 0 lists all.
func (s *Store) ListWorkspaces(_ context.Context, after string, limit int) ([]workspaces.Workspace, error) {
	var out []workspaces.Workspace
	err := s.system.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketWorkspaces).Cursor()
		k, v := c.Seek([]byte(after))
		if k != nil && after != "" && bytes.Equal(k, []byte(after)) {
			k, v = c.Next()
		}
		for ; k != nil && (limit == 0 || len(out) < limit); k, v = c.Next() {
			var r workspaceRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decoding workspace %q: %w", k, err)
			}
			out = append(out, workspaces.Workspace(r))
		}
		return nil
	})
	return out, err
}

// UpdateWorkspace applies fn to the stored record and moves its write key index entry when the key changed, all in
// one transaction.
func (s *Store) UpdateWorkspace(ctx context.Context, id string, fn func(*workspaces.Workspace) error) (workspaces.Workspace, error) {
	var out workspaces.Workspace
	err := s.system.Update(ctx, func(tx *bolt.Tx) error {
		ws, keys := tx.Bucket(bucketWorkspaces), tx.Bucket(bucketWriteKeys)
		var old workspaceRecord
		if err := getJSON(ws, id, &old); err != nil {
			return err
		}
		w := workspaces.Workspace(old)
		if err := fn(&w); err != nil {
			return err
		}
		w.ID = id // the id is the key: fn cannot move a record
		if old.WriteKey != w.WriteKey {
			if owner := keys.Get([]byte(w.WriteKey)); owner != nil && string(owner) != id {
				return fmt.Errorf("write key is already used by another workspace: %w", errs.ErrConflict)
			}
			if err := keys.Delete([]byte(old.WriteKey)); err != nil {
				return err
			}
			if err := keys.Put([]byte(w.WriteKey), []byte(id)); err != nil {
				return err
			}
		}
		out = w
		return putJSON(ws, id, workspaceRecord(w))
	})
	return out, err
}

// DeleteWorkspace removes the record, its write key and its tokens in one transaction, then the workspace's file.
func (s *Store) DeleteWorkspace(ctx context.Context, id string) error {
	s.lifecycle.Lock()
	defer s.lifecycle.Unlock()
	err := s.system.Update(ctx, func(tx *bolt.Tx) error {
		ws := tx.Bucket(bucketWorkspaces)
		var r workspaceRecord
		if err := getJSON(ws, id, &r); err != nil {
			return err
		}
		if err := ws.Delete([]byte(id)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketWriteKeys).Delete([]byte(r.WriteKey)); err != nil {
			return err
		}
		// Its tokens and its job records go with it.
		for _, b := range []*bolt.Bucket{tx.Bucket(bucketTokens), tx.Bucket(bucketJobs)} {
			if err := deleteOfWorkspace(b, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.dropWorkspaceFile(id)
	return nil
}

// deleteOfWorkspace deletes the JSON records of bucket b whose "workspace" field is id.
func deleteOfWorkspace(b *bolt.Bucket, id string) error {
	var doomed [][]byte
	err := b.ForEach(func(k, v []byte) error {
		var r struct {
			Workspace string `json:"workspace"`
		}
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decoding record %q: %w", k, err)
		}
		if r.Workspace == id {
			doomed = append(doomed, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range doomed {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// WorkspaceByWriteKey returns the id of the workspace a tracking write key belongs to.
func (s *Store) WorkspaceByWriteKey(_ context.Context, key string) (string, error) {
	var id string
	err := s.system.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketWriteKeys).Get([]byte(key))
		if v == nil {
			return errs.ErrNotFound
		}
		id = string(v)
		return nil
	})
	return id, err
}

// CreateToken stores a token; its workspace must exist at that moment.
func (s *Store) CreateToken(ctx context.Context, t auth.Token) error {
	return s.system.Update(ctx, func(tx *bolt.Tx) error {
		if t.Workspace != "" && tx.Bucket(bucketWorkspaces).Get([]byte(t.Workspace)) == nil {
			return fmt.Errorf("workspace %q: %w", t.Workspace, errs.ErrNotFound)
		}
		b := tx.Bucket(bucketTokens)
		if b.Get([]byte(t.ID)) != nil {
			return fmt.Errorf("token id %q: %w", t.ID, errs.ErrConflict)
		}
		return putJSON(b, t.ID, tokenRecord(t))
	})
}

// GetToken reads one token.
func (s *Store) GetToken(_ context.Context, id string) (auth.Token, error) {
	var r tokenRecord
	err := s.system.View(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bucketTokens), id, &r) })
	return auth.Token(r), err
}

// ListTokens lists every token in id order.
func (s *Store) ListTokens(_ context.Context) ([]auth.Token, error) {
	var out []auth.Token
	err := s.system.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTokens).ForEach(func(k, v []byte) error {
			var r tokenRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decoding token %q: %w", k, err)
			}
			out = append(out, auth.Token(r))
			return nil
		})
	})
	return out, err
}

// DeleteToken removes a token; errs.ErrNotFound if there is none.
func (s *Store) DeleteToken(ctx context.Context, id string) error {
	return s.system.Update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTokens)
		if b.Get([]byte(id)) == nil {
			return errs.ErrNotFound
		}
		return b.Delete([]byte(id))
	})
}

// LinkKey returns the server's key for signing the links messages carry (unsubscribe, open, click), made of 32
// random bytes on first use and kept in system.db, so that links sent before a restart keep working. A backup
// carries it; rotating it (deleting meta/link_key) invalidates every link already sent.
func (s *Store) LinkKey(ctx context.Context) ([]byte, error) {
	var key []byte
	err := s.system.View(func(tx *bolt.Tx) error {
		key = bytes.Clone(tx.Bucket(bucketMeta).Get(keyLinkKey))
		return nil
	})
	if err != nil || len(key) == 32 {
		return key, err
	}
	err = s.system.Update(ctx, func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keyLinkKey); len(v) == 32 {
			key = bytes.Clone(v)
			return nil
		}
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return err
		}
		return meta.Put(keyLinkKey, key)
	})
	return key, err
}
