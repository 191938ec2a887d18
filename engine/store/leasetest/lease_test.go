//go:build unix

package leasetest

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/store"
	"github.com/moonforge/moonforge/engine/store/storetest"
)

// Environment of the child processes that TestChild becomes.
const (
	childEnv = "MOONFORGE_LEASETEST_CHILD" // incr, writer or bulk
	storeEnv = "MOONFORGE_LEASETEST_STORE" // store.Config as JSON
	countEnv = "MOONFORGE_LEASETEST_COUNT"
)

const (
	counterKey = "counter"
	writerTTL  = 500 * time.Millisecond
)

var (
	leaseKey = store.PlayerKey("frozen", "lease")
	dataKey  = store.PlayerKey("frozen", "data")
)

// backends are the shared stores the tests run on.
func backends(t *testing.T) map[string]store.Config {
	srv := storetest.StartRedis(t, storetest.DurableRedis...)
	name := storetest.RandomName()
	return map[string]store.Config{
		"redis": {Backend: "redis", Timeout: 10 * time.Second, Redis: store.RedisConfig{Addrs: []string{srv.Addr}, Prefix: "l" + name + ":"}},
		"mysql": {Backend: "mysql", Timeout: 10 * time.Second, MySQL: store.MySQLConfig{DSN: storetest.MySQLDSN(t), Table: "kv_" + name}},
	}
}

func open(t testing.TB, cfg store.Config) store.Store {
	s, err := store.Open(context.Background(), cfg, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// child is a copy of the test binary running TestChild in mode.
type child struct {
	cmd   *exec.Cmd
	lines chan string
}

func startChild(t *testing.T, mode string, cfg store.Config, count int) *child {
	t.Helper()
	raw, _ := json.Marshal(cfg)
	cmd := exec.Command(os.Args[0], "-test.run=^TestChild$", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, storeEnv+"="+string(raw), countEnv+"="+strconv.Itoa(count))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, lines: make(chan string, 1<<16)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return c
}

// waitLine returns the next line of the child that starts with prefix,
// failing after timeout.
func (c *child) waitLine(t *testing.T, prefix string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				t.Fatalf("child exited before printing %q", prefix)
			}
			if strings.HasPrefix(line, prefix) {
				return line
			}
		case <-deadline:
			t.Fatalf("child printed no %q within %v", prefix, timeout)
		}
	}
}

