// Package script is Moonforge's Lua model: it compiles the gameplay scripts under lua/ into a
// Bundle (one version of all code and schema, identified by a content hash), and runs them in VMs
// that each own one gopher-lua state and expose the `mf` API (docs/lua-api.md).
//
// Layout of lua/: every top-level directory except shared/ is a role (login, lobby, game...). The
// .lua files directly inside a role directory run, in name order, in every VM of that role. Any
// .lua file can be loaded with require by its dotted path ("shared.util" is lua/shared/util.lua).
//
// A VM is owned by one goroutine (an actor); nothing in this package starts goroutines.
package script

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"

	"github.com/moonforge/moonforge/engine/luapb"
	"github.com/moonforge/moonforge/engine/route"
	"github.com/moonforge/moonforge/engine/schema"
	"github.com/moonforge/moonforge/engine/source"
)

// sharedDir holds modules that no role runs by itself.
const sharedDir = "shared"

// Chunk is one compiled Lua file, shared read-only by every VM.
type Chunk struct {
	Path   string // as shown in error messages, e.g. "lua/lobby/chat.lua"
	Module string // require name, e.g. "lobby.chat"
	proto  *lua.FunctionProto
}

// RoomType is what a script declared with mf.room_type.
type RoomType struct {
	Name       string
	Role       string
	TickHz     float64
	MaxPlayers int
	Messages   []string // short or full message names routed to the room
	KeepEmpty  bool     // stays open when its last player leaves
}

// Bundle is one version of the gameplay code: compiled chunks, the schema, and what the scripts
// declared (handlers, login methods, room types). Immutable once built.
type Bundle struct {
	Version    string // content hash of every Lua source and the schema
	Schema     *schema.Schema
	Codecs     *luapb.Codecs // the schema's Lua codecs
	Files      []string      // Lua sources, relative to the Lua directory
	Routes     *route.Table  // where each message and login method goes; its Version is set last
	Ext        Extensions    // the Go values scripts reach as mf.ext.<name>
	RoomTypes  map[string]RoomType
	Roles      []string // roles that have scripts, sorted
	CompiledAt time.Time
	dev        bool // the mode the probe ran in

	roles   map[string][]*Chunk
	modules map[string]*Chunk
}

// Chunks returns the chunks a role runs, in order.
func (b *Bundle) Chunks(role string) []*Chunk { return b.roles[role] }

// CompileError lists every problem that rejected a bundle.
type CompileError struct{ Problems []source.Problem }

