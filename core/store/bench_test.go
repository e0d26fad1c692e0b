package store

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	bolt "go.etcd.io/bbolt"
)

// Benchmarks of the storage numbers quoted in CONVENTIONS.md and the committer's doc. Run with `make bench` (or
// go test -run '^$' -bench . ./core/store/); writes are 200-byte values under unique 8-byte keys.

var bucketBench = []byte("bench")

const benchValueSize = 200

func reportWrites(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}

// benchBolt opens a raw bbolt file with the options the store uses, with fsync on, and creates the bench bucket.
func benchBolt(b *testing.B) *bolt.DB {
	b.Helper()
	db, err := openBolt(filepath.Join(b.TempDir(), "raw.db"), time.Second, false, true)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket(bucketBench); return err }); err != nil {
		b.Fatal(err)
	}
	return db
}

// benchStore opens a store with one workspace whose file holds the bench bucket, and returns that file.
func benchStore(b *testing.B, fsync bool) (*Store, *DB) {
	b.Helper()
	ctx := context.Background()
	s, err := Open(ctx, Options{Dir: b.TempDir(), Fsync: fsync, Logger: hclog.NewNullLogger()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	if err := s.CreateWorkspace(ctx, testWorkspace("bench")); err != nil {
		b.Fatal(err)
	}
	db, err := s.Workspace("bench")
	if err != nil {
		b.Fatal(err)
	}
	if err := db.Update(ctx, func(tx *bolt.Tx) error { _, err := tx.CreateBucket(bucketBench); return err }); err != nil {
		b.Fatal(err)
	}
	return s, db
}

func BenchmarkStoreWrite(b *testing.B) {
	value := bytes.Repeat([]byte("v"), benchValueSize)

	// The baseline the group commit exists to beat: one transaction, so one fsync, per write.
	b.Run("update-per-write", func(b *testing.B) {
		db := benchBolt(b)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketBench).Put(be64(uint64(i)), value) })
			if err != nil {
				b.Fatal(err)
			}
		}
		reportWrites(b)
	})

	groupCommit := func(fsync bool) func(b *testing.B) {
		return func(b *testing.B) {
			_, db := benchStore(b, fsync)
			ctx := context.Background()
			var next atomic.Uint64
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					key := be64(next.Add(1))
					err := db.Update(ctx, func(tx *bolt.Tx) error { return tx.Bucket(bucketBench).Put(key, value) })
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			reportWrites(b)
		}
	}
	b.Run("group-commit", groupCommit(true))
	b.Run("group-commit-nosync", groupCommit(false))

	// The ceiling: a single writer batching 1000 writes per transaction.
	b.Run("tx-of-1000", func(b *testing.B) {
		db := benchBolt(b)
		b.ResetTimer()
		for i := 0; i < b.N; i += 1000 {
			n := min(1000, b.N-i)
			err := db.Update(func(tx *bolt.Tx) error {
				bk := tx.Bucket(bucketBench)
				for j := i; j < i+n; j++ {
					if err := bk.Put(be64(uint64(j)), value); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		reportWrites(b)
	})
}

// fillBench writes n records of size bytes made by value(i) into the bench bucket of db, in transactions of 10,000.
func fillBench(b *testing.B, db *DB, n int, value func(i int) []byte) {
	b.Helper()
	for start := 0; start < n; start += 10000 {
		err := db.Update(context.Background(), func(tx *bolt.Tx) error {
			bk := tx.Bucket(bucketBench)
			bk.FillPercent = 1 // sequential keys: pack pages as an append-only log would
			for i := start; i < min(start+10000, n); i++ {
				if err := bk.Put(be64(uint64(i)), value(i)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStoreScan(b *testing.B) {
	const records = 100_000
	_, db := benchStore(b, false)
	value := bytes.Repeat([]byte("s"), benchValueSize)
	fillBench(b, db, records, func(int) []byte { return value })
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var n, size int
		err := db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketBench).Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				n++
				size += len(v)
			}
			return nil
		})
		if err != nil || n != records || size != records*benchValueSize {
			b.Fatalf("scan read %d records, %d bytes, err %v", n, size, err)
		}
	}
	b.ReportMetric(float64(b.N)*records/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkBackup backs up a store holding ~50 MB of contact-like JSON records (compressible like real data, with
// random parts so that gzip has real work to do). MB/s counts the bytes of the data files backed up.
func BenchmarkBackup(b *testing.B) {
	const records, recordSize = 50_000, 990 // 4 records per 4 KiB page
	s, db := benchStore(b, false)
	rng := rand.New(rand.NewPCG(1, 2))
	plans := []string{"free", "starter", "pro", "agency"}
	fillBench(b, db, records, func(i int) []byte {
		rec := fmt.Appendf(nil, `{"id":"c_%08d","email":"user%d@example%d.com","name":"User %d","plan":%q,"score":%d,"tags":["newsletter","trial"],"attrs":{"token":"%016x%016x","notes":"`,
			i, i, i%97, i, plans[rng.IntN(len(plans))], rng.IntN(1000), rng.Uint64(), rng.Uint64())
		for len(rec) < recordSize-2 {
			rec = fmt.Appendf(rec, "%x", rng.Uint32()&0xffff)
			rec = append(rec, " lorem ipsum "...)
		}
		return append(rec[:recordSize-2], `"}`...)
	})
	var size int64
	for _, d := range []*DB{s.System(), db} {
		_ = d.View(func(tx *bolt.Tx) error { size += tx.Size(); return nil })
	}
	b.SetBytes(size)
	ctx := context.Background()
	var out countingWriter
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out = 0
		if err := s.Backup(ctx, &out); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(size)/float64(out), "compression")
}

type countingWriter int64

func (w *countingWriter) Write(p []byte) (int, error) {
	*w += countingWriter(len(p))
	return len(p), nil
}

var _ io.Writer = (*countingWriter)(nil)
