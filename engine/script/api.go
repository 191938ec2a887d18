package script

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/moonforge/moonforge/engine/luapb"
	"github.com/moonforge/moonforge/engine/protocol"
)

// openAPI builds the global mf table. Each binding checks its arguments, calls the Go core and
// raises a Lua error on failure.
func (vm *VM) openAPI() {
	L := vm.L
	vm.mf = vm.funcs(map[string]lua.LGFunction{
		"module":   vm.luaModule,
		"handle":   vm.luaHandle,
		"error":    vm.luaError,
		"push":     vm.luaPush,
		"push_all": vm.luaPushAll,
		"now":      vm.luaNow,
		"login":    vm.luaLogin,

		"on_session_end": vm.luaOnSessionEnd,
	}, 14)
	vm.mf.RawSetString("role", lua.LString(vm.role))
	node := ""
	if vm.svc != nil {
		node = vm.svc.Node
	}
	vm.mf.RawSetString("node", lua.LString(node))
	vm.mf.RawSetString("version", lua.LString(""))
	vm.mf.RawSetString("dev", lua.LBool(vm.svc != nil && vm.svc.Dev))

	codes := L.CreateTable(0, len(protocol.Codes()))
	for _, c := range protocol.Codes() {
		codes.RawSetString(c.String(), lua.LNumber(c))
	}
	vm.mf.RawSetString("code", codes)

	vm.ctxMeta = L.CreateTable(0, 3)
	vm.ctxMeta.RawSetString("__index", L.NewFunction(ctxIndex))
	vm.ctxMeta.RawSetString("__newindex", L.NewFunction(ctxNewIndex))
	vm.ctxMeta.RawSetString("__metatable", lua.LString("ctx"))

	vm.errMeta = L.CreateTable(0, 1)
	vm.errMeta.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
		t := L.CheckTable(1)
		L.Push(lua.LString("error " + t.RawGetString("code").String() + ": " + t.RawGetString("message").String()))
		return 1
	}))

	vm.mf.RawSetString("log", vm.newLogTable())
	vm.mf.RawSetString("timer", vm.newTimerTable())
	vm.mf.RawSetString("db", vm.newDBTable())
	vm.mf.RawSetString("room", vm.newRoomTable())
	vm.mf.RawSetString("player", vm.newPlayerTable())
	vm.mf.RawSetString("room_type", L.NewFunction(vm.luaRoomType))
	vm.mf.RawSetString("ext", L.CreateTable(0, 0)) // filled by Apply
	vm.openCalls()
	L.SetGlobal("mf", vm.mf)
}

// funcs builds a table of Go functions sized for them and extra more keys (gopher-lua's
// NewTable reserves room for 32 entries, about 3 KB, which every VM and room would pay per table).
func (vm *VM) funcs(fns map[string]lua.LGFunction, extra int) *lua.LTable {
	t := vm.L.CreateTable(0, len(fns)+extra)
	vm.L.SetFuncs(t, fns)
	return t
}

// mustLoad raises unless scripts are loading: declarations belong at the top level of a file.
func (vm *VM) mustLoad(fn string) {
	if !vm.loading {
		vm.errorf("%s may only be called while the script loads (at the top level of a file)", fn)
	}
}

// mustRun raises while scripts are loading: side effects belong in handlers, callbacks and timers.
func (vm *VM) mustRun(fn string) {
	if vm.loading {
		vm.errorf("%s may not be called while the script loads; call it from a handler, callback or timer", fn)
	}
}

func (vm *VM) luaModule(L *lua.LState) int {
	name := L.CheckString(1)
	t, ok := vm.modules[name]
	if !ok {
		t = L.CreateTable(0, 4)
		vm.modules[name] = t
	}
	L.Push(t)
	return 1
}

func (vm *VM) luaHandle(L *lua.LState) int {
	vm.mustLoad("mf.handle")
	name := L.CheckString(1)
	fn := L.CheckFunction(2)
	opts := L.OptTable(3, nil)
	msg := vm.bundle.Codecs.ByName(name)
	if msg == nil {
		vm.errorf("mf.handle: no message %q with a msg_id in the schema", name)
	}
	if msg.ID < protocol.FirstAppMsgID {
		vm.errorf("mf.handle: %s is a framework message; the gateway handles it", msg.FullName)
	}
	if prev := vm.handlers[msg.Index]; prev.fn != nil {
		vm.errorf("mf.handle: %s already has a handler (at %s)", msg.FullName, prev.where)
	}
	h := handler{fn: fn, msg: msg, where: vm.where()}
	if opts != nil {
		opts.ForEach(func(k, v lua.LValue) {
			switch k.String() {
			case "key":
				s, ok := v.(lua.LString)
				if !ok || s == "" {
					vm.errorf("mf.handle: option key must be a non-empty string")
				}
				h.key = string(s)
			default:
				vm.errorf("mf.handle: unknown option %q", k.String())
			}
		})
	}
	vm.handlers[msg.Index] = h
	return 0
}

