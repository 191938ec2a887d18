package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

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

// serveProcessMetrics serves this process's CPU and memory (Prometheus's process collector) on
// addr's /metrics and returns the address it listens on.
func serveProcessMetrics(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), nil
}

// baselineProcess is the raw echo in a process of its own (this binary's baseline command), so
// that its CPU per request is read from its /metrics like the server's.
type baselineProcess struct {
	cmd         *exec.Cmd
	addr, admin string
}

func startBaselineProcess(ctx context.Context) (*baselineProcess, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe, "baseline", "-addr", "127.0.0.1:0", "-admin", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	b := &baselineProcess{cmd: cmd}
	line, err := bufio.NewReader(out).ReadString('\n')
	if _, serr := fmt.Sscanf(strings.TrimSpace(line), "raw echo baseline on %s metrics on %s", &b.addr, &b.admin); err != nil || serr != nil {
		b.close()
		return nil, fmt.Errorf("raw echo baseline process: %q: %v %v", line, err, serr)
	}
	return b, nil
}

func (b *baselineProcess) close() {
	_ = b.cmd.Process.Kill()
	_ = b.cmd.Wait()
}
