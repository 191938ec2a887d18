package script_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/playerdata"
	"github.com/moonforge/moonforge/engine/script"
	"github.com/moonforge/moonforge/engine/store"
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

// BenchmarkPlayerDataTouch is BenchmarkDispatchEcho's message through a handler that changes a
// loaded player's data (a PlayerData with a name and three items): against the echo, the cost of
// mf.player.data and of the dirty check (encode, compare, hand the bytes to the Manager) at the
// handler's end. Nothing is written to the store.
func BenchmarkPlayerDataTouch(b *testing.B) {
	t := &testing.T{}
	bundle, err := script.Compile(writeTree(t, map[string]string{"lobby/p.lua": `
mf.handle("EchoReq", function(ctx, req)
	local me = mf.player.data(ctx)
	if me.name == "" then me.name = "Ayla"; me.items = { "sword", "shield", "staff" } end
	me.gold = me.gold + 1
	return "EchoAck", { n = req.n, body = req.body }
end)`}), loadSchema(t), nil)
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.OpenBolt(store.BoltConfig{Path: filepath.Join(b.TempDir(), "db")})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	m, err := playerdata.Open(playerdata.Config{Store: st, Dir: b.TempDir(), FlushEvery: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close(context.Background())
	if _, err := m.Load(context.Background(), "p1"); err != nil {
		b.Fatal(err)
	}
	vm, req := echoRequest(b, bundle, &script.Services{PlayerData: m, PlayerRole: "lobby", PlayerMessage: "demo.PlayerData"})
	vm.SetReplyTo(call.Address{Box: 1}, discard{})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req.Deadline = time.Now().Add(time.Second)
		vm.CallHandler(req)
	}
}

// countingStore counts the store batches.
type countingStore struct {
	store.Store
	batches atomic.Int64
}

func (c *countingStore) Batch(ctx context.Context, ops []store.Op) error {
	c.batches.Add(1)
	return c.Store.Batch(ctx, ops)
}

// replied is a reply poster that names its player.
type replied struct {
	player int
	to     chan int
}

func (r replied) Post(call.Answer) { r.to <- r.player }

// BenchmarkSharedKeyCommits: 16 players, each with one request in flight, on one actor whose
// handler writes a key they share and one of the player's own (as the chat demo does), on the
// embedded store (an fsync per commit). Reports the store batches per handler.
func BenchmarkSharedKeyCommits(b *testing.B) {
	const players = 16
	bundle, err := script.Compile(writeTree(&testing.T{}, map[string]string{"lobby/k.lua": `
local m = mf.module("k")
mf.handle("EchoReq", function(ctx, req)
  m.n = (m.n or 0) + 1
  mf.db.put("shared", m.n)
  mf.db.put("own/" .. ctx.player_id, m.n)
  return "EchoAck", { n = m.n }
end)`}), loadSchema(&testing.T{}), nil)
	if err != nil {
		b.Fatal(err)
	}
	bolt, err := store.OpenBolt(store.BoltConfig{Path: filepath.Join(b.TempDir(), "db")})
	if err != nil {
		b.Fatal(err)
	}
	defer bolt.Close()
	st := &countingStore{Store: bolt}
	vm, req := echoRequest(b, bundle, &script.Services{Store: st, HandlerTimeout: 10 * time.Second})
	answers := make(chan call.Answer, 4*players)
	vm.SetReplyTo(call.Address{Box: 1}, posted(func(a call.Answer) { answers <- a }))
	replies := make(chan int, 4*players)
	send := func(p int) {
		r := *req
		r.PlayerID, r.Deadline, r.Post = fmt.Sprintf("p%d", p), time.Now().Add(10*time.Second), replied{p, replies}
		vm.CallHandler(&r)
	}
	b.ReportAllocs()
	b.ResetTimer()
	sent, done := 0, 0
	for p := 0; p < players && sent < b.N; p++ {
		send(p)
		sent++
	}
	for done < b.N {
		select {
		case a := <-answers:
			vm.Resume(a)
		case p := <-replies:
			done++
			if sent < b.N {
				send(p)
				sent++
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(st.batches.Load())/float64(b.N), "batches/op")
}
