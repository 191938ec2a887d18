// Command moonforge is the Moonforge game server.
//
//	moonforge run [flags]      run every role in one process (embedded store, hot reload)
//	moonforge reload [flags]   ask a running node to reload its scripts and schema
//	moonforge data <cmd> ...   export, import or copy all stored data (between backends, to a file)
//	moonforge version          print the version
package main

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
	"syscall"
	"time"

	"github.com/moonforge/moonforge/engine/config"
	"github.com/moonforge/moonforge/engine/dump"
	"github.com/moonforge/moonforge/engine/node"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if len(os.Args) < 2 {
		usage(os.Stderr)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = run(os.Args[2:])
	case "reload":
		err = reloadCmd(os.Args[2:])
	case "data":
		err = dump.Command(os.Args[2:], os.Stdout, os.Stderr)
		if errors.Is(err, dump.ErrUsage) {
			fmt.Fprintln(os.Stderr, "moonforge:", err)
			os.Exit(2)
		}
	case "version":
		fmt.Println("moonforge", version)
	case "help", "-h", "--help":
		usage(os.Stdout)
	default:
		fmt.Fprintf(os.Stderr, "moonforge: unknown command %q\n\n", os.Args[1])
		usage(os.Stderr)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "moonforge:", err)
		os.Exit(1)
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: moonforge <command> [flags]

commands:
  run       run a node with every role in one process
  reload    reload the scripts and schema of a running node
  data      export, import or copy all stored data (moonforge data, for its help)
  version   print the version

"moonforge <command> -h" lists the command's flags.
`)
}

func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	configPath := fs.String("config", "", "YAML configuration file (see moonforge.yaml)")
	dev := fs.Bool("dev", false, "development mode: error replies carry file:line, debug logs")
	dataDir := fs.String("data", "", "data directory (overrides data_dir)")
	luaDir := fs.String("lua", "", "Lua scripts directory (overrides lua_dir)")
	protoDir := fs.String("proto", "", "proto directory (overrides proto_dir)")
	tcp := fs.String("tcp", "", `TCP gateway address, "-" to disable (overrides gate.tcp)`)
	ws := fs.String("ws", "", `WebSocket gateway address, "-" to disable (overrides gate.ws)`)
	adminAddr := fs.String("admin", "", `admin HTTP address, "-" to disable (overrides admin.addr)`)
	_ = fs.Parse(args)

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

	n, err := node.New(cfg, log)
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
