package admin

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/metrics"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/reload"
)

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestEndpoints(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, "../../proto/moonforge/protocol.proto", filepath.Join(dir, "proto/moonforge/protocol.proto"))
	copyFile(t, "../../proto/demo/demo.proto", filepath.Join(dir, "proto/demo/demo.proto"))
	copyFile(t, "../../lua/lobby/echo.lua", filepath.Join(dir, "lua/lobby/echo.lua"))
	m := metrics.New(metrics.Gauges{Sessions: func() int { return 3 }})
	r, err := reload.Start(reload.Config{LuaDir: filepath.Join(dir, "lua"), ProtoDir: filepath.Join(dir, "proto"),
		OnResult: func(res reload.Result) { m.Reloaded(res.Outcome, res.Version, res.Previous) }})
	if err != nil {
		t.Fatal(err)
	}
	m.Answered("demo.EchoReq", 0, time.Millisecond)
	m.Answered("demo.EchoReq", protocol.Timeout, time.Second)
	s, err := Start("127.0.0.1:0", Deps{Registry: m.Registry, Reloader: r, Status: func() any { return map[string]int{"rooms": 7} }, Pprof: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(t.Context())
	base := "http://" + s.Addr().String()
	get := func(method, path string) (int, string) {
		req, _ := http.NewRequest(method, base+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("GET", "/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("healthz %d %q", code, body)
	}
	code, body := get("GET", "/metrics")
	for _, want := range []string{
		`moonforge_requests_total{code="OK",msg="demo.EchoReq"} 1`,
		`moonforge_requests_total{code="TIMEOUT",msg="demo.EchoReq"} 1`,
		`moonforge_sessions 3`,
		`moonforge_reloads_total{result="initial"} 1`,
		`moonforge_script_version_info{version="`,
		`go_goroutines`,
	} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if code, body := get("GET", "/status"); code != 200 || !strings.Contains(body, `"rooms": 7`) {
		t.Fatalf("status %d %s", code, body)
	}
	code, body = get("POST", "/reload")
	var res reload.Result
	if err := json.Unmarshal([]byte(body), &res); err != nil || code != 200 || res.Outcome != reload.Unchanged {
		t.Fatalf("POST /reload %d %s", code, body)
	}
	if err := os.WriteFile(filepath.Join(dir, "lua/lobby/echo.lua"), []byte("mf.handle(("), 0o644); err != nil {
		t.Fatal(err)
	}
	code, body = get("POST", "/reload")
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, `"file": "lua/lobby/echo.lua"`) {
		t.Fatalf("rejected reload %d %s", code, body)
	}
	if code, body := get("GET", "/reload"); code != 200 || !strings.Contains(body, `"result": "rejected"`) {
		t.Fatalf("GET /reload %d %s", code, body)
	}
	if code, _ := get("GET", "/debug/pprof/"); code != 200 {
		t.Fatalf("pprof %d", code)
	}
	code, body = get("GET", "/")
	for _, want := range []string{"GET /healthz", "GET /metrics", "GET /status", "GET /reload", "POST /reload", "/debug/pprof/"} {
		if code != 200 || !strings.Contains(body, "\n  "+want+" ") {
			t.Errorf("the index / does not list %s: %d\n%s", want, code, body)
		}
	}
	if code, _ := get("GET", "/nothing"); code != http.StatusNotFound {
		t.Errorf("GET /nothing: %d, want 404", code)
	}
}

func startGuarded(t *testing.T, addr string, d Deps) (string, error) {
	t.Helper()
	m := metrics.New(metrics.Gauges{})
	d.Registry = m.Registry
	d.Status = func() any { return "ok" }
	s, err := Start(addr, d)
	if err != nil {
		return "", err
	}
	t.Cleanup(func() { _ = s.Shutdown(t.Context()) })
	_, port, _ := strings.Cut(s.Addr().String(), "]:")
	if port == "" {
		_, port, _ = strings.Cut(s.Addr().String(), ":")
	}
	return "127.0.0.1:" + port, nil
}

func do(t *testing.T, method, url string, header map[string]string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestGuards(t *testing.T) {
	if _, err := startGuarded(t, "0.0.0.0:0", Deps{}); err == nil || !strings.Contains(err.Error(), TokenEnv) {
		t.Fatalf("all interfaces without a token: %v", err)
	}
	dir := t.TempDir()
	copyFile(t, "../../proto/moonforge/protocol.proto", filepath.Join(dir, "proto/moonforge/protocol.proto"))
	copyFile(t, "../../proto/demo/demo.proto", filepath.Join(dir, "proto/demo/demo.proto"))
	copyFile(t, "../../lua/lobby/echo.lua", filepath.Join(dir, "lua/lobby/echo.lua"))
	r, err := reload.Start(reload.Config{LuaDir: filepath.Join(dir, "lua"), ProtoDir: filepath.Join(dir, "proto")})
	if err != nil {
		t.Fatal(err)
	}

	// Loopback without a token: no pprof unless enabled; no cross-origin POST; no foreign Host.
	addr, err := startGuarded(t, "127.0.0.1:0", Deps{Reloader: r})
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + addr
	for _, c := range []struct {
		method, path string
		header       map[string]string
		want         int
	}{
		{"GET", "/status", nil, 200},
		{"GET", "/debug/pprof/", nil, 404},
		{"POST", "/reload", nil, 200},
		{"POST", "/reload", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"POST", "/reload", map[string]string{"Origin": "http://evil.example"}, 403},
		{"GET", "/status", map[string]string{"Host": "evil.example:7080"}, 403},
		{"GET", "/healthz", map[string]string{"Host": "evil.example:7080"}, 200},
		{"GET", "/status", map[string]string{"Host": "localhost:7080"}, 200},
	} {
		if got := do(t, c.method, base+c.path, c.header); got != c.want {
			t.Errorf("%s %s %v: %d, want %d", c.method, c.path, c.header, got, c.want)
		}
	}

	// All interfaces with a token: every path but /healthz needs it.
	addr, err = startGuarded(t, "0.0.0.0:0", Deps{Reloader: r, Token: "s3cret", Pprof: true})
	if err != nil {
		t.Fatal(err)
	}
	base = "http://" + addr
	bearer := map[string]string{"Authorization": "Bearer s3cret"}
	for _, c := range []struct {
		method, path string
		header       map[string]string
		want         int
	}{
		{"GET", "/healthz", nil, 200},
		{"GET", "/metrics", nil, 401},
		{"POST", "/reload", nil, 401},
		{"POST", "/reload", map[string]string{"Authorization": "Bearer wrong"}, 401},
		{"GET", "/metrics", bearer, 200},
		{"POST", "/reload", bearer, 200},
		{"GET", "/debug/pprof/", bearer, 200},
		{"GET", "/status", map[string]string{"Authorization": "Bearer s3cret", "Host": "game.example"}, 200},
	} {
		if got := do(t, c.method, base+c.path, c.header); got != c.want {
			t.Errorf("token: %s %s %v: %d, want %d", c.method, c.path, c.header, got, c.want)
		}
	}
}
