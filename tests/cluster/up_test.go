//go:build !windows

package cluster

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitMatch waits up to 30 s for re to match the output and returns the submatches of the last match.
func (o *output) waitMatch(t *testing.T, re *regexp.Regexp, after int) []string {
	t.Helper()
	end := time.Now().Add(30 * time.Second)
	for {
		all := re.FindAllStringSubmatch(o.String(), -1)
		if len(all) > after {
			return all[after]
		}
		if time.Now().After(end) {
			t.Fatalf("no match %d of %s in the output:\n%s", after+1, re, o.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// `moonforge cluster up`: a node killed with -9 is reported with its status and started again;
// a node that cannot start is given up after its failures in a row while the others keep
// serving; SIGTERM (as Ctrl-C) stops every node and cluster up exits 0.
func TestClusterUpRestartsAndGivesUp(t *testing.T) {
	e := newEnvWithout(t)
	addr := freePort(t)
	e.url = "nats://" + addr
	file := filepath.Join(e.dir, "cluster.yaml")
	yaml := fmt.Sprintf(`nats: %s
data_dir: %s
lua_dir: %s
proto_dir: %s
config: %s
restart: {backoff: 100ms, max_backoff: 400ms, limit: 3, stable: 10s}
nodes:
  - {id: master-1, role: master}
  - {id: proxy-1, role: proxy, tcp: "127.0.0.1:0"}
  - {id: lobby-1, role: lobby}
  - {id: broken-1, role: nosuchrole}
`, addr, filepath.Join(e.dir, "data"), filepath.Join(e.dir, "lua"), filepath.Join(e.dir, "proto"), filepath.Join(e.dir, "node.yaml"))
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	up := exec.Command(built.moonforge, "cluster", "up", "-f", file)
	up.SysProcAttr = procAttr()
	out := &output{}
	pr, pw := io.Pipe()
	up.Stdout, up.Stderr = pw, pw
	go out.read(pr, nil)
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- up.Wait()
		pw.Close()
	}()
	t.Cleanup(func() {
		_ = up.Process.Kill()
		if t.Failed() {
			t.Logf("cluster up's output:\n%s", out)
		}
	})

	started := regexp.MustCompile(`cluster: started lobby-1 \(pid (\d+)\)`)
	first, _ := strconv.Atoi(out.waitMatch(t, started, 0)[1])
	e.waitNodes("master-1", "proxy-1", "lobby-1")
	out.waitMatch(t, regexp.MustCompile(`cluster: broken-1 exited \(exit status 1\) after \S+; 3 failures in a row: given up`), 0)
	if n := strings.Count(out.String(), "cluster: started broken-1"); n != 3 {
		t.Fatalf("broken-1 was started %d times, want 3", n)
	}

	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	out.waitMatch(t, regexp.MustCompile(`cluster: lobby-1 exited \(signal: killed\) after \S+; restarting in 100ms`), 0)
	second, _ := strconv.Atoi(out.waitMatch(t, started, 1)[1])
	if second == first {
		t.Fatalf("lobby-1 restarted with the same pid %d", first)
	}
	out.waitMatch(t, regexp.MustCompile(`msg="moonforge is running" node=lobby-1 `), 1) // the second lobby-1 serves

	pids := map[string]int{"lobby-1": second}
	for _, id := range []string{"master-1", "proxy-1"} {
		m := out.waitMatch(t, regexp.MustCompile(`cluster: started `+id+` \(pid (\d+)\)`), 0)
		pids[id], _ = strconv.Atoi(m[1])
	}
	if err := up.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("cluster up exited with %v after SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("cluster up did not stop within 30s of SIGTERM")
	}
	for id, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s (pid %d) still runs after cluster up stopped: %v", id, pid, err)
		}
	}
}
