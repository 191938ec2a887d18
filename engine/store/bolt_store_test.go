package store_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/store"
	"github.com/moonforge/moonforge/engine/store/storetest"
)

// Environment of the child process that TestBoltChild becomes.
const (
	childModeEnv = "MOONFORGE_STORE_TEST_CHILD" // "write" or "hold"
	childPathEnv = "MOONFORGE_STORE_TEST_PATH"
)

func openBolt(t testing.TB, cfg store.BoltConfig) *store.BoltStore {
	t.Helper()
	s, err := store.OpenBolt(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestBoltConformance(t *testing.T) {
	storetest.RunConformance(t, func(t *testing.T) store.Store {
		return openBolt(t, store.BoltConfig{Path: filepath.Join(t.TempDir(), "data", "moonforge.db")})
	})
}

func TestBoltReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "moonforge.db")
	s := openBolt(t, store.BoltConfig{Path: path})
	if err := s.Put(t.Context(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("file mode = %v, want 0600", mode)
	}
	s = openBolt(t, store.BoltConfig{Path: path})
	got, err := s.Get(t.Context(), "k")
	if err != nil || string(got) != "v" {
		t.Fatalf("after reopen: Get = %q, %v", got, err)
	}
}

func TestOpenBoltErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := store.OpenBolt(store.BoltConfig{}); err == nil || !strings.Contains(err.Error(), "Path") {
		t.Errorf("empty path: err = %v", err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := store.OpenBolt(store.BoltConfig{Path: filepath.Join(file, "x.db")}); err == nil {
		t.Error("parent is a file: no error")
	}
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("garbage!"), 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := store.OpenBolt(store.BoltConfig{Path: garbage}); err == nil {
		s.Close()
		t.Error("garbage file: no error")
	} else if !strings.Contains(err.Error(), filepath.ToSlash(garbage)) {
		t.Errorf("garbage file: error %q does not name the file", err)
	}
}

func TestBoltLockedInProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "moonforge.db")
	openBolt(t, store.BoltConfig{Path: path})
	s, err := store.OpenBolt(store.BoltConfig{Path: path, Timeout: 50 * time.Millisecond})
	if err == nil {
		s.Close()
		t.Fatal("second OpenBolt of the same file succeeded")
	}
	if want := filepath.ToSlash(path); !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want ErrLocked naming %s", err, want)
	}
}

// TestBoltChild is the child process of the tests below; it does nothing in
// a normal run.
func TestBoltChild(t *testing.T) {
	mode := os.Getenv(childModeEnv)
	if mode == "" {
		t.Skip("only runs as a child process")
	}
	if err := runChild(mode, os.Getenv(childPathEnv)); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func runChild(mode, path string) error {
	s, err := store.OpenBolt(store.BoltConfig{Path: path})
	if err != nil {
		return err
	}
	defer s.Close()
	switch mode {
	case "hold":
		fmt.Println("locked")
		_, err := io.Copy(io.Discard, os.Stdin)
		return err
	case "write":
		return writeUntilKilled(s)
	}
	return fmt.Errorf("unknown mode %q", mode)
}

// writeUntilKilled writes keys from 8 goroutines and prints "ack <key>" for
// each Put that returned nil. It stops by itself after a bounded count.
func writeUntilKilled(s store.Store) error {
	const writers, perWriter = 8, 5000
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				key := fmt.Sprintf("k/%d/%05d", w, i)
				if err := s.Put(context.Background(), key, []byte("value of "+key)); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				_, err := os.Stdout.WriteString("ack " + key + "\n")
				mu.Unlock()
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func startChild(t *testing.T, mode, path string) (*exec.Cmd, io.WriteCloser, *bufio.Reader) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBoltChild$")
	cmd.Env = append(os.Environ(), childModeEnv+"="+mode, childPathEnv+"="+path)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd, stdin, bufio.NewReader(stdout)
}

func TestBoltLockedByOtherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "moonforge.db")
	cmd, stdin, out := startChild(t, "hold", path)
	line, err := out.ReadString('\n')
	if line != "locked\n" {
		t.Fatalf("child said %q, %v", line, err)
	}
	s, err := store.OpenBolt(store.BoltConfig{Path: path, Timeout: 100 * time.Millisecond})
	if err == nil {
		s.Close()
		t.Fatal("OpenBolt of a file another process holds succeeded")
	}
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("err = %v, want ErrLocked", err)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	openBolt(t, store.BoltConfig{Path: path, Timeout: 100 * time.Millisecond})
}

