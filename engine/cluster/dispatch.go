package cluster

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/moonforge/moonforge/engine/balance"
	"github.com/moonforge/moonforge/engine/bus"
	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/login"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/registry"
	"github.com/moonforge/moonforge/engine/router"
)

// Dispatch delivers req (router.Dispatcher): to this process's actors when it runs the role
// (straight to the mailbox, no bus hop), otherwise to a node of the role whose scripts declare
// req's msg id, picked by the role's policy. It never blocks.
func (c *Cluster) Dispatch(dst router.Destination, req *call.Request) {
	if dst.Room != "" && dst.Node == "" {
		if id, _ := c.deps.Rooms.Where(req.PlayerID); id == dst.Room {
			c.deps.Local.Dispatch(dst, req)
			return
		}
		seat, ok := c.seats.Of(req.PlayerID)
		if !ok || seat.Room != dst.Room {
			req.Fail(protocol.Errorf(protocol.BadRequest, "not in a room"))
			return
		}
		dst.Node = seat.Node
	}
	if dst.Node == c.cfg.Node || dst.Node == "" && c.Runs(dst.Role) {
		dst.Node = ""
		c.deps.Local.Dispatch(dst, req)
		return
	}
	node := dst.Node
	if node == "" {
		node = c.pick(dst.Role, dst.Key, req.MsgID, shareWrite)
		if node == "" {
			req.Fail(&protocol.CodeError{Code: protocol.Unavailable, Message: "no live node of role " + dst.Role + " handles " + req.Msg, RetryAfterMs: 1000})
			return
		}
	}
	e := &bus.Envelope{
		Kind: bus.Kind_KIND_REQUEST, Source: c.cfg.Node, Target: node, Player: req.PlayerID, Session: req.SessionID,
		RequestId: req.ID, ReplyBox: req.ReplyTo.Box, MsgId: uint32(req.MsgID), Msg: req.Msg, Payload: req.Payload,
		Seq: req.Seq, Key: dst.Key,
	}
	e.SetDeadline(req.Deadline)
	c.request(bus.NodeSubject(node), e, req.ReplyTo, req.ID, req.Fail)
}

// Login delivers a custom login method's check to a node of the role that registered it.
func (c *Cluster) Login(dst router.Destination, l *call.Login) {
	if c.Runs(dst.Role) {
		c.deps.Local.Login(dst, l)
		return
	}
	node := c.pick(dst.Role, dst.Key, 0, shareNone)
	if node == "" {
		l.Fail(&protocol.CodeError{Code: protocol.Unavailable, Message: "no live node of role " + dst.Role, RetryAfterMs: 1000})
		return
	}
	e := &bus.Envelope{
		Kind: bus.Kind_KIND_LOGIN_METHOD, Source: c.cfg.Node, Target: node, RequestId: l.ID, ReplyBox: l.ReplyTo.Box,
		Name: l.Method, Account: l.Account, Secret: l.Secret, Extra: l.Extra, Key: dst.Key,
	}
	e.SetDeadline(l.Deadline)
	c.request(bus.NodeSubject(node), e, l.ReplyTo, l.ID, l.Fail)
}

// request publishes e once with this node's reply subject for (box, id); fail answers at once
// when the bus refuses it.
func (c *Cluster) request(subject string, e *bus.Envelope, from call.Address, id uint64, fail func(error)) {
	m := &nats.Msg{Subject: subject, Reply: bus.ReplySubject(c.cfg.Node, from.Box, id), Data: bus.Encode(e)}
	if err := c.nc.PublishMsg(m); err != nil {
		fail(protocol.Errorf(protocol.Unavailable, "bus: %v", err))
		return
	}
	c.sent.Add(1)
}

// sharing says whether a pick uses the placements bucket, shared by every node.
type sharing int

const (
	shareNone  sharing = iota // the placement is kept on this node only (logins, keyed by account)
	shareRead                 // a shared placement is followed, none is made (a session's end)
	shareWrite                // a shared placement is followed, or made (a player's work)
)

// pick returns a live, not draining node of role that handles msgID (0: any), by the role's
// policy; a key keeps the node it was placed on while that node lives (affinity), on every node
// when shared (the placements bucket). "" if none.
func (c *Cluster) pick(role, key string, msgID uint16, share sharing) string {
	return c.pickWith(role, key, share, func(r registry.Record) bool { return msgID == 0 || r.HandlesMsg(msgID) })
}

