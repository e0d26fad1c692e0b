package store

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/segments"
	bolt "go.etcd.io/bbolt"
)

// segStore opens a store in a temporary dir with workspace "acme".
func segStore(t *testing.T) *Store {
	t.Helper()
	s := openTest(t, t.TempDir())
	mustCreateWorkspaces(t, s, "acme")
	return s
}

// setScanPage lowers memberScanPage for one test.
func setScanPage(t *testing.T, n int) {
	t.Helper()
	old := memberScanPage
	memberScanPage = n
	t.Cleanup(func() { memberScanPage = old })
}

func enter(seg, contact string, at time.Time, reason string) segments.Transition {
	return segments.Transition{Segment: seg, Contact: contact, Entered: true, At: at, Reason: reason}
}

func exit(seg, contact string, at time.Time, reason string) segments.Transition {
	return segments.Transition{Segment: seg, Contact: contact, At: at, Reason: reason}
}

type member struct {
	Contact string
	Since   time.Time
}

func storedMembers(t *testing.T, s *Store, seg string) []member {
	t.Helper()
	out := []member{}
	err := s.StoredMembers(context.Background(), "acme", seg, func(c string, since time.Time) bool {
		out = append(out, member{c, since})
		return true
	})
	if err != nil {
		t.Fatalf("StoredMembers(%q): %v", seg, err)
	}
	return out
}

func history(t *testing.T, s *Store, contact string) []segments.Transition {
	t.Helper()
	out := []segments.Transition{}
	err := s.SegmentHistory(context.Background(), "acme", contact, "", func(tr segments.Transition, _ string) bool {
		out = append(out, tr)
		return true
	})
	if err != nil {
		t.Fatalf("SegmentHistory(%q): %v", contact, err)
	}
	return out
}

// txID is the id of the file's last committed transaction: it moves with every commit.
func txID(t *testing.T, s *Store) int {
	t.Helper()
	db, err := s.Workspace("acme")
	if err != nil {
		t.Fatal(err)
	}
	var id int
	_ = db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil })
	return id
}

