// Package session keeps players' sessions: which connection a logged-in player is bound to, the
// session's push sequence, and a bounded buffer of recent pushes so that a client whose connection
// dropped can resume on a new one without losing a push (docs/protocol.md, ResumeReq).
package session

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/config"
	"github.com/moonforge/moonforge/engine/ident"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/route"
	"github.com/moonforge/moonforge/engine/wire"
)

// Conn is the gateway's side of a connection a session can be bound to. Its methods never block
// on the network and are safe for concurrent use.
type Conn interface {
	// Send queues a frame; an error means the connection is going away.
	Send(f wire.Frame) error
	// Kick queues Kick{code, reason}, then closes the connection.
	Kick(code protocol.Code, reason string)
}

// Config configures a Manager.
type Config struct {
	ResumeWindow    time.Duration // how long a session outlives its connection; default: config.Default
	ReplayMaxPushes int           // pushes kept for resume; default: config.Default
	ReplayMaxBytes  int           // payload bytes kept for resume; default: config.Default
}

// Manager holds the sessions of this process. Safe for concurrent use.
type Manager struct {
	cfg      Config
	mu       sync.Mutex
	byID     map[string]*Session
	byPlayer map[string]*Session
	follower atomic.Pointer[call.Notifier]
	opened   func(s *Session)
	// early: kicks that named a session not registered yet (by session id). A session is
	// claimed in the cluster's directory (OnOpen) before it is registered, so a login on another
	// proxy can displace it and send its kick in between; Open then ends it at once.
	early map[string]earlyKick
}

// earlyKick is a kick that arrived before its session was registered.
type earlyKick struct {
	code   protocol.Code
	reason string
	at     time.Time
}

// earlyKickTTL bounds how long an early kick waits for its session; Open follows the claim within
// the claim's own timeout (seconds).
const earlyKickTTL = time.Minute

// Follow sends the presence messages of every session to n from now on, from any goroutine, never
// under a lock: call.SessionStarted at a login (after the end of the session it replaces),
// call.SessionDetached when the bound connection closed, call.SessionResumed when a resume bound a
// detached session again, and call.SessionEnded with Reason "expired" (not resumed in time),
// "replaced" (the player logged in again) or "shutdown". A session handed to another proxy sends
// call.SessionMoved here and call.SessionStarted (Reason "moved") there.
func (m *Manager) Follow(n call.Notifier) { m.follower.Store(&n) }

func (m *Manager) notify(s *Session, event, reason string) {
	if n := m.follower.Load(); n != nil {
		(*n).Notify(call.Presence{PlayerID: s.PlayerID, SessionID: s.ID, Event: event, Reason: reason})
	}
}

// NewManager returns an empty manager.
func NewManager(cfg Config) *Manager {
	d := config.Default().Session
	if cfg.ResumeWindow <= 0 {
		cfg.ResumeWindow = d.ResumeWindow
	}
	if cfg.ReplayMaxPushes <= 0 {
		cfg.ReplayMaxPushes = d.ReplayPushes
	}
	if cfg.ReplayMaxBytes <= 0 {
		cfg.ReplayMaxBytes = d.ReplayBytes
	}
	return &Manager{cfg: cfg, byID: map[string]*Session{}, byPlayer: map[string]*Session{}, early: map[string]earlyKick{}}
}

// Session is one login of a player. Its fields are guarded by its mutex.
type Session struct {
	ID       string
	PlayerID string
	// PlayerHash is route.Hash(PlayerID), which places the player's requests on a role's actors;
	// computed once, not on every request.
	PlayerHash uint64
	m          *Manager

	mu      sync.Mutex
	conn    Conn
	pushSeq uint32   // seq of the last push
	replay  []Pushed // pushes not yet acknowledged, oldest first
	bytes   int
	acked   uint32
	expiry  *time.Timer
	ended   bool
}

// Pushed is a push kept for resume.
type Pushed struct {
	Seq     uint32
	MsgID   uint16
	Payload []byte
}

