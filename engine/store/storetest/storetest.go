// Package storetest holds the conformance suite that every store.Store
// backend must pass. A backend's own test calls RunConformance.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/store"
)

// RunConformance runs the suite as subtests of t. open must return a fresh,
// empty store for the subtest it is given and release it in a t.Cleanup;
// the suite closes some stores itself, so that cleanup must accept
// store.ErrClosed from Close.
func RunConformance(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"GetMissing", testGetMissing},
		{"PutGetOverwrite", testPutGetOverwrite},
		{"SlicesAreCopied", testSlicesAreCopied},
		{"EmptyValue", testEmptyValue},
		{"BinaryKeysAndValues", testBinaryKeysAndValues},
		{"Delete", testDelete},
		{"Batch", testBatch},
		{"BatchAllOrNothing", testBatchAllOrNothing},
		{"ScanPrefixes", testScanPrefixes},
		{"ScanStopsOnError", testScanStopsOnError},
		{"ScanMany", testScanMany},
		{"ScanWhileWriting", testScanWhileWriting},
		{"Limits", testLimits},
		{"CanceledContext", testCanceledContext},
		{"Close", testClose},
		{"ConcurrentPuts", testConcurrentPuts},
		{"ConcurrentBatches", testConcurrentBatches},
		{"CloseWhileWriting", testCloseWhileWriting},
		{"Versions", testVersions},
		{"CompareAndSet", testCompareAndSet},
		{"ConditionalBatch", testConditionalBatch},
		{"ConcurrentIncrements", testConcurrentIncrements},
		{"TTL", testTTL},
		{"BatchLimits", testBatchLimits},
		{"Groups", testGroups},
		{"Lease", testLease},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, open(t))
		})
	}
}

func mustPut(t *testing.T, s store.Store, key string, value []byte) {
	t.Helper()
	if err := s.Put(t.Context(), key, value); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func wantValue(t *testing.T, s store.Store, key string, want []byte) {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %q, want %q", key, got, want)
	}
}

func wantNotFound(t *testing.T, s store.Store, key string) {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, got, err)
	}
}

// scanAll returns the keys and values under prefix, in the order seen.
func scanAll(t *testing.T, s store.Store, prefix string) (keys []string, values [][]byte) {
	t.Helper()
	err := s.Scan(t.Context(), prefix, func(k string, v []byte) error {
		keys = append(keys, k)
		values = append(values, bytes.Clone(v))
		return nil
	})
	if err != nil {
		t.Fatalf("Scan(%q): %v", prefix, err)
	}
	return keys, values
}

func testGetMissing(t *testing.T, s store.Store) {
	wantNotFound(t, s, "missing")
	mustPut(t, s, "present", []byte("x"))
	wantNotFound(t, s, "presen")
	wantNotFound(t, s, "present2")
}

func testPutGetOverwrite(t *testing.T, s store.Store) {
	mustPut(t, s, "a", []byte("1"))
	wantValue(t, s, "a", []byte("1"))
	mustPut(t, s, "a", []byte("two"))
	wantValue(t, s, "a", []byte("two"))
	mustPut(t, s, "b", []byte("3"))
	wantValue(t, s, "a", []byte("two"))
	wantValue(t, s, "b", []byte("3"))
}

