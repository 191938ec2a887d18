// Package lua_test runs the Lua SDK's tests on real Lua interpreters (Debian's lua5.4 and lua5.1
// with LuaSocket): the codec against the conformance vectors of tests/vectors, a differential
// test against protobuf-go on random mutations of them, the client against a scripted server, and
// the demo scenario end to end against a real `moonforge run`.
package lua_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/moonforge/moonforge/engine/schema"
	"github.com/moonforge/moonforge/tools/relay"
)

// interpreters are the Lua versions every test runs on: the oldest and the newest.
var interpreters = []string{"lua5.4", "lua5.1"}

// scriptTimeout bounds one Lua test script.
const scriptTimeout = 60 * time.Second

// lua returns the interpreters' paths. When one is missing, or lacks LuaSocket, the test fails
// under CI=true and is skipped otherwise.
func lua(t *testing.T) []string {
	t.Helper()
	var paths, missing []string
	for _, name := range interpreters {
		path, err := exec.LookPath(name)
		if err != nil {
			missing = append(missing, name)
			continue
		}
		if err := exec.Command(path, "-e", `require("socket")`).Run(); err != nil {
			missing = append(missing, "LuaSocket for "+name)
			continue
		}
		if err := exec.Command(path, "-e", `require("ssl")`).Run(); err != nil {
			missing = append(missing, "LuaSec for "+name)
			continue
		}
		paths = append(paths, path)
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("%s missing: `make sdk-deps` installs them (Debian packages lua5.1 lua5.4 lua-socket lua-sec)", strings.Join(missing, ", "))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return paths
}

var summary = regexp.MustCompile(`(?m)^\w+: (\d+) passed, (\d+) failed$`)

// runScript runs a Lua test script from sdk/lua and fails t unless it passes.
func runScript(t *testing.T, interp, script string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, interp, append([]string{script}, args...)...)
	out, err := cmd.CombinedOutput()
	m := summary.FindSubmatch(out)
	if err != nil || m == nil || string(m[2]) != "0" || string(m[1]) == "0" {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(interp), script, err, out)
	}
	t.Logf("%s %s: %s", filepath.Base(interp), script, m[0])
}

func TestCodecConformance(t *testing.T) {
	for _, interp := range lua(t) {
		runScript(t, interp, "test/codec_test.lua", "../../tests/vectors")
	}
}

func TestClientAgainstScriptedServer(t *testing.T) {
	for _, interp := range lua(t) {
		runScript(t, interp, "test/client_test.lua")
	}
}

// TestKCP runs the pure-Lua KCP without sockets: streams over a simulated lossy link, junk
// datagrams, the segment layout.
func TestKCP(t *testing.T) {
	for _, interp := range lua(t) {
		runScript(t, interp, "test/kcp_test.lua")
	}
}

// diffCase is one input of test/differential_test.lua with protobuf-go's verdict.
type diffCase struct {
	Type  string `json:"type"`
	Hex   string `json:"hex"`
	Valid bool   `json:"valid"`
	Want  string `json:"want"` // protobuf-go's deterministic re-encoding
}

