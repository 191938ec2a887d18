package store

import (
	"errors"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// heldCommit opens a database and starts a commit that stays open until release is called;
// release returns that commit's error. Writes started meanwhile queue behind it.
func heldCommit(t *testing.T) (db *bolt.DB, c *commits, release func() error) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "c.db"), 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	c = &commits{}
	hold, held, first := make(chan struct{}), make(chan struct{}), make(chan error)
	go func() {
		first <- c.run(db, func(*bolt.Tx) error { close(held); <-hold; return nil })
	}()
	<-held
	return db, c, func() error { close(hold); return <-first }
}

// awaitQueued waits until n writes are queued behind the held commit.
func awaitQueued(c *commits, n int) {
	for {
		c.mu.Lock()
		q := len(c.queued)
		c.mu.Unlock()
		if q == n {
			return
		}
		runtime.Gosched()
	}
}

// TestCommitsGroup holds a commit open while ten writes arrive: they go together in the next
// transaction, and the one that fails fails alone: the others' writes are all there.
func TestCommitsGroup(t *testing.T) {
	db, c, release := heldCommit(t)
	boom := errors.New("boom")
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.run(db, func(tx *bolt.Tx) error {
				if i == 3 {
					return boom
				}
				_, err := tx.CreateBucketIfNotExists([]byte{byte(i)})
				return err
			})
		}()
	}
	awaitQueued(c, len(errs))
	if err := release(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, err := range errs {
		if (i == 3) != errors.Is(err, boom) {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	_ = db.View(func(tx *bolt.Tx) error {
		for i := range errs {
			if (tx.Bucket([]byte{byte(i)}) != nil) != (i != 3) {
				t.Errorf("bucket %d", i)
			}
		}
		return nil
	})
}

// TestCommitsShare: writes queued behind a commit share one transaction.
func TestCommitsShare(t *testing.T) {
	db, c, release := heldCommit(t)
	var mu sync.Mutex
	ids := map[int]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.run(db, func(tx *bolt.Tx) error { mu.Lock(); ids[tx.ID()] = true; mu.Unlock(); return nil })
		}()
	}
	awaitQueued(c, 8)
	if err := release(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if len(ids) != 1 {
		t.Fatalf("8 queued writes took %d transactions", len(ids))
	}
}
