// Package cli is the moonforge command line: run, reload, version. The moonforge binary's main
// calls Main; a studio's own binary does the same with its Go extensions for Lua
// (docs/extensions.md), so that it takes the same commands and flags.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/moonforge/moonforge/engine/config"
	"github.com/moonforge/moonforge/engine/node"
	"github.com/moonforge/moonforge/engine/script"
)

// Options are what a binary adds to the commands.
type Options struct {
	Version    string            // printed by "version"; "dev" when empty
	Extensions script.Extensions // Go values the scripts reach as mf.ext.<name>
}

// Main runs the command named by args[0] with the rest of args and returns the process's exit
// code: 0, 1 for a failed command (its error printed on stderr), 2 for a usage error.
func Main(args []string, opts Options) int {
	if opts.Version == "" {
		opts.Version = "dev"
	}
	if len(args) < 1 {
		usage(os.Stderr)
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = run("run", args[1:], opts)
	case "node":
		err = run("node", args[1:], opts)
	case "cluster":
		err = clusterCmd(args[1:], opts)
	case "reload":
		err = reloadCmd(args[1:])
	case "version":
		fmt.Println("moonforge", opts.Version)
	case "help", "-h", "--help":
		usage(os.Stdout)
	default:
		fmt.Fprintf(os.Stderr, "moonforge: unknown command %q\n\n", args[0])
		usage(os.Stderr)
		return 2
	}
	var ue usageError
	if errors.As(err, &ue) {
		if errors.Is(ue.err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "moonforge:", ue.err)
		return 2
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "moonforge:", err)
		return 1
	}
	return 0
}

// usageError is a bad command line: exit code 2.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: moonforge <command> [flags]

commands:
  run       run a node with every role in one process
  node      run a cluster node of one or more roles (--role proxy,lobby -c node.yaml)
  cluster   up (start a local cluster), status, reload
  reload    reload the scripts and schema of a running node
  version   print the version

"moonforge <command> -h" lists the command's flags.
`)
}

func run(cmd string, args []string, opts Options) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	configPath := fs.String("config", "", "YAML configuration file (see moonforge.yaml)")
	fs.StringVar(configPath, "c", "", "short for -config")
	var roles, nodeID, natsURLs, natsListen string
	if cmd == "node" {
		fs.StringVar(&roles, "role", "", "comma-separated roles: master, proxy, login, lobby, game, micro or any role of lua/ (overrides cluster.roles)")
		fs.StringVar(&nodeID, "id", "", "node id (overrides cluster.node_id)")
		fs.StringVar(&natsURLs, "nats", "", "comma-separated NATS URLs of an existing bus (overrides cluster.nats.urls)")
		fs.StringVar(&natsListen, "nats-listen", "", "the embedded NATS server's client address, for a master (overrides cluster.nats.listen)")
	}
	dev := fs.Bool("dev", false, "development mode: error replies carry file:line, debug logs")
	dataDir := fs.String("data", "", "data directory (overrides data_dir)")
	luaDir := fs.String("lua", "", "Lua scripts directory (overrides lua_dir)")
	protoDir := fs.String("proto", "", "proto directory (overrides proto_dir)")
	tcp := fs.String("tcp", "", `TCP gateway address, "-" to disable (overrides gate.tcp)`)
	ws := fs.String("ws", "", `WebSocket gateway address, "-" to disable (overrides gate.ws)`)
	adminAddr := fs.String("admin", "", `admin HTTP address, "-" to disable (overrides admin.addr)`)
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}

	cfg := config.Default()
	if *configPath != "" {
		var err error
		if cfg, err = config.Load(*configPath); err != nil {
			return err
		}
	}
	for _, o := range []struct {
		flag string
		dst  *string
	}{{*dataDir, &cfg.DataDir}, {*luaDir, &cfg.LuaDir}, {*protoDir, &cfg.ProtoDir}, {*tcp, &cfg.Gate.TCP}, {*ws, &cfg.Gate.WS}, {*adminAddr, &cfg.Admin.Addr}} {
		if o.flag != "" {
			*o.dst = o.flag
		}
	}
	if cmd == "node" {
		if roles != "" {
			cfg.Cluster.Roles = strings.Split(roles, ",")
		}
		if len(cfg.Cluster.Roles) == 0 {
			return usageError{errors.New("node needs --role (or cluster.roles in the config)")}
		}
		if nodeID != "" {
			cfg.Cluster.NodeID = nodeID
		}
		if natsURLs != "" {
			cfg.Cluster.NATS.URLs = strings.Split(natsURLs, ",")
		}
		if natsListen != "" {
			cfg.Cluster.NATS.Listen = natsListen
		}
	} else {
		cfg.Cluster.Roles = nil // every role in this process
	}
	if *dev {
		cfg.Dev = true
		cfg.Log.Level = "debug"
	}
	log := newLogger(cfg.Log)
	slog.SetDefault(log)
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(cfg.GCPercent)
	}
	raiseFileLimit(log)

	n, err := node.New(cfg, log, opts.Extensions)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return n.Run(ctx)
}

// raiseFileLimit lifts the soft limit on open files to the hard limit: every client connection
// is a file.
func raiseFileLimit(log *slog.Logger) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil || l.Cur >= l.Max {
		return
	}
	l.Cur = l.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		log.Warn("could not raise the open file limit", "error", err)
	}
}

func newLogger(c config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

func reloadCmd(args []string) error {
	fs := flag.NewFlagSet("reload", flag.ExitOnError)
	addr := fs.String("admin", "127.0.0.1:7080", "admin HTTP address of the node")
	_ = fs.Parse(args)
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Post("http://"+*addr+"/reload", "application/json", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var res struct {
		Outcome  string   `json:"result"`
		Version  string   `json:"version"`
		Files    []string `json:"files"`
		Problems []struct {
			File    string `json:"file"`
			Line    int    `json:"line"`
			Message string `json:"message"`
		} `json:"problems"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	fmt.Printf("%s: version %s\n", res.Outcome, res.Version)
	for _, f := range res.Files {
		fmt.Println("  changed", f)
	}
	for _, p := range res.Problems {
		switch {
		case p.Line > 0:
			fmt.Printf("  %s:%d: %s\n", p.File, p.Line, p.Message)
		case p.File != "":
			fmt.Printf("  %s: %s\n", p.File, p.Message)
		default:
			fmt.Printf("  %s\n", p.Message)
		}
	}
	if res.Outcome == "rejected" {
		return fmt.Errorf("reload rejected; the previous version keeps running")
	}
	return nil
}
