package script

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/config"
	"github.com/moonforge/moonforge/engine/luapb"
	"github.com/moonforge/moonforge/engine/playerdata"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/store"
)

// Services are what scripts reach outside their VM. They are shared by all VMs of a process and
// must be safe for concurrent use.
type Services struct {
	Players        Players
	Store          store.Store
	Rooms          Rooms
	Presence       Presence    // mf.player.online; nil: nobody is online
	Calls          Calls       // mf.call, mf.send, mf.broadcast, mf.kick; nil: not available
	Boxes          *call.Boxes // reply addresses of the actors' calls (mf.room.join); nil: calls cannot wait
	Log            *slog.Logger
	Dev            bool          // error replies carry file:line
	HandlerTimeout time.Duration // limit of one handler, callback or timer call; default: config.Default
	LoadTimeout    time.Duration // limit of running a role's chunks; default 5s
	Observer       Observer      // optional
	Node           string        // mf.node: this node's id in the cluster ("" alone)
	// PlayerData holds the players' data of this node (mf.player.data); nil: not available. Only
	// the handlers of PlayerRole reach it, and only on the player's own actor.
	PlayerData    *playerdata.Manager
	PlayerRole    string
	PlayerMessage string // full name of the player's proto message
}

// Observer receives handler timings for metrics. Calls come from actor goroutines.
type Observer interface {
	// Handled reports one request handled in Lua: the message's full name, how long the call took,
	// and the code it was answered with (0 for a reply).
	Handled(msg string, took time.Duration, code protocol.Code)
}

// Presence says whether players have a live session (presence.Directory implements it). Safe for
// concurrent use; it never blocks.
type Presence interface {
	// Online reports a live session (bound or awaiting a resume) and whether it is bound now.
	Online(playerID string) (online, connected bool)
}

// Players delivers pushes to players' sessions.
type Players interface {
	// Push queues a push for a player; false if the player has no session here.
	Push(playerID string, msgID uint16, payload []byte) bool
	// PushAll queues a push for every player with a session; it returns how many.
	PushAll(msgID uint16, payload []byte) int
}

type handler struct {
	fn    *lua.LFunction
	msg   *luapb.Message
	key   string
	where string
}

// lastReply is a reply's codec found by name in a bundle (VM.replyCodec).
type lastReply struct {
	bundle *Bundle
	name   string
	msg    *luapb.Message
}

// VM is one Lua state with the mf API. It is owned by one goroutine: every method except
// Interrupt must be called from that goroutine.
type VM struct {
	L      *lua.LState
	role   string
	svc    *Services // nil: a probe VM, whose side effects are ignored
	log    *slog.Logger
	bundle *Bundle

	mf             *lua.LTable
	ctxMeta        *lua.LTable
	errMeta        *lua.LTable
	roomMeta       *lua.LTable
	modules        map[string]*lua.LTable // mf.module tables, kept across reloads
	roomTypeTables map[string]*lua.LTable // mf.room_type tables, kept across reloads
	roomTypeDecls  map[string]RoomType
	handlers       []handler // by the message's schema.Message.Index; fn nil: none
	lastReply      lastReply // the codec of the last reply encoded (replyCodec)
	logins         map[string]*lua.LFunction
	sessionEnd     *lua.LFunction            // mf.on_session_end
	sessionEndKey  string                    // its partition key
	serves         map[string]*lua.LFunction // mf.serve: calls from other roles and nodes
	required       map[string]lua.LValue
	loading        bool
	timers         timers
	rooms          map[*lua.LTable]RoomHandle

	guard      guard
	mainCtx    context.Context // of L; replaced after an interrupted call
	mainCancel context.CancelFunc
	ret        [2]lua.LValue  // results of the last protected call
	waits      waits          // handlers suspended in their coroutines
	commits    commits        // the store writes not applied yet, in order (commit.go)
	wrapWait   *lua.LFunction // the prelude's wrapper of waiting calls

	players         map[string]*playerEntry // mf.player.data tables of the players this VM serves
	playerTyp       *luapb.Type             // the player message's codec, of the schema whose hash is playerTypSchema
	playerTypSchema string
}

// guard lets a watchdog goroutine interrupt a call that overran its deadline.
type guard struct {
	mu       sync.Mutex
	cancel   context.CancelFunc // of the context of the state running the call
	deadline time.Time          // of the running call; zero when no call runs
}