func (vm *VM) luaError(L *lua.LState) int {
	code := L.CheckInt(1)
	message := L.OptString(2, "")
	t := L.CreateTable(0, 2)
	t.RawSetString("code", lua.LNumber(code))
	t.RawSetString("message", lua.LString(message))
	L.SetMetatable(t, vm.errMeta)
	L.Error(t, 0)
	return 0
}

// raiseCode re-raises a Go error inside Lua: code errors as mf.error values, others as messages.
func (vm *VM) raiseCode(fn string, err error) {
	var ce *protocol.CodeError
	if errors.As(err, &ce) {
		t := vm.L.CreateTable(0, 2)
		t.RawSetString("code", lua.LNumber(ce.Code))
		t.RawSetString("message", lua.LString(ce.Message))
		vm.L.SetMetatable(t, vm.errMeta)
		vm.cur().Error(t, 0)
	}
	vm.errorf("%s: %v", fn, err)
}

// encodeArg encodes the message named by argument n from the table at argument n+1.
func (vm *VM) encodeArg(fn string, n int) (*luapb.Message, []byte) {
	L := vm.cur()
	name := L.CheckString(n)
	msg := vm.bundle.Codecs.ByName(name)
	if msg == nil {
		vm.errorf("%s: no message %q with a msg_id in the schema", fn, name)
	}
	t := L.OptTable(n+1, nil)
	if t == nil {
		t = vm.L.CreateTable(0, 0)
	}
	payload, err := msg.Encode(nil, t)
	if err != nil {
		vm.errorf("%s: %v", fn, err)
	}
	return msg, payload
}

func (vm *VM) luaPush(L *lua.LState) int {
	vm.mustRun("mf.push")
	player := L.CheckString(1)
	msg, payload := vm.encodeArg("mf.push", 2)
	ok := false
	if vm.svc != nil && vm.svc.Players != nil {
		ok = vm.svc.Players.Push(player, msg.ID, payload)
	}
	L.Push(lua.LBool(ok))
	return 1
}

func (vm *VM) luaPushAll(L *lua.LState) int {
	vm.mustRun("mf.push_all")
	msg, payload := vm.encodeArg("mf.push_all", 1)
	n := 0
	if vm.svc != nil && vm.svc.Players != nil {
		n = vm.svc.Players.PushAll(msg.ID, payload)
	}
	L.Push(lua.LNumber(n))
	return 1
}

func (vm *VM) luaNow(L *lua.LState) int {
	L.Push(lua.LNumber(time.Now().UnixMilli()))
	return 1
}

var loginMethodName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

func (vm *VM) luaLogin(L *lua.LState) int {
	vm.mustLoad("mf.login")
	method := L.CheckString(1)
	fn := L.CheckFunction(2)
	switch {
	case !loginMethodName.MatchString(method):
		vm.errorf("mf.login: method name %q must match [a-z][a-z0-9_]* (at most 32 characters)", method)
	case method == "guest" || method == "password" || method == "token":
		vm.errorf("mf.login: %q is a built-in method", method)
	case vm.logins[method] != nil:
		vm.errorf("mf.login: method %q is registered twice", method)
	}
	vm.logins[method] = fn
	return 0
}

func (vm *VM) newLogTable() *lua.LTable {
	L := vm.L
	t := L.CreateTable(0, 4)
	for name, level := range map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError} {
		t.RawSetString(name, L.NewFunction(vm.logAt(level, 1)))
	}
	meta := L.CreateTable(0, 1)
	meta.RawSetString("__call", L.NewFunction(vm.logAt(slog.LevelInfo, 2)))
	L.SetMetatable(t, meta)
	return t
}

// logAt returns mf.log.<level>(message, key, value, ...); first is the message's argument index.
func (vm *VM) logAt(level slog.Level, first int) lua.LGFunction {
	return func(L *lua.LState) int {
		msg := L.ToStringMeta(L.Get(first)).String()
		attrs := []any{"at", vm.where()}
		for i := first + 1; i <= L.GetTop(); i += 2 {
			key := strings.TrimSpace(L.ToStringMeta(L.Get(i)).String())
			var val any
			switch v := L.Get(i + 1).(type) {
			case lua.LNumber:
				val = float64(v)
			case lua.LBool:
				val = bool(v)
			case lua.LString:
				val = string(v)
			default:
				val = L.ToStringMeta(v).String()
			}
			attrs = append(attrs, key, val)
		}
		vm.log.Log(context.Background(), level, msg, attrs...)
		return 0
	}
}
