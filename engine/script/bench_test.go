package script_test

import (
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/script"
)

type discard struct{}

func (discard) Post(call.Answer) {}

// echoRequest applies bundle in a new VM and returns it with an EchoReq request for it.
func echoRequest(b *testing.B, bundle *script.Bundle, svc *script.Services) (*script.VM, *call.Request) {
	vm := script.NewVM("lobby", svc)
	b.Cleanup(vm.Close)
	if err := vm.Apply(bundle); err != nil {
		b.Fatal(err)
	}
	m := bundle.Codecs.ByName("EchoReq")
	t := vm.L.CreateTable(0, 2)
	t.RawSetString("body", lua.LString("0123456789abcdef"))
	t.RawSetString("n", lua.LNumber(42))
	payload, err := m.Encode(nil, t)
	if err != nil {
		b.Fatal(err)
	}
	return vm, &call.Request{MsgID: m.ID, Msg: m.FullName, Seq: 1, Payload: payload, PlayerID: "p1", SessionID: "s1", Post: discard{}}
}

// BenchmarkDispatchEcho is one client message through a Lua handler, as an actor runs it: decode
// the payload into a table, build ctx, call the handler in its coroutine under its deadline, encode
// the reply.
func BenchmarkDispatchEcho(b *testing.B) {
	bundle, err := script.Compile("../../lua", loadSchema(&testing.T{}), nil)
	benchDispatch(b, bundle, err)
}

// BenchmarkDispatchNewReply is BenchmarkDispatchEcho with a handler that builds its reply table,
// as most handlers do, instead of returning the request's.
func BenchmarkDispatchNewReply(b *testing.B) {
	t := &testing.T{}
	bundle, err := script.Compile(writeTree(t, map[string]string{"lobby/r.lua": `
mf.handle("EchoReq", function(ctx, req)
	return "EchoAck", { n = req.n + 1, body = req.body }
end)`}), loadSchema(t), nil)
	benchDispatch(b, bundle, err)
}

// benchDispatch runs b.N EchoReq requests through bundle's handler (err: bundle's compile error).
func benchDispatch(b *testing.B, bundle *script.Bundle, err error) {
	if err != nil {
		b.Fatal(err)
	}
	vm, req := echoRequest(b, bundle, &script.Services{})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req.Deadline = time.Now().Add(time.Second)
		vm.CallHandler(req)
	}
}

// BenchmarkWaitResume is BenchmarkDispatchEcho's message through a handler that waits once for a
// call (mf.room.join) and is resumed with its answer: the difference between the two is the cost
// of one yield and resume.
func BenchmarkWaitResume(b *testing.B) {
	t := &testing.T{}
	rooms := &calls{}
	bundle, err := script.Compile(writeTree(t, map[string]string{"lobby/w.lua": `
mf.handle("EchoReq", function(ctx, req)
	local v = mf.room.join("r1", ctx.player_id)
	return "EchoAck", { n = req.n + v, body = req.body }
end)`}), loadSchema(t), nil)
	if err != nil {
		b.Fatal(err)
	}
	vm, req := echoRequest(b, bundle, &script.Services{Rooms: rooms})
	vm.SetReplyTo(call.Address{Box: 1}, discard{})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req.Deadline = time.Now().Add(time.Second)
		vm.CallHandler(req)
		j := rooms.joins[0]
		rooms.joins = rooms.joins[:0]
		vm.Resume(call.Answer{ID: j.ID, Value: float64(1)})
	}
}
