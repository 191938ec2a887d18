package node_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/client"
	"github.com/moonforge/moonforge/engine/config"
	"github.com/moonforge/moonforge/engine/node"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/schema"
	"github.com/moonforge/moonforge/engine/store"
	"github.com/moonforge/moonforge/engine/store/storetest"
	"github.com/moonforge/moonforge/engine/wire"
)

// These tests run a whole node in the test process (so the race detector sees the gateway,
// sessions, router, actors and rooms working together) with the project's own lua/ and proto/.

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

type env struct {
	n    *node.Node
	msgs client.Messages
	dir  string
	stop func()
}

func start(t *testing.T, edit func(*config.Config)) *env {
	t.Helper()
	dir := t.TempDir()
	copyTree(t, "../../lua", filepath.Join(dir, "lua"))
	copyTree(t, "../../proto", filepath.Join(dir, "proto"))
	cfg := config.Default()
	cfg.Dev = true
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.LuaDir = filepath.Join(dir, "lua")
	cfg.ProtoDir = filepath.Join(dir, "proto")
	cfg.Gate.TCP, cfg.Gate.WS, cfg.Gate.KCP.Addr, cfg.Admin.Addr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Gate.TLSTCP, cfg.Gate.TLSWS = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Lua.PoolSize = 4
	if edit != nil {
		edit(&cfg)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	n, err := node.New(cfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	sch, err := schema.Load(cfg.ProtoDir)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := n.Stop(stopCtx); err != nil {
				t.Errorf("stop: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &env{n: n, msgs: client.Messages{Schema: sch}, dir: dir, stop: stop}
}

func (e *env) dial(t *testing.T, transport string) *client.Client {
	t.Helper()
	addr := e.n.TCPAddr()
	if transport == "ws" {
		addr = e.n.WSAddr()
	}
	c, err := client.Dial(context.Background(), client.Config{Addr: addr, Transport: transport})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// call sends a message built from JSON and returns the reply's name and JSON.
func (e *env) call(t *testing.T, c *client.Client, name, json string) (string, string, error) {
	t.Helper()
	id, payload, err := e.msgs.Encode(name, json)
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.Request(ctx(t), id, payload)
	if err != nil {
		return "", "", err
	}
	rname, text, err := e.msgs.Decode(f.MsgID, f.Payload)
	if err != nil {
		t.Fatal(err)
	}
	return rname, text, nil
}

func codeOf(err error) protocol.Code {
	var ce *protocol.CodeError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

// nextPush waits for a push of a given message name.
func (e *env) nextPush(t *testing.T, c *client.Client, name string) (client.Push, string) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case p := <-c.Pushes():
			n, text, _ := e.msgs.Decode(p.MsgID, p.Payload)
			if n == name {
				return p, text
			}
		case <-timeout:
			t.Fatalf("no %s push", name)
		}
	}
}

func TestLoginRequestsAndPushes(t *testing.T) {
	e := start(t, nil)
	for _, transport := range []string{"tcp", "ws"} {
		a, b := e.dial(t, transport), e.dial(t, transport)
		ackA, err := a.Login(ctx(t), "guest", "device-a-0123456-"+transport, "", nil)
		if err != nil || !ackA.Created || ackA.Token == "" || ackA.SessionId == "" {
			t.Fatalf("%s login: %+v %v", transport, ackA, err)
		}
		if _, err := b.Login(ctx(t), "guest", "device-b-0123456-"+transport, "", nil); err != nil {
			t.Fatal(err)
		}
		if name, text, err := e.call(t, a, "EchoReq", `{"n": "7", "body": "aGk="}`); err != nil || name != "EchoAck" || !strings.Contains(text, `"n":"7"`) {
			t.Fatalf("echo: %s %s %v", name, text, err)
		}
		if _, _, err := e.call(t, a, "ChatSendReq", `{"text": "hello `+transport+`"}`); err != nil {
			t.Fatal(err)
		}
		p, text := e.nextPush(t, b, "ChatMessage")
		if !strings.Contains(text, "hello "+transport) || p.Seq != 1 {
			t.Fatalf("push seq %d: %s", p.Seq, text)
		}
		if _, _, err := e.call(t, a, "ChatSendReq", `{"text": ""}`); codeOf(err) != 1001 {
			t.Fatalf("empty chat: %v", err)
		}
	}
}

func TestLoginMethods(t *testing.T) {
	e := start(t, func(c *config.Config) { c.Gate.DisabledMethods = []string{"nope"} })
	c := e.dial(t, "tcp")
	if _, err := c.Login(ctx(t), "password", "ann", "correct horse", map[string]string{"register": "1"}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		method, account, secret string
		code                    protocol.Code
	}{
		{"password", "ann", "wrong password", protocol.Unauthenticated},
		{"password", "nobody", "whatever1", protocol.Unauthenticated},
		{"dev_ticket", "", "forged", protocol.Unauthenticated},
		{"steam", "x", "y", protocol.BadRequest},
		{"nope", "x", "y", protocol.BadRequest},
		{"token", "", "garbage", protocol.Unauthenticated},
	}
	for _, k := range cases {
		if _, err := e.dial(t, "tcp").Login(ctx(t), k.method, k.account, k.secret, nil); codeOf(err) != k.code {
			t.Errorf("%s/%s: %v, want %s", k.method, k.secret, err, k.code)
		}
	}
	ack, err := e.dial(t, "tcp").Login(ctx(t), "password", "ann", "correct horse", nil)
	if err != nil {
		t.Fatal(err)
	}
	viaToken, err := e.dial(t, "tcp").Login(ctx(t), "token", "", ack.Token, nil)
	if err != nil || viaToken.PlayerId != ack.PlayerId {
		t.Fatalf("token login: %+v %v", viaToken, err)
	}
	dev, err := e.dial(t, "ws").Login(ctx(t), "dev_ticket", "", "dev:alice", nil)
	if err != nil || !dev.Created {
		t.Fatalf("custom method: %+v %v", dev, err)
	}
}

func TestResumeReplaysEveryPush(t *testing.T) {
	e := start(t, nil)
	a := e.dial(t, "tcp")
	ack, err := a.Login(ctx(t), "guest", "resumer-device-0001", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.call(t, a, "ArenaJoinReq", `{}`); err != nil {
		t.Fatal(err)
	}
	var seen []uint32
	for len(seen) < 5 {
		p := <-a.Pushes()
		seen = append(seen, p.Seq)
	}
	last := seen[len(seen)-1]
	a.Close()
	time.Sleep(200 * time.Millisecond) // pushes keep coming at 20 Hz while disconnected
	b := e.dial(t, "ws")
	res, err := b.Resume(ctx(t), ack.Token, last)
	if err != nil || res.PlayerId != ack.PlayerId || res.Replayed == 0 {
		t.Fatalf("resume: %+v %v", res, err)
	}
	next := last + 1
	for i := 0; i < int(res.Replayed)+5; i++ {
		p := <-b.Pushes()
		if p.Seq != next {
			t.Fatalf("after resume got push %d, want %d", p.Seq, next)
		}
		next++
	}
	if _, err := e.dial(t, "tcp").Resume(ctx(t), "not a token", 0); codeOf(err) != protocol.ResumeFailed {
		t.Fatalf("bad token: %v", err)
	}
}

func TestBadInput(t *testing.T) {
	e := start(t, nil)
	kick := func(c *client.Client) protocol.Code {
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("connection not closed")
		}
		if k := c.Kicked(); k != nil {
			return protocol.Code(k.Code)
		}
		return 0
	}
	// Framing violations close the connection with a Kick that says why.
	for _, k := range []struct {
		raw  []byte
		code protocol.Code
	}{
		{[]byte{0, 0, 0, 3, 1, 2, 3}, protocol.MalformedFrame},
		{[]byte{0, 0x10, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1}, protocol.FrameTooLarge},
		{[]byte{0, 0, 0, 8, 0, 1, 0, 2, 0, 0, 0, 1}, protocol.MalformedFrame},
	} {
		c := e.dial(t, "tcp")
		if err := c.WriteRaw(k.raw); err != nil {
			t.Fatal(err)
		}
		if got := kick(c); got != k.code {
			t.Errorf("%x: kicked with %v, want %v", k.raw, got, k.code)
		}
	}
	ws := e.dial(t, "ws")
	_ = ws.WriteText("hello")
	if got := kick(ws); got != protocol.MalformedFrame {
		t.Errorf("text message: %v", got)
	}
	// Before login: three refusals, then a kick; Ping is fine.
	c := e.dial(t, "tcp")
	if _, err := c.Ping(ctx(t)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, _, err := e.call(t, c, "EchoReq", `{}`); codeOf(err) != protocol.Unauthenticated && i < 2 {
			t.Fatalf("request %d before login: %v", i, err)
		}
	}
	if got := kick(c); got != protocol.Unauthenticated {
		t.Errorf("kicked with %v after 3 requests before login", got)
	}
	// After login: unknown ids, garbage payloads and server-only messages leave the connection open.
	c = e.dial(t, "tcp")
	if _, err := c.Login(ctx(t), "guest", "bad-input-device-01", "", nil); err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct {
		id      uint16
		payload []byte
		code    protocol.Code
	}{
		{64000, nil, protocol.UnknownMessage},
		{999, nil, protocol.UnknownMessage},
		{e.msgs.Schema.ByName("EchoReq").ID, []byte{0xff, 0xff, 0xff}, protocol.DecodeFailed},
		{protocol.MsgPong, nil, protocol.Forbidden},
		{e.msgs.Schema.ByName("ArenaMoveReq").ID, nil, protocol.BadRequest}, // not in a room
		{e.msgs.Schema.ByName("ArenaState").ID, nil, protocol.Unavailable},  // nobody handles it
	} {
		if _, err := c.Request(ctx(t), k.id, k.payload); codeOf(err) != k.code {
			t.Errorf("id %d: %v, want %v", k.id, err, k.code)
		}
	}
	if _, _, err := e.call(t, c, "EchoReq", `{"n": "1"}`); err != nil {
		t.Fatalf("the connection should still serve: %v", err)
	}
	// Random frames from another connection do not disturb this one.
	noise := e.dial(t, "tcp")
	var raw []byte
	for i := 0; i < 2000; i++ {
		raw = wire.AppendStream(raw, wire.Frame{MsgID: uint16(i * 7919), Seq: uint32(i), Payload: []byte{byte(i), byte(i >> 3)}})
	}
	_ = noise.WriteRaw(raw)
	if _, _, err := e.call(t, c, "EchoReq", `{"n": "2"}`); err != nil {
		t.Fatalf("after noise: %v", err)
	}
}

func TestDuplicateLoginAndShutdown(t *testing.T) {
	e := start(t, nil)
	first := e.dial(t, "tcp")
	if _, err := first.Login(ctx(t), "guest", "twice-device-000001", "", nil); err != nil {
		t.Fatal(err)
	}
	second := e.dial(t, "ws")
	if _, err := second.Login(ctx(t), "guest", "twice-device-000001", "", nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-first.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the first connection stayed open")
	}
	if k := first.Kicked(); k == nil || protocol.Code(k.Code) != protocol.KickedDuplicateLogin {
		t.Fatalf("first connection: %v", first.Kicked())
	}
	e.stop()
	select {
	case <-second.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the connection stayed open after the stop")
	}
	if k := second.Kicked(); k == nil || protocol.Code(k.Code) != protocol.ServerShutdown {
		t.Fatalf("on stop: %v", second.Kicked())
	}
}

func TestHotReload(t *testing.T) {
	e := start(t, func(c *config.Config) { c.Lua.Debounce = 20 * time.Millisecond })
	c := e.dial(t, "tcp")
	if _, err := c.Login(ctx(t), "guest", "reloader-device-001", "", nil); err != nil {
		t.Fatal(err)
	}
	echo := filepath.Join(e.dir, "lua", "lobby", "echo.lua")
	write := func(src string) {
		tmp := echo + ".tmp"
		if err := os.WriteFile(tmp, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, echo); err != nil {
			t.Fatal(err)
		}
	}
	waitReply := func(want string) {
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, text, err := e.call(t, c, "EchoReq", `{"n": "1"}`)
			if err != nil {
				t.Fatalf("request failed during reload: %v", err)
			}
			if strings.Contains(text, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("reply %s never became %s", text, want)
			}
		}
	}
	write(`mf.handle("EchoReq", function(ctx, req) return "EchoAck", { n = req.n + 41 } end)`)
	waitReply(`"n":"42"`)
	write(`mf.handle("EchoReq", function(ctx, req) return "EchoAck", { n = req.n + 1 end)`) // broken
	for deadline := time.Now().Add(10 * time.Second); e.n.Status().LastReload.Outcome != "rejected"; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the broken save was never rejected; last reload: %+v", e.n.Status().LastReload)
		}
	}
	waitReply(`"n":"42"`) // the old code keeps serving
	if st := e.n.Status(); len(st.LastReload.Problems) == 0 || st.LastReload.Problems[0].File != "lua/lobby/echo.lua" {
		t.Fatalf("last reload: %+v", st.LastReload)
	}
}

