//go:build linux

// Package csharp_test builds the C# SDK with mono's mcs at C# 7.2 (the language level Unity and
// Debian's compiler share) and runs its test programs under mono: codec conformance against
// tests/vectors, the client against a scripted server, and the demo scenario against a real
// `moonforge run` over TCP and WebSocket. It also compiles the Unity sample against stand-ins for
// the few UnityEngine types it uses, runs the console sample (make sdk-demo) against a server, and
// checks the Unity package layout.
package csharp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moonforge/moonforge/tools/relay"
)

// toolchain returns mcs and mono, or ends the test: a failure under CI, a skip elsewhere.
func toolchain(t *testing.T) (mcs, mono string) {
	t.Helper()
	mcs, err1 := exec.LookPath("mcs")
	mono, err2 := exec.LookPath("mono")
	if err1 != nil || err2 != nil {
		const msg = "mcs and mono are not installed: `make sdk-deps` installs them (Debian's mono-mcs, mono-runtime and libmono-system-net-http4.0-cil; make test does unless SKIP_SDK_DEPS=1)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return mcs, mono
}

// sources lists the .cs files under dir, sorted.
func sources(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".cs") {
			out = append(out, p)
		}
		return nil
	})
	if err != nil || len(out) == 0 {
		t.Fatalf("no C# sources under %s: %v", dir, err)
	}
	return out
}