func TestRecordTransitions(t *testing.T) {
	t0 := fixedTime
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	for _, tc := range []struct {
		name        string
		batches     [][]segments.Transition
		wantMembers map[string][]member              // segment -> members
		wantHistory map[string][]segments.Transition // contact -> newest first
	}{
		{
			name:        "enter",
			batches:     [][]segments.Transition{{enter("s1", "c1", at(0), segments.ReasonChange)}},
			wantMembers: map[string][]member{"s1": {{"c1", at(0)}}},
			wantHistory: map[string][]segments.Transition{"c1": {enter("s1", "c1", at(0), segments.ReasonChange)}},
		},
		{
			name: "enter then exit",
			batches: [][]segments.Transition{
				{enter("s1", "c1", at(0), segments.ReasonChange)},
				{exit("s1", "c1", at(5), segments.ReasonTime)},
			},
			wantMembers: map[string][]member{"s1": {}},
			wantHistory: map[string][]segments.Transition{"c1": {
				exit("s1", "c1", at(5), segments.ReasonTime), enter("s1", "c1", at(0), segments.ReasonChange),
			}},
		},
		{
			name: "exit and re-enter in one commit, applied in order",
			batches: [][]segments.Transition{
				{enter("s1", "c1", at(0), segments.ReasonRule)},
				{exit("s1", "c1", at(1), segments.ReasonChange), enter("s1", "c1", at(2), segments.ReasonChange)},
			},
			wantMembers: map[string][]member{"s1": {{"c1", at(2)}}},
			wantHistory: map[string][]segments.Transition{"c1": {
				enter("s1", "c1", at(2), segments.ReasonChange), exit("s1", "c1", at(1), segments.ReasonChange),
				enter("s1", "c1", at(0), segments.ReasonRule),
			}},
		},
		{
			name: "a repeated entry replaces since",
			batches: [][]segments.Transition{
				{enter("s1", "c1", at(0), segments.ReasonChange)},
				{enter("s1", "c1", at(9), segments.ReasonStart)},
			},
			wantMembers: map[string][]member{"s1": {{"c1", at(9)}}},
			wantHistory: map[string][]segments.Transition{"c1": {
				enter("s1", "c1", at(9), segments.ReasonStart), enter("s1", "c1", at(0), segments.ReasonChange),
			}},
		},
		{
			name: "same contact, segment and nanosecond: both kept, newest recorded first",
			batches: [][]segments.Transition{
				{enter("s1", "c1", at(0), segments.ReasonChange), exit("s1", "c1", at(0), segments.ReasonChange)},
				{enter("s1", "c1", at(0), segments.ReasonManual)},
			},
			wantMembers: map[string][]member{"s1": {{"c1", at(0)}}},
			wantHistory: map[string][]segments.Transition{"c1": {
				enter("s1", "c1", at(0), segments.ReasonManual), exit("s1", "c1", at(0), segments.ReasonChange),
				enter("s1", "c1", at(0), segments.ReasonChange),
			}},
		},
		{
			name: "several segments and contacts",
			batches: [][]segments.Transition{{
				enter("s2", "c2", at(3), segments.ReasonChange), enter("s1", "c2", at(1), segments.ReasonChange),
				enter("s1", "c1", at(2), segments.ReasonChange), enter("s10", "c1", at(4), "a reason with\nbytes é"),
			}},
			wantMembers: map[string][]member{
				"s1": {{"c1", at(2)}, {"c2", at(1)}}, "s2": {{"c2", at(3)}}, "s10": {{"c1", at(4)}}, "s": {},
			},
			wantHistory: map[string][]segments.Transition{
				"c1": {enter("s10", "c1", at(4), "a reason with\nbytes é"), enter("s1", "c1", at(2), segments.ReasonChange)},
				"c2": {enter("s2", "c2", at(3), segments.ReasonChange), enter("s1", "c2", at(1), segments.ReasonChange)},
				"c":  {},
			},
		},
		{
			name:        "times before 1678 are clamped, not wrapped",
			batches:     [][]segments.Transition{{enter("s1", "c1", time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), segments.ReasonRule)}},
			wantMembers: map[string][]member{"s1": {{"c1", time.Unix(0, -1<<63).UTC()}}},
			wantHistory: map[string][]segments.Transition{"c1": {enter("s1", "c1", time.Unix(0, -1<<63).UTC(), segments.ReasonRule)}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := segStore(t)
			for _, b := range tc.batches {
				if err := s.RecordTransitions(ctx, "acme", b); err != nil {
					t.Fatalf("RecordTransitions: %v", err)
				}
			}
			for seg, want := range tc.wantMembers {
				if got := storedMembers(t, s, seg); !reflect.DeepEqual(got, want) {
					t.Errorf("members of %s = %+v, want %+v", seg, got, want)
				}
			}
			for c, want := range tc.wantHistory {
				if got := history(t, s, c); !reflect.DeepEqual(got, want) {
					t.Errorf("history of %s =\n%+v\nwant\n%+v", c, got, want)
				}
			}
		})
	}
}

func TestRecordTransitionsEmptyDoesNotCommit(t *testing.T) {
	s := segStore(t)
	before := txID(t, s)
	for _, ts := range [][]segments.Transition{nil, {}} {
		if err := s.RecordTransitions(context.Background(), "acme", ts); err != nil {
			t.Fatal(err)
		}
	}
	if after := txID(t, s); after != before {
		t.Errorf("an empty RecordTransitions committed: tx id %d -> %d", before, after)
	}
}

func TestRecordTransitionsRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	s := segStore(t)
	for _, tc := range []struct {
		name      string
		ws        string
		ts        []segments.Transition
		wantField string
		wantErr   error
	}{
		{"empty segment", "acme", []segments.Transition{enter("", "c1", fixedTime, "")}, "segment", nil},
		{"NUL in segment", "acme", []segments.Transition{enter("s\x00", "c1", fixedTime, "")}, "segment", nil},
		{"empty contact", "acme", []segments.Transition{enter("s1", "c1", fixedTime, ""), exit("s1", "", fixedTime, "")}, "contact", nil},
		{"NUL in contact", "acme", []segments.Transition{enter("s1", "c\x001", fixedTime, "")}, "contact", nil},
		{"unknown workspace", "nope", []segments.Transition{enter("s1", "c1", fixedTime, "")}, "", errs.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.RecordTransitions(ctx, tc.ws, tc.ts)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got %v, want %v", err, tc.wantErr)
				}
				return
			}
			var ve *errs.ValidationError
			if !errors.As(err, &ve) || ve.Fields[0].Field != tc.wantField {
				t.Fatalf("got %v, want a validation error on %q", err, tc.wantField)
			}
		})
	}
	// Nothing of a refused batch is written.
	if got := storedMembers(t, s, "s1"); len(got) != 0 {
		t.Errorf("refused batches wrote members %v", got)
	}
}