// pickWith is pick among the nodes that ok accepts. A key is looked up here first (sticky), then
// in the placements that any node made (shared); a new placement is kept here at once and
// written to the bucket by compare-and-set behind it (writeLoop): a placement that another node
// wrote first wins, and this node follows it from then on.
func (c *Cluster) pickWith(role, key string, share sharing, ok func(registry.Record) bool) string {
	sticky := role + "/" + key
	if id, found := c.sticky.Load(sticky); found {
		if r, up := c.up(role, id.(string)); up && ok(r) {
			return r.ID
		}
		c.sticky.Delete(sticky)
	}
	shared := share != shareNone && key != "" && c.placements != nil
	if shared {
		_, shared = registry.PlacementKey(role, key)
	}
	if shared {
		if p, found := c.placements.Of(sticky); found {
			if r, up := c.up(role, p.Node); up && ok(r) {
				c.sticky.Store(sticky, r.ID)
				return r.ID
			}
		}
	}
	recs := c.view.Select(func(r registry.Record) bool {
		return r.Has(role) && r.State == registry.StateUp && ok(r)
	})
	if len(recs) == 0 {
		return ""
	}
	cands := make([]balance.Candidate, len(recs))
	for i, r := range recs {
		cands[i] = balance.Candidate{ID: r.ID, Weight: r.Weight, Load: r.Load.Sessions + r.Load.Mailbox + r.Load.Connections + c.placed(role, r.ID)}
	}
	id := c.policy(role).Pick(key, cands)
	if key != "" {
		c.sticky.Store(sticky, id)
	}
	if shared && share == shareWrite {
		c.unseen.Store(sticky, id)
		c.queueWrite("the placements", func(ctx context.Context) error {
			won, err := c.cfg.Registry.Place(ctx, sticky, id, func(n string) bool { _, up := c.up(role, n); return up })
			if err != nil {
				c.unseen.Delete(sticky)
			}
			if err == nil && won != id {
				c.sticky.Store(sticky, won) // another node placed the key first: follow it
			}
			return err
		})
	}
	return id
}

// placed is how many keys of role the placements bucket puts on node (a lobby's players, whose
// sessions live on the proxies), counting at once the placements made here that the bucket's
// watcher has not shown yet: a policy that counts placements sees each of its picks on the next.
func (c *Cluster) placed(role, node string) int {
	if c.placements == nil {
		return 0
	}
	n := c.placements.Count(registry.PlacedOn(role, node))
	c.unseen.Range(func(k, v any) bool {
		if _, seen := c.placements.Of(k.(string)); seen {
			c.unseen.Delete(k)
		} else if v == node && strings.HasPrefix(k.(string), role+"/") {
			n++
		}
		return true
	})
	return n
}

// up returns the record of node id if it is live, runs role and is not draining.
func (c *Cluster) up(role, id string) (registry.Record, bool) {
	r, live := c.view.Get(id)
	return r, live && r.Has(role) && r.State == registry.StateUp
}

// Forget drops the placements kept here for a player whose session ended; released (the player
// is gone, not logged in elsewhere) drops its shared placements too.
func (c *Cluster) Forget(player string, released bool) {
	if player == "" || !c.started.Load() {
		return
	}
	roles := map[string]bool{}
	for _, r := range c.view.Select(func(registry.Record) bool { return true }) {
		for _, role := range r.Roles {
			roles[role] = true
		}
	}
	for role := range roles {
		key := role + "/" + player
		c.sticky.Delete(key)
		c.unseen.Delete(key)
		if !released || c.placements == nil {
			continue
		}
		if p, ok := c.placements.Of(key); ok {
			c.queueWrite("the placements", func(ctx context.Context) error { return c.cfg.Registry.Unplace(ctx, key, p.Node) })
		}
	}
}

var defaultPolicy = balance.NewHash()

func (c *Cluster) policy(role string) balance.Policy {
	if p, ok := c.policies[role]; ok {
		return p
	}
	return defaultPolicy
}

