//go:build linux

// Package windows is the Windows smoke test of moonforge, run under Wine by `make test-windows`
// (which installs Debian's wine64 and gcc-mingw-w64-x86-64-win32 when missing). It builds
// moonforge.exe (GOOS=windows, CGO off), a ProcessPrng shim DLL with mingw-w64 (Wine 8.0 lacks
// the function Go's runtime needs at start), and a Wine prefix of its own, then runs the server
// on free loopback ports with Windows paths (Z:\...) to its own copy of lua/ and proto/ and a
// data directory, and checks what a developer on Windows relies on:
//
//   - the Go client logs in and exchanges Ping and Echo over TCP and WebSocket;
//   - hot reload follows an in-place save and an editor's rename-over-save, and a broken save is
//     rejected with lua/lobby/echo.lua:<line> (forward slashes) while the old code keeps serving,
//     and the fixed save is applied;
//   - a second server on the same data directory fails with the same "in use" message as on
//     Linux, path in forward slashes, exit status 1 and no panic; so does a missing lua/;
//   - Ctrl-C stops the server gracefully: the client gets Kick SERVER_SHUTDOWN, the exit status
//     is 0, and a restart finds the player saved.
//
// How Ctrl-C is delivered: the test sends SIGINT to the Wine process, and Wine turns it into a
// CTRL_C_EVENT for the process's console control handlers, the path a Ctrl-C typed in a Windows
// console takes; Go's runtime handles that event as os.Interrupt.
//
// Outside `make test-windows` (MOONFORGE_TEST_WINDOWS unset) the test skips. Under it, a missing
// wine64 or mingw-w64 skips the test outside CI and fails it under CI=true.
package windows

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
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
	"syscall"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/client"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/schema"
)

// Bounds of the waits. Wine starts a process in about a second on this kind of machine; the
// bounds leave room for a loaded CI machine.
const (
	startTimeout  = 60 * time.Second
	reloadTimeout = 20 * time.Second
	stopTimeout   = 30 * time.Second
	callTimeout   = 10 * time.Second
)

// wine is the toolchain the test found, and the prefix it made.
type wine struct {
	loader     string   // wine64
	wineserver string   // to stop the prefix's server at the end
	env        []string // WINEPREFIX and quiet settings
}

