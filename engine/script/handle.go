package script

import (
	"fmt"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/luapb"
	"github.com/moonforge/moonforge/engine/protocol"
)

// HasHandler reports whether the applied version handles a message (by full name).
func (vm *VM) HasHandler(fullName string) bool {
	msg := vm.bundle.Codecs.ByName(fullName)
	if msg == nil {
		return false
	}
	return vm.handlers[msg.Index].fn != nil
}

// CallHandler runs the mf.handle handler of req's message and answers req: the handler's reply,
// or Error with the code it raised, DECODE_FAILED, INTERNAL, TIMEOUT or UNAVAILABLE.
func (vm *VM) CallHandler(req *call.Request) {
	var h handler
	declared := vm.bundle.Schema.ByID(req.MsgID)
	if declared != nil {
		h = vm.handlers[declared.Index]
	}
	if h.fn == nil {
		if declared != nil {
			req.Fail(protocol.Errorf(protocol.Unavailable, "no handler for %s in version %s", declared.FullName, vm.Version()))
		} else {
			req.Fail(protocol.Errorf(protocol.UnknownMessage, "message %d is not in the schema of version %s", req.MsgID, vm.Version()))
		}
		return
	}
	msg := h.msg
	body, err := msg.Decode(vm.L, req.Payload)
	if err != nil {
		req.Fail(&protocol.CodeError{Code: protocol.DecodeFailed, Message: err.Error()})
		return
	}
	c := &requestContext{req: req, msg: msg.Name, keyed: h.key != ""}
	c.ud = lua.LUserData{Value: c, Env: vm.L.Env, Metatable: vm.ctxMeta}
	vm.runRequest(req, h.fn, msg.FullName, &c.ud, body)
}

// requestContext is a handler's ctx: a read-only userdata whose fields are read by ctxIndex. The
// userdata and its value are one allocation.
type requestContext struct {
	ud    lua.LUserData // Value is the requestContext itself
	req   *call.Request
	msg   string
	keyed bool // its handler has opts.key: it runs on the key's actor, not the player's
}

// ctxIndex implements ctx.player_id, ctx.session_id, ctx.seq and ctx.msg.
func ctxIndex(L *lua.LState) int {
	c, ok := L.CheckUserData(1).Value.(*requestContext)
	if !ok {
		L.ArgError(1, "not a request context")
	}
	switch L.CheckString(2) {
	case "player_id":
		L.Push(lua.LString(c.req.PlayerID))
	case "session_id":
		L.Push(lua.LString(c.req.SessionID))
	case "seq":
		L.Push(lua.LNumber(c.req.Seq))
	case "msg":
		L.Push(lua.LString(c.msg))
	default:
		L.Push(lua.LNil)
	}
	return 1
}

// ctxNewIndex refuses writes: the context describes the request and stays as it came.
func ctxNewIndex(L *lua.LState) int {
	L.RaiseError("ctx is read-only (tried to set %q)", L.CheckString(2))
	return 0
}

// encodeReply turns a handler's (name, table) result into its reply, encoded with the schema of
// the version the handler ran on. A result that cannot be a reply fails the request with
// INTERNAL, naming the handler's file:line (and the field path, for an encoding error), and ok is
// false.
func (vm *VM) encodeReply(r *run, name, result lua.LValue) (msgID uint16, payload []byte, ok bool) {
	req := r.req
	fail := func(format string, args ...any) {
		detail := fmt.Sprintf("%s (handler at %s:%d): ", r.what, r.fn.Proto.SourceName, r.fn.Proto.LineDefined) + fmt.Sprintf(format, args...)
		vm.log.Error("bad reply", "call", r.what, "error", detail)
		req.Fail(vm.internal(detail))
	}
	n, isName := name.(lua.LString)
	if !isName {
		fail("returned no reply: return a message name and a table")
		return 0, nil, false
	}
	msg := vm.replyCodec(r.bundle, string(n))
	if msg == nil {
		fail("replied with %q, which has no msg_id in the schema", string(n))
		return 0, nil, false
	}
	body, _ := result.(*lua.LTable)
	if body == nil {
		if result != lua.LNil {
			fail("the reply body must be a table, got %s", result.Type())
			return 0, nil, false
		}
		body = vm.L.CreateTable(0, 0)
	}
	payload, err := msg.Encode(make([]byte, 0, replyCap), body)
	if err != nil {
		fail("%v", err)
		return 0, nil, false
	}
	return msg.ID, payload, true
}

// replyCodec returns the codec of the message named name in bundle b, or nil. The last one found
// is kept: a handler replies with the same message each time, and the schema's map by name is
// seldom in the CPU's caches when a request arrives.
func (vm *VM) replyCodec(b *Bundle, name string) *luapb.Message {
	if c := &vm.lastReply; c.bundle == b && c.name == name {
		return c.msg
	}
	msg := b.Codecs.ByName(name)
	if msg != nil {
		vm.lastReply = lastReply{bundle: b, name: name, msg: msg}
	}
	return msg
}

// replyCap is the capacity an encoded reply starts with: most replies fit, so their encoding
// does not grow the buffer.
const replyCap = 64

func (vm *VM) observe(what string, start time.Time, code protocol.Code) {
	if vm.svc != nil && vm.svc.Observer != nil {
		vm.svc.Observer.Handled(what, time.Since(start), code)
	}
}

// CallLogin runs the function a script registered with mf.login for l.Method. The function gets
// (ctx, req) with req = {method, account, secret, extra} and returns the account id it vouches
// for; nil or false refuses the login (UNAUTHENTICATED).
func (vm *VM) CallLogin(l *call.Login) {
	fn, ok := vm.logins[l.Method]
	if !ok {
		l.Fail(protocol.Errorf(protocol.BadRequest, "unknown login method %q", l.Method))
		return
	}
	L := vm.L
	ctx := L.CreateTable(0, 1)
	ctx.RawSetString("method", lua.LString(l.Method))
	req := L.CreateTable(0, 4)
	req.RawSetString("method", lua.LString(l.Method))
	req.RawSetString("account", lua.LString(l.Account))
	req.RawSetString("secret", lua.LString(l.Secret))
	extra := L.CreateTable(0, len(l.Extra))
	for k, v := range l.Extra {
		extra.RawSetString(k, lua.LString(v))
	}
	req.RawSetString("extra", extra)
	what := "login method " + l.Method
	out, err := vm.protectedCall(fn, 1, vm.limit(time.Now(), l.Deadline), ctx, req)
	if err != nil {
		l.Fail(vm.callError(err, what, l.Deadline))
		return
	}
	switch id := out[0].(type) {
	case lua.LString:
		if id != "" {
			l.Answer(call.Answer{Value: string(id)})
			return
		}
	case lua.LNumber:
		l.Answer(call.Answer{Value: id.String()})
		return
	case *lua.LNilType, lua.LBool:
		if id == lua.LFalse || id == lua.LNil {
			l.Fail(protocol.Errorf(protocol.Unauthenticated, "login refused"))
			return
		}
	}
	l.Fail(vm.internal(fmt.Sprintf("%s must return an account id (string) or nil, got %s", what, out[0].Type())))
}
