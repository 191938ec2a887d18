// Command ferretdb runs FerretDB, a MongoDB-wire server on PostgreSQL, for
// the tests of Moonforge's MongoDB store (engine/store/storetest builds it
// once and caches the binary). It is a module of its own so that FerretDB's
// dependencies stay out of Moonforge's, and it embeds FerretDB as a library
// because a build of FerretDB's own command from the module cache lacks its
// version file.
//
//	ferretdb -listen 127.0.0.1:27017 -postgresql-url postgres://root@127.0.0.1:5432/test
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to listen on")
	pg := flag.String("postgresql-url", "postgres://127.0.0.1:5432/ferretdb", "PostgreSQL connection URL")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:      ferretdb.ListenerConfig{TCP: *listen},
		Logger:        log,
		Handler:       "postgresql",
		PostgreSQLURL: *pg,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := f.Run(ctx); err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		os.Exit(1)
	}
}
