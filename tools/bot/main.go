// Command bot plays the demo game against a Moonforge server over TCP, WebSocket or KCP and
// prints every reply and push it receives:
//
//	go run ./tools/bot                      # TCP on 127.0.0.1:7001
//	go run ./tools/bot -ws                  # WebSocket on 127.0.0.1:7002
//	go run ./tools/bot -kcp                 # KCP over UDP on 127.0.0.1:7003
//	go run ./tools/bot -device alice-laptop-0001 -moves 20 -chat "hello"
//	go run ./tools/bot -duel -picks rock,paper  # one side of the duel example (examples/duel)
//
// Scenario: guest login, chat history, chat, statistics, join an arena, move, watch the state
// pushes for a while, leave. With -duel: queue for a duel, pick each round until it is over, read
// the saved record; run two bots to play each other. It exits 0 when every step got the expected
// answer.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moonforge/moonforge/engine/client"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/schema"
)

func main() {
	addr := flag.String("addr", "", "server address (default 127.0.0.1:7001, :7002 with -ws, :7003 with -kcp)")
	ws := flag.Bool("ws", false, "use WebSocket instead of TCP")
	kcp := flag.Bool("kcp", false, "use KCP over UDP instead of TCP")
	protoDir := flag.String("proto", "proto", "directory of the .proto schema")
	device := flag.String("device", "", "guest device id, 16 to 128 bytes (default a new one)")
	text := flag.String("chat", "hello from the bot", "chat message to send")
	moves := flag.Int("moves", 10, "arena moves")
	watch := flag.Duration("watch", 500*time.Millisecond, "how long to watch arena state pushes")
	quiet := flag.Bool("quiet", false, "print only the summary line")
	duel := flag.Bool("duel", false, "play the duel example (examples/duel) instead of the demo")
	picks := flag.String("picks", "", "with -duel: comma-separated picks (rock, paper, scissors) in turn; default random")
	flag.Parse()

	if *ws && *kcp {
		fail(errors.New("-ws and -kcp exclude each other"))
	}
	cfg := client.Config{Addr: *addr, Transport: "tcp", Heartbeat: 5 * time.Second}
	port := "7001"
	switch {
	case *ws:
		cfg.Transport, port = "ws", "7002"
	case *kcp:
		cfg.Transport, port = "kcp", "7003"
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:" + port
	}
	if *device == "" {
		*device = fmt.Sprintf("bot-%d", time.Now().UnixNano())
	}
	sch, err := schema.Load(*protoDir)
	if err != nil {
		fail(err)
	}
	b := &bot{msgs: client.Messages{Schema: sch}, quiet: *quiet}
	if *duel {
		var list []string
		if *picks != "" {
			list = strings.Split(*picks, ",")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		err = b.duel(ctx, cfg, *device, list)
		cancel()
	} else {
		err = b.play(cfg, *device, *text, *moves, *watch)
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bot:", err)
	os.Exit(1)
}

type bot struct {
	msgs   client.Messages
	c      *client.Client
	quiet  bool
	mu     sync.Mutex // serialises the output of play and printPushes
	pushes atomic.Int64
}

func (b *bot) printf(format string, args ...any) {
	if !b.quiet {
		b.mu.Lock()
		fmt.Printf(format, args...)
		b.mu.Unlock()
	}
}

// call sends the message named name built from JSON and returns the reply as JSON.
func (b *bot) call(ctx context.Context, name, json string) (string, error) {
	id, payload, err := b.msgs.Encode(name, json)
	if err != nil {
		return "", err
	}
	b.printf("-> %s %s\n", name, json)
	f, err := b.c.Request(ctx, id, payload)
	if err != nil {
		var ce *protocol.CodeError
		if errors.As(err, &ce) {
			b.printf("<- Error %d %s: %s\n", ce.Code, ce.Code, ce.Message)
		}
		return "", fmt.Errorf("%s: %w", name, err)
	}
	rname, text, err := b.msgs.Decode(f.MsgID, f.Payload)
	b.printf("<- %s %s\n", rname, text)
	return text, err
}

// printPushes prints every push as it arrives, until the connection ends.
func (b *bot) printPushes() {
	for {
		select {
		case p := <-b.c.Pushes():
			b.pushes.Add(1)
			name, text, err := b.msgs.Decode(p.MsgID, p.Payload)
			if err != nil {
				text = err.Error()
			}
			b.printf("<< push %d %s %s\n", p.Seq, name, text)
		case <-b.c.Done():
			return
		}
	}
}

func (b *bot) play(cfg client.Config, device, text string, moves int, watch time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	b.c = c
	b.printf("connected to %s over %s\n", cfg.Addr, cfg.Transport)

	ack, err := c.Login(ctx, "guest", device, "", nil)
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	b.printf("<- LoginAck player=%s session=%s created=%v\n", ack.PlayerId, ack.SessionId, ack.Created)
	go b.printPushes()

	steps := []struct{ name, json string }{
		{"ChatHistoryReq", `{"limit": 5}`},
		{"ChatSendReq", fmt.Sprintf(`{"text": %q}`, text)},
		{"ArenaJoinReq", `{}`},
	}
	for _, s := range steps {
		if _, err := b.call(ctx, s.name, s.json); err != nil {
			return err
		}
	}
	for i := 0; i < moves; i++ {
		dir := []string{`{"x": 1}`, `{"y": 1}`, `{"x": -1}`, `{"y": -1}`}[i%4]
		if _, err := b.call(ctx, "ArenaMoveReq", `{"dir": `+dir+`}`); err != nil {
			return err
		}
	}
	time.Sleep(watch) // the arena state pushes print meanwhile
	if _, err := b.call(ctx, "ArenaLeaveReq", ``); err != nil {
		return err
	}
	stats, err := b.call(ctx, "StatsReq", ``)
	if err != nil {
		return err
	}
	time.Sleep(100 * time.Millisecond) // the last pushes
	fmt.Printf("bot %s: ok, player %s, %d pushes, stats %s\n", device, ack.PlayerId, b.pushes.Load(), strings.TrimSpace(stats))
	return nil
}
