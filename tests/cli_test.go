package tests

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/moonforge/moonforge/engine/store"
)

// TestCall drives a server with moonforge call: replies, pushes, Error replies and every way a
// call can be wrong.
func TestCall(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{})
	dir := t.TempDir()
	call := func(args ...string) result {
		t.Helper()
		return runMoonforge(t, dir, append([]string{"call", "-proto", s.path("proto")}, args...)...)
	}

	for _, transport := range []string{"tcp", "ws", "kcp"} {
		args := []string{"-addr", s.addr(transport)}
		if transport != "tcp" {
			args = append(args, "-"+transport)
		}
		r := call(append(args, "EchoReq", `{"n": 41}`)...)
		if r.code != 0 || r.stdout != "EchoAck {\"n\":\"41\"}\n" {
			t.Errorf("%s echo:\n%s", transport, r)
		}
	}

	// A chat message comes back as a push to its sender too.
	r := call("-addr", s.tcp, "-login", "guest:call-test-watcher-1", "-watch", "2s", "ChatSendReq", `{"text": "hello from call"}`)
	if r.code != 0 || !regexp.MustCompile(`(?m)^ChatSendAck \{.*\}$`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^push \d+ ChatMessage \{.*"text":"hello from call".*\}$`).MatchString(r.stdout) {
		t.Errorf("chat with -watch: want the ChatSendAck and the ChatMessage push\n%s", r)
	}
	// Without -watch the pushes are not printed.
	r = call("-addr", s.tcp, "ChatSendReq", `{"text": "quiet"}`)
	if r.code != 0 || strings.Contains(r.stdout, "push") {
		t.Errorf("chat without -watch:\n%s", r)
	}

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string // in stderr
	}{
		{"error reply", []string{"-addr", s.tcp, "ArenaMoveReq", `{}`}, 1, "ArenaMoveReq: BAD_REQUEST"},
		{"no login", []string{"-addr", s.tcp, "-login", "none", "EchoReq"}, 1, "UNAUTHENTICATED"},
		{"failed login", []string{"-addr", s.tcp, "-login", "password:nobody-here:wrong-password", "EchoReq"}, 1, "login password: UNAUTHENTICATED"},
		{"unknown message", []string{"-addr", s.tcp, "EchoRq"}, 1, "EchoRq is not a message with a msg_id"},
		{"unknown field", []string{"-addr", s.tcp, "EchoReq", `{"m": 1}`}, 1, `unknown field "m"`},
		{"bad json", []string{"-addr", s.tcp, "EchoReq", `{"n": `}, 1, "EchoReq"},
		{"no server", []string{"-addr", listeningClosed(t), "EchoReq"}, 1, "no server answers at"},
		{"no message", []string{"-addr", s.tcp}, 2, "call needs a message name"},
		{"bad login flag", []string{"-addr", s.tcp, "-login", ":x", "EchoReq"}, 2, "-login"},
		{"bad flag", []string{"-bogus"}, 2, "usage: moonforge call"},
		{"two transports", []string{"-ws", "-kcp", "EchoReq"}, 2, "-ws and -kcp exclude each other"},
		{"no kcp server", []string{"-kcp", "-addr", udpBound(t), "-timeout", "1s", "EchoReq"}, 1, "no server answers at"},
	} {
		r := call(tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: want exit %d and %q in stderr\n%s", tc.name, tc.code, tc.want, r)
		}
		noPanic(t, r)
	}
	r = runMoonforge(t, dir, "call", "-addr", s.tcp, "EchoReq")
	if r.code != 1 || !strings.Contains(r.stderr, `proto directory "proto" not found`) {
		t.Errorf("call outside the project directory:\n%s", r)
	}
}

// listeningClosed returns a loopback address where nothing listens any more.
func listeningClosed(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// TestBadFlags: an unknown flag, command or argument prints the usage and exits with status 2.
func TestBadFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, args := range [][]string{{"run", "-bogus"}, {"run", "extra"}, {"reload", "-bogus"}, {"frobnicate"}, {}, {"help", "frobnicate"}} {
		r := runMoonforge(t, dir, args...)
		if r.code != 2 || !strings.Contains(r.stderr, "usage: moonforge") {
			t.Errorf("moonforge %s: want exit 2 and a usage\n%s", strings.Join(args, " "), r)
		}
		noPanic(t, r)
	}
}

// TestHelp: moonforge help lists the commands; help run and run -h print the run flags.
func TestHelp(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := runMoonforge(t, dir, "help")
	for _, c := range []string{"run", "call", "reload", "data", "version", "help"} {
		if r.code != 0 || !regexp.MustCompile(`(?m)^  `+c+` `).MatchString(r.stdout) {
			t.Errorf("moonforge help does not list %s:\n%s", c, r)
		}
	}
	runFlags := []string{"-config", "-dev", "-data", "-lua", "-proto", "-tcp", "-ws", "-kcp", "-admin"}
	for _, args := range [][]string{{"help", "run"}, {"run", "-h"}} {
		r := runMoonforge(t, dir, args...)
		out := r.stdout + r.stderr
		if r.code != 0 || !strings.Contains(out, "usage: moonforge run") {
			t.Errorf("moonforge %s:\n%s", strings.Join(args, " "), r)
		}
		for _, f := range runFlags {
			if !strings.Contains(out, "  "+f+" ") && !strings.Contains(out, "  "+f+"\n") {
				t.Errorf("moonforge %s does not list %s:\n%s", strings.Join(args, " "), f, r)
			}
		}
	}
	r = runMoonforge(t, dir, "help", "call")
	for _, f := range []string{"-addr", "-ws", "-kcp", "-login", "-watch", "-proto"} {
		if r.code != 0 || !strings.Contains(r.stdout, "  "+f) {
			t.Errorf("moonforge help call does not list %s:\n%s", f, r)
		}
	}
}

// TestReloadWithoutServer: moonforge reload says that nothing answers at the address.
func TestReloadWithoutServer(t *testing.T) {
	t.Parallel()
	addr := listeningClosed(t)
	r := runMoonforge(t, t.TempDir(), "reload", "-admin", addr)
	if r.code != 1 || !strings.Contains(r.stderr, "no server answers at "+addr) {
		t.Errorf("reload without a server:\n%s", r)
	}
	noPanic(t, r)
}

// TestVersion builds with the Makefile and checks that moonforge version prints what Git says
// of the checkout: git describe and the short commit.
func TestVersion(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"make", "git"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, tool+" is not installed")
		}
	}
	if _, err := os.Stat(filepath.Join(built.root, ".git")); err != nil {
		t.Skip("not a Git checkout: the version is dev")
	}
	git := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = built.root
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("git %v: %v", args, err)
		}
		return strings.TrimSpace(string(out))
	}
	bin := t.TempDir()
	cmd := exec.Command("make", "-s", "build", "BIN="+bin)
	cmd.Dir = built.root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	describe, commit := git("describe", "--tags", "--always", "--dirty"), git("rev-parse", "--short", "HEAD")
	out, err := exec.Command(filepath.Join(bin, "moonforge"), "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := "moonforge " + describe + " (commit " + commit + ", go"
	if !strings.HasPrefix(string(out), want) {
		t.Errorf("moonforge version printed %q, want it to start with %q", out, want)
	}
}

// skipOrFail skips a test that lacks a tool, or fails it under CI=true, where every tool must be
// there.
func skipOrFail(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why + " (CI=true: required)")
	}
	t.Skip(why)
}

// TestDataCommand: moonforge data export, import and copy between data directories through the
// binary, and its failures: usage errors exit 2, others 1, with a message and no panic.
func TestDataCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	s, err := store.OpenBolt(store.BoltConfig{Path: filepath.Join(src, "moonforge.db")})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if err := s.Put(t.Context(), fmt.Sprintf("lua/k%03d", i), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"data"}, {"data", "frob"}, {"data", "export", "-bogus"}, {"data", "export", "-from", src}} {
		r := runMoonforge(t, dir, args...)
		if r.code != 2 || !strings.Contains(r.stderr, "usage: moonforge data") {
			t.Errorf("moonforge %s: want exit 2 and the usage\n%s", strings.Join(args, " "), r)
		}
		noPanic(t, r)
	}
	file := filepath.Join(dir, "backup.mfdump")
	steps := [][]string{
		{"data", "export", "-from", src, "-o", file},
		{"data", "import", "-to", filepath.Join(dir, "a"), "-i", file},
		{"data", "copy", "-from", filepath.Join(dir, "a"), "-to", filepath.Join(dir, "b")},
	}
	for _, args := range steps {
		r := runMoonforge(t, dir, args...)
		if r.code != 0 || !strings.Contains(r.stderr, "100 keys") {
			t.Fatalf("moonforge %s:\n%s", strings.Join(args, " "), r)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"data", "export", "-from", filepath.Join(dir, "none"), "-o", filepath.Join(dir, "x")}, "is not a data directory"},
		{[]string{"data", "import", "-to", filepath.Join(dir, "b"), "-i", file}, "not empty"},
		{[]string{"data", "import", "-to", filepath.Join(dir, "c"), "-i", filepath.Join(dir, "none")}, "no such file"},
	} {
		r := runMoonforge(t, dir, c.args...)
		if r.code != 1 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("moonforge %s: want exit 1 and %q\n%s", strings.Join(c.args, " "), c.want, r)
		}
		noPanic(t, r)
	}
	b, err := store.OpenBolt(store.BoltConfig{Path: filepath.Join(dir, "b", "moonforge.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if v, err := b.Get(t.Context(), "lua/k099"); err != nil || string(v) != "99" {
		t.Fatalf("after export, import and copy: %q, %v", v, err)
	}
}
