package session

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/route"
	"github.com/moonforge/moonforge/engine/wire"
)

// conn records what a session queues on it.
type conn struct {
	mu     sync.Mutex
	frames []wire.Frame
	kicked protocol.Code
}

func (c *conn) Send(f wire.Frame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.frames = append(c.frames, f)
	return nil
}

func (c *conn) Kick(code protocol.Code, _ string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.kicked = code
}

func (c *conn) seqs() []uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []uint32
	for _, f := range c.frames {
		out = append(out, f.Seq)
	}
	return out
}

func ack(seq uint32) func(*Session) wire.Frame {
	return func(*Session) wire.Frame {
		return wire.Frame{MsgID: protocol.MsgLoginAck, Flags: wire.FlagReply, Seq: seq}
	}
}

func resumeAck(replayed uint32) wire.Frame {
	return wire.Frame{MsgID: protocol.MsgResumeAck, Flags: wire.FlagReply, Seq: 99, Payload: []byte{byte(replayed)}}
}

func equal(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestPushSeqAndResume(t *testing.T) {
	m := NewManager(Config{})
	c1 := &conn{}
	s := m.Open("p1", c1, ack(1))
	for i := 0; i < 5; i++ {
		if !m.Push("p1", 2000, []byte{byte(i)}) {
			t.Fatal("push refused")
		}
	}
	// The LoginAck reply comes before every push; pushes count from 1.
	if got := c1.seqs(); !equal(got, []uint32{1, 1, 2, 3, 4, 5}) || c1.frames[0].MsgID != protocol.MsgLoginAck {
		t.Fatalf("frames %v", got)
	}
	s.Detach(c1)
	m.Push("p1", 2000, []byte{5}) // while detached: kept for the resume
	c2 := &conn{}
	if err := s.Resume(3, c2, resumeAck); err != nil {
		t.Fatal(err)
	}
	m.Push("p1", 2000, []byte{6})
	got := c2.seqs()
	if !equal(got, []uint32{99, 4, 5, 6, 7}) || c2.frames[0].Payload[0] != 3 {
		t.Fatalf("after resume: %v (replayed %d)", got, c2.frames[0].Payload[0])
	}
	if s.PushSeq() != 7 {
		t.Fatalf("push seq %d", s.PushSeq())
	}
}

func TestResumeRefusals(t *testing.T) {
	m := NewManager(Config{ReplayMaxPushes: 3})
	c := &conn{}
	s := m.Open("p1", c, ack(1))
	for i := 0; i < 10; i++ {
		m.Push("p1", 2000, nil)
	}
	s.Detach(c)
	if err := s.Resume(5, &conn{}, resumeAck); err == nil {
		t.Fatal("resumed although pushes 6 and 7 were dropped from the buffer")
	}
	if err := s.Resume(11, &conn{}, resumeAck); err == nil {
		t.Fatal("resumed from a seq the session never sent")
	}
	c3 := &conn{}
	if err := s.Resume(7, c3, resumeAck); err != nil || !equal(c3.seqs(), []uint32{99, 8, 9, 10}) {
		t.Fatalf("resume from 7: %v %v", err, c3.seqs())
	}
}

func TestAckDropsReplay(t *testing.T) {
	m := NewManager(Config{})
	c := &conn{}
	s := m.Open("p1", c, ack(1))
	for i := 0; i < 4; i++ {
		m.Push("p1", 2000, nil)
	}
	s.Ack(3)
	s.Detach(c)
	if err := s.Resume(2, &conn{}, resumeAck); err == nil {
		t.Fatal("acknowledged pushes were replayed")
	}
	c2 := &conn{}
	if err := s.Resume(3, c2, resumeAck); err != nil || !equal(c2.seqs(), []uint32{99, 4}) {
		t.Fatalf("%v %v", err, c2.seqs())
	}
}

func TestReplayByteLimit(t *testing.T) {
	m := NewManager(Config{ReplayMaxBytes: 100})
	c := &conn{}
	s := m.Open("p1", c, ack(1))
	for i := 0; i < 5; i++ {
		m.Push("p1", 2000, make([]byte, 40))
	}
	s.Detach(c)
	if err := s.Resume(2, &conn{}, resumeAck); err == nil {
		t.Fatal("more than 100 bytes were kept")
	}
	if err := s.Resume(3, &conn{}, resumeAck); err != nil {
		t.Fatalf("the last 2 pushes (80 bytes) should be kept: %v", err)
	}
}

func TestDuplicateLoginKicksAndReplaces(t *testing.T) {
	var ended []string
	var mu sync.Mutex
	m := NewManager(Config{})
	m.Follow(notified(func(p call.Presence) {
		mu.Lock()
		ended = append(ended, p.Event+":"+p.Reason)
		mu.Unlock()
	}))
	c1, c2 := &conn{}, &conn{}
	old := m.Open("p1", c1, ack(1))
	m.Push("p1", 2000, nil)
	cur := m.Open("p1", c2, ack(1))
	if c1.kicked != protocol.KickedDuplicateLogin {
		t.Fatalf("old connection kicked with %v", c1.kicked)
	}
	if m.Get(old.ID) != nil || m.Get(cur.ID) != cur || m.Count() != 1 {
		t.Fatal("the old session is still held")
	}
	m.Push("p1", 2000, nil)
	if got := c2.seqs(); !equal(got, []uint32{1, 1}) {
		t.Fatalf("a new session counts pushes from 1: %v", got)
	}
	if err := old.Resume(0, &conn{}, resumeAck); err == nil {
		t.Fatal("resumed a replaced session")
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"started:", "ended:replaced", "started:"}; fmt.Sprint(ended) != fmt.Sprint(want) {
		t.Fatalf("presence %v, want %v", ended, want)
	}
}

// A kick that names a session claimed elsewhere before it is registered here (a login on another
// proxy displaced it in between) ends it as soon as it is registered: both logins never survive.
func TestKickBeforeRegistrationEndsTheSession(t *testing.T) {
	m := NewManager(Config{})
	m.OnOpen(func(s *Session) {
		if m.Kick(s.PlayerID, s.ID, protocol.KickedDuplicateLogin, "the player logged in on another proxy") {
			t.Error("Kick found a session that is not registered yet")
		}
	})
	c := &conn{}
	s := m.Open("p1", c, ack(1))
	if c.kicked != protocol.KickedDuplicateLogin {
		t.Fatalf("connection kicked with %v, want KICKED_DUPLICATE_LOGIN", c.kicked)
	}
	if m.Get(s.ID) != nil || m.Count() != 0 {
		t.Fatal("the displaced session is still held")
	}
	if len(m.early) != 0 {
		t.Fatalf("%d early kicks kept after use", len(m.early))
	}
	m.OnOpen(nil)
	if m.Kick("p2", "s-never", protocol.KickedDuplicateLogin, "") || len(m.early) != 1 {
		t.Fatal("a kick for an unknown session is not kept")
	}
	m.early["s-never"] = earlyKick{at: time.Now().Add(-2 * earlyKickTTL)}
	m.Kick("p3", "s-other", protocol.KickedDuplicateLogin, "")
	if _, stale := m.early["s-never"]; stale || len(m.early) != 1 {
		t.Fatalf("early kicks past their time are not forgotten: %v", m.early)
	}
}

func TestExpiryAfterResumeWindow(t *testing.T) {
	done := make(chan string, 8)
	m := NewManager(Config{ResumeWindow: 20 * time.Millisecond})
	m.Follow(notified(func(p call.Presence) { done <- p.Event + ":" + p.Reason }))
	c := &conn{}
	s := m.Open("p1", c, ack(1))
	s.Detach(c)
	if err := s.Resume(0, &conn{}, resumeAck); err != nil {
		t.Fatal(err)
	}
	c = &conn{}
	if err := s.Resume(0, c, resumeAck); err != nil { // a resume over a bound connection: no presence change
		t.Fatal(err)
	}
	s.Detach(c)
	var got []string
	for len(got) < 5 {
		select {
		case e := <-done:
			got = append(got, e)
		case <-time.After(5 * time.Second):
			t.Fatalf("the session did not expire: %v", got)
		}
	}
	if want := []string{"started:", "disconnected:", "resumed:", "disconnected:", "ended:expired"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("presence %v, want %v", got, want)
	}
	if m.Get(s.ID) != nil || m.Push("p1", 2000, nil) {
		t.Fatal("an expired session is still reachable")
	}
}

func TestResumeCancelsExpiryAndKicksOldConnection(t *testing.T) {
	m := NewManager(Config{ResumeWindow: 50 * time.Millisecond})
	c1 := &conn{}
	s := m.Open("p1", c1, ack(1))
	s.Detach(c1)
	c2 := &conn{}
	if err := s.Resume(0, c2, resumeAck); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // past the window: the resumed session must still be there
	if m.Get(s.ID) == nil {
		t.Fatal("the resumed session expired")
	}
	// A resume while another connection is still bound takes the session over.
	c3 := &conn{}
	if err := s.Resume(0, c3, resumeAck); err != nil {
		t.Fatal(err)
	}
	if c2.kicked != protocol.KickedDuplicateLogin {
		t.Fatalf("the previous connection was not kicked: %v", c2.kicked)
	}
}

func TestShutdownKicksEveryone(t *testing.T) {
	m := NewManager(Config{})
	conns := []*conn{{}, {}, {}}
	for i, c := range conns {
		m.Open(string(rune('a'+i)), c, ack(1))
	}
	m.Shutdown()
	for i, c := range conns {
		if c.kicked != protocol.ServerShutdown {
			t.Fatalf("conn %d: %v", i, c.kicked)
		}
	}
	if m.Count() != 0 || m.PushAll(2000, nil) != 0 {
		t.Fatal("sessions survived the shutdown")
	}
}

// notified is a call.Notifier that calls a function.
type notified func(call.Presence)

func (f notified) Notify(p call.Presence) { f(p) }

// A session handed over leaves its manager without ending (followers see "moved", its bound
// connection is kicked); the manager that adopts it resumes it with the same pushes and seq.
func TestHandoverAndAdopt(t *testing.T) {
	from, to := NewManager(Config{}), NewManager(Config{})
	var mu sync.Mutex
	var events []string
	from.Follow(notified(func(p call.Presence) { mu.Lock(); events = append(events, p.Event); mu.Unlock() }))
	c1 := &conn{}
	s := from.Open("p1", c1, nil)
	for i := 0; i < 4; i++ {
		from.Push("p1", 2000, []byte{byte(i)})
	}
	s.Ack(1)
	if _, err := from.Handover("p2", s.ID); err == nil {
		t.Fatal("handed over another player's session")
	}
	st, err := from.Handover("p1", s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.PushSeq != 4 || st.Acked != 1 || len(st.Replay) != 3 || st.Replay[0].Seq != 2 {
		t.Fatalf("state %+v", st)
	}
	if c1.kicked != protocol.KickedDuplicateLogin || from.Count() != 0 || from.Push("p1", 2000, nil) {
		t.Fatalf("after the handover: kicked %v, %d sessions", c1.kicked, from.Count())
	}
	if _, err := from.Handover("p1", s.ID); err == nil {
		t.Fatal("handed over twice")
	}
	mu.Lock()
	if fmt.Sprint(events) != "[started moved]" {
		t.Fatalf("events %v", events)
	}
	mu.Unlock()

	a := to.Adopt(st)
	to.Push("p1", 2000, []byte{4}) // while it waits for its resume
	c2 := &conn{}
	if err := a.Resume(2, c2, resumeAck); err != nil {
		t.Fatal(err)
	}
	if got := c2.seqs(); !equal(got, []uint32{99, 3, 4, 5}) || a.ID != s.ID {
		t.Fatalf("after adopting: %v", got)
	}
}

// An adopted session that is not resumed expires after the resume window.
func TestAdoptedSessionExpires(t *testing.T) {
	m := NewManager(Config{ResumeWindow: 20 * time.Millisecond})
	m.Adopt(State{ID: "s1", PlayerID: "p1", PushSeq: 3})
	deadline := time.Now().Add(5 * time.Second)
	for m.Count() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the adopted session never expired")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A session carries its player's route hash, however it began.
func TestSessionsCarryThePlayersHash(t *testing.T) {
	m := NewManager(Config{})
	if s := m.Open("p1", &conn{}, ack(1)); s.PlayerHash != route.Hash("p1") {
		t.Errorf("opened: %x", s.PlayerHash)
	}
	if s := m.Adopt(State{ID: "s2", PlayerID: "p2"}); s.PlayerHash != route.Hash("p2") {
		t.Errorf("adopted: %x", s.PlayerHash)
	}
}
