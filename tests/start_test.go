package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// commandTimeout bounds one run of a command that is expected to end by itself.
const commandTimeout = 30 * time.Second

// result is what a finished command printed and its exit code.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// runMoonforge runs the binary with args in dir and waits for it to end (killing it after
// commandTimeout, which fails the test).
func runMoonforge(t testing.TB, dir string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, built.moonforge, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("moonforge %s did not end within %s\n%s", strings.Join(args, " "), commandTimeout, r)
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("moonforge %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// noPanic fails the test if a command's output shows a Go panic or stack trace.
func noPanic(t testing.TB, r result) {
	t.Helper()
	for _, s := range []string{"panic", "goroutine "} {
		if strings.Contains(r.stdout+r.stderr, s) {
			t.Errorf("the output contains %q:\n%s", s, r)
		}
	}
}

// demoDir returns a temporary directory with copies of the repository's lua/ and proto/.
func demoDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	copyTree(t, filepath.Join(built.root, "lua"), filepath.Join(dir, "lua"))
	copyTree(t, filepath.Join(built.root, "proto"), filepath.Join(dir, "proto"))
	return dir
}

// listening holds a loopback port open until the test ends and returns its address.
func listening(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l.Addr().String()
}

// udpBound returns the address of a UDP socket bound until the test ends.
func udpBound(t testing.TB) string {
	t.Helper()
	u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = u.Close() })
	return u.LocalAddr().String()
}

// TestFailedStart starts the binary in every way a start can fail: each prints its reason on one
// line, exits with status 1 and never panics.
func TestFailedStart(t *testing.T) {
	t.Parallel()
	running := startServer(t, options{})
	busy := listening(t)
	busyUDP := udpBound(t)
	free := []string{"-tcp", "127.0.0.1:0", "-ws", "127.0.0.1:0", "-kcp", "127.0.0.1:0", "-admin", "127.0.0.1:0"}

	type startCase struct {
		name    string
		prepare func(t *testing.T, dir string) // changes the demo copy in dir
		args    []string                       // after "run" and the free addresses
		want    []string                       // parts of the message
	}
	cases := []startCase{
		{
			name: "lua syntax error",
			prepare: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "lua/lobby/echo.lua"), "-- broken\n\nmf.handle(\"EchoReq\", function(ctx, req)\n  return \"EchoAck\" req\nend)\n")
			},
			want: []string{"lua/lobby/echo.lua:4:"},
		},
		{
			name: "proto syntax error",
			prepare: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "proto/demo/zz_bad.proto"), "syntax = \"proto3\";\npackage bad;\nmessage {\n")
			},
			want: []string{"proto/demo/zz_bad.proto:3"},
		},
		{name: "missing lua directory", args: []string{"-lua", "nolua"}, want: []string{`lua_dir "nolua" is not a directory`, "-lua"}},
		{name: "missing proto directory", args: []string{"-proto", "noproto"}, want: []string{`proto_dir "noproto" is not a directory`, "-proto"}},
		{
			name:    "outside the repository",
			prepare: func(t *testing.T, dir string) { removeAll(t, dir, "lua", "proto") },
			want:    []string{`lua_dir "lua" is not a directory`, "project directory"},
		},
		{name: "data directory in use", args: []string{"-data", running.path("data")}, want: []string{"in use by another process", running.path("data")}},
		{
			name:    "data directory under a file",
			prepare: func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "afile"), "") },
			args:    []string{"-data", "afile/data"},
			want:    []string{`data directory "afile/data"`, "not a directory"},
		},
		{name: "tcp port in use", args: []string{"-tcp", busy}, want: []string{busy, "address already in use"}},
		{name: "websocket port in use", args: []string{"-ws", busy}, want: []string{busy, "address already in use"}},
		{name: "admin port in use", args: []string{"-admin", busy}, want: []string{"admin", busy, "address already in use"}},
		{name: "kcp port in use", args: []string{"-kcp", busyUDP}, want: []string{"kcp", busyUDP, "address already in use"}},
		{
			name: "bad kcp option",
			prepare: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "c.yaml"), "gate:\n  kcp:\n    mtu: 20000\n")
			},
			args: []string{"-config", "c.yaml"},
			want: []string{"gate.kcp.mtu must be between 50 and 1472"},
		},
		{
			name:    "bad config option",
			prepare: func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "c.yaml"), "gate:\n  heartbeat: 10\n") },
			args:    []string{"-config", "c.yaml"},
			want:    []string{"c.yaml", "line 2", `gate.heartbeat: "10" is not a duration`},
		},
		{
			name:    "unknown config option",
			prepare: func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "c.yaml"), "gate:\n  hearbeat: 10s\n") },
			args:    []string{"-config", "c.yaml"},
			want:    []string{"unknown option gate.hearbeat"},
		},
		{name: "missing config file", args: []string{"-config", "nope.yaml"}, want: []string{"nope.yaml", "no such file"}},
		{name: "tls port in use", args: []string{"-dev", "-tls-tcp", busy, "-tls-ws", "127.0.0.1:0"}, want: []string{"tls", busy, "address already in use"}},
		{
			name: "missing tls certificate",
			prepare: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "c.yaml"), "tls:\n  cert_file: nope.pem\n  key_file: nope-key.pem\n")
			},
			args: []string{"-config", "c.yaml"},
			want: []string{"tls certificate", "nope.pem"},
		},
		{
			name: "bad token key file",
			prepare: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "bad.keys"), "garbage\n")
				writeFile(t, filepath.Join(dir, "c.yaml"), "auth:\n  keys_file: bad.keys\n")
			},
			args: []string{"-config", "c.yaml"},
			want: []string{"token keys", "bad.keys", "id:base64-secret"},
		},
		{name: "admin off loopback without a token", args: []string{"-admin", "0.0.0.0:0"}, want: []string{"admin", "not a loopback address", "MOONFORGE_ADMIN_TOKEN"}},
		{
			name: "short admin token",
			prepare: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "t.txt"), "short\n")
				writeFile(t, filepath.Join(dir, "c.yaml"), "admin:\n  token_file: t.txt\n")
			},
			args: []string{"-config", "c.yaml"},
			want: []string{"admin", "t.txt", "at least 16"},
		},
	}
	if os.Geteuid() != 0 { // root writes anywhere
		cases = append(cases, startCase{
			name: "unwritable data directory",
			prepare: func(t *testing.T, dir string) {
				if err := os.Mkdir(filepath.Join(dir, "ro"), 0o500); err != nil {
					t.Fatal(err)
				}
			},
			args: []string{"-data", "ro/data"},
			want: []string{`data directory "ro/data"`, "permission denied"},
		})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := demoDir(t)
			if tc.prepare != nil {
				tc.prepare(t, dir)
			}
			args := append(append([]string{"run"}, free...), tc.args...)
			r := runMoonforge(t, dir, args...)
			if r.code != 1 {
				t.Errorf("exit status %d, want 1", r.code)
			}
			last := lastLine(r.stderr)
			if !strings.HasPrefix(last, "moonforge: ") {
				t.Errorf("the last line %q does not start with \"moonforge: \"", last)
			}
			for _, w := range tc.want {
				if !strings.Contains(last, w) {
					t.Errorf("the last line %q does not mention %q", last, w)
				}
			}
			noPanic(t, r)
			if t.Failed() {
				t.Logf("%s", r)
			}
		})
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func removeAll(t testing.TB, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := os.RemoveAll(filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
}