// Open starts a new session for a player bound to c and queues ack(session) on c (the LoginAck
// reply; nil for a one-way login) before any push can reach the session. A previous session of the player ends
// ("replaced") and its connection, if any, is kicked with KICKED_DUPLICATE_LOGIN.
func (m *Manager) Open(playerID string, c Conn, ack func(s *Session) wire.Frame) *Session {
	s := &Session{ID: ident.New("s", 24), PlayerID: playerID, PlayerHash: route.Hash(playerID), m: m, conn: c}
	if m.opened != nil {
		m.opened(s)
	}
	m.mu.Lock()
	// Queued under the manager's lock: a push cannot reach s before its ack, and a login the
	// client sends after reading the ack cannot be registered before s.
	if ack != nil {
		_ = c.Send(ack(s))
	}
	old := m.byPlayer[playerID]
	if old != nil {
		delete(m.byID, old.ID)
	}
	m.byID[s.ID] = s
	m.byPlayer[playerID] = s
	m.mu.Unlock()
	if old != nil {
		old.end("replaced", protocol.KickedDuplicateLogin, "the player logged in on another connection")
	}
	m.notify(s, call.SessionStarted, "")
	m.mu.Lock()
	k, kicked := m.early[s.ID]
	delete(m.early, s.ID)
	m.mu.Unlock()
	if kicked {
		m.Kick(playerID, s.ID, k.code, k.reason)
	}
	return s
}

// Kick ends the player's session here with code and reason (another node decided it: a login of
// the same player on another proxy, mf.kick). sessionID "" kicks whatever session the player has;
// otherwise only that one. False if there was none.
func (m *Manager) Kick(playerID, sessionID string, code protocol.Code, reason string) bool {
	m.mu.Lock()
	s := m.byPlayer[playerID]
	if s == nil || sessionID != "" && s.ID != sessionID {
		if sessionID != "" && m.byID[sessionID] == nil {
			m.rememberEarlyKick(sessionID, code, reason)
		}
		m.mu.Unlock()
		return false
	}
	delete(m.byID, s.ID)
	delete(m.byPlayer, playerID)
	m.mu.Unlock()
	reasonWord := "kicked"
	if code == protocol.KickedDuplicateLogin {
		reasonWord = "replaced"
	}
	s.end(reasonWord, code, reason)
	return true
}

// rememberEarlyKick keeps a kick for a session that may still be registered (m.mu held), and
// forgets those older than earlyKickTTL.
func (m *Manager) rememberEarlyKick(sessionID string, code protocol.Code, reason string) {
	now := time.Now()
	for id, k := range m.early {
		if now.Sub(k.at) > earlyKickTTL {
			delete(m.early, id)
		}
	}
	m.early[sessionID] = earlyKick{code: code, reason: reason, at: now}
}

// OnOpen sets fn, called on the goroutine of Open for each new session before it is registered
// and its ack queued (the cluster claims the player in the session directory, so that a login the
// client makes elsewhere after this one's ack comes later in the directory too). fn may block
// briefly. Set it before the first Open.
func (m *Manager) OnOpen(fn func(s *Session)) { m.opened = fn }

// Get returns a live session by id.
func (m *Manager) Get(id string) *Session {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.byID[id]
}

// Count returns the number of live sessions (bound or awaiting resume).
func (m *Manager) Count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.byID)
}

// Push queues a push for a player's session (script.Players). False if the player has none here.
func (m *Manager) Push(playerID string, msgID uint16, payload []byte) bool {
	m.mu.Lock()
	s := m.byPlayer[playerID]
	m.mu.Unlock()
	return s != nil && s.Push(msgID, payload)
}

// PushAll queues a push for every session and returns how many.
func (m *Manager) PushAll(msgID uint16, payload []byte) int {
	m.mu.Lock()
	all := make([]*Session, 0, len(m.byID))
	for _, s := range m.byID {
		all = append(all, s)
	}
	m.mu.Unlock()
	n := 0
	for _, s := range all {
		if s.Push(msgID, payload) {
			n++
		}
	}
	return n
}

// End ends a session at once (reason "logout" and the like): it cannot be resumed, and its
// followers get call.SessionEnded with the reason. Its connection, if any, is not kicked: the
// caller closes it.
func (m *Manager) End(s *Session, reason string) {
	m.mu.Lock()
	if m.byID[s.ID] == s {
		delete(m.byID, s.ID)
	}
	if m.byPlayer[s.PlayerID] == s {
		delete(m.byPlayer, s.PlayerID)
	}
	m.mu.Unlock()
	s.end(reason, 0, "")
}