func TestMoonforgeUnderWine(t *testing.T) {
	if os.Getenv("MOONFORGE_TEST_WINDOWS") == "" {
		t.Skip("the Windows smoke test runs under make test-windows")
	}
	w := findWine(t)
	root := moduleRoot(t)
	dir := t.TempDir()
	exe := filepath.Join(dir, "moonforge.exe")
	run(t, root, append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0"), goBin(), "build", "-o", exe, ".")
	w.makePrefix(t, filepath.Join(dir, "prefix"), filepath.Join(dir, "bcryptprimitives.dll"))

	copyTree(t, filepath.Join(root, "lua"), filepath.Join(dir, "lua"))
	copyTree(t, filepath.Join(root, "proto"), filepath.Join(dir, "proto"))
	sch, err := schema.Load(filepath.Join(dir, "proto"))
	if err != nil {
		t.Fatal(err)
	}
	msgs := client.Messages{Schema: sch}
	args := []string{"run", "-dev",
		"-data", winPath(filepath.Join(dir, "data")),
		"-lua", winPath(filepath.Join(dir, "lua")),
		"-proto", winPath(filepath.Join(dir, "proto")),
		"-tcp", "127.0.0.1:0", "-ws", "127.0.0.1:0",
		// Go's net asks every UDP socket on Windows for SIO_UDP_CONNRESET, which Wine does not
		// implement: KCP cannot listen under Wine (it is tested on Linux).
		"-kcp", "-"}

	srv := w.start(t, exe, append(args, "-admin", "127.0.0.1:0")...)
	c := dial(t, srv.tcp, "tcp")
	if _, err := c.Ping(timeout(t)); err != nil {
		t.Fatalf("Ping before login: %v", err)
	}
	ack, err := c.Login(timeout(t), "guest", "wine-device-00000001", "", nil)
	if err != nil || ack.PlayerId == "" {
		t.Fatalf("guest login: %v %v", ack, err)
	}
	if got := echo(t, msgs, c, 41); got != 41 {
		t.Fatalf("Echo n=41 answered n=%d", got)
	}
	ws := dial(t, srv.ws, "ws")
	if _, err := ws.Ping(timeout(t)); err != nil {
		t.Fatalf("Ping over WebSocket: %v", err)
	}
	if _, err := ws.Login(timeout(t), "guest", "wine-ws-device-0001", "", nil); err != nil {
		t.Fatalf("guest login over WebSocket: %v", err)
	}
	if got := echo(t, msgs, ws, 7); got != 7 {
		t.Fatalf("Echo over WebSocket n=7 answered n=%d", got)
	}

	echoFile := filepath.Join(dir, "lua", "lobby", "echo.lua")
	writeFile(t, echoFile, echoLua(1))
	waitEcho(t, msgs, c, 1, "an in-place save")
	saveByRename(t, echoFile, echoLua(2))
	waitEcho(t, msgs, c, 2, "a rename-over-save")
	saveByRename(t, echoFile, "mf.handle(\"EchoReq\", function(ctx, req)\n  return \"EchoAck\", req\n")
	srv.waitLog(t, "reload rejected", reloadTimeout)
	if line := srv.logLine("reload rejected"); !strings.Contains(line, `lua/lobby/echo.lua:2:`) || strings.Contains(line, `\`) {
		t.Errorf("the rejection does not name lua/lobby/echo.lua:2 with forward slashes: %s", line)
	}
	if p := lastProblem(t, srv.admin); p.File != "lua/lobby/echo.lua" || p.Line != 2 {
		t.Errorf("admin /reload problem %+v, want lua/lobby/echo.lua line 2", p)
	}
	if got := echo(t, msgs, c, 10); got != 12 {
		t.Errorf("after a rejected save Echo n=10 answered n=%d, want 12 from the old code", got)
	}

	saveByRename(t, echoFile, echoLua(3))
	waitEcho(t, msgs, c, 3, "the fixed save")

	out, code := w.runOnce(t, exe, append(args, "-admin", "-")...)
	want := "store: database file is in use by another process: " + strings.ReplaceAll(winPath(filepath.Join(dir, "data", "moonforge.db")), `\`, "/") + " (gave up after 1s)"
	if code != 1 || !strings.Contains(out, want) || strings.Contains(out, `\`) || strings.Contains(out, "panic") {
		t.Errorf("a second server on the same data directory: status %d, output:\n%s\nwant status 1 and %q", code, out, want)
	}
	out, code = w.runOnce(t, exe, "run", "-data", winPath(filepath.Join(dir, "data2")), "-lua", winPath(filepath.Join(dir, "nolua")),
		"-proto", winPath(filepath.Join(dir, "proto")), "-tcp", "127.0.0.1:0", "-ws", "127.0.0.1:0", "-kcp", "-", "-admin", "-")
	if code != 1 || !strings.Contains(out, "nolua") || strings.Contains(out, `\`) || strings.Contains(out, "panic") {
		t.Errorf("a missing lua directory: status %d, output:\n%s\nwant status 1, the directory named with forward slashes", code, out)
	}

	srv.interrupt(t)
	select {
	case <-c.Done():
		if k := c.Kicked(); k == nil || protocol.Code(k.Code) != protocol.ServerShutdown {
			t.Errorf("the client ended with Kick %v, want SERVER_SHUTDOWN", k)
		}
	case <-time.After(stopTimeout):
		t.Fatal("the client was not kicked after Ctrl-C")
	}
	srv.waitExit(t, 0)
	if !strings.Contains(srv.log(), "msg=stopped") {
		t.Error("the log does not say the server stopped")
	}

	again := w.start(t, exe, append(args, "-admin", "-")...)
	c2 := dial(t, again.tcp, "tcp")
	ack2, err := c2.Login(timeout(t), "guest", "wine-device-00000001", "", nil)
	if err != nil || ack2.PlayerId != ack.PlayerId {
		t.Errorf("after a restart the device logs in as %v (%v), want player %s", ack2, err, ack.PlayerId)
	}
	again.interrupt(t)
	again.waitExit(t, 0)
}

// findWine returns the Wine loader and wineserver, and checks for mingw-w64.
func findWine(t *testing.T) *wine {
	missing := func(what string) {
		msg := what + " not found: make test-windows installs wine64 and gcc-mingw-w64-x86-64-win32 (Debian)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	w := &wine{}
	for _, name := range []string{"wine64", "/usr/lib/wine/wine64", "wine"} {
		if p, err := exec.LookPath(name); err == nil {
			w.loader = p
			break
		}
	}
	if w.loader == "" {
		missing("wine64")
	}
	for _, name := range []string{"wineserver", "/usr/lib/wine/wineserver64", "/usr/lib/wine/wineserver"} {
		if p, err := exec.LookPath(name); err == nil {
			w.wineserver = p
			break
		}
	}
	if w.wineserver == "" {
		missing("wineserver")
	}
	if _, err := exec.LookPath("x86_64-w64-mingw32-gcc"); err != nil {
		missing("x86_64-w64-mingw32-gcc")
	}
	return w
}

// makePrefix creates a Wine prefix in dir and installs the ProcessPrng shim, built into dll, in
// its system32. The prefix's wineserver is stopped when the test ends.
func (w *wine) makePrefix(t *testing.T, dir, dll string) {
	w.env = append(os.Environ(),
		"WINEPREFIX="+dir,
		"WINEDEBUG=-all",                   // no fixme noise in the server's log
		"WINEDLLOVERRIDES=mscoree,mshtml=", // no Mono or Gecko installer at wineboot
		"DISPLAY=",
	)
	t.Cleanup(func() {
		cmd := exec.Command(w.wineserver, "-k")
		cmd.Env = w.env
		_ = cmd.Run()
	})
	run(t, "testdata", nil, "x86_64-w64-mingw32-gcc", "-shared", "-O2", "-o", dll, "processprng.c", "-ladvapi32")
	run(t, "", w.env, w.loader, "wineboot", "-i")
	system32 := filepath.Join(dir, "drive_c", "windows", "system32")
	b, err := os.ReadFile(dll)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(system32, "bcryptprimitives.dll"), b, 0o644); err != nil {
		t.Fatalf("installing the shim in the prefix: %v", err)
	}
}

// server is one moonforge.exe process under Wine.
type server struct {
	cmd            *exec.Cmd
	tcp, ws, admin string
	done           chan struct{} // closed when the process has exited
	mu             sync.Mutex
	lines          []string
	waitErr        error
}

var logField = regexp.MustCompile(`(\w+)=("[^"]*"|\S*)`)

// start runs moonforge.exe with args and waits for its "moonforge is running" line. The process
// is killed when the test ends if it still runs.
func (w *wine) start(t *testing.T, exe string, args ...string) *server {
	t.Helper()
	s := &server{done: make(chan struct{})}
	s.cmd = exec.Command(w.loader, append([]string{exe}, args...)...)
	s.cmd.Env = w.env
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pipe, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdout = s.cmd.Stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting moonforge.exe under Wine: %v", err)
	}
	ready := make(chan map[string]string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.lines = append(s.lines, line)
			s.mu.Unlock()
			if strings.Contains(line, `msg="moonforge is running"`) {
				fields := map[string]string{}
				for _, m := range logField.FindAllStringSubmatch(line, -1) {
					fields[m[1]] = strings.Trim(m[2], `"`)
				}
				ready <- fields
			}
		}
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = s.cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			t.Logf("moonforge.exe %s log:\n%s", strings.Join(args, " "), s.log())
		}
	})
	select {
	case f := <-ready:
		s.tcp, s.ws, s.admin = f["tcp"], f["ws"], f["admin"]
	case <-s.done:
		t.Fatalf("moonforge.exe exited before serving: %v\n%s", s.waitErr, s.log())
	case <-time.After(startTimeout):
		t.Fatalf("moonforge.exe did not serve within %s:\n%s", startTimeout, s.log())
	}
	return s
}