// TestCodecAgreesWithProtobufGo feeds the Lua codec random mutations of the valid vectors
// (flipped, inserted and deleted bytes, truncations, and two encodings of one type back to back,
// which merge) and checks that it accepts and re-encodes exactly what protobuf-go does, except
// that it writes every NaN as the canonical quiet NaN where protobuf-go keeps the NaN's bits.
func TestCodecAgreesWithProtobufGo(t *testing.T) {
	interps := lua(t)
	sch, err := schema.Load("../../tests/vectors")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../../tests/vectors/messages.json")
	if err != nil {
		t.Fatal(err)
	}
	var vectors []struct {
		Type  string `json:"type"`
		Hex   string `json:"hex"`
		Valid bool   `json:"valid"`
	}
	if err := json.Unmarshal(raw, &vectors); err != nil {
		t.Fatal(err)
	}
	byType := map[string][][]byte{}
	var types []string
	for _, v := range vectors {
		if v.Valid {
			b, _ := hex.DecodeString(v.Hex)
			if byType[v.Type] == nil {
				types = append(types, v.Type)
			}
			byType[v.Type] = append(byType[v.Type], b)
		}
	}
	rng := rand.New(rand.NewSource(1))
	var cases []diffCase
	for len(cases) < 5000 {
		typ := types[rng.Intn(len(types))]
		pool := byType[typ]
		b := append([]byte(nil), pool[rng.Intn(len(pool))]...)
		switch op := rng.Intn(5); {
		case op == 0 || len(b) == 0:
			b = append(b, pool[rng.Intn(len(pool))]...)
		case op == 1:
			b[rng.Intn(len(b))] ^= byte(1 << rng.Intn(8))
		case op == 2:
			i := rng.Intn(len(b) + 1)
			b = append(b[:i], append([]byte{byte(rng.Intn(256))}, b[i:]...)...)
		case op == 3:
			i := rng.Intn(len(b))
			b = append(b[:i], b[i+1:]...)
		default:
			b = b[:rng.Intn(len(b))]
		}
		m := dynamicpb.NewMessage(sch.Describe(typ))
		c := diffCase{Type: typ, Hex: hex.EncodeToString(b)}
		accepted, panicked := unmarshal(b, m)
		if panicked {
			continue // protobuf-go's own bug, see unmarshal
		}
		if accepted {
			canonicalNaN(m)
			want, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			c.Valid, c.Want = true, hex.EncodeToString(want)
		}
		cases = append(cases, c)
	}
	path := filepath.Join(t.TempDir(), "cases.json")
	b, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, interp := range interps {
		runScript(t, interp, "test/differential_test.lua", path)
	}
}

// unmarshal reports whether protobuf-go decodes b into m, and whether it panicked instead:
// dynamicpb (v1.36.12) panics on a map entry whose key field appears first with its own wire
// type and then with another one.
func unmarshal(b []byte, m *dynamicpb.Message) (ok, panicked bool) {
	defer func() {
		if recover() != nil {
			ok, panicked = false, true
		}
	}()
	return proto.Unmarshal(b, m) == nil, false
}

// canonicalNaN replaces every NaN in m, nested messages included, by the canonical quiet NaN.
func canonicalNaN(m protoreflect.Message) {
	fix := func(fd protoreflect.FieldDescriptor, v protoreflect.Value) (protoreflect.Value, bool) {
		switch fd.Kind() {
		case protoreflect.DoubleKind:
			if f := v.Float(); f != f {
				return protoreflect.ValueOfFloat64(math.Float64frombits(0x7ff8000000000000)), true
			}
		case protoreflect.FloatKind:
			if f := v.Float(); f != f {
				return protoreflect.ValueOfFloat32(math.Float32frombits(0x7fc00000)), true
			}
		case protoreflect.MessageKind:
			canonicalNaN(v.Message())
		}
		return v, false
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList():
			list := v.List()
			for i := 0; i < list.Len(); i++ {
				if nv, ok := fix(fd, list.Get(i)); ok {
					list.Set(i, nv)
				}
			}
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				if nv, ok := fix(fd.MapValue(), mv); ok {
					v.Map().Set(k, nv)
				}
				return true
			})
		default:
			if nv, ok := fix(fd, v); ok {
				m.Set(fd, nv)
			}
		}
		return true
	})
}

// TestEndToEnd plays the demo scenario of test/e2e_test.lua against a real `moonforge run`,
// then the README's examples: examples/demo.lua and the UnLua actor of examples/unlua.
func TestEndToEnd(t *testing.T) {
	interps := lua(t)
	port, _, tlsPort, cafile := startServer(t)
	for _, interp := range interps {
		runScript(t, interp, "test/e2e_test.lua", port)
		runScript(t, interp, "test/tls_e2e_test.lua", tlsPort, cafile)
		runScript(t, interp, "test/unlua_example_test.lua", port)
		ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
		out, err := exec.CommandContext(ctx, interp, "examples/demo.lua", "127.0.0.1", port).CombinedOutput()
		cancel()
		if err != nil || !strings.Contains(string(out), "stats: chats") {
			t.Fatalf("%s examples/demo.lua: %v\n%s", filepath.Base(interp), err, out)
		}
	}
}