// Shutdown kicks every bound connection with SERVER_SHUTDOWN and ends every session.
func (m *Manager) Shutdown() {
	m.mu.Lock()
	all := make([]*Session, 0, len(m.byID))
	for _, s := range m.byID {
		all = append(all, s)
	}
	m.byID = map[string]*Session{}
	m.byPlayer = map[string]*Session{}
	m.mu.Unlock()
	for _, s := range all {
		s.end("shutdown", protocol.ServerShutdown, "the server is stopping")
	}
}

// Push gives the next push seq to a message, keeps it for resume, and queues it on the bound
// connection if there is one. False if the session has ended.
func (s *Session) Push(msgID uint16, payload []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return false
	}
	s.pushSeq++
	s.replay = append(s.replay, Pushed{Seq: s.pushSeq, MsgID: msgID, Payload: payload})
	s.bytes += len(payload)
	for len(s.replay) > s.m.cfg.ReplayMaxPushes || (s.bytes > s.m.cfg.ReplayMaxBytes && len(s.replay) > 1) {
		s.bytes -= len(s.replay[0].Payload)
		s.replay[0] = Pushed{}
		s.replay = s.replay[1:]
	}
	if s.conn != nil {
		_ = s.conn.Send(wire.Frame{MsgID: msgID, Seq: s.pushSeq, Payload: payload})
	}
	return true
}

// Ack drops the pushes up to seq from the replay buffer (Ping.ack_push_seq).
func (s *Session) Ack(seq uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq <= s.acked || seq > s.pushSeq {
		return
	}
	s.acked = seq
	i := 0
	for i < len(s.replay) && s.replay[i].Seq <= seq {
		s.bytes -= len(s.replay[i].Payload)
		s.replay[i] = Pushed{}
		i++
	}
	s.replay = s.replay[i:]
}

// PushSeq returns the seq of the last push.
func (s *Session) PushSeq() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pushSeq
}

// Detach unbinds c after its connection closed; the session then waits ResumeWindow for a resume
// before it ends ("expired"). Nothing happens if c is no longer the bound connection.
func (s *Session) Detach(c Conn) {
	s.mu.Lock()
	if s.ended || s.conn != c {
		s.mu.Unlock()
		return
	}
	s.conn = nil
	s.expiry = time.AfterFunc(s.m.cfg.ResumeWindow, func() { s.expire() })
	s.mu.Unlock()
	s.m.notify(s, call.SessionDetached, "")
}

func (s *Session) expire() {
	s.mu.Lock()
	stale := s.ended || s.conn != nil
	s.mu.Unlock()
	if stale {
		return
	}
	s.m.mu.Lock()
	if s.m.byID[s.ID] == s {
		delete(s.m.byID, s.ID)
	}
	if s.m.byPlayer[s.PlayerID] == s {
		delete(s.m.byPlayer, s.PlayerID)
	}
	s.m.mu.Unlock()
	s.end("expired", 0, "")
}

// end marks the session ended, kicks its connection with code (0: none), and reports it.
func (s *Session) end(reason string, code protocol.Code, why string) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended = true
	c := s.conn
	s.conn = nil
	s.replay = nil
	if s.expiry != nil {
		s.expiry.Stop()
	}
	s.mu.Unlock()
	if c != nil && code != 0 {
		c.Kick(code, why)
	}
	s.m.notify(s, call.SessionEnded, reason)
}

// State is what a session carries from one proxy to another when its client resumes there
// (Handover on the proxy that held it, Adopt on the one that takes it).
type State struct {
	ID       string
	PlayerID string
	PushSeq  uint32   // seq of the last push
	Acked    uint32   // the last push the client acknowledged
	Replay   []Pushed // pushes kept for resume, oldest first
}