// NewVM creates a VM for a role. With svc nil it is a probe: scripts load, but pushes, store
// writes, rooms and timers do nothing.
func NewVM(role string, svc *Services) *VM {
	L := lua.NewState(lua.Options{
		SkipOpenLibs:        true,
		CallStackSize:       120,
		RegistrySize:        128,
		RegistryMaxSize:     256 * 1024,
		RegistryGrowStep:    64,
		MinimizeStackMemory: true,
	})
	vm := &VM{
		L:              L,
		role:           role,
		svc:            svc,
		modules:        map[string]*lua.LTable{},
		roomTypeTables: map[string]*lua.LTable{},
		roomTypeDecls:  map[string]RoomType{},
		logins:         map[string]*lua.LFunction{},
		serves:         map[string]*lua.LFunction{},
		required:       map[string]lua.LValue{},
		rooms:          map[*lua.LTable]RoomHandle{},
		players:        map[string]*playerEntry{},
	}
	vm.log = slog.Default()
	if svc != nil && svc.Log != nil {
		vm.log = svc.Log
	}
	vm.log = vm.log.With("role", role)
	vm.mainCtx, vm.mainCancel = context.WithCancel(context.Background())
	L.SetContext(vm.mainCtx)
	vm.waits.init()
	vm.openLibs()
	vm.openWaits()
	vm.openAPI()
	return vm
}

// Close waits until the VM's queued store writes are applied, answers their handlers, and
// releases the Lua state.
func (vm *VM) Close() {
	vm.closeCommits()
	vm.abandonWaits()
	vm.mainCancel()
	vm.L.Close()
}

// Role returns the VM's role.
func (vm *VM) Role() string { return vm.role }

// Version returns the version of the applied bundle ("" before the first Apply).
func (vm *VM) Version() string {
	if vm.bundle == nil {
		return ""
	}
	return vm.bundle.Version
}

// Bundle returns the applied bundle.
func (vm *VM) Bundle() *Bundle { return vm.bundle }

// Apply runs the role's chunks of b in this VM: handlers, login methods and room types are
// declared anew, module tables keep their data, timers set while loading the previous version are
// cancelled. On any error the VM keeps its previous declarations and the error is returned.
func (vm *VM) Apply(b *Bundle) error {
	prev := struct {
		bundle   *Bundle
		handlers []handler
		logins   map[string]*lua.LFunction
		onEnd    *lua.LFunction
		onEndKey string
		serves   map[string]*lua.LFunction
		decls    map[string]RoomType
		required map[string]lua.LValue
		timers   []*timer
	}{vm.bundle, vm.handlers, vm.logins, vm.sessionEnd, vm.sessionEndKey, vm.serves, vm.roomTypeDecls, vm.required, vm.timers.takeLoadTime()}
	vm.bundle = b
	vm.handlers = make([]handler, len(b.Schema.Messages()))
	vm.logins = map[string]*lua.LFunction{}
	vm.sessionEnd, vm.sessionEndKey = nil, ""
	vm.serves = map[string]*lua.LFunction{}
	vm.roomTypeDecls = map[string]RoomType{}
	vm.required = map[string]lua.LValue{}
	vm.mf.RawSetString("version", lua.LString(b.Version))
	vm.mf.RawSetString("ext", vm.extTable(b.Ext))

	vm.loading = true
	err := vm.runChunks(b.Chunks(vm.role))
	vm.loading = false
	if err != nil {
		vm.timers.takeLoadTime()
		vm.bundle, vm.handlers, vm.logins, vm.sessionEnd, vm.sessionEndKey, vm.serves, vm.roomTypeDecls, vm.required = prev.bundle, prev.handlers, prev.logins, prev.onEnd, prev.onEndKey, prev.serves, prev.decls, prev.required
		for _, t := range prev.timers {
			vm.timers.add(t)
		}
		if prev.bundle != nil {
			vm.mf.RawSetString("version", lua.LString(prev.bundle.Version))
		}
		return err
	}
	return nil
}

func (vm *VM) runChunks(chunks []*Chunk) error {
	timeout := 5 * time.Second
	if vm.svc != nil && vm.svc.LoadTimeout > 0 {
		timeout = vm.svc.LoadTimeout
	}
	deadline := time.Now().Add(timeout)
	for _, c := range chunks {
		fn := vm.L.NewFunctionFromProto(c.proto)
		if _, err := vm.protectedCall(fn, 0, deadline); err != nil {
			return err
		}
	}
	return nil
}

// Interrupt stops the running call if its deadline has passed at now. It is the one method that
// another goroutine (the watchdog) may call. It reports whether it interrupted a call.
func (vm *VM) Interrupt(now time.Time) bool {
	vm.guard.mu.Lock()
	defer vm.guard.mu.Unlock()
	if vm.guard.deadline.IsZero() || !now.After(vm.guard.deadline) {
		return false
	}
	vm.guard.cancel()
	return true
}

// enter marks the start of a call that the watchdog may interrupt by cancelling its context.
func (vm *VM) enter(cancel context.CancelFunc, deadline time.Time) {
	vm.guard.mu.Lock()
	vm.guard.cancel, vm.guard.deadline = cancel, deadline
	vm.guard.mu.Unlock()
}

// leave marks the end of the call.
func (vm *VM) leave() {
	vm.guard.mu.Lock()
	vm.guard.cancel, vm.guard.deadline = nil, time.Time{}
	vm.guard.mu.Unlock()
}

// errDeadline marks a call stopped by its deadline.
type errDeadline struct{ limit time.Time }

