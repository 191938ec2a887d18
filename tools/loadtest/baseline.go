package main

import (
	"errors"
	"net"

	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/wire"
)

// baseline is the raw reference: a minimal Go TCP server with the same framing and the same
// reader/queue/writer structure as the gateway, that answers every request with its own payload
// (and LoginReq with an empty LoginAck), with no session, routing, schema or Lua. Every figure of
// a run is reported as a ratio to it, measured on the same machine in the same run.
type baseline struct {
	ln net.Listener
}

func startBaseline(addr string) (*baseline, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	b := &baseline{ln: ln}
	go b.accept()
	return b, nil
}

func (b *baseline) addr() string { return b.ln.Addr().String() }

func (b *baseline) close() { _ = b.ln.Close() }

func (b *baseline) accept() {
	for {
		nc, err := b.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		go serveEcho(nc)
	}
}

func serveEcho(nc net.Conn) {
	defer nc.Close()
	q := wire.NewQueue(16 << 20)
	go func() {
		_ = q.Run(func(batch []byte) error {
			_, err := nc.Write(batch)
			return err
		})
	}()
	defer q.Close(nil)
	r := wire.NewReader(nc, 4096, wire.DefaultMaxLength)
	for {
		f, err := r.Next()
		if err != nil {
			return
		}
		reply := wire.Frame{MsgID: f.MsgID, Flags: wire.FlagReply, Seq: f.Seq, Payload: f.Payload}
		if f.MsgID == protocol.MsgLoginReq {
			reply = wire.Frame{MsgID: protocol.MsgLoginAck, Flags: wire.FlagReply, Seq: f.Seq}
		}
		if f.Seq != 0 && q.Push(reply) != nil {
			return
		}
	}
}