func (e *CompileError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Compile reads every .lua file under luaDir, compiles it, runs each role's scripts once in a
// probe VM to collect what they declare, and checks the declarations against sch. ext are the Go
// values the scripts reach as mf.ext (nil for none). Any problem rejects the whole bundle with a
// *CompileError. The probe sees mf.dev false.
func Compile(luaDir string, sch *schema.Schema, ext Extensions) (*Bundle, error) {
	return CompileDev(luaDir, sch, ext, false)
}

// CompileDev is Compile for a node whose mode is dev: the probe sees mf.dev as the VMs will.
func CompileDev(luaDir string, sch *schema.Schema, ext Extensions, dev bool) (*Bundle, error) {
	b := &Bundle{
		dev:        dev,
		Schema:     sch,
		Codecs:     luapb.New(sch),
		Ext:        ext,
		Routes:     route.New(""),
		RoomTypes:  map[string]RoomType{},
		CompiledAt: time.Now(),
		roles:      map[string][]*Chunk{},
		modules:    map[string]*Chunk{},
	}
	h := sha256.New()
	display := filepath.Base(filepath.Clean(luaDir))
	fsys := os.DirFS(luaDir)
	files, err := source.Files(fsys, ".lua")
	if err != nil {
		return nil, &CompileError{Problems: []source.Problem{{File: display, Message: err.Error()}}}
	}
	var problems []source.Problem
	for _, rel := range files {
		src, err := fs.ReadFile(fsys, rel)
		if err != nil {
			problems = append(problems, source.Problem{File: path.Join(display, rel), Message: err.Error()})
			continue
		}
		b.Files = append(b.Files, rel)
		fmt.Fprintf(h, "%s\x00%d\x00", rel, len(src))
		h.Write(src)
		chunk := &Chunk{Path: path.Join(display, rel), Module: strings.ReplaceAll(strings.TrimSuffix(rel, ".lua"), "/", ".")}
		chunk.proto, err = compileChunk(src, chunk.Path)
		if err != nil {
			p := asProblem(chunk.Path, err)
			if p.Line <= 0 { // the parser reports "at EOF" without a line
				p.Line = bytes.Count(bytes.TrimSuffix(src, []byte("\n")), []byte("\n")) + 1
				p.Message += " at the end of the file"
			}
			problems = append(problems, p)
			continue
		}
		b.modules[chunk.Module] = chunk
		if dir, _ := path.Split(rel); dir != "" && strings.Count(dir, "/") == 1 && dir != sharedDir+"/" {
			role := strings.TrimSuffix(dir, "/")
			b.roles[role] = append(b.roles[role], chunk)
		}
	}
	if len(problems) > 0 {
		return nil, &CompileError{Problems: problems}
	}
	for role := range b.roles {
		b.Roles = append(b.Roles, role)
	}
	sort.Strings(b.Roles)
	for _, role := range b.Roles {
		problems = append(problems, b.probe(role)...)
	}
	if len(problems) > 0 {
		return nil, &CompileError{Problems: problems}
	}
	if sch != nil {
		h.Write([]byte(sch.Hash()))
	}
	b.Version = hex.EncodeToString(h.Sum(nil))[:12]
	b.Routes.Version = b.Version
	return b, nil
}

// probe runs a role's chunks in a fresh VM that has no side effects and records the declarations.
func (b *Bundle) probe(role string) []source.Problem {
	vm := NewVM(role, nil)
	defer vm.Close()
	vm.mf.RawSetString("dev", lua.LBool(b.dev))
	if err := vm.Apply(b); err != nil {
		return []source.Problem{asProblem("", err)}
	}
	var problems []source.Problem
	msgID := func(name, where string) (uint16, bool) {
		msg := b.Schema.ByName(name)
		if msg == nil {
			problems = append(problems, source.Problem{File: where, Message: fmt.Sprintf("no message %q with a msg_id in the schema", name)})
			return 0, false
		}
		return msg.ID, true
	}
	for _, h := range vm.handlerList() {
		id, ok := msgID(h.name, h.where)
		if !ok {
			continue
		}
		r := b.Routes.Messages[id]
		if r.Role != "" {
			problems = append(problems, source.Problem{File: h.where, Message: fmt.Sprintf("%s is handled twice (role %s and role %s)", h.name, r.Role, role)})
			continue
		}
		r.Role, r.Key = role, h.key
		b.Routes.Messages[id] = r
	}
	for method := range vm.logins {
		if prev, ok := b.Routes.Logins[method]; ok {
			problems = append(problems, source.Problem{Message: fmt.Sprintf("login method %q is registered by roles %s and %s", method, prev, role)})
		}
		b.Routes.Logins[method] = role
	}
	for name := range vm.serves {
		if prev, ok := b.Routes.Calls[name]; ok {
			problems = append(problems, source.Problem{Message: fmt.Sprintf("mf.serve name %q is served by roles %s and %s", name, prev, role)})
		}
		b.Routes.Calls[name] = role
	}
	for name, rt := range vm.roomTypeDecls {
		if _, ok := b.RoomTypes[name]; ok {
			problems = append(problems, source.Problem{Message: fmt.Sprintf("room type %q is declared by two roles", name)})
			continue
		}
		rt.Role = role
		b.RoomTypes[name] = rt
		for _, m := range rt.Messages {
			if id, ok := msgID(m, "room type "+name); ok {
				r := b.Routes.Messages[id]
				r.Rooms = append(r.Rooms, name)
				sort.Strings(r.Rooms)
				b.Routes.Messages[id] = r
			}
		}
	}
	if vm.sessionEnd != nil {
		if b.Routes.SessionEnd == nil {
			b.Routes.SessionEnd = map[string]string{}
		}
		b.Routes.SessionEnd[role] = vm.sessionEndKey
	}
	return problems
}

func compileChunk(src []byte, name string) (*lua.FunctionProto, error) {
	stmts, err := parse.Parse(bytes.NewReader(src), name)
	if err != nil {
		return nil, err
	}
	return lua.Compile(stmts, name)
}

// asProblem turns parser, compiler and runtime errors into a file:line problem.
func asProblem(file string, err error) source.Problem {
	var pe *parse.Error
	var ce *lua.CompileError
	var ae *lua.ApiError
	switch {
	case errors.As(err, &pe):
		msg := strings.TrimSpace(pe.Message)
		if pe.Token != "" {
			msg += fmt.Sprintf(" near '%s'", pe.Token)
		}
		return source.Problem{File: file, Line: pe.Pos.Line, Message: msg}
	case errors.As(err, &ce):
		return source.Problem{File: file, Line: ce.Line, Message: ce.Message}
	case errors.As(err, &ae):
		return locate(file, ae.Object.String())
	}
	return locate(file, err.Error())
}

// locate splits "lua/x.lua:12: message" into its parts.
func locate(fallback, msg string) source.Problem {
	msg = strings.TrimSpace(msg)
	if i := strings.Index(msg, ".lua:"); i >= 0 {
		rest := msg[i+len(".lua:"):]
		if j := strings.Index(rest, ":"); j > 0 {
			var line int
			if _, err := fmt.Sscanf(rest[:j], "%d", &line); err == nil {
				return source.Problem{File: msg[:i+len(".lua")], Line: line, Message: strings.TrimSpace(rest[j+1:])}
			}
		}
	}
	return source.Problem{File: fallback, Message: msg}
}