// compile runs mcs at C# 7.2 with warnings as errors.
func compile(t *testing.T, mcs string, args ...string) {
	t.Helper()
	cmd := exec.Command(mcs, append([]string{"-langversion:7.2", "-warnaserror+", "-nologo"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mcs: %v\n%s", err, out)
	}
}

// build compiles the runtime as a library (so it cannot lean on the tests) and the test programs
// against it, into dir.
func build(t *testing.T, mcs, dir string) (lib, exe string) {
	t.Helper()
	lib = filepath.Join(dir, "Moonforge.Client.dll")
	exe = filepath.Join(dir, "MoonforgeTests.exe")
	// -doc makes a public member without an XML doc comment an error (CS1591), generated code included.
	compile(t, mcs, append([]string{"-target:library", "-out:" + lib, "-doc:" + filepath.Join(dir, "Moonforge.Client.xml")}, sources(t, "Runtime")...)...)
	compile(t, mcs, append([]string{"-target:exe", "-out:" + exe, "-r:" + lib}, sources(t, "Tests")...)...)
	return lib, exe
}

// runTests runs one test program of MoonforgeTests.exe and fails unless it reports no failure.
func runTests(t *testing.T, mono, exe string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, mono, append([]string{"--debug", exe}, args...)...)
	out, err := cmd.CombinedOutput()
	text := string(out)
	if err != nil || !regexp.MustCompile(`(?m)^\w+: [1-9]\d* passed, 0 failed$`).MatchString(text) {
		t.Fatalf("mono %s %s: %v\n%s", filepath.Base(exe), strings.Join(args, " "), err, text)
	}
	t.Log(strings.TrimSpace(text[strings.LastIndex(strings.TrimSpace(text), "\n")+1:]))
}

func TestSDK(t *testing.T) {
	mcs, mono := toolchain(t)
	dir := t.TempDir()
	_, exe := build(t, mcs, dir)
	t.Run("conformance", func(t *testing.T) {
		runTests(t, mono, exe, "conformance", filepath.Join("..", "..", "tests", "vectors"))
	})
	t.Run("client", func(t *testing.T) { runTests(t, mono, exe, "client") })
	t.Run("kcp", func(t *testing.T) { runTests(t, mono, exe, "kcp") })
	tcp, ws, kcp, tlsPort := startServer(t, dir)
	t.Run("e2e", func(t *testing.T) {
		runTests(t, mono, exe, "e2e", "127.0.0.1", tcp, ws)
		runTests(t, mono, exe, "tls", "127.0.0.1", tlsPort, filepath.Join(dir, "data", "dev-cert.pem"))
	})
	// The scenario over KCP, directly and through a relay that drops 5% and 20% of the datagrams
	// each way (and duplicates, reorders and delays some).
	for _, loss := range []float64{0, 0.05, 0.20} {
		t.Run(fmt.Sprintf("e2e-kcp-loss-%g%%", loss*100), func(t *testing.T) {
			port := kcp
			if loss > 0 {
				r, err := relay.ListenUDP("127.0.0.1:"+kcp, relay.Config{Loss: loss, Duplicate: 0.01, Reorder: 0.03, Delay: time.Millisecond, Seed: 15})
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				_, port, _ = strings.Cut(r.Addr(), "127.0.0.1:")
			}
			runTests(t, mono, exe, "e2e-kcp", "127.0.0.1", port)
		})
	}
}

// TestFailover runs the failover program against two real servers and a dead port: the client
// skips the dead endpoint, plays on the first server, and carries on through the second when the
// first is killed mid-session.
func TestFailover(t *testing.T) {
	mcs, mono := toolchain(t)
	dir := t.TempDir()
	_, exe := build(t, mcs, dir)
	first, _, _, _, pid := startServerProcess(t, filepath.Join(dir, "first"))
	second, _, _, _, _ := startServerProcess(t, filepath.Join(dir, "second"))
	runTests(t, mono, exe, "failover", "127.0.0.1", deadPort(t), first, second, strconv.Itoa(pid))
}

// deadPort returns a loopback TCP port that nothing listens on.
func deadPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// startServer builds moonforge and runs it on copies of lua/ and proto/ with loopback ports; it
// returns the TCP, WebSocket, KCP and TCP over TLS ports from the "moonforge is running" line.
func startServer(t *testing.T, dir string) (tcpPort, wsPort, kcpPort, tlsPort string) {
	t.Helper()
	tcpPort, wsPort, kcpPort, tlsPort, _ = startServerProcess(t, dir)
	return
}

// startServerProcess is startServer, and returns the server's process id too.
func startServerProcess(t *testing.T, dir string) (tcpPort, wsPort, kcpPort, tlsPort string, pid int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "moonforge")
	cmd := exec.Command(goBin, "build", "-o", bin, "github.com/moonforge/moonforge")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, sub := range []string{"lua", "proto"} {
		if err := os.CopyFS(filepath.Join(dir, sub), os.DirFS(filepath.Join(root, sub))); err != nil {
			t.Fatal(err)
		}
	}
	srv := exec.Command(bin, "run", "-dev", "-data", filepath.Join(dir, "data"),
		"-lua", filepath.Join(dir, "lua"), "-proto", filepath.Join(dir, "proto"),
		"-tcp", "127.0.0.1:0", "-ws", "127.0.0.1:0", "-kcp", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-tls-tcp", "127.0.0.1:0", "-tls-ws", "-")
	srv.Dir = dir
	srv.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := srv.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	running := regexp.MustCompile(`msg="moonforge is running" .*\btcp=127\.0\.0\.1:(\d+) ws=127\.0\.0\.1:(\d+) tls=127\.0\.0\.1:(\d+) .*kcp=127\.0\.0\.1:(\d+)`)
	var (
		mu  sync.Mutex
		log strings.Builder
	)
	ports := make(chan []string, 1)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			log.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if m := running.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case ports <- m:
				default:
				}
			}
		}
	}()
	serverLog := func() string {
		mu.Lock()
		defer mu.Unlock()
		return log.String()
	}
	t.Cleanup(func() {
		_ = srv.Process.Kill()
		<-exited
		_ = srv.Wait()
		if t.Failed() {
			t.Logf("server log:\n%s", serverLog())
		}
	})
	select {
	case m := <-ports:
		return m[1], m[2], m[4], m[3], srv.Process.Pid
	case <-exited:
		t.Fatalf("moonforge exited before serving:\n%s", serverLog())
	case <-time.After(30 * time.Second):
		t.Fatalf("moonforge did not report running within 30s:\n%s", serverLog())
	}
	return "", "", "", "", 0
}

// unityStubs stands in for the parts of UnityEngine the sample uses, so that the sample is
// compiled against the SDK here even though Unity is not.
const unityStubs = `
namespace UnityEngine
{
    public class Object { }
    public class Component : Object { }
    public class Behaviour : Component { public bool enabled { get; set; } }
    public class MonoBehaviour : Behaviour { }
    [System.AttributeUsage(System.AttributeTargets.Field)] public sealed class SerializeField : System.Attribute { }
    [System.AttributeUsage(System.AttributeTargets.Field)] public sealed class TooltipAttribute : System.Attribute { public TooltipAttribute(string t) { } }
    public static class Debug
    {
        public static void Log(object m) { }
        public static void LogWarning(object m) { }
        public static void LogError(object m) { }
        public static void LogException(System.Exception e) { }
    }
    public static class SystemInfo { public static string deviceUniqueIdentifier { get { return "device-0123456789abcdef"; } } }
    public static class Input { public static float GetAxisRaw(string axis) { return 0; } public static bool GetKeyDown(KeyCode k) { return false; } }
    public enum KeyCode { Return, Space }
}
`