func TestStoredMembersPaging(t *testing.T) {
	for _, tc := range []struct {
		name  string
		page  int
		count int
	}{
		{"no members", 7, 0},
		{"fewer than a page", 7, 5},
		{"several pages", 7, 50},
		{"an exact number of pages", 7, 49},
		{"production page size, more than one page", memberScanPage, memberScanPage + 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setScanPage(t, tc.page)
			ctx := context.Background()
			s := segStore(t)
			var ts []segments.Transition
			var want []member
			for i := tc.count - 1; i >= 0; i-- { // recorded out of order
				c := fmt.Sprintf("c%06d", i)
				ts = append(ts, enter("seg", c, fixedTime.Add(time.Duration(i)), segments.ReasonRule))
			}
			for i := range tc.count {
				want = append(want, member{fmt.Sprintf("c%06d", i), fixedTime.Add(time.Duration(i))})
			}
			// Neighbours whose keys sort right before and after seg's rows.
			ts = append(ts, enter("se", "c0", fixedTime, ""), enter("seg0", "c0", fixedTime, ""), enter("seh", "c0", fixedTime, ""))
			if err := s.RecordTransitions(ctx, "acme", ts); err != nil {
				t.Fatal(err)
			}
			got := storedMembers(t, s, "seg")
			if len(got) != len(want) || (len(want) > 0 && !reflect.DeepEqual(got, want)) {
				t.Fatalf("got %d members, want %d (first diff at %d)", len(got), len(want), firstDiff(got, want))
			}

			// fn returning false stops the walk at once, mid-page or on a page boundary.
			for _, stop := range []int{1, tc.page, tc.page + 1} {
				if stop > tc.count {
					continue
				}
				n := 0
				err := s.StoredMembers(ctx, "acme", "seg", func(string, time.Time) bool { n++; return n < stop })
				if err != nil || n != stop {
					t.Errorf("stopping at %d: fn called %d times, err %v", stop, n, err)
				}
			}
		})
	}
}

