// Package store is Crosscast's embedded storage on bbolt: one system file plus one file per workspace, schema
// versions with ordered migrations, a group-commit write path, consistent online backups, and the bbolt
// implementations of the Store interfaces that core packages declare (workspaces.Store, auth.Store, ...).
//
// It is the only package that imports bbolt. It must not import HTTP or wasm libraries.
//
// # Files
//
//	<data_dir>/system.db             workspaces, API tokens, plugin state
//	<data_dir>/workspaces/<id>.db    one workspace's data: back it up, move it or delete it as a file
//
// A workspace per file means one client's data can be exported or erased on its own, and writes to different
// workspaces never queue behind each other: each file has its own writer.
//
// # Bucket tree
//
//	system.db
//	├── meta/                   schema_version -> uint64 big-endian; kind -> "system"; health_probe -> RFC 3339 time;
//	│                           link_key -> 32 random bytes: the key signing messages' links (LinkKey)
//	├── workspaces/             <workspace id> -> JSON workspaceRecord
//	├── write_keys/             <write key> -> <workspace id>        (unique index: tracking auth by write key)
//	├── tokens/                 <token id> -> JSON tokenRecord         (secret only as SHA-256)
//	└── jobs/                   <job id> -> JSON jobs.Job              (background jobs: imports; jobs.go)
//
//	workspaces/<id>.db
//	├── meta/                   schema_version -> uint64 big-endian; kind -> "workspace"; workspace_id -> <id>;
//	│                           contacts -> uint64 count; events -> uint64 count; change_seq -> uint64, the last
//	│                           number of the contacts change stream (contacts.Change.Seq)
//	├── contacts/               <contact id> -> JSON contacts.Contact                          (contacts.go)
//	├── contact_keys/           <contact id> -> the index entries the contact holds, binary: for each entry one
//	│                           byte kind (e email, p phone, u user id, a anonymous id, t tag), uvarint length,
//	│                           bytes. Put diffs against it instead of decoding the old JSON.
//	├── last_seen/              <contact id> -> uint64 big-endian unix nanos of its latest event (kept apart from
//	│                           the contact so that tracking a known visitor never rewrites the profile)
//	├── idx_email/              <normalised email> -> <contact id>                             (unique)
//	├── idx_phone/              <E.164 phone> -> <contact id>                                  (unique)
//	├── idx_user/               <user id> -> <contact id>                                      (unique)
//	├── idx_anon/               <anonymous id or aliased old user id> -> <contact id>          (unique)
//	├── idx_tag/                <tag> NUL <contact id> -> ""
//	├── events/                 <contact id> NUL <timestamp: uint64 big-endian unix nanos + 2^63> <message id>
//	│                           -> JSON events.Event  (a contact's events in time order)
//	├── event_ids/              <message id> -> key in events/                                 (deduplication)
//	├── event_names/            <track event name> -> uint32 big-endian code                              (schema 5)
//	│                           (codes of the track event digest: the empty name is code 0 and not stored, as
//	│                           bbolt keys cannot be empty; the others get the bucket's NextSequence, 1, 2, ...;
//	│                           names are never deleted, so codes are never reused)
//	├── track_events/           <contact id> NUL <uint32 big-endian chunk number> -> packed entries     (schema 5)
//	│                           (track_events.go: the track event digest, a copy of what the segment index needs
//	│                           of each track event in events/, ~10 bytes instead of its JSON; each entry is the
//	│                           8 bytes of time of its events/ key, then a uvarint name code. A contact's entries
//	│                           are appended to its last chunk until it would pass 2 KiB, then to chunk n+1;
//	│                           append order, not time order. PutEvent, MoveEvents and DeleteEvents keep it in
//	│                           step with events/; schema 5's migration fills it from events/)
//	├── merges/                 <merged-away contact id> -> JSON contacts.Merge                (redirects)
//	├── merges_into/            <survivor id> NUL <merged-away id> -> ""
//	├── suppression/            <SHA-256 hex of "email:"/"phone:" + value> -> RFC 3339 time    (erased contacts)
//	├── segments/               <segment id> -> JSON segments.Segment (name, canonical rule text)      (schema 3)
//	├── segment_members/        <segment id> NUL <contact id> -> uint64 big-endian unix nanos: member since    (schema 4)
//	│                           (segments.go: the recorded member set; rows of a segment go with DeleteSegment)
//	├── segment_history/        <contact id> NUL <timestamp: uint64 big-endian unix nanos + 2^63> <uint64
//	│                           big-endian seq> <segment id> -> 'e' (entered) or 'x' (exited), then the reason
//	│                           (schema 4; seq is the bucket's NextSequence, so two transitions in the same
//	│                           nanosecond never share a key and keep the order they were recorded in; history
//	│                           outlives DeleteSegment and goes only with ForgetContact)
//	├── audit/                  <uint64 big-endian unix nanos + 2^63> <uint64 big-endian seq> -> JSON contacts.AuditEntry
//	├── campaigns/              <campaign id> -> JSON campaigns.Campaign                        (schema 6; campaigns.go)
//	├── campaign_audit/         <campaign id> NUL <uint64 big-endian unix nanos + 2^63> <uint64 big-endian seq>
//	│                           -> JSON campaigns.AuditEntry  (seq: the bucket's NextSequence)         (schema 6)
//	├── campaign_triggers/      <campaign id> NUL <contact id> -> uint64 big-endian unix nanos: the contact's last
//	│                           accepted trigger of a triggered campaign (its re-entry rule reads it)   (schema 7)
//	├── contact_sends/          <contact id> NUL <uint64 big-endian sent-at unix nanos + 2^63> <campaign id> NUL
//	│                           <uint32 big-endian run> <byte slot> -> 'm' (marketing) or 't' (transactional): every
//	│                           message sent, written with its outbox status; what frequency caps count  (schema 8)
//	├── campaign_breakdown/     <campaign id> NUL 'v' <variant number> or NUL 'c' <channel> -> JSON campaigns.Counts of
//	│                           that A/B variant or channel: outcomes (settled messages) and engagement     (schema 10)
//	├── soft_bounces/           <contact id> NUL <consent channel> -> uint32 big-endian: soft bounces since the last
//	│                           delivery (past a threshold, consent is withdrawn)                          (schema 11)
//	├── campaign_counts/        <campaign id> -> JSON campaigns.Counts, changed in the same transaction as every
//	│                           outbox change, so always exact (planned counts every message ever planned)  (schema 6)
//	├── outbox/                 <campaign id> NUL <uint32 big-endian run> <contact id> NUL <byte slot> -> the
//	│                           message, binary: format byte 1, status byte (1 queued, 2 sending, 3 sent, 4 failed,
//	│                           5 skipped, 6 cancelled), due, planned at and sent at (each int64 big-endian unix
//	│                           nanos; the zero time is math.MinInt64), uvarint attempts, then channel, to,
//	│                           provider id and error, each a uvarint length and bytes, and for a triggered message
//	│                           the trigger (its event's message id) the same way, then its A/B variant (a zigzag
//	│                           varint; -1 while it waits for the winner). Campaign, run, contact and
//	│                           slot are the key. Times read back in UTC.                                (schema 6)
//	├── outbox_due/             <campaign id> NUL <uint64 big-endian due unix nanos + 2^63> <outbox key after
//	│                           "<campaign id> NUL"> -> ""  (exactly one entry per pending message, queued or sending,
//	│                           at its Due, which is the lease end of a sending one; none for final messages; what
//	│                           ClaimMessages walks in due order)                                        (schema 6)
//	├── outbox_engagement/      <outbox key> -> uint32 big-endian counters of the message: opens, clicks,
//	│                           unsubscribes, then (provider feedback) deliveries, hard bounces, soft bounces,
//	│                           complaints, conversions; shorter values end early (counters 0)            (schema 9)
//	├── outbox_plan/            <campaign id> NUL <uint32 big-endian run> -> JSON {"after": <last contact id
//	│                           planned>, "done": bool}: a run's planning cursor                        (schema 6)
//	└── plugin_kv/              plugins' key-value spaces (pluginkv.go): made by a plugin's first write, never by reads
//	    └── <plugin name>/      one space per plugin (name: 1-64 bytes, no "/" or NUL)
//	        ├── data/           <key> -> <value>   (key 1-1024 bytes, value up to 8 MiB)
//	        └── meta/           usage -> uint64 big-endian, len(key)+len(value) summed over data;
//	                            keys -> uint64 big-endian, number of keys in data
//	    (the segment index: added by its issue, documented here)
//
// Names of buckets and keys are the documented []byte variables below; never spell them inline.
//
// # Durability
//
// Every write goes through DB.Update, which joins a group commit: concurrent writes share one bbolt transaction and
// one fsync. When DB.Update returns nil, the write is on disk (storage.fsync = true, the default) and survives a
// crash of the process or of the machine. With fsync off, it survives a crash of the process but the last moments
// of writes may be lost if the machine loses power.
//
// # Schema versions
//
// Each file records meta/schema_version. Opening a file runs, in one transaction each, the migrations whose version
// is above it, in order; a file written by a newer Crosscast is refused rather than misread.
package store

