// Package cluster holds the process-level tests of a Moonforge cluster: TestMain builds the
// moonforge binary once; each test starts a master (with its embedded NATS server on a free port)
// and nodes of several roles as real processes, drives clients through the proxies, and kills,
// drains and restarts nodes. It is a package of its own so that its time counts apart from tests/.
package cluster

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/auth"
	"github.com/moonforge/moonforge/engine/client"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/schema"
)

var built struct {
	root, moonforge string
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "moonforge-cluster-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := 1
	os.Setenv("MOONFORGE_NATS_USER", "mf")
	os.Setenv("MOONFORGE_NATS_PASSWORD", "cluster-test-secret")
	os.Setenv(auth.KeyEnv, auth.NewKeyLine("cluster-test")) // every node signs and checks tokens alike
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err == nil {
		built.root = filepath.Dir(strings.TrimSpace(string(out)))
		cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "github.com/moonforge/moonforge")
		cmd.Dir = built.root
		if b, berr := cmd.CombinedOutput(); berr != nil {
			err = fmt.Errorf("go build: %v\n%s", berr, b)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster tests:", err)
	} else {
		built.moonforge = filepath.Join(dir, "moonforge")
		code = m.Run()
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// testConfig is every node's config: short request timeout and drain grace for the tests, and
// authentication on the bus (each single-role node connects as its role's user, kept to its
// subjects; the cluster commands run as the full user, from MOONFORGE_NATS_USER in TestMain).
const testConfig = `
gate:
  request_timeout: 3s
auth:
  guests_per_ip_minute: 0
cluster:
  heartbeat: 500ms
  node_ttl: 2s
  nats:
    user: mf
    password: cluster-test-secret
`

// env is one cluster: a directory, the bus address and its nodes.
type env struct {
	t     *testing.T
	dir   string
	url   string // the master's NATS server
	nodes map[string]*node
	msgs  client.Messages
}

// node is one process.
type node struct {
	id    string
	cmd   *exec.Cmd
	tcp   string
	done  chan struct{}
	ready chan string // the TCP address, once the node serves
	err   error
	out   output
}

func (n *node) logText() string { return n.out.String() }

// output collects a process's output. Safe for concurrent use.
type output struct {
	mu   sync.Mutex
	text strings.Builder
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.text.String()
}

// read appends every line of r to o and hands it to each (if not nil), until r ends.
func (o *output) read(r io.Reader, each func(line string)) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		o.mu.Lock()
		o.text.WriteString(sc.Text() + "\n")
		o.mu.Unlock()
		if each != nil {
			each(sc.Text())
		}
	}
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// newEnv starts a master with its NATS server.
func newEnv(t *testing.T) *env {
	e := newEnvWithout(t)
	addr := freePort(t)
	e.url = "nats://" + addr
	e.start("master-1", "master", "-nats-listen", addr)
	return e
}

// newEnvWithout prepares a cluster's directory, with no node started.
func newEnvWithout(t *testing.T) *env {
	e := &env{t: t, dir: t.TempDir(), nodes: map[string]*node{}}
	if err := os.WriteFile(filepath.Join(e.dir, "node.yaml"), []byte(testConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, from := range []string{built.root, "testdata"} {
		copyTree(t, filepath.Join(from, "lua"), filepath.Join(e.dir, "lua"))
		copyTree(t, filepath.Join(from, "proto"), filepath.Join(e.dir, "proto"))
	}
	sch, err := schema.Load(filepath.Join(e.dir, "proto"))
	if err != nil {
		t.Fatal(err)
	}
	e.msgs = client.Messages{Schema: sch}
	t.Cleanup(func() {
		for _, n := range e.nodes {
			_ = n.cmd.Process.Kill()
			<-n.done
			if t.Failed() {
				t.Logf("log of %s:\n%s", n.id, n.logText())
			}
		}
	})
	return e
}

var tcpField = regexp.MustCompile(`\btcp=(\S+)`)

// start runs a node and waits until it serves.
func (e *env) start(id, role string, extra ...string) *node {
	e.t.Helper()
	e.startAsync(id, role, extra...)
	return e.waitReady(id)
}

// startAsync runs a node (a master's config must come with -c, after the default one).
func (e *env) startAsync(id, role string, extra ...string) {
	e.t.Helper()
	args := []string{"node", "-role", role, "-id", id, "-c", filepath.Join(e.dir, "node.yaml"),
		"-data", filepath.Join(e.dir, id), "-lua", filepath.Join(e.dir, "lua"), "-proto", filepath.Join(e.dir, "proto"),
		"-tcp", "127.0.0.1:0", "-ws", "-", "-kcp", "-", "-admin", "-"}
	if role != "master" && e.url != "" {
		args = append(args, "-nats", e.url)
	}
	args = append(args, extra...)
	n := &node{id: id, done: make(chan struct{}), ready: make(chan string, 1)}
	ready := n.ready
	n.cmd = exec.Command(built.moonforge, args...)
	n.cmd.SysProcAttr = procAttr()
	pr, pw := io.Pipe()
	n.cmd.Stdout, n.cmd.Stderr = pw, pw
	go n.out.read(pr, func(line string) {
		if strings.Contains(line, `msg="moonforge is running"`) {
			tcp := ""
			if m := tcpField.FindStringSubmatch(line); m != nil {
				tcp = m[1]
			}
			select {
			case ready <- tcp:
			default:
			}
		}
	})
	if err := n.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() {
		n.err = n.cmd.Wait()
		pw.Close()
		close(n.done)
	}()
	e.nodes[id] = n
}

// waitReady waits until a started node serves.
func (e *env) waitReady(id string) *node {
	e.t.Helper()
	n := e.nodes[id]
	select {
	case n.tcp = <-n.ready:
	case <-n.done:
		e.t.Fatalf("%s exited at start: %v\n%s", id, n.err, n.logText())
	case <-time.After(30 * time.Second):
		e.t.Fatalf("%s did not start within 30s\n%s", id, n.logText())
	}
	return n
}

// kill9 kills a node at once.
func (e *env) kill9(id string) {
	n := e.nodes[id]
	_ = n.cmd.Process.Kill()
	<-n.done
}

// moonforge runs a command of the binary and returns its output.
func (e *env) moonforge(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, built.moonforge, args...).CombinedOutput()
	return string(out), err
}

// waitNodes waits until `cluster status` lists want live nodes.
func (e *env) waitNodes(want ...string) string {
	e.t.Helper()
	return e.waitNodesFor(15*time.Second, want...)
}

// waitNodesFor is waitNodes with its own bound.
func (e *env) waitNodesFor(limit time.Duration, want ...string) string {
	e.t.Helper()
	end := time.Now().Add(limit)
	for {
		out, _ := e.moonforge("cluster", "status", "-nats", e.url)
		missing := 0
		for _, id := range want {
			if !regexp.MustCompile(`(?m)^` + id + `\s+\S+\s+up\s`).MatchString(out) {
				missing++
			}
		}
		if missing == 0 {
			return out
		}
		if time.Now().After(end) {
			e.t.Fatalf("cluster status never listed %v:\n%s", want, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// connect opens a connection to a proxy, closed when the test ends.
func (e *env) connect(proxy string) *client.Client {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{Addr: e.nodes[proxy].tcp})
	if err != nil {
		e.t.Fatalf("dial %s: %v", proxy, err)
	}
	e.t.Cleanup(func() { _ = c.Close() })
	return c
}

// dial connects to a proxy and logs in as a guest of device.
func (e *env) dial(proxy, device string) (*client.Client, *protocol.LoginAck) {
	e.t.Helper()
	c := e.connect(proxy)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := c.Login(ctx, "guest", "cluster-test-device-"+device, "", nil) // device ids are 16 bytes or more
	if err != nil {
		e.t.Fatalf("login on %s: %v", proxy, err)
	}
	return c, ack
}

// echo sends EchoReq{n} and checks the EchoAck.
func (e *env) echo(c *client.Client, n int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, payload, err := e.msgs.Encode("EchoReq", fmt.Sprintf(`{"n": "%d"}`, n))
	if err != nil {
		return err
	}
	f, err := c.Request(ctx, id, payload)
	if err != nil {
		return err
	}
	name, js, err := e.msgs.Decode(f.MsgID, f.Payload)
	if err != nil {
		return err
	}
	if !strings.HasSuffix(name, "EchoAck") || !strings.Contains(js, fmt.Sprintf(`"%d"`, n)) {
		return fmt.Errorf("EchoReq %d answered %s %s", n, name, js)
	}
	return nil
}

// codeOf returns the protocol code of a request's error, 0 if none or not a code.
func codeOf(err error) protocol.Code {
	if ce, ok := err.(*protocol.CodeError); ok {
		return ce.Code
	}
	return 0
}

// copyTree copies the files under from into to.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
