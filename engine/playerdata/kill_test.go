//go:build unix

package playerdata_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/playerdata"
	"github.com/moonforge/moonforge/engine/store"
)

// Environment of the node process that TestNodeChild becomes.
const (
	nodeRedisEnv = "MOONFORGE_PLAYERDATA_REDIS"
	nodeDirEnv   = "MOONFORGE_PLAYERDATA_DIR"
)

// TestNodeChild is a lobby node saving one player in a loop: it prints
// "acked N" when a save reached the store and "journaled N" when it is in
// the journal only. It skips itself unless started by
// TestNodeKilledMidWrites.
func TestNodeChild(t *testing.T) {
	addr := os.Getenv(nodeRedisEnv)
	if addr == "" {
		t.Skip("only runs as the child process of TestNodeKilledMidWrites")
	}
	ctx := context.Background()
	s, err := store.OpenRedis(ctx, store.RedisConfig{Addrs: []string{addr}, DialTimeout: 200 * time.Millisecond, ReadTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	m, err := playerdata.Open(playerdata.Config{Store: s, Owner: "node-a", Dir: os.Getenv(nodeDirEnv), FlushEvery: time.Hour, LeaseTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	d, err := m.Load(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; ; i++ {
		_ = d.Set("n", []byte(strconv.Itoa(i)))
		c, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		err := m.Save(c, "p")
		cancel()
		switch {
		case err == nil:
			fmt.Println("acked", i)
		case errors.Is(err, playerdata.ErrPending):
			fmt.Println("journaled", i)
		default:
			t.Fatal(err)
		}
	}
}

// TestNodeKilledMidWrites: a node saving a player is killed (SIGKILL), once
// while the store answers and once while it is stopped (saves only in the
// journal); after the node's restart, every save it acknowledged, to the
// store or to its journal, is in the store.
func TestNodeKilledMidWrites(t *testing.T) {
	s, srv := redisStore(t)
	dir := t.TempDir()
	var last int
	for round, storeDown := range []bool{false, true} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestNodeChild$", "-test.v")
		cmd.Env = append(os.Environ(), nodeRedisEnv+"="+srv.Addr, nodeDirEnv+"="+dir)
		out, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		seen := 0
		want := "acked"
		for sc.Scan() {
			kind, n, _ := strings.Cut(sc.Text(), " ")
			if kind != "acked" && kind != "journaled" {
				continue
			}
			i, _ := strconv.Atoi(n)
			if kind != want {
				continue
			}
			last = i
			seen++
			if storeDown && want == "acked" && seen >= 20 {
				_ = srv.Signal(syscall.SIGSTOP)
				want, seen = "journaled", 0
			}
			if seen >= 20 || (want == "journaled" && seen >= 5) {
				break
			}
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if storeDown {
			_ = srv.Signal(syscall.SIGCONT)
		}
		// Restart: the journal is applied (the lease still names node-a).
		m, err := playerdata.Open(playerdata.Config{Store: s, Owner: "node-a", Dir: dir, FlushEvery: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Drain(context.Background()); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(context.Background(), store.PlayerKey("p", "n"))
		n, _ := strconv.Atoi(string(got))
		if err != nil || n < last {
			t.Fatalf("round %d: stored %q (%v), the killed node acknowledged %d", round, got, err, last)
		}
		m.Abandon()
	}
}
