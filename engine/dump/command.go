package dump

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/moonforge/moonforge/engine/config"
	"github.com/moonforge/moonforge/engine/store"
)

// Usage is the help of `moonforge data`.
const Usage = `usage: moonforge data <command> [flags]

commands:
  export -from STORE -o FILE            write every key of STORE to a dump file ("-": stdout)
  import -to STORE -i FILE [-overwrite] verify a dump file, then write its keys to STORE
  copy -from STORE -to STORE [-overwrite]  stream every key from one store to another

STORE is a configuration file (.yaml/.yml: its store section and data_dir) or a data
directory (the embedded store, DIR/moonforge.db). The destination must be empty unless
-overwrite is given. Stop the nodes that use a store before copying it: a running
node holds the embedded store's lock, and writes made during a copy may be missed.
-q turns off the progress report (on stderr).
`

// ErrUsage: bad arguments; the message says which.
var ErrUsage = errors.New("usage")

// Command runs `moonforge data args...`, reporting progress to stderr and
// writing an export to stdout when -o is "-".
func Command(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: moonforge data needs a command", ErrUsage)
	}
	fs := flag.NewFlagSet("data "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "source store: a configuration file or a data directory")
	to := fs.String("to", "", "destination store: a configuration file or a data directory")
	out := fs.String("o", "", "dump file to write (export); - for stdout")
	in := fs.String("i", "", "dump file to read (import)")
	overwrite := fs.Bool("overwrite", false, "write into a store that has keys already")
	quiet := fs.Bool("q", false, "no progress report")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", ErrUsage, fs.Arg(0))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	progressTo := stderr
	if *quiet {
		progressTo = nil
	}
	need := func(name, value string) error {
		if value == "" {
			return fmt.Errorf("%w: data %s needs -%s", ErrUsage, args[0], name)
		}
		return nil
	}
	switch args[0] {
	case "export":
		if err := errors.Join(need("from", *from), need("o", *out)); err != nil {
			return err
		}
		src, err := openStore(ctx, *from, true)
		if err != nil {
			return err
		}
		defer src.Close()
		total, _, err := Count(ctx, src)
		if err != nil {
			return err
		}
		w, done, err := create(*out, stdout)
		if err != nil {
			return err
		}
		n, err := Export(ctx, src, w, NewProgress(progressTo, "export", total))
		if err = errors.Join(err, done(err == nil)); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "exported %d keys to %s\n", n, *out)
	case "import":
		if err := errors.Join(need("to", *to), need("i", *in)); err != nil {
			return err
		}
		f, err := os.Open(*in)
		if err != nil {
			return fmt.Errorf("dump file: %w", err)
		}
		defer f.Close()
		dst, err := openStore(ctx, *to, false)
		if err != nil {
			return err
		}
		defer dst.Close()
		n, err := Import(ctx, f, dst, *overwrite, NewProgress(progressTo, "import", 0))
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "imported %d keys from %s\n", n, *in)
	case "copy":
		if err := errors.Join(need("from", *from), need("to", *to)); err != nil {
			return err
		}
		src, err := openStore(ctx, *from, true)
		if err != nil {
			return err
		}
		defer src.Close()
		dst, err := openStore(ctx, *to, false)
		if err != nil {
			return err
		}
		defer dst.Close()
		n, err := Copy(ctx, src, dst, *overwrite, NewProgress(progressTo, "copy", 0))
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "copied %d keys\n", n)
	default:
		return fmt.Errorf("%w: unknown data command %q", ErrUsage, args[0])
	}
	return nil
}

// openStore opens what spec names: a configuration file's store, or the
// embedded store of a data directory. A source must exist already.
func openStore(ctx context.Context, spec string, source bool) (store.Store, error) {
	cfg := config.Default()
	if ext := filepath.Ext(spec); ext == ".yaml" || ext == ".yml" {
		var err error
		if cfg, err = config.Load(spec); err != nil {
			return nil, err
		}
	} else {
		cfg.DataDir = spec
		if source {
			if _, err := os.Stat(filepath.Join(spec, "moonforge.db")); err != nil {
				return nil, fmt.Errorf("%s is not a data directory: %w", spec, err)
			}
		}
	}
	if cfg.Store.Backend == "bolt" && source && cfg.Store.Bolt.Path != "" {
		if _, err := os.Stat(cfg.Store.Bolt.Path); err != nil {
			return nil, fmt.Errorf("store file: %w", err)
		}
	}
	s, err := store.Open(ctx, cfg.Store, cfg.DataDir)
	if errors.Is(err, store.ErrLocked) {
		return nil, fmt.Errorf("%w (is a node running on it? stop it first)", err)
	}
	return s, err
}

// create opens path for writing ("-": stdout). done closes it, and removes
// it when the export failed.
func create(path string, stdout io.Writer) (io.Writer, func(ok bool) error, error) {
	if path == "-" {
		return stdout, func(bool) error { return nil }, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("dump file: %w", err)
	}
	return f, func(ok bool) error {
		err := f.Close()
		if !ok || err != nil {
			_ = os.Remove(path)
		}
		return err
	}, nil
}
