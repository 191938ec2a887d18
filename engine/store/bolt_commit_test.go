package store

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestCommitsGroup holds a commit open while ten writes arrive: they go together in the next
// transaction, and the one that fails fails alone: the others' writes are all there.
func TestCommitsGroup(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "c.db"), 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var c commits
	hold, held := make(chan struct{}), make(chan struct{})
	first := make(chan error)
	go func() {
		first <- c.run(db, func(*bolt.Tx) error { close(held); <-hold; return nil })
	}()
	<-held
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
	for { // wait until all ten are queued behind the held commit
		c.mu.Lock()
		n := len(c.queued)
		c.mu.Unlock()
		if n == len(errs) {
			break
		}
	}
	close(hold)
	if err := <-first; err != nil {
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
	db, err := bolt.Open(filepath.Join(t.TempDir(), "c.db"), 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var c commits
	hold, held := make(chan struct{}), make(chan struct{})
	go func() { _ = c.run(db, func(*bolt.Tx) error { close(held); <-hold; return nil }) }()
	<-held
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
	for {
		c.mu.Lock()
		n := len(c.queued)
		c.mu.Unlock()
		if n == 8 {
			break
		}
	}
	close(hold)
	wg.Wait()
	if len(ids) != 1 {
		t.Fatalf("8 queued writes took %d transactions", len(ids))
	}
}