// TestBoltDurableAfterKill kills a writing child with SIGKILL; every key the
// child acknowledged must be in the file.
func TestBoltDurableAfterKill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "moonforge.db")
	cmd, _, out := startChild(t, "write", path)
	var acked []string
	readAck := func() bool {
		line, err := out.ReadString('\n')
		if err != nil {
			return false // EOF; a line without '\n' is not an acknowledgement
		}
		key, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "ack ")
		if !ok {
			t.Fatalf("child printed %q", line)
		}
		acked = append(acked, key)
		return true
	}
	for len(acked) < 300 && readAck() {
	}
	if len(acked) < 300 {
		t.Fatalf("child stopped after %d acknowledgements", len(acked))
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for readAck() {
	}
	err := cmd.Wait()
	if exit, ok := err.(*exec.ExitError); !ok || exit.Success() {
		t.Fatalf("child was not killed: %v", err)
	}
	t.Logf("%d keys acknowledged before SIGKILL", len(acked))

	s := openBolt(t, store.BoltConfig{Path: path})
	for _, key := range acked {
		got, err := s.Get(t.Context(), key)
		if err != nil || string(got) != "value of "+key {
			t.Fatalf("acknowledged key %q: Get = %q, %v", key, got, err)
		}
	}
}

// FuzzBoltKeys: any key and value either round-trip through Put, Get and
// Scan or fail with a clear error; nothing panics.
func FuzzBoltKeys(f *testing.F) {
	f.Add("a", []byte("v"))
	f.Add("\x00", []byte{})
	f.Add("\xff\xff", []byte{0, 0xff})
	f.Add("", []byte("x"))
	f.Add(strings.Repeat("k", store.MaxKeyLen+1), []byte("x"))
	s := openBolt(f, store.BoltConfig{Path: filepath.Join(f.TempDir(), "fuzz.db"), NoSync: true})
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		ctx := t.Context()
		err := s.Put(ctx, key, value)
		if key == "" || len(key) > store.MaxKeyLen {
			if !errors.Is(err, store.ErrInvalidKey) {
				t.Fatalf("Put(%q) = %v, want ErrInvalidKey", key, err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, key)
		if err != nil || !bytes.Equal(got, value) {
			t.Fatalf("Get(%q) = %q, %v; want %q", key, got, err, value)
		}
		first := true
		err = s.Scan(ctx, key, func(k string, v []byte) error {
			if first && (k != key || !bytes.Equal(v, value)) {
				t.Fatalf("Scan(%q) starts at %q", key, k)
			}
			if !strings.HasPrefix(k, key) {
				t.Fatalf("Scan(%q) gave %q", key, k)
			}
			first = false
			return nil
		})
		if err != nil || first {
			t.Fatalf("Scan(%q): err=%v, empty=%v", key, err, first)
		}
		if err := s.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
	})
}

// BenchmarkBoltPut compares one writer with many: the parallel writers share
// transactions and fsyncs, so their ns/op is a fraction of the serial one.
func BenchmarkBoltPut(b *testing.B) {
	value := bytes.Repeat([]byte("v"), 100)
	b.Run("serial", func(b *testing.B) {
		s := openBolt(b, store.BoltConfig{Path: filepath.Join(b.TempDir(), "bench.db")})
		i := 0
		for b.Loop() {
			if err := s.Put(b.Context(), fmt.Sprintf("k/%d", i), value); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		s := openBolt(b, store.BoltConfig{Path: filepath.Join(b.TempDir(), "bench.db")})
		var n atomic.Int64
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.Put(b.Context(), fmt.Sprintf("k/%d", n.Add(1)), value); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkBoltWriteAlone is a login's account creation (a batch of two puts) with nothing else
// writing, durable (fsync): the cost of a write that has no company to share its sync with.
func BenchmarkBoltWriteAlone(b *testing.B) {
	s := openBolt(b, store.BoltConfig{Path: filepath.Join(b.TempDir(), "alone.db")})
	ctx := context.Background()
	value := bytes.Repeat([]byte("x"), 200)
	for i := 0; b.Loop(); i++ {
		ops := []store.Op{{Key: fmt.Sprintf("player/%d", i), Value: value}, {Key: fmt.Sprintf("account/guest/%d", i), Value: value}}
		if err := s.Batch(ctx, ops); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBoltWriteTogether is 16 writers at once: the writes share transactions and syncs.
func BenchmarkBoltWriteTogether(b *testing.B) {
	s := openBolt(b, store.BoltConfig{Path: filepath.Join(b.TempDir(), "together.db")})
	ctx := context.Background()
	value := bytes.Repeat([]byte("x"), 200)
	var n atomic.Int64
	b.SetParallelism(8) // 16 goroutines on 2 CPUs
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			ops := []store.Op{{Key: fmt.Sprintf("player/%d", i), Value: value}, {Key: fmt.Sprintf("account/guest/%d", i), Value: value}}
			if err := s.Batch(ctx, ops); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
