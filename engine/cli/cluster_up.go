package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/moonforge/moonforge/engine/auth"
	"github.com/moonforge/moonforge/engine/process"
)

// LocalCluster is a cluster file (deploy/local/cluster.yaml): nodes to start as processes.
type LocalCluster struct {
	NATS     string      `yaml:"nats"` // the master's embedded NATS client address
	DataDir  string      `yaml:"data_dir"`
	LuaDir   string      `yaml:"lua_dir"`
	ProtoDir string      `yaml:"proto_dir"`
	Config   string      `yaml:"config"` // a node config file every node reads (optional)
	Restart  Restart     `yaml:"restart"`
	Nodes    []LocalNode `yaml:"nodes"`
}

// Restart says how `cluster up` starts again a node that exits.
type Restart struct {
	// Backoff is the delay before a node that exited is started again, doubled for each failure
	// in a row (an exit within Stable of its start), up to MaxBackoff.
	Backoff    time.Duration `yaml:"backoff"`
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// Limit is how many failures in a row give a node up: it is reported and left stopped.
	Limit int `yaml:"limit"`
	// Stable is how long a node must run for its exit not to count as a failure in a row.
	Stable time.Duration `yaml:"stable"`
}

// LocalNode is one process of a local cluster.
type LocalNode struct {
	ID    string `yaml:"id"`
	Role  string `yaml:"role"` // comma-separated roles
	TCP   string `yaml:"tcp"`
	WS    string `yaml:"ws"`
	KCP   string `yaml:"kcp"`
	Admin string `yaml:"admin"`
}

func loadLocalCluster(path string) (LocalCluster, error) {
	c := LocalCluster{NATS: "127.0.0.1:4250", DataDir: "data/cluster", LuaDir: "lua", ProtoDir: "proto",
		Restart: Restart{Backoff: time.Second, MaxBackoff: 30 * time.Second, Limit: 5, Stable: 10 * time.Second}}
	raw, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	if r := c.Restart; r.Backoff <= 0 || r.MaxBackoff < r.Backoff || r.Limit < 1 || r.Stable <= 0 {
		return c, fmt.Errorf("%s: restart needs backoff > 0, max_backoff >= backoff, limit >= 1 and stable > 0", path)
	}
	masters := 0
	seen := map[string]bool{}
	for i, n := range c.Nodes {
		switch {
		case n.ID == "" || n.Role == "":
			return c, fmt.Errorf("%s: node %d needs an id and a role", path, i+1)
		case seen[n.ID]:
			return c, fmt.Errorf("%s: node id %s appears twice", path, n.ID)
		}
		seen[n.ID] = true
		if n.Role == "master" {
			masters++
		}
	}
	if masters != 1 {
		return c, fmt.Errorf("%s: a local cluster needs exactly one node of role master (it runs the NATS server), found %d", path, masters)
	}
	return c, nil
}

// clusterUp starts the nodes of a cluster file as child processes, the master first, and keeps
// them running: a node that exits is reported with its exit status and started again after a
// backoff (doubled for each failure in a row); one that fails Restart.Limit times in a row is
// given up and reported while the others keep running. Ctrl-C or SIGTERM stops them all (SIGTERM,
// then SIGKILL after 15 s) and returns nil; when every node is given up it returns an error.
func clusterUp(args []string) error {
	fs := flag.NewFlagSet("cluster up", flag.ExitOnError)
	file := fs.String("f", "deploy/local/cluster.yaml", "cluster file")
	if err := parse(fs, args); err != nil {
		return err
	}
	c, err := loadLocalCluster(*file)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	keys, err := sharedKeys(c.DataDir)
	if err != nil {
		return err
	}
	ctx, stopSignals := process.StopContext(context.Background())
	defer stopSignals()
	s := &supervisor{c: c, self: self, keys: keys, exited: make(chan exit, len(c.Nodes)), due: make(chan LocalNode, len(c.Nodes)),
		running: map[string]*exec.Cmd{}, failures: map[string]int{}}
	ordered := append([]LocalNode{}, c.Nodes...)
	for i, n := range ordered { // the master first: it runs the bus
		if n.Role == "master" {
			ordered[0], ordered[i] = ordered[i], ordered[0]
		}
	}
	for i, n := range ordered {
		if err := s.start(n); err != nil {
			s.stopAll()
			return err
		}
		if i == 0 && !waitTCP(c.NATS, 20*time.Second) {
			s.stopAll()
			return errors.New("the master's NATS server did not come up at " + c.NATS)
		}
	}
	fmt.Fprintf(os.Stderr, "cluster: %d nodes started; bus nats://%s; Ctrl-C stops them\n", len(ordered), c.NATS)
	return s.run(ctx)
}

