package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/events"
	"github.com/crosscast/crosscast/core/workspaces"
	bolt "go.etcd.io/bbolt"
)

var (
	bucketLabels   = []byte("labels") // created by the test's v2 migration
	v1WorkspaceKey = "wk_hand_built_v1_key"
)

func openRawBolt(t testing.TB, path string) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("opening %s: %v", path, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func be64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

// buildV1System writes, by hand and without the package's migration code, a system.db at schema version 1 holding
// one workspace, its write key and one token.
func buildV1System(t testing.TB, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucket([]byte("meta"))
		if err != nil {
			return err
		}
		if err := meta.Put([]byte("kind"), []byte("system")); err != nil {
			return err
		}
		if err := meta.Put([]byte("schema_version"), be64(1)); err != nil {
			return err
		}
		ws, err := tx.CreateBucket([]byte("workspaces"))
		if err != nil {
			return err
		}
		keys, err := tx.CreateBucket([]byte("write_keys"))
		if err != nil {
			return err
		}
		tokens, err := tx.CreateBucket([]byte("tokens"))
		if err != nil {
			return err
		}
		if err := ws.Put([]byte("acme"), []byte(`{"id":"acme","name":"Acme","write_key":"`+v1WorkspaceKey+`","created_at":"2025-03-14T15:09:26Z","updated_at":"2025-03-14T15:09:26Z"}`)); err != nil {
			return err
		}
		if err := keys.Put([]byte(v1WorkspaceKey), []byte("acme")); err != nil {
			return err
		}
		return tokens.Put([]byte("t1"), []byte(`{"id":"t1","name":"ci","role":"editor","workspace":"acme","secret_sha256":"AAEC","created_at":"2025-03-14T15:09:26Z","created_by":"system"}`))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func storedVersion(t testing.TB, db *bolt.DB) uint64 {
	t.Helper()
	var v uint64
	_ = db.View(func(tx *bolt.Tx) error { v = schemaVersion(tx); return nil })
	return v
}

// testSystemMigrations is the production v1 (counted) plus a test v2 that creates a bucket and rewrites a key.
func testSystemMigrations(ranV1, ranV2 *int) []migration {
	v1 := systemMigrations()[0]
	return []migration{
		{v1.version, v1.name, func(tx *bolt.Tx) error { *ranV1++; return v1.up(tx) }},
		{2, "labels bucket, upper-case names", func(tx *bolt.Tx) error {
			*ranV2++
			if _, err := tx.CreateBucket(bucketLabels); err != nil {
				return err
			}
			b := tx.Bucket(bucketWorkspaces)
			var r workspaceRecord
			if err := json.Unmarshal(b.Get([]byte("acme")), &r); err != nil {
				return err
			}
			r.Name = strings.ToUpper(r.Name)
			return putJSON(b, r.ID, r)
		}},
	}
}

func TestMigrateRunsNewMigrationsOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), systemFile)
	buildV1System(t, path)
	before := dumpBolt(t, path)
	db := openRawBolt(t, path)

	var ranV1, ranV2 int
	if err := migrate(db, kindSystem, "", testSystemMigrations(&ranV1, &ranV2)); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if ranV1 != 0 || ranV2 != 1 {
		t.Fatalf("v1 ran %d times, v2 %d times; want 0 and 1", ranV1, ranV2)
	}
	if v := storedVersion(t, db); v != 2 {
		t.Fatalf("stored schema version %d, want 2", v)
	}
	var r workspaceRecord
	err := db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketLabels) == nil {
			t.Error("v2 did not create its bucket")
		}
		return getJSON(tx.Bucket(bucketWorkspaces), "acme", &r)
	})
	if err != nil || r.Name != "ACME" || r.WriteKey != v1WorkspaceKey {
		t.Errorf("rewritten record = %+v, %v", r, err)
	}
	// Everything v2 did not touch is preserved.
	_ = db.Close()
	after := dumpBolt(t, path)
	for k, v := range before {
		if k == "meta/schema_version" || k == "workspaces/acme" {
			continue
		}
		if after[k] != v {
			t.Errorf("%s = %q after migration, was %q", k, after[k], v)
		}
	}

	// A second run is a no-op.
	db = openRawBolt(t, path)
	if err := migrate(db, kindSystem, "", testSystemMigrations(&ranV1, &ranV2)); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	if ranV1 != 0 || ranV2 != 1 {
		t.Errorf("after the second run v1 ran %d times, v2 %d times; want 0 and 1", ranV1, ranV2)
	}
	_ = db.Close()
	if again := dumpBolt(t, path); !reflect.DeepEqual(again, after) {
		t.Errorf("second migrate changed the file: %v", diffDumps(after, again))
	}
}