func firstDiff(a, b []member) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// fn runs between read transactions: it may write, and what it writes ahead of the walk shows up in a later page.
func TestStoredMembersFnMayWrite(t *testing.T) {
	setScanPage(t, 3)
	ctx := context.Background()
	s := segStore(t)
	var ts []segments.Transition
	for i := range 6 {
		ts = append(ts, enter("seg", fmt.Sprintf("c%d", i), fixedTime, ""))
	}
	if err := s.RecordTransitions(ctx, "acme", ts); err != nil {
		t.Fatal(err)
	}
	var got []string
	err := s.StoredMembers(ctx, "acme", "seg", func(c string, _ time.Time) bool {
		got = append(got, c)
		if c == "c0" {
			if err := s.RecordTransitions(ctx, "acme", []segments.Transition{enter("seg", "c9", fixedTime, "")}); err != nil {
				t.Error(err)
			}
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"c0", "c1", "c2", "c3", "c4", "c5", "c9"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}

	cctx, cancel := context.WithCancel(ctx)
	n := 0
	err = s.StoredMembers(cctx, "acme", "seg", func(string, time.Time) bool { n++; cancel(); return true })
	if !errors.Is(err, context.Canceled) || n != 3 {
		t.Errorf("cancelled walk: %d calls, err %v; want the first page then context.Canceled", n, err)
	}
}

func TestSegmentHistoryPaging(t *testing.T) {
	ctx := context.Background()
	s := segStore(t)
	// c1 has 10 transitions (two pairs in the same nanosecond); c10 and c sort next to it and must not leak in.
	var ts, want []segments.Transition
	for i := range 10 {
		at := fixedTime.Add(time.Duration(i/2*(i%3)) * time.Minute)
		tr := segments.Transition{Segment: fmt.Sprintf("s%d", i%3), Contact: "c1", Entered: i%2 == 0, At: at, Reason: segments.ReasonChange}
		ts = append(ts, tr)
	}
	ts = append(ts, enter("s1", "c10", fixedTime.Add(time.Hour), ""), enter("s1", "c", fixedTime.Add(time.Hour), ""),
		enter("s1", "c0", fixedTime.Add(-time.Hour), ""))
	if err := s.RecordTransitions(ctx, "acme", ts); err != nil {
		t.Fatal(err)
	}
	// Newest first; equal times in reverse recording order.
	for i := 9; i >= 0; i-- {
		want = append(want, ts[i])
	}
	for i := 1; i < len(want); i++ {
		for j := i; j > 0 && want[j].At.After(want[j-1].At); j-- {
			want[j], want[j-1] = want[j-1], want[j]
		}
	}

	for _, tc := range []struct {
		name     string
		scanPage int
		perCall  int
	}{
		{"all at once", 10_000, 100},
		{"three per call", 10_000, 3},
		{"one per call, store pages of two", 2, 1},
		{"four per call, store pages of three", 3, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setScanPage(t, tc.scanPage)
			var got []segments.Transition
			cursor := ""
			for calls := 0; ; calls++ {
				if calls > 20 {
					t.Fatal("paging does not end")
				}
				n := 0
				next := ""
				err := s.SegmentHistory(ctx, "acme", "c1", cursor, func(tr segments.Transition, c string) bool {
					got = append(got, tr)
					n++
					next = c
					return n < tc.perCall
				})
				if err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					break
				}
				cursor = next
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestSegmentHistoryBadCursor(t *testing.T) {
	s := segStore(t)
	for _, c := range []string{"!!!", "AAAA", base64.RawURLEncoding.EncodeToString(make([]byte, 15)), "AAAAAAAAAAAAAAAAAAAAAA=="} {
		err := s.SegmentHistory(context.Background(), "acme", "c1", c, func(segments.Transition, string) bool { return true })
		var ve *errs.ValidationError
		if !errors.As(err, &ve) || ve.Fields[0].Field != "cursor" {
			t.Errorf("cursor %q: got %v, want a validation error on cursor", c, err)
		}
	}
}

func TestForgetContact(t *testing.T) {
	ctx := context.Background()
	s := segStore(t)
	err := s.RecordTransitions(ctx, "acme", []segments.Transition{
		enter("s1", "c1", fixedTime, ""), enter("s2", "c1", fixedTime, ""), enter("s3", "c1", fixedTime, ""),
		exit("s3", "c1", fixedTime.Add(time.Second), ""),
		enter("s1", "c2", fixedTime, ""), enter("s1", "c10", fixedTime, ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ForgetContact(ctx, "acme", "c1", []string{"s1", "s2", "s3", "never-a-member"}); err != nil {
		t.Fatal(err)
	}
	for seg, want := range map[string][]member{"s1": {{"c10", fixedTime}, {"c2", fixedTime}}, "s2": {}, "s3": {}} {
		if got := storedMembers(t, s, seg); !reflect.DeepEqual(got, want) {
			t.Errorf("members of %s = %v, want %v", seg, got, want)
		}
	}
	if h := history(t, s, "c1"); len(h) != 0 {
		t.Errorf("history of c1 after ForgetContact: %v", h)
	}
	for _, c := range []string{"c2", "c10"} {
		if h := history(t, s, c); len(h) != 1 {
			t.Errorf("history of %s = %v, want its one entry", c, h)
		}
	}
	var ve *errs.ValidationError
	if err := s.ForgetContact(ctx, "acme", "", nil); !errors.As(err, &ve) {
		t.Errorf("ForgetContact of an empty id: %v", err)
	}
}

func TestDeleteSegmentDropsMembersKeepsHistory(t *testing.T) {
	ctx := context.Background()
	s := segStore(t)
	for _, id := range []string{"s1", "s10"} {
		if err := s.PutSegment(ctx, "acme", segments.Segment{ID: id, Name: id, Rule: "true", CreatedAt: fixedTime, UpdatedAt: fixedTime}); err != nil {
			t.Fatal(err)
		}
	}
	err := s.RecordTransitions(ctx, "acme", []segments.Transition{
		enter("s1", "c1", fixedTime, ""), enter("s1", "c2", fixedTime, ""), enter("s10", "c1", fixedTime, ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSegment(ctx, "acme", "s1"); err != nil {
		t.Fatal(err)
	}
	if got := storedMembers(t, s, "s1"); len(got) != 0 {
		t.Errorf("members of the deleted segment: %v", got)
	}
	if got := storedMembers(t, s, "s10"); !reflect.DeepEqual(got, []member{{"c1", fixedTime}}) {
		t.Errorf("members of s10 = %v", got)
	}
	wantHistory := []segments.Transition{enter("s10", "c1", fixedTime, ""), enter("s1", "c1", fixedTime, "")}
	if h := history(t, s, "c1"); !reflect.DeepEqual(h, wantHistory) {
		t.Errorf("history of c1 = %v, want both entries kept: %v", h, wantHistory)
	}
	if err := s.DeleteSegment(ctx, "acme", "s1"); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("second delete: %v, want ErrNotFound", err)
	}
}

// A workspace file at schema 3 (as the previous Crosscast wrote it) opens at 4 with its data unchanged.
func TestMigrateWorkspaceVersion3To4(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir)
	mustCreateWorkspaces(t, s, "acme")
	seg := segments.Segment{ID: "s1", Name: "one", Rule: "true", CreatedAt: fixedTime, UpdatedAt: fixedTime}
	if err := s.PutSegment(ctx, "acme", seg); err != nil {
		t.Fatal(err)
	}
	putTestEvents(t, s, testEvent("c1", "m1", "track", "Signed Up", fixedTime))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Make it a version 3 file: drop what migration 4 creates and set the version back.
	path := filepath.Join(dir, workspaceDir, "acme.db")
	db := openRawBolt(t, path)
	err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketSegmentMembers, bucketSegmentHistory} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keySchemaVersion, be64(3))
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	before := dumpBolt(t, path)

	s2 := openTest(t, dir)
	if err := s2.RecordTransitions(ctx, "acme", []segments.Transition{enter("s1", "c1", fixedTime, "")}); err != nil {
		t.Fatalf("RecordTransitions after migration: %v", err)
	}
	list, err := s2.ListSegments(ctx, "acme")
	if err != nil || !reflect.DeepEqual(list, []segments.Segment{seg}) {
		t.Errorf("ListSegments after migration = %+v, %v", list, err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	after := dumpBolt(t, path)
	latest := workspaceMigrations()[len(workspaceMigrations())-1].version
	if after["meta/schema_version"] != string(be64(latest)) {
		t.Errorf("schema version %x, want %d", after["meta/schema_version"], latest)
	}
	for k, v := range before {
		if k != "meta/schema_version" && after[k] != v {
			t.Errorf("%s = %q after migration, was %q", k, after[k], v)
		}
	}
	for _, k := range []string{"segment_members/", "segment_history/", "segment_members/s1\x00c1"} {
		if _, ok := after[k]; !ok {
			t.Errorf("%q missing after migration", k)
		}
	}
	if n := strings.Count(strings.Join(keysOf(after), "\n"), "segment_history/c1\x00"); n != 1 {
		t.Errorf("%d history rows for c1, want 1", n)
	}
}

func keysOf(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func BenchmarkRecordTransitions(b *testing.B) {
	const perCommit = 1000
	ctx := context.Background()
	s, _ := benchStore(b, true)
	ts := make([]segments.Transition, perCommit)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range ts {
			n := i*perCommit + j
			ts[j] = segments.Transition{
				Segment: fmt.Sprintf("seg_%02d", n%20), Contact: fmt.Sprintf("c%09d", n/2), Entered: n%3 != 0,
				At: fixedTime.Add(time.Duration(n)), Reason: segments.ReasonChange,
			}
		}
		if err := s.RecordTransitions(ctx, "bench", ts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*perCommit)/b.Elapsed().Seconds(), "transitions/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perCommit), "ns/transition")
}
