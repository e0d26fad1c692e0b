package store

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// migration upgrades a file from version-1 to version. It runs in its own transaction with the version bump, so a
// failure leaves the file as it was.
type migration struct {
	version uint64
	name    string
	up      func(tx *bolt.Tx) error
}

// systemMigrations are the ordered schema changes of system.db.
func systemMigrations() []migration {
	return []migration{
		{1, "create workspaces, write_keys and tokens buckets", func(tx *bolt.Tx) error {
			return createBuckets(tx, bucketWorkspaces, bucketWriteKeys, bucketTokens)
		}},
		{2, "create jobs bucket", func(tx *bolt.Tx) error { return createBuckets(tx, bucketJobs) }},
	}
}

// workspaceMigrations are the ordered schema changes of workspaces/<id>.db.
func workspaceMigrations() []migration {
	return []migration{
		{1, "create meta", func(*bolt.Tx) error { return nil }},
		{2, "create contacts, last seen, events, their indexes, merges, suppression and audit buckets", func(tx *bolt.Tx) error {
			return createBuckets(tx, bucketContacts, bucketContactKeys, bucketLastSeen, bucketIdxEmail, bucketIdxPhone, bucketIdxUser,
				bucketIdxAnon, bucketIdxTag, bucketEvents, bucketEventIDs, bucketMerges, bucketMergesInto,
				bucketSuppression, bucketAudit)
		}},
		{3, "create segments bucket", func(tx *bolt.Tx) error { return createBuckets(tx, bucketSegments) }},
		{4, "create segment_members and segment_history buckets", func(tx *bolt.Tx) error {
			return createBuckets(tx, bucketSegmentMembers, bucketSegmentHistory)
		}},
		{5, "create event_names and track_events buckets, filled from events", buildTrackDigest},
		{6, "create campaigns, campaign_audit, campaign_counts and outbox buckets", func(tx *bolt.Tx) error {
			return createBuckets(tx, bucketCampaigns, bucketCampaignAudit, bucketOutbox, bucketOutboxDue, bucketOutboxPlan,
				bucketCampaignCounts)
		}},
		{7, "create campaign_triggers bucket", func(tx *bolt.Tx) error { return createBuckets(tx, bucketCampaignTriggers) }},
		{8, "create contact_sends bucket", func(tx *bolt.Tx) error { return createBuckets(tx, bucketContactSends) }},
		{9, "create outbox_engagement bucket", func(tx *bolt.Tx) error { return createBuckets(tx, bucketOutboxEngagement) }},
		{10, "create campaign_breakdown bucket", func(tx *bolt.Tx) error { return createBuckets(tx, bucketCampaignBreakdown) }},
		{11, "create soft_bounces bucket", func(tx *bolt.Tx) error { return createBuckets(tx, bucketSoftBounces) }},
	}
}

func createBuckets(tx *bolt.Tx, names ...[]byte) error {
	for _, n := range names {
		if _, err := tx.CreateBucketIfNotExists(n); err != nil {
			return fmt.Errorf("creating bucket %s: %w", n, err)
		}
	}
	return nil
}

// schemaVersion reads meta/schema_version; 0 for a new file.
func schemaVersion(tx *bolt.Tx) uint64 {
	b := tx.Bucket(bucketMeta)
	if b == nil {
		return 0
	}
	v := b.Get(keySchemaVersion)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func putUint64(b *bolt.Bucket, key []byte, v uint64) error {
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], v)
	return b.Put(key, buf[:])
}

// migrate brings db to the last version of ms. kind and id are checked against (or, for a new file, written to)
// meta so that a system file is never opened as a workspace file or one workspace's file as another's.
func migrate(db *bolt.DB, kind, id string, ms []migration) error {
	latest := ms[len(ms)-1].version
	err := db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if got := meta.Get(keyKind); got == nil {
			if err := meta.Put(keyKind, []byte(kind)); err != nil {
				return err
			}
		} else if string(got) != kind {
			return fmt.Errorf("file holds %s data, expected %s data", got, kind)
		}
		if kind == kindWorkspace {
			if got := meta.Get(keyWorkspaceID); got == nil {
				return meta.Put(keyWorkspaceID, []byte(id))
			} else if string(got) != id {
				return fmt.Errorf("file belongs to workspace %q, not %q", got, id)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, m := range ms {
		err := db.Update(func(tx *bolt.Tx) error {
			current := schemaVersion(tx)
			if current > latest {
				return fmt.Errorf("schema version %d is newer than this crosscast knows (%d): upgrade crosscast or restore a backup", current, latest)
			}
			if m.version <= current {
				return nil
			}
			if m.version != current+1 {
				return fmt.Errorf("migration %d cannot run on version %d", m.version, current)
			}
			if err := m.up(tx); err != nil {
				return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
			}
			return putUint64(tx.Bucket(bucketMeta), keySchemaVersion, m.version)
		})
		if err != nil {
			return err
		}
	}
	return nil
}
