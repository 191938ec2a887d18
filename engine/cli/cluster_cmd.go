package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/moonforge/moonforge/engine/bus"
	"github.com/moonforge/moonforge/engine/config"
	"github.com/moonforge/moonforge/engine/registry"
)

func clusterFlags(*flag.FlagSet) func([]string) error { return clusterCmd }

func clusterCmd(args []string) error {
	if len(args) == 0 {
		return usageError("cluster needs a subcommand: up, status, reload, drain")
	}
	switch args[0] {
	case "status":
		return clusterStatus(args[1:], os.Stdout)
	case "reload":
		return clusterReload(args[1:], os.Stdout)
	case "up":
		return clusterUp(args[1:])
	case "drain":
		return clusterDrain(args[1:], os.Stdout)
	}
	return usageError(fmt.Sprintf("unknown cluster subcommand %q: up, status, reload, drain", args[0]))
}

// busFlags are the flags of the commands that talk to a running cluster's bus.
type busFlags struct{ urls, user, password *string }

func addBusFlags(fs *flag.FlagSet) busFlags {
	return busFlags{
		urls:     fs.String("nats", "nats://127.0.0.1:4250", "comma-separated NATS URLs of the cluster's bus"),
		user:     fs.String("user", "", "NATS user (or MOONFORGE_NATS_USER)"),
		password: fs.String("password", "", "NATS password (or MOONFORGE_NATS_PASSWORD)"),
	}
}

func (b busFlags) open() (*bus.Fabric, *registry.Registry, error) {
	f, err := bus.Open(bus.Options{NATS: config.NATS{URLs: strings.Split(*b.urls, ","), User: *b.user, Password: *b.password}, Name: "moonforge-cli"})
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reg, err := registry.Bind(ctx, f.JS)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, reg, nil
}

// parse parses a subcommand's flags (exiting on a bad one, with 0 on -h); no arguments may follow.
// nodes connects and lists the live nodes; the caller closes the fabric.
func (b busFlags) nodes() (*bus.Fabric, []registry.Record, error) {
	f, reg, err := b.open()
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	nodes, err := reg.Nodes(ctx)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, nodes, nil
}

func parse(fs *flag.FlagSet, args []string) error {
	_ = fs.Parse(args)
	if fs.NArg() > 0 {
		return usageError(fmt.Sprintf("%s takes no arguments, got %q", fs.Name(), fs.Args()))
	}
	return nil
}

// clusterStatus lists every live node of the registry.
func clusterStatus(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("cluster status", flag.ExitOnError)
	b := addBusFlags(fs)
	asJSON := fs.Bool("json", false, "print the records as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	f, nodes, err := b.nodes()
	if err != nil {
		return err
	}
	defer f.Close()
	if *asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(nodes)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tROLES\tSTATE\tADDRESS\tVERSION\tSESSIONS\tCONNS\tROOMS\tMAILBOX\tUP")
	for _, n := range nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", n.ID, strings.Join(n.Roles, ","), n.State, n.Address, n.Version,
			n.Load.Sessions, n.Load.Connections, n.Load.Rooms, n.Load.Mailbox, time.Since(n.Started).Round(time.Second))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(nodes) == 0 {
		return errors.New("no live node in the registry")
	}
	return nil
}

// clusterReload asks every node to reload its scripts and prints, per node, the version now
// running or the problems with file:line. It fails if any node rejected the reload or did not
// answer.
func clusterReload(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("cluster reload", flag.ExitOnError)
	b := addBusFlags(fs)
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for each node")
	if err := parse(fs, args); err != nil {
		return err
	}
	f, nodes, err := b.nodes()
	if err != nil {
		return err
	}
	defer f.Close()
	failed := 0
	for _, n := range nodes {
		e := &bus.Envelope{Kind: bus.Kind_KIND_COMMAND, Source: "moonforge-cli", Target: n.ID, Name: "reload"}
		m, err := f.Conn.Request(bus.CommandSubject(n.ID), bus.Encode(e), *timeout)
		if err != nil {
			fmt.Fprintf(w, "%s: no answer: %v\n", n.ID, err)
			failed++
			continue
		}
		ans, err := bus.Decode(m.Data)
		if err == nil && ans.Err() != nil {
			err = ans.Err()
		}
		if err != nil {
			fmt.Fprintf(w, "%s: %v\n", n.ID, err)
			failed++
			continue
		}
		var res struct {
			Outcome  string   `json:"result"`
			Version  string   `json:"version"`
			Problems []string `json:"problems"`
		}
		_ = json.Unmarshal(ans.Payload, &res)
		fmt.Fprintf(w, "%s: %s: version %s\n", n.ID, res.Outcome, res.Version)
		for _, p := range res.Problems {
			fmt.Fprintf(w, "  %s\n", p)
		}
		if res.Outcome == "rejected" {
			failed++
		}
	}
	if len(nodes) == 0 {
		return errors.New("no live node in the registry")
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d nodes did not reload", failed, len(nodes))
	}
	return nil
}

// clusterDrain tells nodes to drain: each stops taking new work, finishes what it has and exits.
func clusterDrain(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("cluster drain", flag.ExitOnError)
	b := addBusFlags(fs)
	_ = fs.Parse(args)
	if fs.NArg() == 0 {
		return usageError("cluster drain needs the ids of the nodes to drain")
	}
	f, _, err := b.open()
	if err != nil {
		return err
	}
	defer f.Close()
	failed := 0
	for _, id := range fs.Args() {
		e := &bus.Envelope{Kind: bus.Kind_KIND_COMMAND, Source: "moonforge-cli", Target: id, Name: "drain"}
		m, err := f.Conn.Request(bus.CommandSubject(id), bus.Encode(e), 10*time.Second)
		if err == nil {
			var ans *bus.Envelope
			if ans, err = bus.Decode(m.Data); err == nil && ans.Err() != nil {
				err = ans.Err()
			}
		}
		if err != nil {
			fmt.Fprintf(w, "%s: %v\n", id, err)
			failed++
			continue
		}
		fmt.Fprintf(w, "%s: draining\n", id)
	}
	if failed > 0 {
		return fmt.Errorf("%d node(s) did not take the drain", failed)
	}
	return nil
}
