// Package reload builds a new version of the gameplay code from lua/ and proto/ and puts it in
// force, all or nothing: any error in any file rejects the whole change and the running version
// stays. It keeps the result of the last attempt for the log and the admin API.
package reload

import (
	"crypto/sha256"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moonforge/moonforge/engine/schema"
	"github.com/moonforge/moonforge/engine/script"
	"github.com/moonforge/moonforge/engine/source"
)

// Outcomes of a reload.
const (
	Applied   = "applied"   // a new version is in force
	Unchanged = "unchanged" // the sources hash to the version in force
	Rejected  = "rejected"  // an error; the previous version stays
	Initial   = "initial"   // the version loaded at start
)

// Result describes one reload attempt.
type Result struct {
	Trigger  string           `json:"trigger"` // what asked for it: start, watch, admin
	Outcome  string           `json:"result"`
	Version  string           `json:"version"`            // in force afterwards
	Previous string           `json:"previous,omitempty"` // in force before, if it changed
	Files    []string         `json:"files,omitempty"`    // sources changed since the previous attempt
	Problems []source.Problem `json:"problems,omitempty"`
	At       time.Time        `json:"at"`
	TookMs   float64          `json:"took_ms"`
}

// Config configures a Reloader.
type Config struct {
	LuaDir   string
	ProtoDir string
	Dev      bool              // scripts see mf.dev
	Ext      script.Extensions // Go values for mf.ext, in every version
	Log      *slog.Logger
	// OnResult, if set, is called after every attempt (metrics).
	OnResult func(Result)
}

// Reloader compiles versions and puts them in force. Safe for concurrent use; attempts run one
// at a time.
type Reloader struct {
	cfg      Config
	versions *script.Versions

	mu     sync.Mutex // serialises attempts
	hashes map[string][32]byte

	lastMu sync.Mutex
	last   Result
}

// Start compiles the initial version; an error means the server must not start.
func Start(cfg Config) (*Reloader, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	r := &Reloader{cfg: cfg}
	start := time.Now()
	hashes, _ := r.fingerprint()
	b, problems := r.compile()
	if problems != nil {
		return nil, &Error{Problems: problems}
	}
	r.versions = script.NewVersions(b)
	r.hashes = hashes
	r.finish(Result{Trigger: "start", Outcome: Initial, Version: b.Version, Files: sortedKeys(hashes), At: start}, start)
	return r, nil
}

// Versions returns the holder of the version in force.
func (r *Reloader) Versions() *script.Versions { return r.versions }

// Reload compiles lua/ and proto/ and, if everything compiles and loads, puts the new version in
// force. It blocks until done and returns the result (also kept for Last).
func (r *Reloader) Reload(trigger string) Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	start := time.Now()
	current := r.versions.Load()
	hashes, _ := r.fingerprint()
	res := Result{Trigger: trigger, At: start, Version: current.Version, Files: changed(r.hashes, hashes)}
	r.hashes = hashes
	b, problems := r.compile()
	switch {
	case problems != nil:
		res.Outcome = Rejected
		res.Problems = problems
	case b.Version == current.Version:
		res.Outcome = Unchanged
	default:
		r.versions.Set(b)
		res.Outcome = Applied
		res.Previous = current.Version
		res.Version = b.Version
	}
	return r.finish(res, start)
}

// Last returns the result of the last attempt.
func (r *Reloader) Last() Result {
	r.lastMu.Lock()
	defer r.lastMu.Unlock()
	return r.last
}

func (r *Reloader) finish(res Result, start time.Time) Result {
	res.TookMs = float64(time.Since(start).Microseconds()) / 1000
	r.lastMu.Lock()
	r.last = res
	r.lastMu.Unlock()
	log := r.cfg.Log.With("trigger", res.Trigger, "version", res.Version, "took_ms", res.TookMs)
	switch res.Outcome {
	case Rejected:
		lines := make([]string, len(res.Problems))
		for i, p := range res.Problems {
			lines[i] = p.String()
		}
		log.Error("reload rejected; the previous version keeps running", "files", res.Files, "error", strings.Join(lines, "; "))
	case Applied:
		log.Info("reload applied", "previous", res.Previous, "files", res.Files)
	case Initial:
		log.Info("scripts loaded", "files", len(res.Files))
	default:
		log.Info("reload: nothing changed", "files", res.Files)
	}
	if r.cfg.OnResult != nil {
		r.cfg.OnResult(res)
	}
	return res
}

// compile loads the schema and the scripts; problems is nil on success.
func (r *Reloader) compile() (*script.Bundle, []source.Problem) {
	sch, err := schema.Load(r.cfg.ProtoDir)
	if err != nil {
		var le *schema.LoadError
		if !errors.As(err, &le) {
			return nil, []source.Problem{{File: filepath.ToSlash(r.cfg.ProtoDir), Message: err.Error()}}
		}
		out := make([]source.Problem, len(le.Problems))
		for i, p := range le.Problems {
			file := p.File
			if file != "" {
				file = filepath.ToSlash(filepath.Join(filepath.Base(r.cfg.ProtoDir), file))
			}
			p.File = file
			out[i] = p
		}
		return nil, out
	}
	b, err := script.CompileDev(r.cfg.LuaDir, sch, r.cfg.Ext, r.cfg.Dev)
	if err != nil {
		var ce *script.CompileError
		if !errors.As(err, &ce) {
			return nil, []source.Problem{{File: filepath.ToSlash(r.cfg.LuaDir), Message: err.Error()}}
		}
		for i := range ce.Problems {
			ce.Problems[i].File = filepath.ToSlash(ce.Problems[i].File)
		}
		return nil, ce.Problems
	}
	return b, nil
}

// fingerprint hashes every .lua and .proto source, keyed by its path as the log shows it.
func (r *Reloader) fingerprint() (map[string][32]byte, error) {
	out := map[string][32]byte{}
	for _, tree := range []struct{ dir, suffix string }{{r.cfg.LuaDir, ".lua"}, {r.cfg.ProtoDir, ".proto"}} {
		base := filepath.Base(filepath.Clean(tree.dir))
		fsys := os.DirFS(tree.dir)
		files, err := source.Files(fsys, tree.suffix)
		if err != nil {
			return out, err
		}
		for _, rel := range files {
			src, err := fs.ReadFile(fsys, rel)
			if err != nil {
				return out, err
			}
			out[path.Join(base, rel)] = sha256.Sum256(src)
		}
	}
	return out, nil
}

func changed(old, cur map[string][32]byte) []string {
	var out []string
	for p, h := range cur {
		if prev, ok := old[p]; !ok || prev != h {
			out = append(out, p)
		}
	}
	for p := range old {
		if _, ok := cur[p]; !ok {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

func sortedKeys(m map[string][32]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Error is a version that could not be built.
type Error struct{ Problems []source.Problem }

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}