func (e errDeadline) Error() string { return "deadline exceeded" }

// protectedCall calls fn with args under a deadline and returns its nret (at most 2) results,
// valid until the next call. Lua errors come back as *lua.ApiError, a deadline overrun as
// errDeadline; the stack is left as it was.
func (vm *VM) protectedCall(fn *lua.LFunction, nret int, deadline time.Time, args ...lua.LValue) ([]lua.LValue, error) {
	L := vm.L
	base := L.GetTop()
	vm.enter(vm.mainCancel, deadline)
	L.Push(fn)
	for _, a := range args {
		L.Push(a)
	}
	err := L.PCall(len(args), nret, nil)
	vm.leave()
	interrupted := vm.mainCtx.Err() != nil
	if interrupted {
		vm.mainCtx, vm.mainCancel = context.WithCancel(context.Background())
		L.SetContext(vm.mainCtx)
	}

	if err != nil {
		L.SetTop(base)
		if interrupted {
			return nil, errDeadline{limit: deadline}
		}
		return nil, err
	}
	out := vm.ret[:nret]
	for i := range out {
		out[i] = L.Get(base + 1 + i)
	}
	L.SetTop(base)
	return out, nil
}

// handlerList returns the handlers in a stable order (for the probe).
func (vm *VM) handlerList() []struct{ name, key, where string } {
	var out []struct{ name, key, where string }
	for _, h := range vm.handlers {
		if h.fn == nil {
			continue
		}
		out = append(out, struct{ name, key, where string }{h.msg.FullName, h.key, h.where})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// callError turns the error of a protected call into the answer a client gets, and logs what
// the client is not told. what names the call for the log ("handler demo.ChatSendReq").
func (vm *VM) callError(err error, what string, requestDeadline time.Time) *protocol.CodeError {
	if ce, ok := err.(*protocol.CodeError); ok {
		return ce
	}
	if ce := vm.raised(err); ce != nil {
		return ce
	}
	if d, ok := err.(errDeadline); ok {
		if !requestDeadline.IsZero() && !d.limit.Before(requestDeadline) {
			return &protocol.CodeError{Code: protocol.Timeout, Message: "no reply within the request deadline"}
		}
		vm.log.Error("script call exceeded its deadline", "call", what, "limit", vm.handlerTimeout())
		return protocol.Errorf(protocol.Internal, "%s exceeded its deadline of %s", what, vm.handlerTimeout())
	}
	msg := err.Error()
	trace := ""
	if ae, ok := err.(*lua.ApiError); ok {
		msg = ae.Object.String()
		trace = ae.StackTrace
	}
	vm.log.Error("script error", "call", what, "error", msg, "trace", trace)
	return vm.internal(msg)
}

// internal is an INTERNAL answer: the detail (a file:line message) in dev mode only.
func (vm *VM) internal(detail string) *protocol.CodeError {
	if vm.svc != nil && vm.svc.Dev {
		return &protocol.CodeError{Code: protocol.Internal, Message: detail}
	}
	return &protocol.CodeError{Code: protocol.Internal, Message: "internal error"}
}

// raised extracts the code error of mf.error from a call error.
func (vm *VM) raised(err error) *protocol.CodeError {
	ae, ok := err.(*lua.ApiError)
	if !ok {
		return nil
	}
	t, ok := ae.Object.(*lua.LTable)
	if !ok || vm.L.GetMetatable(t) != vm.errMeta {
		return nil
	}
	code := protocol.Code(lua.LVAsNumber(t.RawGetString("code")))
	message := lua.LVAsString(t.RawGetString("message"))
	if !code.Raisable() {
		return protocol.Errorf(protocol.Internal, "mf.error: code %d may not be raised by scripts (%s)", uint32(code), message)
	}
	return &protocol.CodeError{Code: code, Message: message}
}

func (vm *VM) handlerTimeout() time.Duration {
	if vm.svc != nil && vm.svc.HandlerTimeout > 0 {
		return vm.svc.HandlerTimeout
	}
	return defaultHandlerTimeout
}

var defaultHandlerTimeout = config.Default().Lua.HandlerTimeout

// limit is the deadline of a call starting now under an outer deadline (zero: none).
func (vm *VM) limit(now, outer time.Time) time.Time {
	d := now.Add(vm.handlerTimeout())
	if !outer.IsZero() && outer.Before(d) {
		return outer
	}
	return d
}

// where returns the file:line of the Lua code calling the current Go function.
func (vm *VM) where() string {
	w := vm.cur().Where(1)
	if len(w) > 0 && w[len(w)-1] == ':' {
		w = w[:len(w)-1]
	}
	return w
}

// cur is the Lua state running now: the VM's own, or the coroutine of a handler (or one the script
// made). Go functions of the mf API read their arguments and raise errors on it.
func (vm *VM) cur() *lua.LState { return vm.L.G.CurrentThread }

func (vm *VM) errorf(format string, args ...any) {
	vm.cur().RaiseError("%s", fmt.Sprintf(format, args...))
}