func TestMigrateFailureLeavesFileUnchanged(t *testing.T) {
	boom := errors.New("boom")
	partial := func(tx *bolt.Tx) error {
		// Changes made before failing must not survive.
		if _, err := tx.CreateBucket([]byte("half_done")); err != nil {
			return err
		}
		if err := tx.Bucket(bucketWorkspaces).Delete([]byte("acme")); err != nil {
			return err
		}
		return boom
	}
	var n1, n2 int
	good := testSystemMigrations(&n1, &n2)
	for _, tc := range []struct {
		name        string
		ms          []migration
		wantVersion uint64
		wantLabels  bool
	}{
		{"next migration fails", []migration{good[0], {2, "fails", partial}}, 1, false},
		{"second of two fails", []migration{good[0], good[1], {3, "fails", partial}}, 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), systemFile)
			buildV1System(t, path)
			db := openRawBolt(t, path)
			err := migrate(db, kindSystem, "", tc.ms)
			if !errors.Is(err, boom) {
				t.Fatalf("migrate: want the migration's error, got %v", err)
			}
			if !strings.Contains(err.Error(), "fails") {
				t.Errorf("error %q should name the failed migration", err)
			}
			if v := storedVersion(t, db); v != tc.wantVersion {
				t.Errorf("stored version %d, want %d", v, tc.wantVersion)
			}
			_ = db.View(func(tx *bolt.Tx) error {
				if tx.Bucket([]byte("half_done")) != nil {
					t.Error("failed migration left its bucket")
				}
				if tx.Bucket(bucketWorkspaces).Get([]byte("acme")) == nil {
					t.Error("failed migration deleted a record")
				}
				if got := tx.Bucket(bucketLabels) != nil; got != tc.wantLabels {
					t.Errorf("labels bucket present = %v, want %v", got, tc.wantLabels)
				}
				return nil
			})
		})
	}
}

func TestMigrateRefusesNewerVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), systemFile)
	buildV1System(t, path)
	db := openRawBolt(t, path)
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchemaVersion, be64(7)) }); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	before := dumpBolt(t, path)
	db = openRawBolt(t, path)
	var n1, n2 int
	err := migrate(db, kindSystem, "", testSystemMigrations(&n1, &n2))
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("migrate of a version 7 file with migrations up to 2: want an error mentioning \"newer\", got %v", err)
	}
	if n1+n2 != 0 {
		t.Errorf("migrations ran on a newer file: v1 %d, v2 %d", n1, n2)
	}
	_ = db.Close()
	if after := dumpBolt(t, path); !reflect.DeepEqual(after, before) {
		t.Errorf("refused file was changed: %v", diffDumps(before, after))
	}

	// Open refuses it too, with the same reason.
	s, err := Open(context.Background(), Options{Dir: filepath.Dir(path), LockTimeout: 100 * time.Millisecond, Logger: testLogger(t)})
	if err == nil {
		_ = s.Close()
		t.Fatal("Open of a data dir written by a newer crosscast succeeded")
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open error %q should mention \"newer\"", err)
	}
}