// Post carries an answer to another node (call.Poster for call.Boxes' remote answers).
func (c *Cluster) Post(a call.Answer) {
	e := &bus.Envelope{Kind: bus.Kind_KIND_ANSWER, Source: c.cfg.Node, Target: a.To.Node, RequestId: a.ID, ReplyBox: a.To.Box, MsgId: uint32(a.MsgID), Payload: a.Payload}
	if a.Value != nil {
		b, err := json.Marshal(a.Value)
		if err != nil {
			a.Err = protocol.Errorf(protocol.Internal, "the call's result cannot cross the bus: %v", err)
		} else {
			e.Name, e.Payload = "value", b
		}
	}
	e.SetError(a.Err)
	if err := c.nc.Publish(bus.ReplySubject(a.To.Node, a.To.Box, a.ID), bus.Encode(e)); err != nil {
		c.logOnce("answer", "cannot send an answer", err)
	}
}

// onReply posts an answer from the bus, or UNAVAILABLE for NATS's no-responders status, to the
// box it names.
func (c *Cluster) onReply(m *nats.Msg) {
	box, id, ok := bus.ParseReply(c.cfg.Node, m.Subject)
	if !ok {
		c.logOnce("reply-subject", "answer on a subject that names no box", nil)
		return
	}
	to := call.Address{Node: c.cfg.Node, Box: box}
	if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
		c.nores.Add(1)
		c.deps.Boxes.Post(call.Answer{To: to, ID: id, Err: &protocol.CodeError{Code: protocol.Unavailable, Message: "the node went away (no responders)", RetryAfterMs: 100}})
		return
	}
	e, err := bus.Decode(m.Data)
	if err != nil {
		c.logOnce("answer-decode", "an answer from the bus does not decode", err)
		c.deps.Boxes.Post(call.Answer{To: to, ID: id, Err: protocol.Errorf(protocol.Internal, "the answer did not decode")})
		return
	}
	a := call.Answer{To: to, ID: id, MsgID: uint16(e.MsgId), Payload: e.Payload, Err: e.Err()}
	if e.Name == "value" && a.Err == nil {
		if err := json.Unmarshal(e.Payload, &a.Value); err != nil {
			a.Err = protocol.Errorf(protocol.Internal, "the call's result did not decode")
		}
		a.Payload = nil
	}
	c.deps.Boxes.Post(a)
}

// Logins returns a proxy's login service: while a node of the login role lives, logins go there
// (one account store for the cluster); otherwise local checks them.
func (c *Cluster) Logins(local login.Service) login.Service { return logins{c, local} }

type logins struct {
	c     *Cluster
	local login.Service
}

func (s logins) Login(l *call.Login) {
	c := s.c
	if c.Runs("login") || c.view == nil {
		s.local.Login(l)
		return
	}
	node := c.pick("login", l.Account, 0, shareNone)
	if node == "" {
		s.local.Login(l)
		return
	}
	e := &bus.Envelope{
		Kind: bus.Kind_KIND_LOGIN, Source: c.cfg.Node, Target: node, RequestId: l.ID, ReplyBox: l.ReplyTo.Box,
		Name: l.Method, Account: l.Account, Secret: l.Secret, Extra: l.Extra,
	}
	e.SetDeadline(l.Deadline)
	c.request(bus.NodeSubject(node), e, l.ReplyTo, l.ID, l.Fail)
}

// Notify delivers a session's end to a role's mf.on_session_end hook (router.Dispatcher): to this
// process's actors when it runs the role, else one-way to a node of the role picked by the role's
// policy for dst.Key. A node that cannot be reached loses it (logged once).
func (c *Cluster) Notify(dst router.Destination, p call.Presence) {
	if c.Runs(dst.Role) {
		c.deps.Local.Notify(dst, p)
		return
	}
	node := c.pick(dst.Role, dst.Key, 0, shareRead)
	if node == "" {
		c.logOnce("presence", "no live node of role "+dst.Role+" for a session-end hook", nil)
		return
	}
	e := &bus.Envelope{
		Kind: bus.Kind_KIND_PRESENCE, Source: c.cfg.Node, Target: node, Player: p.PlayerID, Session: p.SessionID,
		Role: dst.Role, Key: dst.Key, Event: p.Event, Reason: p.Reason,
	}
	if err := c.nc.Publish(bus.NodeSubject(node), bus.Encode(e)); err != nil {
		c.logOnce("presence", "cannot publish a session-end hook", err)
	}
}