// TestEndToEndKCP plays the demo scenario over KCP against a real `moonforge run`: directly, and
// through a relay that drops 5% and 20% of the datagrams each way (and duplicates, reorders and
// delays some).
func TestEndToEndKCP(t *testing.T) {
	interps := lua(t)
	_, kcpPort, _, _ := startServer(t)
	server := "127.0.0.1:" + kcpPort
	for _, loss := range []float64{0, 0.05, 0.20} {
		addr := server
		if loss > 0 {
			r, err := relay.ListenUDP(server, relay.Config{Loss: loss, Duplicate: 0.01, Reorder: 0.03, Delay: time.Millisecond, Seed: 15})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			addr = r.Addr()
		}
		_, port, _ := strings.Cut(addr, "127.0.0.1:")
		for _, interp := range interps {
			t.Logf("loss %g%%:", loss*100)
			runScript(t, interp, "test/e2e_test.lua", port, "127.0.0.1", "kcp")
		}
	}
}

// TestFailover runs test/failover_test.lua against two real servers and a dead port, on each
// interpreter: the client skips the dead address, plays on the first server, and carries on
// through the second when the first is killed mid-session.
func TestFailover(t *testing.T) {
	interps := lua(t)
	for _, interp := range interps {
		first, pid := startServerProcess(t)
		second, _ := startServerProcess(t)
		runScript(t, interp, "test/failover_test.lua", freePort(t), first, second, strconv.Itoa(pid))
	}
}

// startServer builds moonforge, runs it on free loopback ports with a copy of the demo game, and
// returns its TCP, KCP and TCP over TLS ports and the certificate to trust. The server is stopped
// when the test ends.
func startServer(t *testing.T) (tcpPort, kcpPort, tlsPort, cafile string) {
	t.Helper()
	tcpPort, kcpPort, tlsPort, cafile, _ = startServerWithPid(t)
	return
}

// startServerProcess starts a server as startServer does and returns its TCP port and process id.
func startServerProcess(t *testing.T) (tcpPort string, pid int) {
	t.Helper()
	tcpPort, _, _, _, pid = startServerWithPid(t)
	return
}

func startServerWithPid(t *testing.T) (tcpPort, kcpPort, tlsPort, cafile string, pid int) {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "moonforge")
	build := exec.Command(goBin, "build", "-o", bin, "github.com/moonforge/moonforge")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, d := range []string{"lua", "proto"} {
		if err := os.CopyFS(filepath.Join(dir, d), os.DirFS(filepath.Join("..", "..", d))); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "run", "-dev", "-data", filepath.Join(dir, "data"),
		"-lua", filepath.Join(dir, "lua"), "-proto", filepath.Join(dir, "proto"),
		"-tcp", "127.0.0.1:0", "-ws", "127.0.0.1:0", "-kcp", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-tls-tcp", "127.0.0.1:0", "-tls-ws", "-")
	cmd.Dir = dir
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	log := &lockedLog{}
	ports := make(chan [3]string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		running := regexp.MustCompile(`msg="moonforge is running".* tcp=127\.0\.0\.1:(\d+) .*tls=127\.0\.0\.1:(\d+) .*kcp=127\.0\.0\.1:(\d+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			log.add(line)
			if m := running.FindStringSubmatch(line); m != nil {
				ports <- [3]string{m[1], m[3], m[2]}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		stopped := make(chan error, 1)
		go func() { <-done; stopped <- cmd.Wait() }()
		select {
		case <-stopped:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-stopped
		}
		if t.Failed() {
			t.Logf("server log:\n%s", log.text())
		}
	})
	select {
	case p := <-ports:
		return p[0], p[1], p[2], filepath.Join(dir, "data", "dev-cert.pem"), cmd.Process.Pid
	case <-done:
		t.Fatalf("moonforge exited before it was running:\n%s", log.text())
	case <-time.After(30 * time.Second):
		t.Fatalf("moonforge did not start within 30s:\n%s", log.text())
	}
	return "", "", "", "", 0
}

// lockedLog keeps the server's log lines for failure messages; safe for concurrent use.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() < 1<<20 {
		l.b.WriteString(line + "\n")
	}
}

func (l *lockedLog) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