func (s *server) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}

// logLine returns the last log line containing sub, or "".
func (s *server) logLine(sub string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.lines) - 1; i >= 0; i-- {
		if strings.Contains(s.lines[i], sub) {
			return s.lines[i]
		}
	}
	return ""
}

func (s *server) waitLog(t *testing.T, sub string, d time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(d); s.logLine(sub) == ""; {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log within %s", sub, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// interrupt is Ctrl-C: Wine turns SIGINT into CTRL_C_EVENT for the process's console handlers.
func (s *server) interrupt(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatalf("Ctrl-C: %v", err)
	}
}

func (s *server) waitExit(t *testing.T, want int) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		t.Fatalf("moonforge.exe did not exit within %s of Ctrl-C", stopTimeout)
	}
	if code := s.cmd.ProcessState.ExitCode(); code != want {
		t.Errorf("exit status %d, want %d", code, want)
	}
}

// runOnce runs moonforge.exe to its end and returns its output and exit status.
func (w *wine) runOnce(t *testing.T, exe string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.loader, append([]string{exe}, args...)...)
	cmd.Env = w.env
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("moonforge.exe %s did not end within %s:\n%s", strings.Join(args, " "), startTimeout, out)
	}
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

func dial(t *testing.T, addr, transport string) *client.Client {
	t.Helper()
	c, err := client.Dial(timeout(t), client.Config{Addr: addr, Transport: transport})
	if err != nil {
		t.Fatalf("dial %s %s: %v", transport, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func timeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	t.Cleanup(cancel)
	return ctx
}

// echoLua is lobby/echo.lua answering n+add.
func echoLua(add int) string {
	return fmt.Sprintf("mf.handle(\"EchoReq\", function(ctx, req)\n  return \"EchoAck\", { n = req.n + %d }\nend)\n", add)
}

func echo(t *testing.T, msgs client.Messages, c *client.Client, n int64) int64 {
	t.Helper()
	got, err := tryEcho(msgs, c, n)
	if err != nil {
		t.Fatalf("Echo: %v", err)
	}
	return got
}

func tryEcho(msgs client.Messages, c *client.Client, n int64) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	id, payload, err := msgs.Encode("EchoReq", fmt.Sprintf(`{"n": "%d"}`, n))
	if err != nil {
		return 0, err
	}
	f, err := c.Request(ctx, id, payload)
	if err != nil {
		return 0, err
	}
	m, err := msgs.Message(f.MsgID, f.Payload)
	if err != nil {
		return 0, err
	}
	return m.Get(m.Descriptor().Fields().ByName("n")).Int(), nil
}

// waitEcho waits until Echo answers n+add: the save was seen and the new code applied.
func waitEcho(t *testing.T, msgs client.Messages, c *client.Client, add int64, what string) {
	t.Helper()
	deadline := time.Now().Add(reloadTimeout)
	for {
		got, err := tryEcho(msgs, c, 100)
		if err == nil && got == 100+add {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s was not applied within %s: Echo n=100 answered %d (%v)", what, reloadTimeout, got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// saveByRename saves the way many editors do: a temporary file beside the target, renamed over it.
func saveByRename(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	writeFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

type problem struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Message string `json:"message"`
}

// lastProblem returns the first problem of the last reload, from the admin endpoint.
func lastProblem(t *testing.T, admin string) problem {
	t.Helper()
	req, err := http.NewRequestWithContext(timeout(t), http.MethodGet, "http://"+admin+"/reload", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /reload: %v", err)
	}
	defer resp.Body.Close()
	var res struct {
		Problems []problem `json:"problems"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || len(res.Problems) == 0 {
		t.Fatalf("GET /reload: %v, %d problems", err, len(res.Problems))
	}
	return res.Problems[0]
}

// winPath is the Windows name of a local path: Wine maps drive Z: to /.
func winPath(p string) string { return `Z:` + strings.ReplaceAll(p, "/", `\`) }

func run(t *testing.T, dir string, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = env // nil: this process's environment
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
}

func goBin() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(goBin(), "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		t.Fatal("not inside a Go module")
	}
	return filepath.Dir(gomod)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(filepath.Join(dst, rel))
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
}
