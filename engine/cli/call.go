package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moonforge/moonforge/engine/client"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/schema"
)

// callOptions are the flags of moonforge call.
type callOptions struct {
	addr, proto, login string
	ws, kcp            bool
	cacert             string // with it, TLS, trusting this PEM certificate
	watch, timeout     time.Duration
}

func callFlags(fs *flag.FlagSet) func([]string) error {
	var o callOptions
	fs.StringVar(&o.addr, "addr", "", "server address (default 127.0.0.1:7001, 127.0.0.1:7002 with -ws, 127.0.0.1:7003 with -kcp)")
	fs.BoolVar(&o.ws, "ws", false, "connect over WebSocket (path /ws) instead of TCP")
	fs.StringVar(&o.cacert, "tls", "", "connect over TLS (default ports 7443, 7444 with -ws), trusting this PEM certificate (make run: data/dev-cert.pem)")
	fs.BoolVar(&o.kcp, "kcp", false, "connect over KCP (UDP) instead of TCP")
	fs.StringVar(&o.proto, "proto", "proto", "directory of the .proto schema, read at each call")
	fs.StringVar(&o.login, "login", "guest:moonforge-call-device", `log in first: "guest[:DEVICE_ID]", "METHOD:ACCOUNT[:SECRET]", or "none"`)
	fs.DurationVar(&o.watch, "watch", 0, "after the reply, print the pushes that arrive for this long")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "how long to wait for the connection, the login and the reply")
	return func(args []string) error {
		if len(args) < 1 || len(args) > 2 {
			return usageError("call needs a message name and, optionally, its fields as JSON")
		}
		body := ""
		if len(args) == 2 {
			body = args[1]
		}
		return call(o, args[0], body, os.Stdout)
	}
}

// call connects, logs in, sends the message name built from the JSON text body and prints the
// reply, then the pushes within o.watch, to out: one line each, the message's name then its JSON.
// An Error reply is returned as an error naming its code.
func call(o callOptions, name, body string, out io.Writer) error {
	sch, err := schema.Load(o.proto)
	if err != nil {
		if _, serr := os.Stat(o.proto); serr != nil {
			return fmt.Errorf("proto directory %q not found: run in the project directory, or pass -proto DIR", o.proto)
		}
		return err
	}
	msgs := client.Messages{Schema: sch}
	if sch.ByName(name) == nil {
		return fmt.Errorf("%s is not a message with a msg_id in %s; the requests are: %s", name, o.proto, strings.Join(requests(sch), ", "))
	}
	id, payload, err := msgs.Encode(name, body)
	if err != nil {
		return err
	}
	method, account, secret, err := parseLogin(o.login)
	if err != nil {
		return usageError(err.Error())
	}

	cfg, err := callConfig(o)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return fmt.Errorf("no server answers at %s over %s (is moonforge run started? -addr names another address)", cfg.Addr, cfg.Transport)
		}
		return fmt.Errorf("connecting to %s: %w", cfg.Addr, err)
	}
	defer c.Close()
	if method != "" {
		if _, err := c.Login(ctx, method, account, secret, nil); err != nil {
			if cfg.Transport == "kcp" && errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("no server answers at %s over kcp within %s (KCP has no handshake: a wrong address shows only as silence)", cfg.Addr, o.timeout)
			}
			return fmt.Errorf("login %s: %w", method, describe(c, err))
		}
	}

	var mu sync.Mutex // out is written by this goroutine and the push printer
	printf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, format, args...)
	}
	var printer sync.WaitGroup
	stop := make(chan struct{})
	defer printer.Wait()
	defer close(stop)
	if o.watch > 0 {
		printer.Add(1)
		go func() {
			defer printer.Done()
			for {
				select {
				case p := <-c.Pushes():
					pname, text, err := msgs.Decode(p.MsgID, p.Payload)
					if err != nil {
						text = fmt.Sprintf("(undecodable: %v)", err)
					}
					printf("push %d %s %s\n", p.Seq, pname, text)
				case <-stop:
					return
				}
			}
		}()
	}

	f, err := c.Request(ctx, id, payload)
	if err != nil {
		return fmt.Errorf("%s: %w", name, describe(c, err))
	}
	rname, text, err := msgs.Decode(f.MsgID, f.Payload)
	if err != nil {
		return fmt.Errorf("the reply: %w", err)
	}
	printf("%s %s\n", rname, text)
	if o.watch > 0 {
		select {
		case <-time.After(o.watch):
		case <-c.Done():
		}
	}
	if k := c.Kicked(); k != nil {
		return fmt.Errorf("kicked: %s: %s", protocol.Code(k.Code), k.Reason)
	}
	return nil
}

// describe adds what a failed request says about the connection: the Kick that ended it, or a
// timeout.
func describe(c *client.Client, err error) error {
	if k := c.Kicked(); k != nil {
		return fmt.Errorf("kicked: %s: %s", protocol.Code(k.Code), k.Reason)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no reply within -timeout: %w", err)
	}
	return err
}

// parseLogin splits -login into a login method and its account and secret; "none" gives no
// method.
func parseLogin(s string) (method, account, secret string, err error) {
	if s == "none" {
		return "", "", "", nil
	}
	parts := strings.SplitN(s, ":", 3)
	method = parts[0]
	if method == "" {
		return "", "", "", fmt.Errorf("-login %q: want guest[:DEVICE_ID], METHOD:ACCOUNT[:SECRET] or none", s)
	}
	if len(parts) > 1 {
		account = parts[1]
	}
	if len(parts) > 2 {
		secret = parts[2]
	}
	if method == "guest" && account == "" {
		account = "moonforge-call-device"
	}
	return method, account, secret, nil
}

// requests lists the application messages whose names end in Req, for an unknown name's error.
func requests(sch *schema.Schema) []string {
	var names []string
	for _, m := range sch.Messages() {
		if m.ID >= protocol.FirstAppMsgID && strings.HasSuffix(m.Name, "Req") {
			names = append(names, m.Name)
		}
	}
	sort.Strings(names)
	return names
}

// callConfig is the client configuration of -addr, -ws, -kcp and -tls.
func callConfig(o callOptions) (client.Config, error) {
	cfg := client.Config{Addr: o.addr, Transport: "tcp", Heartbeat: 5 * time.Second}
	if o.ws && o.kcp {
		return cfg, usageError("-ws and -kcp exclude each other")
	}
	if o.kcp && o.cacert != "" {
		return cfg, usageError("-tls and -kcp exclude each other: KCP has no TLS")
	}
	port := "7001"
	switch {
	case o.ws:
		cfg.Transport, port = "ws", "7002"
	case o.kcp:
		cfg.Transport, port = "kcp", "7003"
	}
	if o.cacert != "" {
		pem, err := os.ReadFile(o.cacert)
		if err != nil {
			return cfg, err
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return cfg, fmt.Errorf("-tls %s holds no PEM certificate", o.cacert)
		}
		cfg.TLS = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		cfg.Transport = map[string]string{"tcp": "tls", "ws": "wss"}[cfg.Transport]
		port = map[string]string{"7001": "7443", "7002": "7444"}[port]
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:" + port
	}
	return cfg, nil
}