func TestSampleCompiles(t *testing.T) {
	mcs, _ := toolchain(t)
	dir := t.TempDir()
	stubs := filepath.Join(dir, "UnityStubs.cs")
	if err := os.WriteFile(stubs, []byte(unityStubs), 0o644); err != nil {
		t.Fatal(err)
	}
	lib := filepath.Join(dir, "Moonforge.Client.dll")
	compile(t, mcs, append([]string{"-target:library", "-out:" + lib}, sources(t, "Runtime")...)...)
	engine := filepath.Join(dir, "UnityEngine.dll")
	compile(t, mcs, "-target:library", "-out:"+engine, stubs)
	compile(t, mcs, append([]string{"-target:library", "-out:" + filepath.Join(dir, "Sample.dll"), "-r:" + lib, "-r:" + engine}, sources(t, filepath.Join("Samples~", "DemoGame"))...)...)
}

// TestConsoleDemo runs `make sdk-demo`, the console sample on mono, against a real server over
// TCP, WebSocket and KCP.
func TestConsoleDemo(t *testing.T) {
	toolchain(t)
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	dir := t.TempDir()
	tcp, ws, kcp, _ := startServer(t, dir)
	for _, args := range []string{"127.0.0.1 " + tcp, "127.0.0.1 " + ws + " ws", "127.0.0.1 " + kcp + " kcp"} {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		cmd := exec.CommandContext(ctx, "make", "-s", "sdk-demo", "BIN="+filepath.Join(dir, "bin"), "ARGS="+args)
		cmd.Dir = filepath.Join("..", "..")
		out, err := cmd.CombinedOutput()
		cancel()
		text := string(out)
		if err != nil || !strings.Contains(text, "demo: ok") || !strings.Contains(text, "ArenaState") || !strings.Contains(text, "<- StatsAck") {
			t.Errorf("make sdk-demo ARGS=%q: %v\n%s", args, err, text)
		}
	}
}

// TestUnityPackage checks what Unity needs to import the package from git: package.json, the
// assembly definition, and a .meta with a unique GUID beside every file and folder it imports
// (folders whose name ends in "~" and dot files are not imported).
func TestUnityPackage(t *testing.T) {
	var pkg struct {
		Name, Version, Unity, DisplayName, License string
		Samples                                    []struct{ DisplayName, Path string }
	}
	b, err := os.ReadFile("package.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatalf("package.json: %v", err)
	}
	if pkg.Name != "com.moonforge.client" || pkg.Version == "" || pkg.Unity == "" || len(pkg.Samples) == 0 {
		t.Fatalf("package.json lacks name, version, unity or samples: %+v", pkg)
	}
	if pkg.License != "Apache-2.0" {
		t.Errorf("package.json: license %q, want Apache-2.0 (the project's LICENSE)", pkg.License)
	}
	// The git URL in the README is the repository of the Go module.
	gomod, err := os.ReadFile(filepath.Join("..", "..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	module := regexp.MustCompile(`(?m)^module (\S+)$`).FindSubmatch(gomod)
	readme, err := os.ReadFile("README.md")
	if err != nil || module == nil {
		t.Fatalf("go.mod's module or README.md: %v", err)
	}
	if url := "https://" + string(module[1]) + ".git?path=/sdk/csharp"; !strings.Contains(string(readme), url) {
		t.Errorf("README.md does not give the package's git URL %s", url)
	}
	for _, s := range pkg.Samples {
		if _, err := os.Stat(s.Path); err != nil {
			t.Errorf("sample %q: %v", s.DisplayName, err)
		}
	}
	var asm struct{ Name string }
	b, err = os.ReadFile(filepath.Join("Runtime", "Moonforge.Client.asmdef"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &asm); err != nil || asm.Name != "Moonforge.Client" {
		t.Fatalf("Runtime/Moonforge.Client.asmdef: name %q, %v", asm.Name, err)
	}
	guids := map[string]string{}
	guidLine := regexp.MustCompile(`(?m)^guid: ([0-9a-f]{32})$`)
	err = filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		name := d.Name()
		if strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(name, ".meta") {
			if _, err := os.Stat(strings.TrimSuffix(p, ".meta")); err != nil {
				t.Errorf("%s has no file or folder beside it", p)
			}
			return nil
		}
		meta, err := os.ReadFile(p + ".meta")
		if err != nil {
			t.Errorf("%s has no .meta file: Unity ignores it in a package installed from git", p)
			return nil
		}
		m := guidLine.FindSubmatch(meta)
		if m == nil {
			t.Errorf("%s.meta has no guid", p)
			return nil
		}
		if other, dup := guids[string(m[1])]; dup {
			t.Errorf("%s.meta and %s.meta share guid %s", p, other, m[1])
		}
		guids[string(m[1])] = p
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
