package bus

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/moonforge/moonforge/engine/config"
)

// MinServerVersion is the oldest nats-server the registry works with: per-key TTLs and the
// markers that tell watchers a key expired came in 2.11.
const MinServerVersion = "2.11.0"

// Options configures Open.
type Options struct {
	NATS    config.NATS
	DataDir string // the embedded server's JetStream store goes to DataDir/nats unless NATS.StoreDir
	// MaxPayload is the largest message the node will send: gate.max_frame plus EnvelopeOverhead.
	// The embedded server's max_payload is raised to it; an external bus must allow it.
	MaxPayload int
	Name       string // the connection's name: the node id
	Log        *slog.Logger
	// Role, if set, is the one role of the node: with authentication it connects as
	// RoleUser(user, Role), allowed only that role's subjects (RoleUsers).
	Role string
}

// Fabric is a node's connection to the bus and, on an embedded bus, the server it runs.
type Fabric struct {
	Conn *nats.Conn
	JS   jetstream.JetStream
	srv  *server.Server
	log  *slog.Logger
}

// Open starts the embedded nats-server when NATS.URLs is empty (listening on NATS.Listen, routed
// to NATS.Routes; in-process connections only without Listen), connects, and checks the server:
// version at least MinServerVersion and max_payload at least MaxPayload, saying which fails.
func Open(o Options) (*Fabric, error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	user, pass := o.NATS.User, o.NATS.Password
	if v := os.Getenv("MOONFORGE_NATS_USER"); v != "" {
		user = v
	}
	if v := os.Getenv("MOONFORGE_NATS_PASSWORD"); v != "" {
		pass = v
	}
	f := &Fabric{log: o.Log}
	copts := []nats.Option{
		nats.Name(o.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(200 * time.Millisecond),
		nats.Timeout(5 * time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				o.Log.Warn("bus disconnected", "error", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { o.Log.Info("bus reconnected", "server", c.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			subj := ""
			if s != nil {
				subj = s.Subject
			}
			o.Log.Warn("bus error", "subject", subj, "error", err)
		}),
	}
	if user != "" {
		connUser := user
		if slices.Contains(Roles, o.Role) {
			connUser = RoleUser(user, o.Role)
		}
		copts = append(copts, nats.UserInfo(connUser, pass))
	}
	if o.NATS.CAFile != "" {
		copts = append(copts, nats.RootCAs(o.NATS.CAFile))
	}
	urls := strings.Join(o.NATS.URLs, ",")
	if urls == "" {
		srv, err := startServer(o, user, pass)
		if err != nil {
			return nil, err
		}
		f.srv = srv
		copts = append(copts, nats.InProcessServer(srv))
	}
	nc, err := nats.Connect(urls, copts...)
	if err != nil {
		f.Close()
		if urls == "" {
			return nil, fmt.Errorf("bus: connecting to the embedded server: %w", err)
		}
		return nil, fmt.Errorf("bus: connecting to %s: %w", urls, err)
	}
	f.Conn = nc
	if err := Check(nc.ConnectedServerVersion(), nc.MaxPayload(), o.MaxPayload); err != nil {
		f.Close()
		return nil, fmt.Errorf("bus %s: %w", nc.ConnectedUrlRedacted(), err)
	}
	if f.JS, err = jetstream.New(nc); err != nil {
		f.Close()
		return nil, fmt.Errorf("bus: %w", err)
	}
	return f, nil
}

// Check returns why a server of version and maxPayload cannot carry a node's traffic of need
// bytes per message, or nil.
func Check(version string, maxPayload int64, need int) error {
	if !versionAtLeast(version, MinServerVersion) {
		return fmt.Errorf("nats-server %s is too old: Moonforge needs %s or newer (per-key TTLs in the registry)", version, MinServerVersion)
	}
	if maxPayload < int64(need) {
		return fmt.Errorf("the server's max_payload %d is smaller than the %d bytes a frame of gate.max_frame and its envelope need: raise max_payload or lower gate.max_frame", maxPayload, need)
	}
	return nil
}

// versionAtLeast compares dotted versions numerically ("2.9.10" < "2.11.0").
func versionAtLeast(have, want string) bool {
	h, w := versionParts(have), versionParts(want)
	for i := range w {
		if h[i] != w[i] {
			return h[i] > w[i]
		}
	}
	return true
}

func versionParts(v string) [3]int {
	var out [3]int
	v, _, _ = strings.Cut(strings.TrimPrefix(v, "v"), "-")
	for i, p := range strings.SplitN(v, ".", 3) {
		n, err := strconv.Atoi(p)
		if err != nil {
			return [3]int{}
		}
		out[i] = n
	}
	return out
}

func startServer(o Options, user, pass string) (*server.Server, error) {
	dir := o.NATS.StoreDir
	if dir == "" {
		dir = filepath.Join(o.DataDir, "nats")
	}
	opts := &server.Options{
		ServerName: o.Name,
		JetStream:  true,
		StoreDir:   dir,
		MaxPayload: int32(o.MaxPayload),
		NoSigs:     true,
		NoLog:      true,
		DontListen: o.NATS.Listen == "",
	}
	if o.MaxPayload > int(opts.MaxPayload) || o.MaxPayload > 64<<20 {
		return nil, fmt.Errorf("bus: max_payload %d is above NATS's limit of 64 MiB", o.MaxPayload)
	}
	if o.NATS.Listen != "" {
		host, port, err := splitHostPort(o.NATS.Listen)
		if err != nil {
			return nil, fmt.Errorf("bus: cluster.nats.listen: %w", err)
		}
		opts.Host, opts.Port = host, port
	}
	if user != "" {
		opts.Users = append([]*server.User{{Username: user, Password: pass}}, RoleUsers(user, pass)...)
	}
	if o.NATS.CertFile != "" {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: o.NATS.CertFile, KeyFile: o.NATS.KeyFile, CaFile: o.NATS.CAFile})
		if err != nil {
			return nil, fmt.Errorf("bus: TLS: %w", err)
		}
		opts.TLSConfig, opts.TLS = tc, true
	}
	if o.NATS.ClusterListen != "" {
		host, port, err := splitHostPort(o.NATS.ClusterListen)
		if err != nil {
			return nil, fmt.Errorf("bus: cluster.nats.cluster_listen: %w", err)
		}
		opts.Cluster = server.ClusterOpts{Name: o.NATS.Name, Host: host, Port: port}
		opts.Routes = server.RoutesFromStr(strings.Join(o.NATS.Routes, ","))
		if user != "" { // routes authenticate with the same credentials
			opts.Cluster.Username, opts.Cluster.Password = user, pass
			for _, r := range opts.Routes {
				r.User = url.UserPassword(user, pass)
			}
		}
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("bus: embedded server: %w", err)
	}
	srv.SetLoggerV2(serverLog{o.Log.With("part", "nats-server")}, false, false, false)
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("bus: the embedded server did not start within 10s (address in use? store directory locked?)")
	}
	return srv, nil
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, err
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

// ClientURL is the embedded server's client address ("" without one, or in-process only).
func (f *Fabric) ClientURL() string {
	if f.srv == nil || f.srv.Addr() == nil {
		return ""
	}
	return "nats://" + f.srv.Addr().String()
}

// ClusterURL is the embedded server's route address ("" without routes).
func (f *Fabric) ClusterURL() string {
	if f.srv == nil || f.srv.ClusterAddr() == nil {
		return ""
	}
	return "nats://" + f.srv.ClusterAddr().String()
}

// Drain drains the connection's subscriptions (messages received are still handled), then
// closes it; the embedded server stops last.
func (f *Fabric) Drain(timeout time.Duration) {
	if f.Conn != nil {
		done := make(chan struct{})
		f.Conn.SetClosedHandler(func(*nats.Conn) { close(done) })
		if err := f.Conn.Drain(); err == nil {
			select {
			case <-done:
			case <-time.After(timeout):
			}
		}
	}
	f.Close()
}

// Close closes the connection and stops the embedded server.
func (f *Fabric) Close() {
	if f.Conn != nil {
		f.Conn.Close()
	}
	if f.srv != nil {
		f.srv.Shutdown()
		f.srv.WaitForShutdown()
	}
}

// serverLog passes the embedded server's warnings and errors to the node's log (its notices at
// debug level).
type serverLog struct{ log *slog.Logger }

func (l serverLog) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l serverLog) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l serverLog) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l serverLog) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l serverLog) Debugf(format string, v ...any)  {}
func (l serverLog) Tracef(format string, v ...any)  {}
