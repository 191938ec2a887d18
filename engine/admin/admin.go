// Package admin is the operator's HTTP endpoint, bound to loopback by default: health, Prometheus
// metrics, status, the script reload (GET shows the last result, POST triggers one), and, when
// enabled, Go's profiler under /debug/pprof/.
//
// Guards: off loopback the endpoint needs a bearer token (Start refuses to listen without one),
// and with a token every path but /healthz requires it. POST is refused from a browser page of
// another origin (Sec-Fetch-Site, Origin), and without a token only loopback host names are
// served, so that a page cannot reach it through DNS rebinding either.
package admin

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/moonforge/moonforge/engine/reload"
)

// Deps are the parts the endpoint reports on or acts on.
type Deps struct {
	Registry *prometheus.Registry
	Reloader *reload.Reloader
	// Status returns a JSON-encodable summary of the node (version, counts).
	Status func() any
	Log    *slog.Logger
	Token  string      // bearer token; required when addr is not a loopback address
	Pprof  bool        // serve /debug/pprof/
	TLS    *tls.Config // HTTPS when set
}

// Server is the admin HTTP server.
type Server struct {
	srv *http.Server
	ln  net.Listener
	log *slog.Logger
}

// Start listens on addr (e.g. "127.0.0.1:7080") and serves in the background.
func Start(addr string, d Deps) (*Server, error) {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	endpoints := []struct {
		pattern, about string
		handler        http.HandlerFunc
	}{
		{"GET /healthz", "ok while the node serves", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write([]byte("ok\n"))
		}},
		{"GET /metrics", "Prometheus metrics (moonforge_*, Go runtime)", promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{Registry: d.Registry}).ServeHTTP},
		{"GET /status", "version, uptime, connections, sessions, rooms, actors per script version (JSON)", func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, d.Status())
		}},
		{"GET /reload", "the last reload: result, version, changed files, problems with file:line (JSON)", func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, d.Reloader.Last())
		}},
		{"POST /reload", "reload the scripts and schema now; 422 if rejected (JSON, as GET /reload)", func(w http.ResponseWriter, _ *http.Request) {
			res := d.Reloader.Reload("admin")
			status := http.StatusOK
			if res.Outcome == reload.Rejected {
				status = http.StatusUnprocessableEntity
			}
			writeJSON(w, status, res)
		}},
	}
	if d.Pprof {
		endpoints = append(endpoints, struct {
			pattern, about string
			handler        http.HandlerFunc
		}{"/debug/pprof/", "Go's profiler (go tool pprof http://ADDR/debug/pprof/profile)", pprof.Index})
	}
	mux := http.NewServeMux()
	for _, e := range endpoints {
		mux.HandleFunc(e.pattern, e.handler)
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = fmt.Fprintln(w, "Moonforge admin endpoint")
		for _, e := range endpoints {
			_, _ = fmt.Fprintf(w, "  %-17s %s\n", e.pattern, e.about)
		}
	})
	if d.Pprof {
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if d.Token == "" && !isLoopback(ln.Addr()) {
		_ = ln.Close()
		return nil, fmt.Errorf("admin: %s is not a loopback address: set admin.token_file or $%s, or listen on 127.0.0.1", addr, TokenEnv)
	}
	if d.TLS != nil {
		ln = tls.NewListener(ln, d.TLS)
	}
	s := &Server{
		srv: &http.Server{
			Handler:           guard(mux, d.Token),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			IdleTimeout:       60 * time.Second,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          slog.NewLogLogger(d.Log.Handler(), slog.LevelWarn),
		},
		ln:  ln,
		log: d.Log,
	}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin server stopped", "error", err)
		}
	}()
	return s, nil
}

// Addr returns the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Shutdown stops the server, letting requests in progress finish until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// TokenEnv is the environment variable that holds the admin token when admin.token_file is not set.
const TokenEnv = "MOONFORGE_ADMIN_TOKEN"

// guard wraps the endpoints with the checks of the package doc.
func guard(next http.Handler, token string) http.Handler {
	csrf := http.NewCrossOriginProtection()
	want := []byte("Bearer " + token)
	return csrf.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/healthz":
		case token == "" && !loopbackHost(r.Host):
			http.Error(w, "admin: only loopback host names are served without a token", http.StatusForbidden)
			return
		case token != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1:
			w.Header().Set("WWW-Authenticate", `Bearer realm="moonforge"`)
			http.Error(w, "admin: a bearer token is required", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	}))
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// loopbackHost reports whether a Host header names this machine by a loopback name.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	return strings.EqualFold(host, "localhost")
}
