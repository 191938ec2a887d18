// Package admin is the operator's HTTP endpoint, bound to loopback by default: health, Prometheus
// metrics, status, the script reload (GET shows the last result, POST triggers one), and Go's
// profiler under /debug/pprof/.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
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
		{"/debug/pprof/", "Go's profiler (go tool pprof http://ADDR/debug/pprof/profile)", pprof.Index},
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
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(d.Log.Handler(), slog.LevelWarn)},
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