// Handover removes the player's session sessionID from this manager and returns its state, for
// another proxy to Adopt. A connection still bound to it is kicked with KICKED_DUPLICATE_LOGIN.
// The session is not ended: its followers get call.SessionMoved, and a push for the player that
// arrives afterwards finds no session here (the caller forwards it). An ErrResume if no such
// session is held.
func (m *Manager) Handover(playerID, sessionID string) (State, error) {
	m.mu.Lock()
	s := m.byID[sessionID]
	if s == nil || s.PlayerID != playerID {
		m.mu.Unlock()
		return State{}, &ErrResume{"the session is no longer held: log in again"}
	}
	delete(m.byID, s.ID)
	if m.byPlayer[playerID] == s {
		delete(m.byPlayer, playerID)
	}
	m.mu.Unlock()
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return State{}, &ErrResume{"the session has ended"}
	}
	st := State{ID: s.ID, PlayerID: s.PlayerID, PushSeq: s.pushSeq, Acked: s.acked, Replay: s.replay}
	s.ended = true
	c := s.conn
	s.conn, s.replay = nil, nil
	if s.expiry != nil {
		s.expiry.Stop()
	}
	s.mu.Unlock()
	if c != nil {
		c.Kick(protocol.KickedDuplicateLogin, "the session was resumed on another proxy")
	}
	s.m.notify(s, call.SessionMoved, "")
	return st, nil
}

// Adopt installs a session handed over by another proxy, detached: it waits ResumeWindow for the
// Resume its client asked for. A session of the same player held here ends ("replaced").
func (m *Manager) Adopt(st State) *Session {
	s := &Session{ID: st.ID, PlayerID: st.PlayerID, PlayerHash: route.Hash(st.PlayerID), m: m, pushSeq: st.PushSeq, acked: st.Acked, replay: st.Replay}
	for _, p := range st.Replay {
		s.bytes += len(p.Payload)
	}
	s.expiry = time.AfterFunc(m.cfg.ResumeWindow, func() { s.expire() })
	m.mu.Lock()
	old := m.byPlayer[st.PlayerID]
	if old != nil {
		delete(m.byID, old.ID)
	}
	m.byID[s.ID] = s
	m.byPlayer[s.PlayerID] = s
	m.mu.Unlock()
	if old != nil {
		old.end("replaced", protocol.KickedDuplicateLogin, "the player logged in on another connection")
	}
	m.notify(s, call.SessionStarted, "moved")
	return s
}

// ErrResume is the reason a resume was refused; the client answers it by logging in again.
type ErrResume struct{ Reason string }

func (e *ErrResume) Error() string { return "cannot resume: " + e.Reason }

// Resume binds the session to a new connection c. Under the session's lock, so that no push slips
// in between, it queues first the frame ack(replayed) (the ResumeAck reply; nil for a one-way
// resume), then every kept push
// after lastPushSeq with its original seq; later pushes follow on c. A connection still bound to
// the session is kicked with KICKED_DUPLICATE_LOGIN.
func (s *Session) Resume(lastPushSeq uint32, c Conn, ack func(replayed uint32) wire.Frame) error {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return &ErrResume{"the session has ended"}
	}
	if lastPushSeq > s.pushSeq {
		s.mu.Unlock()
		return &ErrResume{fmt.Sprintf("last_push_seq %d is beyond the session's last push %d", lastPushSeq, s.pushSeq)}
	}
	first := s.pushSeq + 1 // oldest push still held
	if len(s.replay) > 0 {
		first = s.replay[0].Seq
	}
	if lastPushSeq+1 < first {
		s.mu.Unlock()
		return &ErrResume{fmt.Sprintf("pushes %d to %d are no longer held", lastPushSeq+1, first-1)}
	}
	old := s.conn
	s.conn = c
	if s.expiry != nil {
		s.expiry.Stop()
		s.expiry = nil
	}
	var replay []Pushed
	for _, p := range s.replay {
		if p.Seq > lastPushSeq {
			replay = append(replay, p)
		}
	}
	var err error
	if ack != nil {
		err = c.Send(ack(uint32(len(replay))))
	}
	if err == nil {
		for _, p := range replay {
			if c.Send(wire.Frame{MsgID: p.MsgID, Seq: p.Seq, Payload: p.Payload}) != nil {
				break
			}
		}
	}
	s.mu.Unlock()
	if old != nil && old != c {
		old.Kick(protocol.KickedDuplicateLogin, "the session was resumed on another connection")
	}
	if old == nil {
		s.m.notify(s, call.SessionResumed, "")
	}
	return nil
}