// TestNewFails: New returns the reason of a failed start, without panicking, and releases what it
// opened (the store's lock), so that a corrected start on the same data directory succeeds.
func TestNewFails(t *testing.T) {
	e := start(t, nil)
	dir := t.TempDir()
	copyTree(t, "../../lua", filepath.Join(dir, "lua"))
	copyTree(t, "../../proto", filepath.Join(dir, "proto"))
	base := config.Default()
	base.DataDir = filepath.Join(dir, "data")
	base.LuaDir = filepath.Join(dir, "lua")
	base.ProtoDir = filepath.Join(dir, "proto")
	base.Gate.TCP, base.Gate.WS, base.Admin.Addr = "127.0.0.1:0", "-", "-"
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	echo := filepath.Join(dir, "lua", "lobby", "echo.lua")
	good, err := os.ReadFile(echo)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(echo, []byte("local x = = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(*config.Config)
		want string
	}{
		{"script error", func(*config.Config) {}, "echo.lua:1"},
		{"missing lua_dir", func(c *config.Config) { c.LuaDir = filepath.Join(dir, "none") }, "lua_dir"},
		{"missing proto_dir", func(c *config.Config) { c.ProtoDir = filepath.Join(dir, "none") }, "proto_dir"},
		{"store in use", func(c *config.Config) { c.DataDir = filepath.Join(e.dir, "data") }, "in use"},
		{"invalid config", func(c *config.Config) { c.Lua.PoolSize = 0 }, "lua.pool_size"},
	} {
		cfg := base
		tc.edit(&cfg)
		n, err := node.New(cfg, log, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) || n != nil {
			t.Errorf("%s: New = %v, %v; want no node and an error about %s", tc.name, n, err, tc.want)
		}
	}
	if err := os.WriteFile(echo, good, 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := node.New(base, log, nil)
	if err != nil {
		t.Fatalf("New after the failed starts: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

// The paths in New's errors have forward slashes on every OS (make test-windows checks the same on
// moonforge.exe under Wine).
func TestNewErrorsUseForwardSlashes(t *testing.T) {
	e := start(t, nil)
	cfg := config.Default()
	cfg.DataDir = filepath.Join(e.dir, "data")
	cfg.LuaDir = filepath.Join(e.dir, "lua")
	cfg.ProtoDir = filepath.Join(e.dir, "proto")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	_, err := node.New(cfg, log, nil)
	if want := filepath.ToSlash(filepath.Join(cfg.DataDir, "moonforge.db")); !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), want) {
		t.Errorf("data directory in use: %v, want store.ErrLocked naming %s", err, want)
	}
	cfg.LuaDir = filepath.Join(e.dir, "none", "lua")
	if _, err := node.New(cfg, log, nil); err == nil || !strings.Contains(err.Error(), filepath.ToSlash(cfg.LuaDir)) {
		t.Errorf("missing lua_dir: %v, want it named %s", err, filepath.ToSlash(cfg.LuaDir))
	}
}

// TestStoreBackends: a node runs on Redis and on MySQL as on the embedded
// store; accounts outlive the node.
func TestStoreBackends(t *testing.T) {
	backends := map[string]func(*config.Config){
		"redis": func(c *config.Config) {
			c.Store.Backend = "redis"
			c.Store.Redis.Addrs = []string{storetest.StartRedis(t, storetest.DurableRedis...).Addr}
		},
		"mysql": func(c *config.Config) {
			c.Store.Backend = "mysql"
			c.Store.MySQL.DSN = storetest.MySQLDSN(t)
		},
	}
	for name, set := range backends {
		t.Run(name, func(t *testing.T) {
			shared := config.Default()
			set(&shared) // both nodes use one store
			cfg := func(c *config.Config) { c.Store = shared.Store }
			e := start(t, cfg)
			c := e.dial(t, "tcp")
			ack, err := c.Login(ctx(t), "password", "ann", "correct horse", map[string]string{"register": "1"})
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := e.call(t, c, "ChatSendReq", `{"text": "stored"}`); err != nil {
				t.Fatal(err)
			}
			e.stop()
			e2 := start(t, cfg)
			again, err := e2.dial(t, "tcp").Login(ctx(t), "password", "ann", "correct horse", nil)
			if err != nil || again.PlayerId != ack.PlayerId {
				t.Fatalf("the first node's account on the second: %+v, %v", again, err)
			}
		})
	}
	_, err := node.New(func() config.Config {
		c := config.Default()
		c.LuaDir, c.ProtoDir = "../../lua", "../../proto"
		c.Store.Backend, c.Store.Timeout = "redis", 500*time.Millisecond
		c.Store.Redis.Addrs = []string{"127.0.0.1:1"}
		return c
	}(), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "store (redis)") {
		t.Fatalf("a node whose store is down: %v", err)
	}
}

// TestOrphanedPlayerDataIsUnloaded: a player whose data is loaded here without a session anywhere
// (its session's end never reached the player's actor) is saved and unloaded after
// player.orphan_after; a player with a session keeps its data.
func TestOrphanedPlayerDataIsUnloaded(t *testing.T) {
	e := start(t, func(c *config.Config) { c.Player.OrphanAfter = 100 * time.Millisecond })
	players := node.PlayerData(e.n)

	a := e.dial(t, "tcp")
	ack, err := a.Login(ctx(t), "guest", "orphan-test-device-online", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.call(t, a, "RenameReq", `{"name": "kept"}`); err != nil {
		t.Fatal(err)
	}
	orphan, err := players.Load(ctx(t), "p-orphan")
	if err != nil {
		t.Fatal(err)
	}
	if err := orphan.Set("notes", []byte("written before the unload")); err != nil {
		t.Fatal(err)
	}
	if got := e.n.Status().Players; got != 2 {
		t.Fatalf("players loaded: %d, want 2", got)
	}

	deadline := time.Now().Add(15 * time.Second)
	for players.Loaded("p-orphan") != nil {
		if time.Now().After(deadline) {
			t.Fatal("the orphaned player is still loaded")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if players.Loaded(ack.PlayerId) == nil {
		t.Fatal("a player with a session was unloaded")
	}
	// Saved, and the lease released: loading it again finds the record.
	again, err := players.Load(ctx(t), "p-orphan")
	if err != nil {
		t.Fatalf("load after the unload: %v", err)
	}
	if got := string(again.Get("notes")); got != "written before the unload" {
		t.Fatalf("the orphan's record after the unload: %q", got)
	}
}
