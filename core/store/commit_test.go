package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var bucketTest = []byte("test")

func counter(tx *bolt.Tx, key string) uint64 {
	b := tx.Bucket(bucketTest)
	if b == nil {
		return 0
	}
	v := b.Get([]byte(key))
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func incr(key string) func(*bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketTest)
		if err != nil {
			return err
		}
		return putUint64(b, []byte(key), counter(tx, key)+1)
	}
}

func TestGroupCommitConcurrentWritersAllDurable(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	const writers, each = 16, 200
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := s.System().Update(context.Background(), incr("n")); err != nil {
					t.Errorf("write: %v", err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, dir)
	var got uint64
	_ = s2.System().View(func(tx *bolt.Tx) error { got = counter(tx, "n"); return nil })
	if got != writers*each {
		t.Fatalf("after reopen counter = %d, want %d: a write acknowledged as durable was lost", got, writers*each)
	}
}

// A failing or panicking write gets its own error and changes nothing; the writes batched with it still commit.
func TestGroupCommitFailureIsolation(t *testing.T) {
	s := openTest(t, t.TempDir())
	boom := errors.New("boom")
	var wg sync.WaitGroup
	results := make([]error, 60)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			switch i % 3 {
			case 0:
				results[i] = s.System().Update(context.Background(), incr("ok"))
			case 1:
				results[i] = s.System().Update(context.Background(), func(tx *bolt.Tx) error {
					if err := incr("bad")(tx); err != nil {
						return err
					}
					return boom
				})
			case 2:
				results[i] = s.System().Update(context.Background(), func(tx *bolt.Tx) error {
					_ = incr("bad")(tx)
					panic("guest bug")
				})
			}
		}(i)
	}
	wg.Wait()
	for i, err := range results {
		switch i % 3 {
		case 0:
			if err != nil {
				t.Errorf("write %d: %v", i, err)
			}
		case 1:
			if !errors.Is(err, boom) {
				t.Errorf("write %d: want boom, got %v", i, err)
			}
		case 2:
			if err == nil || !strings.Contains(err.Error(), "panicked") {
				t.Errorf("write %d: want a panic error, got %v", i, err)
			}
		}
	}
	_ = s.System().View(func(tx *bolt.Tx) error {
		if ok, bad := counter(tx, "ok"), counter(tx, "bad"); ok != 20 || bad != 0 {
			t.Errorf("ok=%d bad=%d, want 20 and 0", ok, bad)
		}
		return nil
	})
}

