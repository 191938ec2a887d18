package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/client"
	"github.com/moonforge/moonforge/engine/protocol"
)

// pushesOf collects the clustertest.Pushed pushes a client receives: seq and n, in arrival order.
type pushesOf struct {
	mu   sync.Mutex
	seqs []uint32
	ns   []int64
	done chan struct{}
}

func collect(t *testing.T, e *env, c *client.Client) *pushesOf {
	p := &pushesOf{done: make(chan struct{})}
	take := func(m client.Push) {
		name, js, err := e.msgs.Decode(m.MsgID, m.Payload)
		if err != nil || !strings.HasSuffix(name, "Pushed") {
			return
		}
		var v struct{ N string }
		if err := json.Unmarshal([]byte(js), &v); err != nil {
			t.Errorf("push %s: %v", js, err)
			return
		}
		n, _ := strconv.ParseInt(v.N, 10, 64)
		p.mu.Lock()
		p.seqs, p.ns = append(p.seqs, m.Seq), append(p.ns, n)
		p.mu.Unlock()
	}
	go func() {
		defer close(p.done)
		for {
			select {
			case m := <-c.Pushes():
				take(m)
			case <-c.Done():
				for {
					select {
					case m := <-c.Pushes():
						take(m)
					default:
						return
					}
				}
			}
		}
	}()
	return p
}

func (p *pushesOf) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ns)
}

// A client whose connection drops while its proxy lives resumes through another proxy: that proxy
// takes the session over (its push sequence and replay buffer), and the client gets every push
// exactly once, in order, while a lobby keeps pushing to it before, during and after the move.
func TestResumeOnAnotherProxy(t *testing.T) {
	e := newEnv(t)
	e.start("proxy-1", "proxy")
	e.start("proxy-2", "proxy")
	e.start("lobby-1", "lobby")
	e.waitNodes("master-1", "proxy-1", "proxy-2", "lobby-1")

	a, ack := e.dial("proxy-1", "resumer")
	sender, _ := e.dial("proxy-2", "pusher")
	before := collect(t, e, a)

	var sent atomic.Int64
	stop := make(chan struct{})
	senderDone := make(chan error, 1)
	go func() {
		for n := int64(1); ; n++ {
			select {
			case <-stop:
				senderDone <- nil
				return
			default:
			}
			id, payload, err := e.msgs.Encode("PushReq", fmt.Sprintf(`{"player": %q, "n": "%d"}`, ack.PlayerId, n))
			if err != nil {
				senderDone <- err
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err = sender.Request(ctx, id, payload)
			cancel()
			if err != nil {
				senderDone <- fmt.Errorf("PushReq %d: %w", n, err)
				return
			}
			sent.Store(n)
		}
	}()
	waitFor(t, "pushes on proxy-1", func() bool { return before.count() >= 10 })
	_ = a.Close() // the connection drops; proxy-1 keeps the session for a resume
	<-before.done
	waitFor(t, "pushes while detached", func() bool { return sent.Load() >= int64(before.count())+10 })

	before.mu.Lock()
	last := before.seqs[len(before.seqs)-1]
	before.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := e.connect("proxy-2")
	after := collect(t, e, b)
	res, err := b.Resume(ctx, ack.Token, last)
	if err != nil {
		t.Fatalf("resume on proxy-2 with last_push_seq %d: %v", last, err)
	}
	if res.PlayerId != ack.PlayerId || res.Replayed == 0 {
		t.Fatalf("ResumeAck: %+v (player %s)", res, ack.PlayerId)
	}
	at := sent.Load()
	waitFor(t, "pushes after the resume", func() bool { return sent.Load() >= at+20 })
	close(stop)
	if err := <-senderDone; err != nil {
		t.Fatal(err)
	}
	total := sent.Load()
	waitFor(t, "every push on proxy-2", func() bool { return int64(before.count()+after.count()) >= total })
	time.Sleep(300 * time.Millisecond) // a duplicate would arrive meanwhile

	before.mu.Lock()
	after.mu.Lock()
	seqs := append(append([]uint32{}, before.seqs...), after.seqs...)
	ns := append(append([]int64{}, before.ns...), after.ns...)
	after.mu.Unlock()
	before.mu.Unlock()
	if int64(len(ns)) != total {
		t.Fatalf("got %d pushes for %d sent: %v", len(ns), total, ns)
	}
	for i := range ns {
		if ns[i] != int64(i+1) || seqs[i] != seqs[0]+uint32(i) {
			t.Fatalf("push %d is n=%d seq=%d (want n=%d, seq %d): ns %v seqs %v", i, ns[i], seqs[i], i+1, seqs[0]+uint32(i), ns, seqs)
		}
	}
	if out := e.nodes["proxy-1"].logText(); strings.Contains(out, "panic") {
		t.Fatalf("proxy-1 log:\n%s", out)
	}

	// The directory names proxy-2 now: a second resume of the same token elsewhere finds no session.
	c := e.connect("proxy-1")
	if _, err := c.Resume(ctx, res.Token, 0); err == nil {
		// Allowed: proxy-2 hands it back (b is kicked); then b must have been kicked.
		select {
		case <-b.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("the session resumed on proxy-1 while its client on proxy-2 stays connected")
		}
		if k := b.Kicked(); k == nil || protocol.Code(k.Code) != protocol.KickedDuplicateLogin {
			t.Fatalf("client on proxy-2 ended without KICKED_DUPLICATE_LOGIN: %v", b.Err())
		}
	} else if codeOf(err) != protocol.ResumeFailed {
		t.Fatalf("second resume: %v", err)
	}
}

// waitFor polls cond for up to 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