var (
	bucketMeta       = []byte("meta")
	bucketWorkspaces = []byte("workspaces")
	bucketWriteKeys  = []byte("write_keys")
	bucketTokens     = []byte("tokens")
	bucketJobs       = []byte("jobs")

	bucketContacts    = []byte("contacts")
	bucketContactKeys = []byte("contact_keys")
	bucketLastSeen    = []byte("last_seen")
	bucketIdxEmail    = []byte("idx_email")
	bucketIdxPhone    = []byte("idx_phone")
	bucketIdxUser     = []byte("idx_user")
	bucketIdxAnon     = []byte("idx_anon")
	bucketIdxTag      = []byte("idx_tag")
	bucketEvents      = []byte("events")
	bucketEventIDs    = []byte("event_ids")
	bucketMerges      = []byte("merges")
	bucketMergesInto  = []byte("merges_into")
	bucketSuppression = []byte("suppression")
	bucketAudit       = []byte("audit")
	bucketSegments    = []byte("segments")
	// bucketSegmentMembers and bucketSegmentHistory hold the recorded side of segment membership (segments.go).
	bucketSegmentMembers = []byte("segment_members")
	bucketSegmentHistory = []byte("segment_history")
	// bucketEventNames and bucketTrackEvents hold the track event digest (track_events.go) that the segment index
	// reads at start instead of events/.
	bucketEventNames  = []byte("event_names")
	bucketTrackEvents = []byte("track_events")
	// The campaign buckets (campaigns.go): campaigns, their audit trails and counts, and the outbox with its due
	// index and planning cursors.
	bucketCampaigns         = []byte("campaigns")
	bucketCampaignAudit     = []byte("campaign_audit")
	bucketCampaignCounts    = []byte("campaign_counts")
	bucketCampaignTriggers  = []byte("campaign_triggers")
	bucketContactSends      = []byte("contact_sends")
	bucketOutboxEngagement  = []byte("outbox_engagement")
	bucketCampaignBreakdown = []byte("campaign_breakdown")
	bucketSoftBounces       = []byte("soft_bounces")
	bucketOutbox            = []byte("outbox")
	bucketOutboxDue         = []byte("outbox_due")
	bucketOutboxPlan        = []byte("outbox_plan")

	keyContactCount = []byte("contacts")
	keyEventCount   = []byte("events")
	keyChangeSeq    = []byte("change_seq")

	keySchemaVersion = []byte("schema_version")
	keyKind          = []byte("kind")
	keyWorkspaceID   = []byte("workspace_id")
	keyHealthProbe   = []byte("health_probe")
	keyLinkKey       = []byte("link_key")
)

// The kinds of data file, recorded in meta/kind so that a file put in the wrong place is refused.
const (
	kindSystem    = "system"
	kindWorkspace = "workspace"
)