// TestChild is the body of the child processes; it skips itself in a normal
// run.
func TestChild(t *testing.T) {
	mode := os.Getenv(childEnv)
	if mode == "" {
		t.Skip("only runs as a child process of the other tests")
	}
	var cfg store.Config
	if err := json.Unmarshal([]byte(os.Getenv(storeEnv)), &cfg); err != nil {
		t.Fatal(err)
	}
	count, _ := strconv.Atoi(os.Getenv(countEnv))
	s := open(t, cfg)
	ctx := context.Background()
	switch mode {
	case "incr":
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		for g := range 2 {
			wg.Go(func() {
				for range count/2 + g*(count%2) {
					if err := storetest.Increment(ctx, s, counterKey); err != nil {
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
		fmt.Println("done")
	case "writer":
		runWriter(t, s)
	case "bulk":
		runBulk(t, s, count)
	}
}

// runWriter holds the lease and writes "A:<n>" every few milliseconds,
// renewing the lease on the way, until a write or renewal is refused.
func runWriter(t *testing.T, s store.Store) {
	ctx := context.Background()
	l, err := store.Acquire(ctx, s, leaseKey, "node-a", writerTTL)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if time.Until(l.Until()) < writerTTL*2/3 {
			if err := l.Renew(ctx); err != nil {
				fmt.Println("lost", err)
				return
			}
		}
		err := l.Batch(ctx, []store.Op{{Key: dataKey, Value: []byte(fmt.Sprintf("A:%d", i))}})
		if errors.Is(err, store.ErrLeaseLost) {
			fmt.Println("lost", err)
			return
		}
		if errors.Is(err, store.ErrUnavailable) {
			continue // frozen inside a transaction, its connection closed: write again
		}
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println("ok", i)
		time.Sleep(2 * time.Millisecond)
	}
}

// TestConcurrentIncrementsAcrossProcesses: 4 processes, 2 goroutines each,
// add 10,000 to one counter with compare-and-set; none is lost or doubled.
func TestConcurrentIncrementsAcrossProcesses(t *testing.T) {
	const procs, total = 4, 10000
	for name, cfg := range backends(t) {
		t.Run(name, func(t *testing.T) {
			children := make([]*child, procs)
			for i := range children {
				children[i] = startChild(t, "incr", cfg, total/procs)
			}
			for _, c := range children {
				c.waitLine(t, "done", 5*time.Minute)
				if err := c.cmd.Wait(); err != nil {
					t.Fatalf("child: %v", err)
				}
			}
			got, err := open(t, cfg).Get(context.Background(), counterKey)
			if err != nil || string(got) != strconv.Itoa(total) {
				t.Fatalf("counter = %q, %v; want %d", got, err, total)
			}
		})
	}
}

// takeOver acquires the frozen writer's lease for node-b, trying again
// while it is held, for up to 30 s.
func takeOver(t *testing.T, s store.Store) *store.Lease {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		l, err := store.Acquire(ctx, s, leaseKey, "node-b", time.Minute)
		if err == nil {
			return l
		}
		if !errors.Is(err, store.ErrLeaseHeld) || ctx.Err() != nil {
			t.Fatalf("taking the frozen writer's lease over: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestFrozenWriterCannotOverwrite: a writer holding the lease is frozen
// (SIGSTOP) past its TTL; another node takes the lease over and writes;
// once thawed (SIGCONT), the first writer's writes are refused, and the new
// owner's data stays.
func TestFrozenWriterCannotOverwrite(t *testing.T) {
	for name, cfg := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t, cfg)
			a := startChild(t, "writer", cfg, 0)
			a.waitLine(t, "ok 20", time.Minute)
			if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			b := takeOver(t, s)
			if err := b.Batch(ctx, []store.Op{{Key: dataKey, Value: []byte("B")}}); err != nil {
				t.Fatal(err)
			}
			if err := a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			a.waitLine(t, "lost", time.Minute)
			got, err := s.Get(ctx, dataKey)
			if err != nil || string(got) != "B" {
				t.Fatalf("data after the frozen writer woke = %q, %v; want B", got, err)
			}
			if err := a.cmd.Wait(); err != nil {
				t.Fatalf("writer: %v", err)
			}
		})
	}
}

// bulkOps is the size of runBulk's batch: long enough on MySQL (one
// statement per op) to be frozen in the middle of.
const bulkOps = 9000

// bulkKey is the i-th key of the batch of attempt n.
func bulkKey(n, i int) string { return store.PlayerKey("frozen", fmt.Sprintf("bulk%d-%d", n, i)) }

// runBulk holds the lease and writes one batch of bulkOps keys of attempt
// n, printing "begin" before it and "batch <error>" after it, then writes
// again until the lease is lost.
func runBulk(t *testing.T, s store.Store, n int) {
	ctx := context.Background()
	l, err := store.Acquire(ctx, s, leaseKey, "node-a", writerTTL)
	if err != nil {
		t.Fatal(err)
	}
	ops := make([]store.Op, bulkOps)
	for i := range ops {
		ops[i] = store.Op{Key: bulkKey(n, i), Value: []byte("A")}
	}
	fmt.Println("begin")
	fmt.Println("batch", l.Batch(ctx, ops))
	for {
		err := l.Batch(ctx, []store.Op{{Key: dataKey, Value: []byte("A")}})
		if errors.Is(err, store.ErrLeaseLost) {
			fmt.Println("lost", err)
			return
		}
		if err == nil {
			t.Fatal("a write after the takeover was accepted")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// freezeInBatch starts a bulk writer for attempt n and stops it (SIGSTOP)
// in the middle of its batch. It returns nil, the child killed, if the batch
// had ended before the freeze (this process was held up that long).
func freezeInBatch(t *testing.T, cfg store.Config, n int) *child {
	t.Helper()
	a := startChild(t, "bulk", cfg, n)
	a.waitLine(t, "begin", time.Minute)
	time.Sleep(20 * time.Millisecond)
	if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	select {
	case line := <-a.lines:
		t.Logf("attempt %d: the batch ended before the freeze (%q)", n, line)
		_ = a.cmd.Process.Kill()
		_ = a.cmd.Wait()
		return nil
	default:
		return a
	}
}

// TestWriterFrozenInsideATransaction: on MySQL a batch is a transaction
// that holds its conditions' row locks, the lease record's among them. A
// writer frozen in the middle of one must not block the takeover of its
// expired lease: the server closes its idle connection (MariaDB's
// idle_transaction_timeout), which rolls the batch back; once thawed, the
// writer finds the lease lost, and nothing of its batch was written.
func TestWriterFrozenInsideATransaction(t *testing.T) {
	cfg := backends(t)["mysql"]
	ctx := context.Background()
	db, err := sql.Open("mysql", cfg.MySQL.DSN)
	if err != nil {
		t.Fatal(err)
	}
	var version string
	err = db.QueryRowContext(ctx, "SELECT @@version").Scan(&version)
	_ = db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(version, "MariaDB") {
		t.Skipf("%s is MySQL, which cannot close a connection idle inside a transaction", version)
	}
	s := open(t, cfg)
	var a *child
	attempt := 0
	for a == nil {
		if attempt++; attempt > 3 {
			t.Fatal("the batch ended before the freeze three times: make bulkOps larger")
		}
		a = freezeInBatch(t, cfg, attempt)
	}
	b := takeOver(t, s)
	if err := b.Batch(ctx, []store.Op{{Key: dataKey, Value: []byte("B")}}); err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if line := a.waitLine(t, "batch", time.Minute); line == "batch <nil>" {
		t.Fatal("the frozen batch was applied after the takeover")
	}
	a.waitLine(t, "lost", time.Minute)
	if err := a.cmd.Wait(); err != nil {
		t.Fatalf("writer: %v", err)
	}
	for _, key := range []string{bulkKey(attempt, 0), bulkKey(attempt, bulkOps-1)} {
		if _, err := s.Get(ctx, key); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s after the frozen batch: %v; want not found", key, err)
		}
	}
	if got, err := s.Get(ctx, dataKey); err != nil || string(got) != "B" {
		t.Fatalf("data = %q, %v; want B", got, err)
	}
}
