// Package cli is the moonforge command line:
//
//	moonforge run [flags]                  run every role in one process (embedded store, hot reload)
//	moonforge call [flags] Message [JSON]  send one message to a server and print the reply
//	moonforge reload [flags]               ask a running node to reload its scripts and schema
//	moonforge data <export|import|copy>    move all stored data between backends or to a dump file
//	moonforge version                      print the version and commit
//	moonforge help [command]               print the commands, or a command's flags
//
// The moonforge binary's main calls Main; a studio's own binary does the same with its Go
// extensions for Lua (docs/extensions.md), so that it takes the same commands and flags.
package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/moonforge/moonforge/engine/admin"
	"github.com/moonforge/moonforge/engine/config"
	"github.com/moonforge/moonforge/engine/dump"
	"github.com/moonforge/moonforge/engine/node"
	"github.com/moonforge/moonforge/engine/process"
	"github.com/moonforge/moonforge/engine/script"
)

// Options are what a binary adds to the commands.
type Options struct {
	Version    string            // printed by "version"; "dev" when empty
	Commit     string            // printed by "version"; "unknown" when empty
	Extensions script.Extensions // Go values the scripts reach as mf.ext.<name>
}

// command is one subcommand: setup defines its flags and returns the function that runs it on
// the arguments left after the flags.
type command struct {
	name, args, summary string
	setup               func(fs *flag.FlagSet) func(args []string) error
}

// commands are the subcommands of a binary with these options.
func commands(o Options) []command {
	return []command{
		{"run", "[flags]", "run a node with every role in one process", func(fs *flag.FlagSet) func([]string) error { return runFlags(fs, o.Extensions, false) }},
		{"node", "-role ROLES [flags]", "run a cluster node of one or more roles (master, proxy, login, lobby, game, micro)", func(fs *flag.FlagSet) func([]string) error { return runFlags(fs, o.Extensions, true) }},
		{"cluster", "up|status|reload|drain [flags]", "start a local cluster, list its nodes, reload or drain them", clusterFlags},
		{"call", "[flags] MessageName ['{json}']", "send one message to a server and print the reply as JSON", callFlags},
		{"reload", "[flags]", "reload the scripts and schema of a running node", reloadFlags},
		{"data", "<export|import|copy> [flags]", "export, import or copy all stored data, between backends or to a dump file", dataFlags},
		{"version", "", "print the version and commit", func(*flag.FlagSet) func([]string) error {
			return func([]string) error { return printVersion(o) }
		}},
	}
}

// Main runs the command named by args[0] with the rest of args and returns the process's exit
// code: 0, 1 for a failed command (its error printed on stderr), 2 for a usage error.
func Main(args []string, o Options) int {
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.Commit == "" {
		o.Commit = "unknown"
	}
	cmds := commands(o)
	if len(args) < 1 {
		usage(os.Stderr, cmds)
		return 2
	}
	name, args := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		return help(args, cmds)
	}
	cmd := lookup(cmds, name)
	if cmd == nil {
		fmt.Fprintf(os.Stderr, "moonforge: unknown command %q\n\n", name)
		usage(os.Stderr, cmds)
		return 2
	}
	fs := flags(cmd)
	do := cmd.setup(fs)
	_ = fs.Parse(args) // exits on an error, and with 0 on -h
	if err := do(fs.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "moonforge:", err)
		var ue usageError
		if errors.As(err, &ue) {
			fs.Usage()
			return 2
		}
		return 1
	}
	return 0
}

// usageError is a wrong use of a command's arguments: main prints the command's usage too.
type usageError string

func (e usageError) Error() string { return string(e) }

func lookup(cmds []command, name string) *command {
	for i := range cmds {
		if cmds[i].name == name {
			return &cmds[i]
		}
	}
	return nil
}

// flags returns a command's flag set, whose usage names the command and lists its flags.
func flags(cmd *command) *flag.FlagSet {
	fs := flag.NewFlagSet(cmd.name, flag.ExitOnError)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "usage: moonforge %s %s\n\n%s.\n", cmd.name, cmd.args, cmd.summary)
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintf(w, "\nflags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// help prints the commands, or with an argument one command's usage, and returns the exit code.
func help(args []string, cmds []command) int {
	if len(args) == 0 {
		usage(os.Stdout, cmds)
		return 0
	}
	cmd := lookup(cmds, args[0])
	if cmd == nil {
		fmt.Fprintf(os.Stderr, "moonforge help: unknown command %q\n\n", args[0])
		usage(os.Stderr, cmds)
		return 2
	}
	fs := flags(cmd)
	cmd.setup(fs)
	fs.SetOutput(os.Stdout)
	fs.Usage()
	return 0
}

func usage(w io.Writer, cmds []command) {
	fmt.Fprintf(w, "usage: moonforge <command> [flags]\n\ncommands:\n")
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "  %-8s %s\n", "help", "print this, or a command's flags: moonforge help run")
}

func printVersion(o Options) error {
	fmt.Printf("moonforge %s (commit %s, %s)\n", o.Version, o.Commit, runtime.Version())
	return nil
}

