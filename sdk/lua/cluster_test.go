package lua_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestClusterFailover runs test/failover_test.lua against a cluster of processes (master, two
// proxies, login, lobby, game) sharing their token keys: the client skips a dead address, plays
// through the first proxy, which is then killed; on the second proxy the resume is refused, and
// the refresh token restores the same player, who plays on.
func TestClusterFailover(t *testing.T) {
	interps := lua(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "moonforge")
	if out, err := exec.Command(goTool(), "build", "-o", bin, "github.com/moonforge/moonforge").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, d := range []string{"lua", "proto"} {
		if err := os.CopyFS(filepath.Join(dir, d), os.DirFS(filepath.Join("..", "..", d))); err != nil {
			t.Fatal(err)
		}
	}
	natsAddr := "127.0.0.1:" + freePort(t)
	startNode(t, bin, dir, nil, "master", "master-1", "-nats-listen", natsAddr)
	keys, err := os.ReadFile(filepath.Join(dir, "master-1", "token_keys"))
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"MOONFORGE_TOKEN_KEYS=" + strings.TrimSpace(string(keys))}
	for _, n := range [][2]string{{"login", "login-1"}, {"lobby", "lobby-1"}, {"game", "game-1"}} {
		startNode(t, bin, dir, env, n[0], n[1], "-nats", "nats://"+natsAddr)
	}
	for i, interp := range interps {
		first, pid := startNode(t, bin, dir, env, "proxy", fmt.Sprintf("proxy-%d-a", i), "-nats", "nats://"+natsAddr, "-tcp", "127.0.0.1:0")
		second, _ := startNode(t, bin, dir, env, "proxy", fmt.Sprintf("proxy-%d-b", i), "-nats", "nats://"+natsAddr, "-tcp", "127.0.0.1:0")
		runScript(t, interp, "test/failover_test.lua", freePort(t), first, second, strconv.Itoa(pid), "cluster")
	}
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// freePort returns a loopback TCP port that nothing listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// startNode runs `moonforge node` with the role and id (data under dir/id) until it reports running,
// and returns its TCP port ("" without one) and process id. It is killed when the test ends.
func startNode(t *testing.T, bin, dir string, env []string, role, id string, args ...string) (tcpPort string, pid int) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"node", "-role", role, "-id", id, "-data", filepath.Join(dir, id),
		"-lua", filepath.Join(dir, "lua"), "-proto", filepath.Join(dir, "proto"), "-tcp", "-", "-ws", "-", "-kcp", "-", "-admin", "-"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	log := &lockedLog{}
	running := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		re := regexp.MustCompile(`msg="moonforge is running".* tcp=(?:127\.0\.0\.1:(\d+)|"")`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.add(sc.Text())
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				running <- m[1]
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s log:\n%s", id, log.text())
		}
	})
	select {
	case port := <-running:
		return port, cmd.Process.Pid
	case <-done:
		t.Fatalf("%s exited before it was running:\n%s", id, log.text())
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not start within 30s:\n%s", id, log.text())
	}
	return "", 0
}
