package cluster

import (
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/moonforge/moonforge/engine/bus"
	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/registry"
)

// Call delivers an mf.call (script.Calls): to this process's actors when the target is this node
// or a role it runs, else to a live node that serves the name (a node id, or one of the role's
// nodes by its policy), or, via "master", to the master, which forwards it. Published once; a
// target with no subscriber answers UNAVAILABLE at once, the caller's deadline TIMEOUT.
func (c *Cluster) Call(cl *call.Call, via string) {
	e, err := c.callEnvelope(bus.Kind_KIND_CALL, cl.Target, cl.Name, cl.PlayerID, cl.Args)
	if err != nil {
		cl.Fail(err)
		return
	}
	e.RequestId, e.ReplyBox = cl.ID, cl.ReplyTo.Box
	e.SetDeadline(cl.Deadline)
	if via == "master" && !c.Runs("master") {
		c.request(bus.MasterSubject, e, cl.ReplyTo, cl.ID, cl.Fail)
		return
	}
	subject, local, err := c.resolve(cl.Target, cl.Name, cl.PlayerID)
	switch {
	case err != nil:
		cl.Fail(err)
	case local != "":
		c.deps.Call(local, cl.PlayerID, cl)
	default:
		c.request(subject, e, cl.ReplyTo, cl.ID, cl.Fail)
	}
}

// Send delivers a one-way call to target: a role (one of its nodes, by NATS's queue group) or a
// node. Nothing is answered; a call nobody takes is lost.
func (c *Cluster) Send(target, name string, args any) error {
	e, err := c.callEnvelope(bus.Kind_KIND_SEND, target, name, "", args)
	if err != nil {
		return err
	}
	if c.Runs(target) || target == c.cfg.Node {
		return c.localOneWay(e, args)
	}
	subject := bus.RoleSubject(target)
	if _, ok := c.view.Get(target); ok {
		subject = bus.NodeSubject(target)
	}
	return c.nc.Publish(subject, bus.Encode(e))
}

// Broadcast delivers a one-way call to every node of role (this one too, if it runs the role).
func (c *Cluster) Broadcast(role, name string, args any) error {
	e, err := c.callEnvelope(bus.Kind_KIND_SEND, role, name, "", args)
	if err != nil {
		return err
	}
	if c.cfg.All { // every role is here, and only here
		return c.localOneWay(e, args)
	}
	return c.nc.Publish(bus.BroadcastSubject(role), bus.Encode(e))
}

// Kick ends a player's session here or on the proxy the session directory names.
func (c *Cluster) Kick(player string, code protocol.Code, reason string) bool {
	if c.deps.Kick(player, "", code, reason) {
		return true
	}
	if c.sessions == nil {
		return false
	}
	s, ok := c.sessions.Of(player)
	if !ok || s.Proxy == c.cfg.Node {
		return false
	}
	return c.KickAt(s.Proxy, player, s.Session, code, reason) == nil
}

func (c *Cluster) callEnvelope(kind bus.Kind, target, name, player string, args any) (*bus.Envelope, error) {
	b, err := json.Marshal(args)
	if err != nil {
		return nil, protocol.Errorf(protocol.BadRequest, "the call's arguments cannot cross the bus: %v", err)
	}
	return &bus.Envelope{Kind: kind, Source: c.cfg.Node, Target: target, Name: name, Player: player, Key: player, Payload: b}, nil
}

// resolve says where a call to target goes: local names the role of this process that serves
// name; otherwise subject is a node's.
func (c *Cluster) resolve(target, name, key string) (subject, local string, err error) {
	role := c.deps.Tables.Table().Calls[name]
	if target == c.cfg.Node || c.Runs(target) {
		if role == "" || !c.Runs(role) {
			return "", "", protocol.Errorf(protocol.Unavailable, "no role of %s serves %q", c.cfg.Node, name)
		}
		return "", role, nil
	}
	if _, ok := c.view.Get(target); ok {
		return bus.NodeSubject(target), "", nil
	}
	node := c.pickWith(target, key, shareWrite, func(r registry.Record) bool { return slices.Contains(r.Calls, name) })
	if node == "" {
		return "", "", &protocol.CodeError{Code: protocol.Unavailable, Message: "no live node of " + target + " serves " + name, RetryAfterMs: 1000}
	}
	return bus.NodeSubject(node), "", nil
}

// localOneWay runs a one-way call on this process's actors.
func (c *Cluster) localOneWay(e *bus.Envelope, args any) error {
	role := c.deps.Tables.Table().Calls[e.Name]
	if role == "" || !c.Runs(role) {
		return protocol.Errorf(protocol.Unavailable, "no role serves %q", e.Name)
	}
	c.deps.Call(role, "", &call.Call{Target: e.Target, Name: e.Name, Args: args, Deadline: time.Now().Add(time.Minute), Post: dropAnswers{}})
	return nil
}

// onCall serves an mf.call or mf.send from the bus; the master forwards the calls sent to it for
// other targets (the answer goes straight back to the caller: the reply subject is kept).
func (c *Cluster) onCall(m *nats.Msg, e *bus.Envelope) {
	if e.Expired(time.Now()) {
		c.refuse(m, "expired", protocol.Timeout, errors.New("the call arrived past its deadline"))
		return
	}
	var args any
	if err := json.Unmarshal(e.Payload, &args); err != nil && len(e.Payload) > 0 {
		c.refuse(m, "call-args", protocol.DecodeFailed, err)
		return
	}
	if m.Subject == bus.MasterSubject && e.Target != c.cfg.Node && !c.Runs(e.Target) {
		subject, _, err := c.resolve(e.Target, e.Name, e.Key)
		if err != nil {
			c.refuse(m, "forward", protocol.AsCodeError(err).Code, err)
			return
		}
		c.fwd.Add(1)
		c.log.Debug("forwarding a call", "from", e.Source, "to", e.Target, "name", e.Name)
		if err := c.nc.PublishMsg(&nats.Msg{Subject: subject, Reply: m.Reply, Data: m.Data}); err != nil {
			c.refuse(m, "forward", protocol.Unavailable, err)
		}
		return
	}
	role := c.deps.Tables.Table().Calls[e.Name]
	if role == "" || !c.Runs(role) {
		c.refuse(m, "unknown-call", protocol.Unavailable, errors.New("this node serves no "+e.Name))
		return
	}
	cl := &call.Call{
		ID: e.RequestId, Target: e.Target, Name: e.Name, PlayerID: e.Player, Args: args, Deadline: e.Deadline(),
		ReplyTo: call.Address{Node: e.Source, Box: e.ReplyBox}, Post: c.deps.Boxes,
	}
	if e.Kind == bus.Kind_KIND_SEND {
		cl.Post = dropAnswers{}
		if cl.Deadline.IsZero() {
			cl.Deadline = time.Now().Add(time.Minute)
		}
	}
	c.deps.Call(role, e.Key, cl)
}