func runFlags(fs *flag.FlagSet, ext script.Extensions, clusterNode bool) func([]string) error {
	configPath := fs.String("config", "", "YAML configuration file (see moonforge.yaml)")
	fs.StringVar(configPath, "c", "", "short for -config")
	var roles, nodeID, natsURLs, natsListen string
	if clusterNode {
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
	kcpAddr := fs.String("kcp", "", `KCP (UDP) gateway address, "-" to disable (overrides gate.kcp.addr)`)
	adminAddr := fs.String("admin", "", `admin HTTP address, "-" to disable (overrides admin.addr)`)
	tlsTCP := fs.String("tls-tcp", "", `TCP over TLS address, "-" to disable (overrides gate.tls_tcp)`)
	tlsWS := fs.String("tls-ws", "", `WebSocket over TLS address, "-" to disable (overrides gate.tls_ws)`)
	return func(args []string) error {
		if len(args) > 0 {
			return usageError(fmt.Sprintf("%s takes no arguments, got %q", fs.Name(), args))
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
		}{{*dataDir, &cfg.DataDir}, {*luaDir, &cfg.LuaDir}, {*protoDir, &cfg.ProtoDir}, {*tcp, &cfg.Gate.TCP}, {*ws, &cfg.Gate.WS}, {*kcpAddr, &cfg.Gate.KCP.Addr}, {*adminAddr, &cfg.Admin.Addr}, {*tlsTCP, &cfg.Gate.TLSTCP}, {*tlsWS, &cfg.Gate.TLSWS}} {
			if o.flag != "" {
				*o.dst = o.flag
			}
		}
		if clusterNode {
			if roles != "" {
				cfg.Cluster.Roles = strings.Split(roles, ",")
			}
			if len(cfg.Cluster.Roles) == 0 {
				return usageError("node needs -role (or cluster.roles in the config)")
			}
			if err := checkRoles(cfg.Cluster.Roles, cfg.LuaDir); err != nil {
				return err
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
		return run(cfg, ext)
	}
}

// minFileLimit is the open file limit under which run warns at start.
const minFileLimit = 4096

func run(cfg config.Config, ext script.Extensions) error {
	log := newLogger(cfg.Log)
	slog.SetDefault(log)
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(cfg.GCPercent)
	}
	if limit := defaultMemoryLimit(cfg.MemoryLimit, hostMemory); limit > 0 {
		debug.SetMemoryLimit(limit)
		log.Debug("Go soft memory limit: three quarters of the memory there is (memory_limit: 0)", "bytes", limit)
	}
	if files, ok := process.FileLimit(); ok && files < minFileLimit {
		log.Warn("the open file limit bounds the connections; raise the hard limit (ulimit -Hn)", "limit", files)
	}

	n, err := node.New(cfg, log, ext)
	if err != nil {
		return err
	}
	ctx, stop := process.StopContext(context.Background())
	defer stop()
	return n.Run(ctx)
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

func reloadFlags(fs *flag.FlagSet) func([]string) error {
	addr := fs.String("admin", "127.0.0.1:7080", "admin address of the node: host:port, or https://host:port")
	tokenFile := fs.String("token-file", "", "file with the admin bearer token (default $"+admin.TokenEnv+")")
	caFile := fs.String("cacert", "", "PEM certificate to trust for https (default the system's)")
	return func(args []string) error {
		if len(args) > 0 {
			return usageError(fmt.Sprintf("reload takes no arguments, got %q", args))
		}
		return reload(*addr, *tokenFile, *caFile)
	}
}

func reload(addr, tokenFile, caFile string) error {
	req, err := adminRequest(addr, tokenFile)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 30 * time.Second}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return err
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s holds no PEM certificate", caFile)
		}
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}
	}
	resp, err := client.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return fmt.Errorf("no server answers at %s (is moonforge run started? -admin names another address)", addr)
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return fmt.Errorf("the admin endpoint refused the request (%s): give its token with -token-file or $%s", resp.Status, admin.TokenEnv)
	}
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

// dataFlags: `moonforge data` parses its own subcommand's flags (dump.Command).
func dataFlags(fs *flag.FlagSet) func(args []string) error {
	fs.Usage = func() { fmt.Fprint(fs.Output(), dump.Usage) }
	return func(args []string) error {
		err := dump.Command(args, os.Stdout, os.Stderr)
		if errors.Is(err, dump.ErrUsage) {
			return usageError(err.Error())
		}
		return err
	}
}

// adminRequest builds POST /reload for addr ("host:port" or a URL), with the bearer token from
// tokenFile or the environment.
func adminRequest(addr, tokenFile string) (*http.Request, error) {
	base := addr
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		base = "http://" + base
	}
	req, err := http.NewRequest(http.MethodPost, strings.TrimSuffix(base, "/")+"/reload", nil)
	if err != nil {
		return nil, err
	}
	token := os.Getenv(admin.TokenEnv)
	if tokenFile != "" {
		raw, err := os.ReadFile(tokenFile)
		if err != nil {
			return nil, err
		}
		token = strings.TrimSpace(string(raw))
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req, nil
}

// engineRoles are the roles a node may run without scripts of their own under lua/.
var engineRoles = []string{"master", "proxy", "login", "lobby", "game", "micro"}

// checkRoles refuses a role that is neither an engine role nor a directory of luaDir, so that a
// typo (-role lobyy) does not start a node that serves nothing.
func checkRoles(roles []string, luaDir string) error {
	for _, role := range roles {
		if slices.Contains(engineRoles, role) {
			continue
		}
		if st, err := os.Stat(filepath.Join(luaDir, role)); err == nil && st.IsDir() {
			continue
		}
		return fmt.Errorf("unknown role %q: not one of %s, nor a directory of lua_dir %q",
			role, strings.Join(engineRoles, ", "), filepath.ToSlash(luaDir))
	}
	return nil
}