func TestWriteAfterCloseFails(t *testing.T) {
	s := openTest(t, t.TempDir())
	db := s.System()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Update(context.Background(), incr("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("want ErrClosed, got %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestWriteHonoursCancelledContextBeforeHandOver(t *testing.T) {
	s := openTest(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// With the writer idle the hand-over may still win the race; either outcome is truthful, but a cancelled
	// write must never be reported as failed after it was committed.
	err := s.System().Update(ctx, incr("c"))
	var n uint64
	_ = s.System().View(func(tx *bolt.Tx) error { n = counter(tx, "c"); return nil })
	if (err == nil) != (n == 1) {
		t.Fatalf("err=%v but counter=%d", err, n)
	}
}

func TestMaxBatchBoundsTransactions(t *testing.T) {
	for _, maxBatch := range []int{1, 7} {
		t.Run(fmt.Sprint(maxBatch), func(t *testing.T) {
			s, err := Open(context.Background(), Options{Dir: t.TempDir(), CommitMaxBatch: maxBatch, Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var mu sync.Mutex
			perTx := map[int]int{}
			var wg sync.WaitGroup
			for i := 0; i < 100; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					err := s.System().Update(context.Background(), func(tx *bolt.Tx) error {
						mu.Lock()
						perTx[tx.ID()]++
						mu.Unlock()
						return incr("n")(tx)
					})
					if err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			total := 0
			for id, n := range perTx {
				total += n
				if n > maxBatch {
					t.Errorf("transaction %d held %d writes, max is %d", id, n, maxBatch)
				}
			}
			if total != 100 {
				t.Errorf("%d writes ran, want 100", total)
			}
		})
	}
}

// Writes that arrive while a commit is in progress share the next transaction: the point of group commit. One
// transaction per write would fail here.
func TestGroupCommitBatchesWaitingWrites(t *testing.T) {
	s := openTest(t, t.TempDir())
	db := s.System()
	release, inside := make(chan struct{}), make(chan struct{}, 1)
	var once sync.Once
	releaseOnce := func() { once.Do(func() { close(release) }) }
	defer releaseOnce() // a failing test must not leave the writer blocked, or cleanup would hang
	first := make(chan error, 1)
	go func() {
		first <- db.Update(context.Background(), func(tx *bolt.Tx) error {
			select {
			case inside <- struct{}{}:
			default: // a re-run of this function: already signalled
			}
			<-release // hold the writer inside a transaction
			return incr("n")(tx)
		})
	}()
	<-inside // the writer is now busy: every write below must queue
	const n = 20
	var mu sync.Mutex
	txs := map[int]bool{}
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := db.Update(context.Background(), func(tx *bolt.Tx) error {
				mu.Lock()
				txs[tx.ID()] = true
				mu.Unlock()
				return incr("n")(tx)
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for db.c.waiting.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d writers queued", db.c.waiting.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
	releaseOnce()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if len(txs) > 2 {
		t.Fatalf("%d queued writes took %d transactions; group commit should take 1 (2 at most)", n, len(txs))
	}
	_ = db.View(func(tx *bolt.Tx) error {
		if got := counter(tx, "n"); got != n+1 {
			t.Errorf("counter %d, want %d", got, n+1)
		}
		return nil
	})
}

// refused is the error of a write function that failed before writing anything.
type refused struct{ error }

func (refused) NothingWritten() bool { return true }

// UpdateEach: each function is atomic on its own. A function that fails after writing is rolled back alone (the
// others run again); one that fails before writing (NothingWritten) is answered without any rerun, so a group with
// many refused rows costs one pass.
func TestUpdateEachIsolatesFailuresAndSkipsRefusalsWithoutRerun(t *testing.T) {
	s := openTest(t, t.TempDir())
	const n = 300
	runs := make([]int, n)
	fns := make([]func(*bolt.Tx) error, n)
	for i := range fns {
		fns[i] = func(tx *bolt.Tx) error {
			runs[i]++
			switch {
			case i%3 == 1:
				return refused{fmt.Errorf("row %d refused", i)}
			case i == 299:
				_ = incr("bad")(tx)
				return errors.New("wrote, then failed")
			}
			return incr("ok")(tx)
		}
	}
	errs := s.System().UpdateEach(context.Background(), fns)
	for i, err := range errs {
		switch {
		case i%3 == 1:
			if err == nil || !strings.Contains(err.Error(), "refused") {
				t.Errorf("row %d: %v", i, err)
			}
		case i == 299:
			if err == nil {
				t.Errorf("row %d: no error", i)
			}
		case err != nil:
			t.Errorf("row %d: %v", i, err)
		}
	}
	_ = s.System().View(func(tx *bolt.Tx) error {
		if ok, bad := counter(tx, "ok"), counter(tx, "bad"); ok != 199 || bad != 0 {
			t.Errorf("ok=%d bad=%d, want 199 and 0", ok, bad)
		}
		return nil
	})
	// One rollback (row 299) reruns the rows before it once; refusals cause none.
	for i, r := range runs {
		if i%3 != 1 && i != 299 && r != 2 {
			t.Errorf("row %d ran %d times, want 2", i, r)
		}
		if i%3 == 1 && r > 2 {
			t.Errorf("refused row %d ran %d times", i, r)
		}
	}
}
