// Command moonforge is the Moonforge game server.
//
//	moonforge run [flags]                  run every role in one process (embedded store, hot reload)
//	moonforge call [flags] Message [JSON]  send one message to a server and print the reply
//	moonforge reload [flags]               ask a running node to reload its scripts and schema
//	moonforge data <export|import|copy>    move all stored data between backends or to a dump file
//	moonforge version                      print the version and commit
//	moonforge help [command]               print the commands, or a command's flags
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/moonforge/moonforge/engine/config"
	"github.com/moonforge/moonforge/engine/dump"
	"github.com/moonforge/moonforge/engine/node"
	"github.com/moonforge/moonforge/engine/process"
)

// version and commit are set by the Makefile's build:
// -ldflags "-X main.version=$(git describe) -X main.commit=$(git rev-parse --short HEAD)".
var (
	version = "dev"
	commit  = "unknown"
)

// command is one subcommand: setup defines its flags and returns the function that runs it on
// the arguments left after the flags.
type command struct {
	name, args, summary string
	setup               func(fs *flag.FlagSet) func(args []string) error
}

var commands = []command{
	{"run", "[flags]", "run a node with every role in one process", runFlags},
	{"call", "[flags] MessageName ['{json}']", "send one message to a server and print the reply as JSON", callFlags},
	{"reload", "[flags]", "reload the scripts and schema of a running node", reloadFlags},
	{"data", "<export|import|copy> [flags]", "export, import or copy all stored data, between backends or to a dump file", dataFlags},
	{"version", "", "print the version and commit", func(*flag.FlagSet) func([]string) error { return printVersion }},
}

func main() {
	if len(os.Args) < 2 {
		usage(os.Stderr)
		os.Exit(2)
	}
	name, args := os.Args[1], os.Args[2:]
	switch name {
	case "help", "-h", "-help", "--help":
		os.Exit(help(args))
	}
	cmd := lookup(name)
	if cmd == nil {
		fmt.Fprintf(os.Stderr, "moonforge: unknown command %q\n\n", name)
		usage(os.Stderr)
		os.Exit(2)
	}
	fs := flags(cmd)
	do := cmd.setup(fs)
	_ = fs.Parse(args) // exits on an error, and with 0 on -h
	if err := do(fs.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "moonforge:", err)
		var ue usageError
		if errors.As(err, &ue) {
			fs.Usage()
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError is a wrong use of a command's arguments: main prints the command's usage too.
type usageError string

func (e usageError) Error() string { return string(e) }

func lookup(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
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
func help(args []string) int {
	if len(args) == 0 {
		usage(os.Stdout)
		return 0
	}
	cmd := lookup(args[0])
	if cmd == nil {
		fmt.Fprintf(os.Stderr, "moonforge help: unknown command %q\n\n", args[0])
		usage(os.Stderr)
		return 2
	}
	fs := flags(cmd)
	cmd.setup(fs)
	fs.SetOutput(os.Stdout)
	fs.Usage()
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: moonforge <command> [flags]\n\ncommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "  %-8s %s\n", "help", "print this, or a command's flags: moonforge help run")
}

func printVersion([]string) error {
	fmt.Printf("moonforge %s (commit %s, %s)\n", version, commit, runtime.Version())
	return nil
}

func runFlags(fs *flag.FlagSet) func([]string) error {
	configPath := fs.String("config", "", "YAML configuration file (see moonforge.yaml)")
	dev := fs.Bool("dev", false, "development mode: error replies carry file:line, debug logs")
	dataDir := fs.String("data", "", "data directory (overrides data_dir)")
	luaDir := fs.String("lua", "", "Lua scripts directory (overrides lua_dir)")
	protoDir := fs.String("proto", "", "proto directory (overrides proto_dir)")
	tcp := fs.String("tcp", "", `TCP gateway address, "-" to disable (overrides gate.tcp)`)
	ws := fs.String("ws", "", `WebSocket gateway address, "-" to disable (overrides gate.ws)`)
	kcpAddr := fs.String("kcp", "", `KCP (UDP) gateway address, "-" to disable (overrides gate.kcp.addr)`)
	adminAddr := fs.String("admin", "", `admin HTTP address, "-" to disable (overrides admin.addr)`)
	return func(args []string) error {
		if len(args) > 0 {
			return usageError(fmt.Sprintf("run takes no arguments, got %q", args))
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
		}{{*dataDir, &cfg.DataDir}, {*luaDir, &cfg.LuaDir}, {*protoDir, &cfg.ProtoDir}, {*tcp, &cfg.Gate.TCP}, {*ws, &cfg.Gate.WS}, {*kcpAddr, &cfg.Gate.KCP.Addr}, {*adminAddr, &cfg.Admin.Addr}} {
			if o.flag != "" {
				*o.dst = o.flag
			}
		}
		if *dev {
			cfg.Dev = true
			cfg.Log.Level = "debug"
		}
		return run(cfg)
	}
}

// minFileLimit is the open file limit under which run warns at start.
const minFileLimit = 4096

func run(cfg config.Config) error {
	log := newLogger(cfg.Log)
	slog.SetDefault(log)
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(cfg.GCPercent)
	}
	if files, ok := process.FileLimit(); ok && files < minFileLimit {
		log.Warn("the open file limit bounds the connections; raise the hard limit (ulimit -Hn)", "limit", files)
	}

	n, err := node.New(cfg, log)
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
	addr := fs.String("admin", "127.0.0.1:7080", "admin HTTP address of the node")
	return func(args []string) error {
		if len(args) > 0 {
			return usageError(fmt.Sprintf("reload takes no arguments, got %q", args))
		}
		return reload(*addr)
	}
}

func reload(addr string) error {
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Post("http://"+addr+"/reload", "application/json", nil)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return fmt.Errorf("no server answers at %s (is moonforge run started? -admin names another address)", addr)
		}
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
