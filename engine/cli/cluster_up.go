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
	Nodes    []LocalNode `yaml:"nodes"`
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
	c := LocalCluster{NATS: "127.0.0.1:4250", DataDir: "data/cluster", LuaDir: "lua", ProtoDir: "proto"}
	raw, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
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

// clusterUp starts the nodes of a cluster file as child processes, the master first, and stops
// them all (SIGTERM, then SIGKILL after the shutdown timeout) on Ctrl-C, SIGTERM or when one exits.
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
	ctx, stopSignals := process.StopContext(context.Background())
	defer stopSignals()
	exited := make(chan string, len(c.Nodes))
	var procs []*exec.Cmd
	stopAll := func() {
		for i := len(procs) - 1; i >= 0; i-- {
			if procs[i].Process.Signal(syscall.SIGTERM) != nil { // no SIGTERM on Windows
				_ = procs[i].Process.Kill()
			}
		}
		deadline := time.After(15 * time.Second)
		for range procs {
			select {
			case <-exited:
			case <-deadline:
				for _, p := range procs {
					_ = p.Process.Kill()
				}
				return
			}
		}
	}
	keys, err := sharedKeys(c.DataDir)
	if err != nil {
		return err
	}
	url := "nats://" + c.NATS
	start := func(n LocalNode) error {
		args := []string{"node", "-role", n.Role, "-id", n.ID,
			"-data", filepath.Join(c.DataDir, n.ID), "-lua", c.LuaDir, "-proto", c.ProtoDir,
			"-tcp", orDash(n.TCP), "-ws", orDash(n.WS), "-kcp", orDash(n.KCP), "-admin", orDash(n.Admin)}
		if c.Config != "" {
			args = append(args, "-config", c.Config)
		}
		if n.Role == "master" {
			args = append(args, "-nats-listen", c.NATS)
		} else {
			args = append(args, "-nats", url)
		}
		cmd := exec.Command(self, args...)
		cmd.Env = append(os.Environ(), auth.KeyEnv+"="+keys)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("starting %s: %w", n.ID, err)
		}
		procs = append(procs, cmd)
		go func() {
			err := cmd.Wait()
			fmt.Fprintf(os.Stderr, "cluster: %s exited: %v\n", n.ID, err)
			exited <- n.ID
		}()
		return nil
	}
	ordered := append([]LocalNode{}, c.Nodes...)
	for i, n := range ordered { // the master first: it runs the bus
		if n.Role == "master" {
			ordered[0], ordered[i] = ordered[i], ordered[0]
		}
	}
	for i, n := range ordered {
		if err := start(n); err != nil {
			stopAll()
			return err
		}
		if i == 0 && !waitTCP(c.NATS, 20*time.Second) {
			stopAll()
			return errors.New("the master's NATS server did not come up at " + c.NATS)
		}
	}
	fmt.Fprintf(os.Stderr, "cluster: %d nodes started; bus %s; Ctrl-C stops them\n", len(procs), url)
	select {
	case <-ctx.Done():
		stopAll()
		return nil
	case id := <-exited:
		exited <- id // counted again by stopAll
		stopAll()
		return fmt.Errorf("node %s exited; the cluster was stopped", id)
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