// newFile creates a file of the given kind with the production migrations.
func newFile(t *testing.T, path, kind, id string) {
	t.Helper()
	ms := systemMigrations()
	if kind == kindWorkspace {
		ms = workspaceMigrations()
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := migrate(db, kind, id, ms); err != nil {
		t.Fatal(err)
	}
}

func TestMigrateRefusesFileOfAnotherKindOrWorkspace(t *testing.T) {
	for _, tc := range []struct {
		name             string
		fileKind, fileID string
		openKind, openID string
		wantErr          string
	}{
		{"workspace file of another workspace", kindWorkspace, "acme", kindWorkspace, "globex", `belongs to workspace "acme"`},
		{"system file as workspace file", kindSystem, "", kindWorkspace, "acme", "holds system data"},
		{"workspace file as system file", kindWorkspace, "acme", kindSystem, "", "holds workspace data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "file.db")
			newFile(t, path, tc.fileKind, tc.fileID)
			before := dumpBolt(t, path)
			ms := systemMigrations()
			if tc.openKind == kindWorkspace {
				ms = workspaceMigrations()
			}
			db := openRawBolt(t, path)
			err := migrate(db, tc.openKind, tc.openID, ms)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("want an error containing %q, got %v", tc.wantErr, err)
			}
			_ = db.Close()
			if after := dumpBolt(t, path); !reflect.DeepEqual(after, before) {
				t.Errorf("refused file was changed: %v", diffDumps(before, after))
			}
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// The same checks through Open: a file put in the wrong place in a data dir is refused, not misread.
func TestOpenRefusesMisplacedFiles(t *testing.T) {
	for _, tc := range []struct {
		name    string
		misuse  func(t *testing.T, dir string)
		wantErr string
	}{
		{"another workspace's file", func(t *testing.T, dir string) {
			copyFile(t, filepath.Join(dir, workspaceDir, "acme.db"), filepath.Join(dir, workspaceDir, "globex.db"))
		}, `belongs to workspace "acme"`},
		{"system file as a workspace file", func(t *testing.T, dir string) {
			copyFile(t, filepath.Join(dir, systemFile), filepath.Join(dir, workspaceDir, "globex.db"))
		}, "holds system data"},
		{"workspace file as system file", func(t *testing.T, dir string) {
			copyFile(t, filepath.Join(dir, workspaceDir, "acme.db"), filepath.Join(dir, systemFile))
		}, "holds workspace data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openTest(t, dir)
			mustCreateWorkspaces(t, s, "acme", "globex")
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			tc.misuse(t, dir)
			s2, err := Open(context.Background(), Options{Dir: dir, LockTimeout: 100 * time.Millisecond, Logger: testLogger(t)})
			if err == nil {
				_ = s2.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Open error %q should contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestOpenDataDirAtSystemVersion1(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, workspaceDir), 0o700); err != nil {
		t.Fatal(err)
	}
	newFile(t, filepath.Join(dir, systemFile), kindSystem, "")

	s := openTest(t, dir)
	_ = s.System().View(func(tx *bolt.Tx) error {
		if v, want := schemaVersion(tx), systemMigrations()[len(systemMigrations())-1].version; v != want {
			t.Errorf("schema version %d, want %d", v, want)
		}
		if tx.Bucket(bucketJobs) == nil {
			t.Error("migration 2 did not create the jobs bucket")
		}
		if k := tx.Bucket(bucketMeta).Get(keyKind); string(k) != kindSystem {
			t.Errorf("kind %q", k)
		}
		return nil
	})
	mustCreateWorkspaces(t, s, "acme")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, dir)
	list, err := s2.ListWorkspaces(ctx, "", 0)
	if err != nil || len(list) != 1 || !reflect.DeepEqual(list[0], testWorkspace("acme")) {
		t.Errorf("after reopen ListWorkspaces = %+v, %v", list, err)
	}
	if _, err := s2.Workspace("acme"); err != nil {
		t.Error(err)
	}
}

// A hand-built version 1 system file (as an older Crosscast wrote it) is what the production v1 produces: Open
// accepts it and serves its data.
func TestOpenHandBuiltVersion1(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, workspaceDir), 0o700); err != nil {
		t.Fatal(err)
	}
	buildV1System(t, filepath.Join(dir, systemFile))
	newFile(t, filepath.Join(dir, workspaceDir, "acme.db"), kindWorkspace, "acme")

	s := openTest(t, dir)
	w, err := s.GetWorkspace(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if want := (workspaces.Workspace{ID: "acme", Name: "Acme", WriteKey: v1WorkspaceKey, CreatedAt: fixedTime, UpdatedAt: fixedTime}); !reflect.DeepEqual(w, want) {
		t.Errorf("GetWorkspace = %+v, want %+v", w, want)
	}
	if id, err := s.WorkspaceByWriteKey(ctx, v1WorkspaceKey); err != nil || id != "acme" {
		t.Errorf("WorkspaceByWriteKey = %q, %v", id, err)
	}
	tok, err := s.GetToken(ctx, "t1")
	if err != nil || tok.Workspace != "acme" || string(tok.SecretHash) != "\x00\x01\x02" {
		t.Errorf("GetToken = %+v, %v", tok, err)
	}
	if _, err := s.Workspace("acme"); err != nil {
		t.Error(err)
	}
}

// v4Event is an event as a version 4 file holds it: under its events/ key, value as written (raw: by hand).
type v4Event struct {
	e   events.Event
	raw string
}

// buildV4Workspace writes workspace acme's file at schema version 4 (the production migrations up to 4 only),
// holding evs written straight into events/ and event_ids/ as version 4 wrote them.
func buildV4Workspace(t *testing.T, path string, evs []v4Event) {
	t.Helper()
	db := openRawBolt(t, path)
	if err := migrate(db, kindWorkspace, "acme", workspaceMigrations()[:4]); err != nil {
		t.Fatal(err)
	}
	err := db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("track_events")) != nil || tx.Bucket([]byte("event_names")) != nil {
			return errors.New("version 4 file has the digest buckets")
		}
		for _, ev := range evs {
			data := []byte(ev.raw)
			if ev.raw == "" {
				var err error
				if data, err = events.Encode(ev.e); err != nil {
					return err
				}
			}
			k := eventKey(ev.e.ContactID, ev.e.Timestamp, ev.e.MessageID)
			if err := tx.Bucket(bucketEvents).Put(k, data); err != nil {
				return err
			}
			if err := tx.Bucket(bucketEventIDs).Put([]byte(ev.e.MessageID), k); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keyEventCount, be64(uint64(len(evs))))
	})
	if err != nil {
		t.Fatal(err)
	}
	if v := storedVersion(t, db); v != 4 {
		t.Fatalf("built a version %d file", v)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// v4DataDir makes a data dir whose workspace acme's file is at version 4, holding evs.
func v4DataDir(t *testing.T, evs []v4Event) (dir, path string) {
	t.Helper()
	dir = t.TempDir()
	s := openTest(t, dir)
	mustCreateWorkspaces(t, s, "acme")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, workspaceDir, "acme.db")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	buildV4Workspace(t, path, evs)
	return dir, path
}

func TestMigrateToTrackDigest(t *testing.T) {
	at := func(s int) time.Time { return fixedTime.Add(time.Duration(s) * time.Second) }
	ev := func(contact, id string, typ events.Type, name string, s int) v4Event {
		return v4Event{e: testEvent(contact, id, typ, name, at(s))}
	}
	raw := func(contact, id string, s int, value string) v4Event {
		return v4Event{e: events.Event{ContactID: contact, MessageID: id, Timestamp: at(s)}, raw: value}
	}
	heavy := func(n int) []v4Event {
		var out []v4Event
		for i := range n {
			out = append(out, ev("heavy", fmt.Sprintf("h%d", i), events.Track, fmt.Sprintf("Step %d", i%7), n-i))
		}
		return out
	}
	for _, tc := range []struct {
		name       string
		evs        []v4Event
		want       []contactTracks
		wantChunks map[string]int
	}{
		{name: "no events", want: []contactTracks{}, wantChunks: map[string]int{}},
		{
			name: "track events only, names as stored, values in other forms decoded in full",
			evs: []v4Event{
				ev("c2", "m1", events.Track, "Order Completed", 1),
				ev("c1", "m2", events.Track, "Signed Up", 5),
				ev("c1", "m3", events.Page, "Pricing", 3),
				ev("c1", "m4", events.Track, "bad utf8 \xff", 4),
				ev("c1", "m5", events.Identify, "", 6),
				raw("c1", "r1", 1, `{"type":"track","message_id":"r1","name":"Other Order"}`),
				raw("c1", "r2", 2, `{ "message_id": "r2", "type": "track", "name": "Spaced \u00e9" }`),
				raw("c3", "r3", 7, `{"message_id":"r3","type":"track"}`),
				raw("c3", "r4", 8, `{"message_id":"r4","type":"page","name":"Not Track"}`),
			},
			want: []contactTracks{
				{"c1", []tracked{
					{at(1).UnixNano(), "Other Order"}, {at(2).UnixNano(), "Spaced é"},
					{at(4).UnixNano(), "bad utf8 \uFFFD"}, {at(5).UnixNano(), "Signed Up"},
				}},
				{"c2", []tracked{{at(1).UnixNano(), "Order Completed"}}},
				{"c3", []tracked{{at(7).UnixNano(), ""}}},
			},
			wantChunks: map[string]int{"c1": 1, "c2": 1, "c3": 1},
		},
		{
			name:       "a heavy contact gets several chunks", // 600 entries of 9 bytes: 227 to a chunk
			evs:        append(heavy(600), ev("light", "l1", events.Track, "Step 1", 1)),
			wantChunks: map[string]int{"heavy": 3, "light": 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, path := v4DataDir(t, tc.evs)
			before := dumpBolt(t, path)

			s := openTest(t, dir)
			db := workspaceDB(t, s)
			_ = db.View(func(tx *bolt.Tx) error {
				if v, latest := schemaVersion(tx), workspaceMigrations()[len(workspaceMigrations())-1].version; v != latest {
					t.Errorf("schema version %d after opening, want %d", v, latest)
				}
				return nil
			})
			chunks := checkDigest(t, s)
			if !reflect.DeepEqual(chunks, tc.wantChunks) {
				t.Errorf("chunks per contact %v, want %v", chunks, tc.wantChunks)
			}
			if tc.want != nil {
				if got := scanTracks(t, s); !reflect.DeepEqual(got, tc.want) {
					t.Errorf("got\n%+v\nwant\n%+v", got, tc.want)
				}
			}

			// Writes after the migration keep the digest in step: known names keep their code, new ones get the
			// next.
			err := s.UpdateContacts(context.Background(), "acme", func(tx contacts.Tx) error {
				for i, name := range []string{"Order Completed", "Step 3", "Brand New", ""} {
					if err := tx.PutEvent(testEvent("c1", fmt.Sprintf("after%d", i), events.Track, name, at(100+i)), nil); err != nil {
						return err
					}
				}
				if _, err := tx.MoveEvents("heavy", "c1"); err != nil {
					return err
				}
				_, err := tx.DeleteEvents("c2")
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			checkDigest(t, s)

			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			after := dumpBolt(t, path)
			for k, v := range before {
				if k != "meta/schema_version" && !strings.HasPrefix(k, "events/") && !strings.HasPrefix(k, "event_ids/") &&
					!strings.HasPrefix(k, "meta/") && after[k] != v {
					t.Errorf("%s = %q after migration, was %q", k, after[k], v)
				}
			}
		})
	}
}

// The migration's fill runs in the migration's transaction: an event it cannot read leaves the file at version 4,
// as it was, and Open says which event.
func TestMigrateToTrackDigestRefusesUnreadableEvent(t *testing.T) {
	dir, path := v4DataDir(t, []v4Event{
		{e: testEvent("c1", "m1", events.Track, "Fine", fixedTime)},
		{e: events.Event{ContactID: "c1", MessageID: "bad", Timestamp: fixedTime.Add(time.Second)}, raw: `{"message_id":"bad","type":"track","name":`},
	})
	before := dumpBolt(t, path)
	s, err := Open(context.Background(), Options{Dir: dir, LockTimeout: 100 * time.Millisecond, Logger: testLogger(t)})
	if err == nil {
		_ = s.Close()
		t.Fatal("Open succeeded")
	}
	for _, want := range []string{"migration 5", "decoding event", `bad`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open error %q should contain %q", err, want)
		}
	}
	if after := dumpBolt(t, path); !reflect.DeepEqual(after, before) {
		t.Errorf("the failed migration changed the file: %v", diffDumps(before, after))
	}
}