// supervisor runs the nodes of a local cluster. Its maps are owned by the goroutine of run (and
// of clusterUp before it).
type supervisor struct {
	c        LocalCluster
	self     string
	keys     string
	exited   chan exit
	due      chan LocalNode // nodes whose restart backoff is over
	running  map[string]*exec.Cmd
	failures map[string]int // failures in a row, per node
	waiting  int            // restarts scheduled, not yet due
	givenUp  []string
}

// exit is a node process that ended.
type exit struct {
	node LocalNode
	err  error // cmd.Wait's
	ran  time.Duration
}

// start runs n as a child process; its end is sent on s.exited.
func (s *supervisor) start(n LocalNode) error {
	c := s.c
	args := []string{"node", "-role", n.Role, "-id", n.ID,
		"-data", filepath.Join(c.DataDir, n.ID), "-lua", c.LuaDir, "-proto", c.ProtoDir,
		"-tcp", orDash(n.TCP), "-ws", orDash(n.WS), "-kcp", orDash(n.KCP), "-admin", orDash(n.Admin)}
	if c.Config != "" {
		args = append(args, "-config", c.Config)
	}
	if n.Role == "master" {
		args = append(args, "-nats-listen", c.NATS)
	} else {
		args = append(args, "-nats", "nats://"+c.NATS)
	}
	cmd := exec.Command(s.self, args...)
	cmd.Env = append(os.Environ(), auth.KeyEnv+"="+s.keys)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", n.ID, err)
	}
	s.running[n.ID] = cmd
	fmt.Fprintf(os.Stderr, "cluster: started %s (pid %d)\n", n.ID, cmd.Process.Pid)
	began := time.Now()
	go func() {
		err := cmd.Wait()
		s.exited <- exit{node: n, err: err, ran: time.Since(began)}
	}()
	return nil
}

// run restarts the nodes that exit until ctx ends (then stops them all) or every node is given up.
func (s *supervisor) run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			s.stopAll()
			return nil
		case x := <-s.exited:
			delete(s.running, x.node.ID)
			if ctx.Err() != nil { // Ctrl-C reached the node too: it stops with the others
				continue
			}
			s.exitedNode(x)
		case n := <-s.due:
			s.waiting--
			if ctx.Err() != nil {
				continue
			}
			if err := s.start(n); err != nil {
				s.exitedNode(exit{node: n, err: err})
			}
		}
		if ctx.Err() == nil && len(s.running) == 0 && s.waiting == 0 {
			return fmt.Errorf("every node was given up (%s)", strings.Join(s.givenUp, ", "))
		}
	}
}

// exitedNode reports a node's exit and schedules its restart, or gives it up.
func (s *supervisor) exitedNode(x exit) {
	r := s.c.Restart
	status := "exit status 0"
	if x.err != nil {
		status = x.err.Error()
	}
	if x.ran >= r.Stable {
		s.failures[x.node.ID] = 0
	}
	s.failures[x.node.ID]++
	n := s.failures[x.node.ID]
	if n >= r.Limit {
		s.givenUp = append(s.givenUp, x.node.ID)
		fmt.Fprintf(os.Stderr, "cluster: %s exited (%s) after %s; %d failures in a row: given up, the other nodes keep running\n",
			x.node.ID, status, x.ran.Round(time.Millisecond), n)
		return
	}
	delay := r.Backoff << (n - 1)
	if delay > r.MaxBackoff || delay <= 0 {
		delay = r.MaxBackoff
	}
	fmt.Fprintf(os.Stderr, "cluster: %s exited (%s) after %s; restarting in %s\n", x.node.ID, status, x.ran.Round(time.Millisecond), delay)
	s.waiting++
	node := x.node
	time.AfterFunc(delay, func() { s.due <- node })
}

// stopAll asks every running node to stop (SIGTERM; a kill where there is none) and waits for
// them, up to 15 s, then kills the rest.
func (s *supervisor) stopAll() {
	for _, cmd := range s.running {
		if cmd.Process.Signal(syscall.SIGTERM) != nil { // no SIGTERM on Windows
			_ = cmd.Process.Kill()
		}
	}
	deadline := time.After(15 * time.Second)
	for len(s.running) > 0 {
		select {
		case x := <-s.exited:
			delete(s.running, x.node.ID)
		case <-deadline:
			for _, cmd := range s.running {
				_ = cmd.Process.Kill()
			}
			return
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func waitTCP(addr string, d time.Duration) bool {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// sharedKeys returns the token signing keys every node of the local cluster uses, so that any
// proxy accepts any token: $MOONFORGE_TOKEN_KEYS, or dataDir/token_keys (made if missing).
func sharedKeys(dataDir string) (string, error) {
	if env := os.Getenv(auth.KeyEnv); env != "" {
		return env, nil
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", err
	}
	file := filepath.Join(dataDir, "token_keys")
	if _, _, err := auth.LoadKeys(file, true); err != nil {
		return "", err
	}
	b, err := os.ReadFile(file)
	return strings.TrimSpace(string(b)), err
}