func testSlicesAreCopied(t *testing.T, s store.Store) {
	in := []byte("original")
	mustPut(t, s, "k", in)
	copy(in, "XXXXXXXX")
	wantValue(t, s, "k", []byte("original"))

	got, err := s.Get(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	copy(got, "YYYYYYYY")
	wantValue(t, s, "k", []byte("original"))

	err = s.Scan(t.Context(), "", func(_ string, v []byte) error {
		_ = append(v, "appended past the end"...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantValue(t, s, "k", []byte("original"))
}

func testEmptyValue(t *testing.T, s store.Store) {
	mustPut(t, s, "nil", nil)
	mustPut(t, s, "empty", []byte{})
	for _, k := range []string{"nil", "empty"} {
		got, err := s.Get(t.Context(), k)
		if err != nil {
			t.Fatalf("Get(%q): %v", k, err)
		}
		if got == nil || len(got) != 0 {
			t.Fatalf("Get(%q) = %#v, want a non-nil empty slice", k, got)
		}
	}
	keys, values := scanAll(t, s, "")
	if !slices.Equal(keys, []string{"empty", "nil"}) || len(values[0])+len(values[1]) != 0 {
		t.Fatalf("Scan = %q %q, want two empty values", keys, values)
	}
}

func testBinaryKeysAndValues(t *testing.T, s store.Store) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	keys := []string{"\x00", "\x00\x00", "a\x00b", "\xff", "\xff\xfe\xff", "\xc3\x28", string(all[1:])}
	for i, k := range keys {
		v := append(bytes.Clone(all), byte(i))
		mustPut(t, s, k, v)
	}
	for i, k := range keys {
		wantValue(t, s, k, append(bytes.Clone(all), byte(i)))
	}
	big := bytes.Repeat(all, 4096) // 1 MiB
	mustPut(t, s, "big", big)
	wantValue(t, s, "big", big)
}

func testDelete(t *testing.T, s store.Store) {
	mustPut(t, s, "a", []byte("1"))
	mustPut(t, s, "ab", []byte("2"))
	if err := s.Delete(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	wantNotFound(t, s, "a")
	wantValue(t, s, "ab", []byte("2"))
	if err := s.Delete(t.Context(), "a"); err != nil {
		t.Fatalf("deleting a missing key: %v", err)
	}
	if err := s.Delete(t.Context(), "never-was"); err != nil {
		t.Fatalf("deleting a missing key: %v", err)
	}
	mustPut(t, s, "a", []byte("again"))
	wantValue(t, s, "a", []byte("again"))
}

func testBatch(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustPut(t, s, "old", []byte("o"))
	mustPut(t, s, "gone", []byte("g"))
	err := s.Batch(ctx, []store.Op{
		{Key: "x", Value: []byte("1")},
		{Key: "gone", Delete: true},
		{Key: "y", Value: []byte("first")},
		{Key: "y", Value: []byte("second")},
		{Key: "z", Value: []byte("z")},
		{Key: "z", Delete: true, Value: []byte("ignored")},
		{Key: "never", Delete: true},
		{Key: "e", Value: nil},
	})
	if err != nil {
		t.Fatal(err)
	}
	wantValue(t, s, "old", []byte("o"))
	wantValue(t, s, "x", []byte("1"))
	wantValue(t, s, "y", []byte("second"))
	wantValue(t, s, "e", []byte{})
	wantNotFound(t, s, "gone")
	wantNotFound(t, s, "z")
	wantNotFound(t, s, "never")
	if err := s.Batch(ctx, nil); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
	keys, _ := scanAll(t, s, "")
	if want := []string{"e", "old", "x", "y"}; !slices.Equal(keys, want) {
		t.Fatalf("keys after batch = %q, want %q", keys, want)
	}
}

func testBatchAllOrNothing(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustPut(t, s, "keep", []byte("k"))
	bad := [][]store.Op{
		{{Key: "a", Value: []byte("1")}, {Key: "", Value: []byte("2")}},
		{{Key: "keep", Delete: true}, {Key: strings.Repeat("k", store.MaxKeyLen+1), Delete: true}},
		{{Key: "a", Value: []byte("1")}, {Key: "b", Value: make([]byte, s.Capabilities().MaxValueLen+1)}},
	}
	for i, ops := range bad {
		err := s.Batch(ctx, ops)
		if !errors.Is(err, store.ErrInvalidKey) && !errors.Is(err, store.ErrValueTooLarge) {
			t.Fatalf("bad batch %d: err = %v, want ErrInvalidKey or ErrValueTooLarge", i, err)
		}
	}
	wantNotFound(t, s, "a")
	wantNotFound(t, s, "b")
	wantValue(t, s, "keep", []byte("k"))
}

func testScanPrefixes(t *testing.T, s store.Store) {
	all := []string{"\x00", "a", "a/1", "a/2", "ab", "a\xff", "a\xff\x00", "a\xff\xff", "b", "\xff", "\xff\xff", "\xff\xff\xff"}
	for _, k := range slices.Backward(all) {
		mustPut(t, s, k, []byte("v:"+k))
	}
	cases := []struct {
		prefix string
		want   []string
	}{
		{"", all},
		{"a", []string{"a", "a/1", "a/2", "ab", "a\xff", "a\xff\x00", "a\xff\xff"}},
		{"a/", []string{"a/1", "a/2"}},
		{"a/1", []string{"a/1"}},
		{"a\xff", []string{"a\xff", "a\xff\x00", "a\xff\xff"}},
		{"a\xff\xff", []string{"a\xff\xff"}},
		{"\xff", []string{"\xff", "\xff\xff", "\xff\xff\xff"}},
		{"\xff\xff", []string{"\xff\xff", "\xff\xff\xff"}},
		{"\x00", []string{"\x00"}},
		{"\x00\x00", nil},
		{"a/3", nil},
		{"c", nil},
		{"\xff\xff\xff\xff", nil},
	}
	for _, c := range cases {
		keys, values := scanAll(t, s, c.prefix)
		if !slices.Equal(keys, c.want) {
			t.Errorf("Scan(%q) keys = %q, want %q", c.prefix, keys, c.want)
			continue
		}
		for i, k := range keys {
			if string(values[i]) != "v:"+k {
				t.Errorf("Scan(%q) value of %q = %q", c.prefix, k, values[i])
			}
		}
	}
}

func testScanStopsOnError(t *testing.T, s store.Store) {
	for i := range 10 {
		mustPut(t, s, fmt.Sprintf("k%d", i), []byte("v"))
	}
	stop := errors.New("stop here")
	var seen []string
	err := s.Scan(t.Context(), "k", func(k string, _ []byte) error {
		seen = append(seen, k)
		if len(seen) == 3 {
			return fmt.Errorf("wrapped: %w", stop)
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("Scan error = %v, want fn's error", err)
	}
	if !slices.Equal(seen, []string{"k0", "k1", "k2"}) {
		t.Fatalf("Scan went on after fn's error: saw %q", seen)
	}
	called := false
	err = s.Scan(t.Context(), "none", func(string, []byte) error { called = true; return nil })
	if err != nil || called {
		t.Fatalf("Scan of an empty prefix range: err=%v called=%v", err, called)
	}
}

// testScanMany scans more keys and bytes than a backend is likely to read in
// one round trip or transaction.
func testScanMany(t *testing.T, s store.Store) {
	const n = 1500
	value := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 1500+i%7) }
	ops := make([]store.Op, 0, n)
	for i := range n {
		ops = append(ops, store.Op{Key: fmt.Sprintf("m/%05d", i), Value: value(i)})
	}
	if err := s.Batch(t.Context(), ops); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "m0", []byte("outside"))
	mustPut(t, s, "l", []byte("outside"))
	keys, values := scanAll(t, s, "m/")
	if len(keys) != n {
		t.Fatalf("Scan saw %d keys, want %d", len(keys), n)
	}
	for i, k := range keys {
		if k != ops[i].Key || !bytes.Equal(values[i], value(i)) {
			t.Fatalf("Scan entry %d = %q (%d bytes), want %q", i, k, len(values[i]), ops[i].Key)
		}
	}
}

// testScanWhileWriting: fn may call the store, including deleting the key
// it was given and writing elsewhere.
func testScanWhileWriting(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n = 300
	ops := make([]store.Op, n)
	for i := range ops {
		ops[i] = store.Op{Key: fmt.Sprintf("todo/%04d", i), Value: []byte{byte(i)}}
	}
	if err := s.Batch(ctx, ops); err != nil {
		t.Fatal(err)
	}
	seen := 0
	err := s.Scan(ctx, "todo/", func(k string, v []byte) error {
		seen++
		return s.Batch(ctx, []store.Op{
			{Key: "done/" + strings.TrimPrefix(k, "todo/"), Value: v},
			{Key: k, Delete: true},
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != n {
		t.Fatalf("Scan saw %d keys, want %d", seen, n)
	}
	if keys, _ := scanAll(t, s, "todo/"); len(keys) != 0 {
		t.Fatalf("%d todo keys left", len(keys))
	}
	if keys, _ := scanAll(t, s, "done/"); len(keys) != n {
		t.Fatalf("%d done keys, want %d", len(keys), n)
	}
}

func testLimits(t *testing.T, s store.Store) {
	ctx := t.Context()
	longest := strings.Repeat("k", store.MaxKeyLen)
	mustPut(t, s, longest, []byte("ok"))
	wantValue(t, s, longest, []byte("ok"))
	tooLong := longest + "k"
	for _, key := range []string{"", tooLong} {
		if _, err := s.Get(ctx, key); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("Get(%d-byte key) = %v, want ErrInvalidKey", len(key), err)
		}
		if err := s.Put(ctx, key, []byte("v")); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("Put(%d-byte key) = %v, want ErrInvalidKey", len(key), err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("Delete(%d-byte key) = %v, want ErrInvalidKey", len(key), err)
		}
		if err := s.Batch(ctx, []store.Op{{Key: key}}); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("Batch(%d-byte key) = %v, want ErrInvalidKey", len(key), err)
		}
	}
	err := s.Scan(ctx, tooLong, func(string, []byte) error { return nil })
	if !errors.Is(err, store.ErrInvalidKey) {
		t.Errorf("Scan(%d-byte prefix) = %v, want ErrInvalidKey", len(tooLong), err)
	}
	biggest := bytes.Repeat([]byte{0xab}, s.Capabilities().MaxValueLen)
	mustPut(t, s, "biggest", biggest)
	wantValue(t, s, "biggest", biggest)
	if err := s.Put(ctx, "too-big", append(biggest, 0)); !errors.Is(err, store.ErrValueTooLarge) {
		t.Errorf("Put(Capabilities().MaxValueLen+1 bytes) = %v, want ErrValueTooLarge", err)
	}
	wantNotFound(t, s, "too-big")
}

func testCanceledContext(t *testing.T, s store.Store) {
	mustPut(t, s, "k", []byte("v"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Get(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get = %v, want context.Canceled", err)
	}
	if err := s.Put(ctx, "new", []byte("v")); !errors.Is(err, context.Canceled) {
		t.Errorf("Put = %v, want context.Canceled", err)
	}
	if err := s.Delete(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("Delete = %v, want context.Canceled", err)
	}
	if err := s.Batch(ctx, []store.Op{{Key: "new2", Value: []byte("v")}}); !errors.Is(err, context.Canceled) {
		t.Errorf("Batch = %v, want context.Canceled", err)
	}
	called := false
	err := s.Scan(ctx, "", func(string, []byte) error { called = true; return nil })
	if !errors.Is(err, context.Canceled) || called {
		t.Errorf("Scan = %v (fn called: %v), want context.Canceled", err, called)
	}
	wantValue(t, s, "k", []byte("v"))
	wantNotFound(t, s, "new")
	wantNotFound(t, s, "new2")
}

func testClose(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustPut(t, s, "k", []byte("v"))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Get after Close = %v, want ErrClosed", err)
	}
	if err := s.Put(ctx, "k", []byte("v")); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Put after Close = %v, want ErrClosed", err)
	}
	if err := s.Delete(ctx, "k"); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Delete after Close = %v, want ErrClosed", err)
	}
	if err := s.Batch(ctx, []store.Op{{Key: "k", Delete: true}}); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Batch after Close = %v, want ErrClosed", err)
	}
	if err := s.Scan(ctx, "", func(string, []byte) error { return nil }); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Scan after Close = %v, want ErrClosed", err)
	}
	if err := s.Close(); !errors.Is(err, store.ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
}

func testConcurrentPuts(t *testing.T, s store.Store) {
	const writers, perWriter = 50, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers*perWriter)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				key := fmt.Sprintf("c/%02d/%02d", w, i)
				if err := s.Put(t.Context(), key, []byte(key)); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for w := range writers {
		for i := range perWriter {
			key := fmt.Sprintf("c/%02d/%02d", w, i)
			wantValue(t, s, key, []byte(key))
		}
	}
	if keys, _ := scanAll(t, s, "c/"); len(keys) != writers*perWriter {
		t.Fatalf("Scan saw %d keys, want %d", len(keys), writers*perWriter)
	}
}

func testConcurrentBatches(t *testing.T, s store.Store) {
	const writers = 50
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		mustPut(t, s, fmt.Sprintf("del/%02d", w), []byte("x"))
		wg.Go(func() {
			err := s.Batch(t.Context(), []store.Op{
				{Key: fmt.Sprintf("b/%02d/a", w), Value: []byte("a")},
				{Key: fmt.Sprintf("b/%02d/b", w), Value: []byte("b")},
				{Key: fmt.Sprintf("del/%02d", w), Delete: true},
			})
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if keys, _ := scanAll(t, s, "b/"); len(keys) != 2*writers {
		t.Fatalf("Scan saw %d keys, want %d", len(keys), 2*writers)
	}
	if keys, _ := scanAll(t, s, "del/"); len(keys) != 0 {
		t.Fatalf("%d keys left that batches deleted", len(keys))
	}
}

// testCloseWhileWriting: a write racing Close either succeeds or fails with
// ErrClosed, and nothing panics or hangs.
func testCloseWhileWriting(t *testing.T, s store.Store) {
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for w := range 10 {
		wg.Go(func() {
			for i := 0; ; i++ {
				err := s.Put(t.Context(), fmt.Sprintf("w/%d/%d", w, i), []byte("v"))
				if errors.Is(err, store.ErrClosed) {
					return
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	mustPut(t, s, "before-close", []byte("v"))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Put racing Close: %v, want nil or ErrClosed", err)
	}
}

func wantVersion(t *testing.T, s store.Store, key string, want []byte) uint64 {
	t.Helper()
	got, v, err := s.GetVersion(t.Context(), key)
	if err != nil {
		t.Fatalf("GetVersion(%q): %v", key, err)
	}
	if !bytes.Equal(got, want) || v == 0 {
		t.Fatalf("GetVersion(%q) = %q, %d; want %q at a version above 0", key, got, v, want)
	}
	return v
}

func testVersions(t *testing.T, s store.Store) {
	ctx := t.Context()
	if _, v, err := s.GetVersion(ctx, "k"); !errors.Is(err, store.ErrNotFound) || v != 0 {
		t.Fatalf("GetVersion(missing) = %d, %v; want 0, ErrNotFound", v, err)
	}
	mustPut(t, s, "k", []byte("a"))
	seen := map[uint64]bool{wantVersion(t, s, "k", []byte("a")): true}
	for i := range 5 {
		mustPut(t, s, "k", []byte("a")) // the same value: a new version all the same
		v := wantVersion(t, s, "k", []byte("a"))
		if seen[v] {
			t.Fatalf("write %d: version %d seen before", i, v)
		}
		seen[v] = true
	}
	if err := s.Batch(ctx, []store.Op{{Key: "k", Value: []byte("b")}, {Key: "other", Value: nil}}); err != nil {
		t.Fatal(err)
	}
	if v := wantVersion(t, s, "k", []byte("b")); seen[v] {
		t.Fatalf("a batch left version %d, seen before", v)
	}
	wantVersion(t, s, "other", []byte{})
}

func testCompareAndSet(t *testing.T, s store.Store) {
	ctx := t.Context()
	if err := store.CompareAndSet(ctx, s, "k", 0, []byte("first")); err != nil {
		t.Fatalf("CAS of an absent key at version 0: %v", err)
	}
	v := wantVersion(t, s, "k", []byte("first"))
	if err := store.CompareAndSet(ctx, s, "k", 0, []byte("again")); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("CAS at version 0 of a present key = %v, want ErrConflict", err)
	}
	if err := store.CompareAndSet(ctx, s, "k", v+1000, []byte("wrong")); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("CAS at a wrong version = %v, want ErrConflict", err)
	}
	wantValue(t, s, "k", []byte("first"))
	if err := store.CompareAndSet(ctx, s, "k", v, []byte("second")); err != nil {
		t.Fatalf("CAS at the current version: %v", err)
	}
	if err := store.CompareAndSet(ctx, s, "k", v, []byte("stale")); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("CAS at the previous version = %v, want ErrConflict", err)
	}
	v2 := wantVersion(t, s, "k", []byte("second"))
	err := s.Batch(ctx, []store.Op{{Key: "k", Delete: true, Match: true, Version: v2}})
	if err != nil {
		t.Fatalf("conditional delete: %v", err)
	}
	wantNotFound(t, s, "k")
	if err := store.CompareAndSet(ctx, s, "k", 0, []byte("reborn")); err != nil {
		t.Fatalf("CAS at version 0 after delete: %v", err)
	}
}

// testConditionalBatch: a Check op fences a batch (the lease pattern), and a
// failed condition writes nothing of the batch.
func testConditionalBatch(t *testing.T, s store.Store) {
	ctx := t.Context()
	lease := store.PlayerKey("7", "lease")
	data := store.PlayerKey("7", "data")
	mustPut(t, s, lease, []byte("owner A"))
	token := wantVersion(t, s, lease, []byte("owner A"))
	mustPut(t, s, data, []byte("v0"))
	fenced := func(token uint64, value string) error {
		return s.Batch(ctx, []store.Op{
			{Key: lease, Check: true, Version: token},
			{Key: data, Value: []byte(value)},
			{Key: store.PlayerKey("7", "log"), Value: []byte(value)},
		})
	}
	if err := fenced(token, "by A"); err != nil {
		t.Fatalf("fenced write with the current token: %v", err)
	}
	wantValue(t, s, data, []byte("by A"))
	if v := wantVersion(t, s, lease, []byte("owner A")); v != token {
		t.Fatalf("a Check op changed the version of its key: %d, was %d", v, token)
	}
	mustPut(t, s, lease, []byte("owner B"))
	if err := fenced(token, "stale A"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("fenced write with a stale token = %v, want ErrConflict", err)
	}
	wantValue(t, s, data, []byte("by A"))
	wantValue(t, s, store.PlayerKey("7", "log"), []byte("by A"))

	mustPut(t, s, store.PlayerKey("7", "x"), []byte("x"))
	vx := wantVersion(t, s, store.PlayerKey("7", "x"), []byte("x"))
	err := s.Batch(ctx, []store.Op{
		{Key: store.PlayerKey("7", "x"), Value: []byte("x2"), Match: true, Version: vx},
		{Key: store.PlayerKey("7", "y"), Value: []byte("y"), Match: true, Version: 0},
		{Key: store.PlayerKey("7", "x"), Value: []byte("x3")},
	})
	if err != nil {
		t.Fatalf("two matching conditions: %v", err)
	}
	wantValue(t, s, store.PlayerKey("7", "x"), []byte("x3"))
	err = s.Batch(ctx, []store.Op{
		{Key: store.PlayerKey("7", "z"), Value: []byte("z")},
		{Key: store.PlayerKey("7", "y"), Value: []byte("y2"), Match: true, Version: 0},
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second condition failing = %v, want ErrConflict", err)
	}
	wantNotFound(t, s, store.PlayerKey("7", "z"))
	wantValue(t, s, store.PlayerKey("7", "y"), []byte("y"))
}

// testConcurrentIncrements: read-modify-CAS loops from many goroutines lose
// no increment.
func testConcurrentIncrements(t *testing.T, s store.Store) {
	const workers, each = 6, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range each {
				if err := Increment(t.Context(), s, "counter"); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	wantValue(t, s, "counter", []byte(fmt.Sprint(workers*each)))
}

// Increment adds one to the decimal counter at key with compare-and-set,
// retrying on conflicts.
func Increment(ctx context.Context, s store.Store, key string) error {
	for {
		raw, v, err := s.GetVersion(ctx, key)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		n := 0
		if len(raw) > 0 {
			if _, err := fmt.Sscan(string(raw), &n); err != nil {
				return fmt.Errorf("counter %q: %w", raw, err)
			}
		}
		err = store.CompareAndSet(ctx, s, key, v, []byte(fmt.Sprint(n+1)))
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
}

func testTTL(t *testing.T, s store.Store) {
	ctx := t.Context()
	const ttl = 400 * time.Millisecond
	err := s.Batch(ctx, []store.Op{
		{Key: "t/short", Value: []byte("s"), TTL: ttl},
		{Key: "t/long", Value: []byte("l"), TTL: time.Hour},
		{Key: "t/cleared", Value: []byte("c"), TTL: ttl},
		{Key: "t/none", Value: []byte("n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "t/cleared", []byte("c2")) // a Put without TTL clears it
	wantValue(t, s, "t/short", []byte("s"))
	deadline := time.Now().Add(ttl + 10*time.Second + s.Capabilities().TTLResolution)
	for {
		_, err := s.Get(ctx, "t/short")
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("t/short still readable long after its TTL of %v", ttl)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if keys, _ := scanAll(t, s, "t/"); !slices.Equal(keys, []string{"t/cleared", "t/long", "t/none"}) {
		t.Fatalf("Scan after expiry = %q", keys)
	}
	if err := store.CompareAndSet(ctx, s, "t/short", 0, []byte("new")); err != nil {
		t.Fatalf("CAS at version 0 of an expired key: %v", err)
	}
	wantValue(t, s, "t/short", []byte("new"))
	wantValue(t, s, "t/cleared", []byte("c2"))
}

func testBatchLimits(t *testing.T, s store.Store) {
	c := s.Capabilities()
	if c.Backend == "" || c.MaxValueLen <= 0 || c.MaxValueLen > store.MaxValueLen || c.MaxBatchOps < 1000 || c.MaxBatchBytes < c.MaxValueLen+store.MaxKeyLen {
		t.Fatalf("Capabilities = %+v out of range", c)
	}
	ops := make([]store.Op, c.MaxBatchOps+1)
	for i := range ops {
		ops[i] = store.Op{Key: fmt.Sprintf("l/%d", i), Value: []byte("v")}
	}
	if err := s.Batch(t.Context(), ops); !errors.Is(err, store.ErrTooManyOps) {
		t.Fatalf("Batch of MaxBatchOps+1 ops = %v, want ErrTooManyOps", err)
	}
	if keys, _ := scanAll(t, s, "l/"); len(keys) != 0 {
		t.Fatalf("a refused batch wrote %d keys", len(keys))
	}
	if err := s.Batch(t.Context(), []store.Op{{Key: "neg", Value: []byte("v"), TTL: -time.Second}}); err == nil {
		t.Fatal("Batch with a negative TTL succeeded")
	}
}

// testGroups: conditional batches within one player's group work on every
// backend; across groups, only where AtomicBatch says so.
func testGroups(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, b := store.PlayerKey("a", "data"), store.PlayerKey("b", "data")
	if store.Group(a) != "p/{a}" || store.Group("plain") != "" || store.Group("x{}y") != "" {
		t.Fatalf("Group: %q %q %q", store.Group(a), store.Group("plain"), store.Group("x{}y"))
	}
	if err := s.Batch(ctx, []store.Op{{Key: a, Value: []byte("1"), Match: true}, {Key: store.PlayerKey("a", "x"), Value: []byte("2")}}); err != nil {
		t.Fatalf("conditional batch in one group: %v", err)
	}
	err := s.Batch(ctx, []store.Op{{Key: a, Value: []byte("3"), Match: true, Version: wantVersion(t, s, a, []byte("1"))}, {Key: b, Value: []byte("4")}})
	switch {
	case s.Capabilities().AtomicBatch && err != nil:
		t.Fatalf("conditional batch across groups: %v", err)
	case !s.Capabilities().AtomicBatch && !errors.Is(err, store.ErrCrossGroup):
		t.Fatalf("conditional batch across groups = %v, want ErrCrossGroup", err)
	case !s.Capabilities().AtomicBatch:
		wantValue(t, s, a, []byte("1"))
		wantNotFound(t, s, b)
	}
	if err := s.Batch(ctx, []store.Op{{Key: "g/1", Value: []byte("1")}, {Key: b, Value: []byte("5")}}); err != nil {
		t.Fatalf("unconditional batch across groups: %v", err)
	}
	wantValue(t, s, b, []byte("5"))
}

// testLease: one owner at a time, takeover after expiry, and a stale
// owner's writes refused.
func testLease(t *testing.T, s store.Store) {
	ctx := t.Context()
	key, data := store.PlayerKey("p1", "lease"), store.PlayerKey("p1", "data")
	const ttl = 300 * time.Millisecond
	a, err := store.Acquire(ctx, s, key, "node-a", ttl)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Batch(ctx, []store.Op{{Key: data, Value: []byte("a1")}}); err != nil {
		t.Fatalf("write with the lease: %v", err)
	}
	if _, err := store.Acquire(ctx, s, key, "node-b", ttl); !errors.Is(err, store.ErrLeaseHeld) {
		t.Fatalf("Acquire of a held lease = %v, want ErrLeaseHeld", err)
	}
	old := a.Token()
	if err := a.Renew(ctx); err != nil || a.Token() == old {
		t.Fatalf("Renew: %v, token %d -> %d", err, old, a.Token())
	}
	again, err := store.Acquire(ctx, s, key, "node-a", ttl)
	if err != nil {
		t.Fatalf("the owner acquiring again: %v", err)
	}
	if err := a.Batch(ctx, []store.Op{{Key: data, Value: []byte("stale")}}); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("write with a superseded token = %v, want ErrLeaseLost", err)
	}
	time.Sleep(ttl + 50*time.Millisecond)
	b, err := store.Acquire(ctx, s, key, "node-b", ttl)
	if err != nil {
		t.Fatalf("Acquire of an expired lease: %v", err)
	}
	if b.Token() == again.Token() {
		t.Fatalf("takeover reused token %d", b.Token())
	}
	if err := b.Batch(ctx, []store.Op{{Key: data, Value: []byte("b1")}}); err != nil {
		t.Fatal(err)
	}
	if err := again.Batch(ctx, []store.Op{{Key: data, Value: []byte("a-late")}}); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("write of the expired owner = %v, want ErrLeaseLost", err)
	}
	if err := again.Renew(ctx); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("Renew of the expired owner = %v, want ErrLeaseLost", err)
	}
	wantValue(t, s, data, []byte("b1"))
	if err := b.Batch(ctx, []store.Op{{Key: data, Value: []byte("x"), Match: true, Version: 12345}}); !errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("another condition failing = %v, want ErrConflict but not ErrLeaseLost", err)
	}
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Acquire(ctx, s, key, "node-c", ttl); err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
}
