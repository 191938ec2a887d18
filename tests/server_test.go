// Package tests holds Moonforge's black-box tests: TestMain builds the moonforge binary and the
// bot once; every test starts real server processes on free loopback ports, in a temporary copy of
// lua/ and proto/, and drives them over TCP, WebSocket and the admin HTTP endpoint.
package tests

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/client"
	"github.com/moonforge/moonforge/engine/schema"
)

// Bounds of every wait of the harness.
const (
	startTimeout = 30 * time.Second // build of the first version and listeners
	stopTimeout  = 20 * time.Second // graceful stop, above the default shutdown_timeout of 10s
	killTimeout  = 10 * time.Second
)

// built is what TestMain builds; it is set before m.Run and only read by the tests.
var built struct {
	root      string // module root (the directory of go.mod)
	moonforge string // the server binary
	bot       string // the tools/bot binary
	studio    string // examples/studio: a studio's own binary with Go extensions
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "moonforge-tests-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "tests:", err)
		os.Exit(1)
	}
	code := 1
	if err := build(dir); err != nil {
		fmt.Fprintln(os.Stderr, "tests:", err)
	} else {
		code = m.Run()
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// build compiles the server, the bot and the studio example into dir, from the module that contains this package.
func build(dir string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	out, err := exec.Command(goBin, "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return fmt.Errorf("not inside a Go module")
	}
	built.root = filepath.Dir(gomod)
	cmd := exec.Command(goBin, "build", "-o", dir+string(filepath.Separator),
		"github.com/moonforge/moonforge", "github.com/moonforge/moonforge/tools/bot", "github.com/moonforge/moonforge/examples/studio")
	cmd.Dir = built.root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	built.moonforge = filepath.Join(dir, "moonforge")
	built.bot = filepath.Join(dir, "bot")
	built.studio = filepath.Join(dir, "studio")
	return nil
}

// options configure startServer.
type options struct {
	// config is YAML written to config.yaml in the server's directory and passed with -config.
	config string
	// fixtures adds tests/testdata/lua and tests/testdata/proto over the repository's copies.
	fixtures bool
	// production runs without -dev.
	production bool
	// prepare, if set, rearranges the server's directory (lua/, proto/) before the first start.
	prepare func(t testing.TB, dir string)
	// binary runs instead of the moonforge binary (a studio's own build).
	binary string
}

// server is one moonforge process (and its restarts) in its own directory. Its methods are for
// the test goroutine that started it, except the log methods, which are safe for concurrent use.
type server struct {
	t    testing.TB
	opts options
	dir  string // lua/, proto/, data/ and config.yaml

	// Addresses of the running process, from its "moonforge is running" log line.
	tcp, ws, kcp, admin, version string
	tls, wss                     string // "" when TLS is closed (production without a certificate)

	log  *logBuffer
	proc *process
	msgs client.Messages // the schema of proto/ as it was at start
}

// process is one run of the binary.
type process struct {
	cmd   *exec.Cmd
	ready chan map[string]string // the fields of the "moonforge is running" line
	done  chan struct{}          // closed when the process has exited
	err   error                  // cmd.Wait's result, set before done closes
}

// startServer starts a server in a fresh temporary directory and stops it when the test ends
// (SIGKILL if it is still running then). On failure the test log gets the server's log.
func startServer(t testing.TB, opts options) *server {
	t.Helper()
	s := &server{t: t, opts: opts, dir: t.TempDir(), log: &logBuffer{}}
	copyTree(t, filepath.Join(built.root, "lua"), s.path("lua"))
	copyTree(t, filepath.Join(built.root, "proto"), s.path("proto"))
	if opts.fixtures {
		copyTree(t, filepath.Join("testdata", "lua"), s.path("lua"))
		copyTree(t, filepath.Join("testdata", "proto"), s.path("proto"))
	}
	if opts.config != "" {
		writeFile(t, s.path("config.yaml"), opts.config)
	}
	if opts.prepare != nil {
		opts.prepare(t, s.dir)
	}
	sch, err := schema.Load(s.path("proto"))
	if err != nil {
		t.Fatalf("loading the test's copy of proto/: %v", err)
	}
	s.msgs = client.Messages{Schema: sch}
	t.Cleanup(func() {
		if s.proc != nil && !s.exited() {
			s.kill()
		}
		if t.Failed() {
			t.Logf("server log (%s):\n%s", s.dir, s.log.String())
		}
	})
	s.launch()
	return s
}

// path returns a path inside the server's directory.
func (s *server) path(rel string) string { return filepath.Join(s.dir, filepath.FromSlash(rel)) }

// launch starts the binary on the server's directory and waits until it serves.
func (s *server) launch() {
	s.t.Helper()
	args := []string{"run",
		"-data", s.path("data"), "-lua", s.path("lua"), "-proto", s.path("proto"),
		"-tcp", "127.0.0.1:0", "-ws", "127.0.0.1:0", "-kcp", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-tls-tcp", "127.0.0.1:0", "-tls-ws", "127.0.0.1:0"}
	if !s.opts.production {
		args = append(args, "-dev")
	}
	if s.opts.config != "" {
		args = append(args, "-config", s.path("config.yaml"))
	}
	p := &process{ready: make(chan map[string]string, 1), done: make(chan struct{})}
	bin := built.moonforge
	if s.opts.binary != "" {
		bin = s.opts.binary
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = s.dir
	lw := &lineWriter{buf: s.log, onLine: func(line string) {
		if strings.Contains(line, `msg="moonforge is running"`) {
			select {
			case p.ready <- logFields(line):
			default:
			}
		}
	}}
	p.cmd.Stderr = lw
	p.cmd.Stdout = lw
	p.cmd.SysProcAttr = procAttr()
	if err := p.cmd.Start(); err != nil {
		s.t.Fatalf("starting moonforge: %v", err)
	}
	s.proc = p
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case f := <-p.ready:
		s.tcp, s.ws, s.kcp, s.admin, s.version = f["tcp"], f["ws"], f["kcp"], f["admin"], f["version"]
		s.tls, s.wss = f["tls"], f["wss"]
		if s.tcp == "" || s.ws == "" || s.kcp == "" || s.admin == "" {
			s.t.Fatalf("the running line lacks an address: %v", f)
		}
	case <-p.done:
		s.t.Fatalf("moonforge exited before serving: %v", p.err)
	case <-timer.C:
		s.kill()
		s.t.Fatalf("moonforge did not report running within %s", startTimeout)
	}
}

// exited reports whether the current process has ended.
func (s *server) exited() bool {
	select {
	case <-s.proc.done:
		return true
	default:
		return false
	}
}

// stop sends SIGINT and waits for the exit; it returns the exit code (-1 if it had to be killed).
func (s *server) stop() int {
	s.t.Helper()
	_ = s.proc.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.proc.done:
		return s.proc.cmd.ProcessState.ExitCode()
	case <-time.After(stopTimeout):
		s.t.Errorf("moonforge did not stop within %s of SIGINT; killing it", stopTimeout)
		s.kill()
		return -1
	}
}

// kill sends SIGKILL and waits for the exit.
func (s *server) kill() {
	_ = s.proc.cmd.Process.Kill()
	select {
	case <-s.proc.done:
	case <-time.After(killTimeout):
		s.t.Errorf("moonforge did not exit within %s of SIGKILL", killTimeout)
	}
}

// restart starts the binary again on the same directory (data included); addresses change.
func (s *server) restart() {
	s.t.Helper()
	if !s.exited() {
		s.t.Fatalf("restart: the previous process is still running")
	}
	s.launch()
}

// addr returns the gateway address of a transport ("tcp", "ws" or "kcp").
func (s *server) addr(transport string) string {
	switch transport {
	case "ws":
		return s.ws
	case "tls":
		return s.tls
	case "wss":
		return s.wss
	case "kcp":
		return s.kcp
	}
	return s.tcp
}

// dial connects a client; it is closed when the test ends.
func (s *server) dial(t testing.TB, transport string) *client.Client {
	t.Helper()
	return s.dialConfig(t, client.Config{Transport: transport})
}

// dialConfig connects a client with cfg, whose Addr is filled in from cfg.Transport.
func (s *server) dialConfig(t testing.TB, cfg client.Config) *client.Client {
	t.Helper()
	cfg.Addr = s.addr(cfg.Transport)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("dial %s %s: %v", cfg.Transport, cfg.Addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// adminURL returns the URL of an admin path.
func (s *server) adminURL(path string) string { return "http://" + s.admin + path }

// httpGet fetches an admin path and returns the status code and body.
func (s *server) httpGet(t testing.TB, path string) (int, []byte) {
	t.Helper()
	return s.httpDo(t, http.MethodGet, path)
}

// httpDo sends a body-less request to an admin path and returns the status code and body.
func (s *server) httpDo(t testing.TB, method, path string) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.adminURL(path), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return resp.StatusCode, body
}

// logBuffer collects a server's stdout and stderr over all its runs. Safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) append(line string) {
	b.mu.Lock()
	b.buf.WriteString(line)
	b.buf.WriteByte('\n')
	b.mu.Unlock()
}

// String returns everything logged so far.
func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// contains reports whether the log has a line containing every one of parts.
func (b *logBuffer) contains(parts ...string) bool {
	for _, line := range strings.Split(b.String(), "\n") {
		all := true
		for _, p := range parts {
			if !strings.Contains(line, p) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// waitFor waits until the log has a line containing every one of parts.
func (b *logBuffer) waitFor(timeout time.Duration, parts ...string) bool {
	deadline := time.Now().Add(timeout)
	for {
		if b.contains(parts...) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lineWriter splits a process's output into lines for a logBuffer. exec.Cmd writes to it from
// one goroutine per stream; the mutex makes the shared partial line safe.
type lineWriter struct {
	mu      sync.Mutex
	buf     *logBuffer
	partial []byte
	onLine  func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(w.partial[:i])
		w.partial = w.partial[i+1:]
		w.buf.append(line)
		w.onLine(line)
	}
}

var logField = regexp.MustCompile(`(\w+)=("(?:[^"\\]|\\.)*"|\S*)`)

// logFields parses the key=value pairs of a slog text line.
func logFields(line string) map[string]string {
	out := map[string]string{}
	for _, m := range logField.FindAllStringSubmatch(line, -1) {
		out[m[1]] = strings.Trim(m[2], `"`)
	}
	return out
}

// copyTree copies the files under src into dst, creating directories and replacing files.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatalf("copying %s: %v", src, err)
	}
}

// writeFile writes a file directly (creating its directory).
func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// replaceFile writes a file as editors save one: a temporary file in the same directory renamed
// over the target.
func replaceFile(t testing.TB, path, content string) {
	t.Helper()
	tmp := path + ".tmp~"
	writeFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
