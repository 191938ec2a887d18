package tests

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/moonforge/moonforge/engine/client"
	"github.com/moonforge/moonforge/engine/protocol"
)

// TestLoginTimeout: a connection that has not logged in within gate.login_timeout is kicked with
// UNAUTHENTICATED although it keeps pinging; one that logged in stays.
func TestLoginTimeout(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{config: "gate:\n  login_timeout: 600ms\n"})
	for _, transport := range []string{"tcp", "ws"} {
		t.Run(transport, func(t *testing.T) {
			start := time.Now() // before r connects: its login timeout counts from its accept
			r := dialRaw(t, s, transport)
			in := dialRaw(t, s, transport)
			in.login("in-time-"+transport, 1)
			var kick *protocol.Kick
			for seq := uint32(1); kick == nil; seq++ {
				if time.Since(start) > 10*time.Second {
					t.Fatal("not kicked within 10s")
				}
				// A write may fail once the server has closed: the Kick is then already read.
				ping := frame{id: protocol.MsgPing, seq: seq, payload: []byte{0x08, 0x01}}
				if transport == "tcp" {
					_ = r.writeBytes(ping.stream())
				} else {
					_ = r.writeBytes(ping.bare())
				}
				wait := time.After(100 * time.Millisecond)
			drain:
				for kick == nil {
					select {
					case f, ok := <-r.frames:
						if !ok {
							t.Fatalf("closed without a Kick: %v", r.err)
						}
						if f.id == protocol.MsgKick {
							kick = decodeKick(t, f)
						}
					case <-wait:
						break drain
					}
				}
			}
			if protocol.Code(kick.Code) != protocol.Unauthenticated || time.Since(start) < 500*time.Millisecond {
				t.Fatalf("kick %v after %v", kick, time.Since(start))
			}
			in.sendMsg(protocol.MsgPing, 2, &protocol.Ping{})
			if f := in.reply(2, 5*time.Second); f.id != protocol.MsgPong {
				t.Fatalf("the logged-in connection: %v", f)
			}
		})
	}
}

// TestConnectionLimits: beyond gate.max_connections_per_ip a new TCP connection is closed at once
// and a WebSocket upgrade gets HTTP 503; a closed connection frees its place.
func TestConnectionLimits(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{config: "gate:\n  max_connections: 3\n  max_connections_per_ip: 2\n"})
	a := dialRaw(t, s, "tcp")
	a.login("limit-a", 1)
	b := dialRaw(t, s, "ws")
	b.login("limit-b", 1)

	nc, err := net.Dial("tcp", s.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("third TCP connection: read %v, want it closed", err)
	}
	u := url.URL{Scheme: "ws", Host: s.ws, Path: "/ws"}
	_, resp, err := websocket.DefaultDialer.Dial(u.String(), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third WebSocket: %v %v, want HTTP 503", err, resp)
	}
	if !s.log.waitFor(5*time.Second, "connection refused", "gate.max_connections_per_ip") {
		t.Fatal("no log line for the refused connection")
	}
	a.close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := client.Dial(timeout(t, 5*time.Second), client.Config{Addr: s.tcp, Transport: "tcp"})
		if err == nil {
			if _, err = c.Ping(timeout(t, 2*time.Second)); err == nil {
				_ = c.Close()
				break
			}
			_ = c.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("no place after a connection closed: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, body := s.httpGet(t, "/metrics")
	if !strings.Contains(string(body), `moonforge_connection_warnings_total{kind="conn_limit"`) {
		t.Fatal("metrics lack the refused connections")
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// TestTokens: LoginAck carries a refresh token; RefreshReq before login trades it, once, for new
// tokens; LogoutReq revokes the session's tokens (token login, resume and refresh refused) and
// closes the connection without a Kick; all_sessions revokes every session of the player.
func TestTokens(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{})
	ctx := timeout(t, 30*time.Second)
	c := s.dial(t, "tcp")
	ack := guest(t, c, "tokens-1")
	if ack.RefreshToken == "" || ack.RefreshExpiresAtMs <= ack.ExpiresAtMs {
		t.Fatalf("LoginAck refresh token %q expiring %d (access %d)", ack.RefreshToken, ack.RefreshExpiresAtMs, ack.ExpiresAtMs)
	}
	if left := time.Until(time.UnixMilli(ack.ExpiresAtMs)); left > 16*time.Minute {
		t.Fatalf("access token lives %v, want the 15m default", left)
	}

	fresh := s.dial(t, "ws")
	var ref protocol.RefreshAck
	if err := fresh.Call(ctx, protocol.MsgRefreshReq, &protocol.RefreshReq{RefreshToken: ack.RefreshToken}, &ref); err != nil {
		t.Fatalf("refresh before login: %v", err)
	}
	if ref.Token == "" || ref.RefreshToken == "" || ref.RefreshToken == ack.RefreshToken {
		t.Fatalf("RefreshAck %v", &ref)
	}
	err := fresh.Call(ctx, protocol.MsgRefreshReq, &protocol.RefreshReq{RefreshToken: ack.RefreshToken}, &ref)
	expectCode(t, "a refresh token used twice", err, protocol.Unauthenticated)
	err = fresh.Call(ctx, protocol.MsgRefreshReq, &protocol.RefreshReq{RefreshToken: ack.Token}, &protocol.RefreshAck{})
	expectCode(t, "an access token as refresh token", err, protocol.Unauthenticated)
	if _, err := s.call(ctx, fresh, "EchoReq", `{"n": 1}`); err == nil {
		t.Fatal("RefreshReq logged the connection in")
	}
	if _, err := s.dial(t, "tcp").Resume(ctx, ref.Token, 0); err != nil {
		t.Fatalf("resume with the refreshed token: %v", err)
	}

	// Logout of the first session (now bound to the resumed connection).
	c = s.dial(t, "tcp")
	if _, err := c.Resume(ctx, ref.Token, 0); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if err := c.Call(ctx, protocol.MsgLogoutReq, &protocol.LogoutReq{}, &protocol.LogoutAck{}); err != nil {
		t.Fatalf("logout: %v", err)
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the connection stayed open after LogoutAck")
	}
	if k := c.Kicked(); k != nil {
		t.Fatalf("logout kicked: %v", k)
	}
	for _, token := range []string{ack.Token, ref.Token} {
		_, err = s.dial(t, "tcp").Login(ctx, "token", "", token, nil)
		expectCode(t, "token login with a logged-out token", err, protocol.Unauthenticated)
		_, err = s.dial(t, "tcp").Resume(ctx, token, 0)
		expectCode(t, "resume of a logged-out session", err, protocol.ResumeFailed)
	}
	err = s.dial(t, "tcp").Call(ctx, protocol.MsgRefreshReq, &protocol.RefreshReq{RefreshToken: ref.RefreshToken}, &protocol.RefreshAck{})
	expectCode(t, "refresh of a logged-out session", err, protocol.Unauthenticated)

	// all_sessions: two more sessions of the player, both revoked by one logout.
	second := guest(t, s.dial(t, "tcp"), "tokens-1")
	if second.PlayerId != ack.PlayerId {
		t.Fatalf("a new login after logout: player %q, want %q", second.PlayerId, ack.PlayerId)
	}
	third := s.dial(t, "ws")
	thirdAck, err := third.Login(ctx, "token", "", second.Token, nil)
	if err != nil {
		t.Fatalf("token login of another session: %v", err)
	}
	if err := third.Call(ctx, protocol.MsgLogoutReq, &protocol.LogoutReq{AllSessions: true}, &protocol.LogoutAck{}); err != nil {
		t.Fatalf("logout all: %v", err)
	}
	for _, token := range []string{second.Token, thirdAck.Token} {
		_, err = s.dial(t, "ws").Login(ctx, "token", "", token, nil)
		expectCode(t, "token login after logout of all sessions", err, protocol.Unauthenticated)
	}
}

// TestKeyRotation: the key file is read again when it changes; a new first key signs, tokens of
// the old one stay valid while it is listed, and fail once it is removed.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{})
	ctx := timeout(t, 30*time.Second)
	old := guest(t, s.dial(t, "tcp"), "rotation-1")
	if !strings.HasPrefix(old.Token, "v2.k1.") {
		t.Fatalf("token %q is not signed by k1", old.Token)
	}
	file := s.path("data/token_keys")
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	oldLine := strings.TrimSpace(strings.Split(strings.TrimSpace(string(raw)), "\n")[1])
	newLine := "k2:" + strings.Repeat("QUJD", 11)
	replaceFile(t, file, newLine+"\n"+oldLine+"\n")
	if !s.log.waitFor(10*time.Second, "token keys reloaded", "signing=k2") {
		t.Fatal("the changed key file was not reloaded")
	}
	if _, err := s.dial(t, "tcp").Login(ctx, "token", "", old.Token, nil); err != nil {
		t.Fatalf("k1 token during rotation: %v", err)
	}
	if ack := guest(t, s.dial(t, "tcp"), "rotation-1"); !strings.HasPrefix(ack.Token, "v2.k2.") {
		t.Fatalf("new token %q is not signed by k2", ack.Token)
	}
	replaceFile(t, file, newLine+"\n")
	if !s.log.waitFor(10*time.Second, "token keys reloaded", "keys=1") {
		t.Fatal("the key file without k1 was not reloaded")
	}
	_, err = s.dial(t, "tcp").Login(ctx, "token", "", old.Token, nil)
	expectCode(t, "k1 token after k1 was removed", err, protocol.Unauthenticated)
	replaceFile(t, file, "garbage\n")
	if !s.log.waitFor(10*time.Second, "token key file changed but cannot be used") {
		t.Fatal("a broken key file was not reported")
	}
	if ack := guest(t, s.dial(t, "tcp"), "rotation-1"); !strings.HasPrefix(ack.Token, "v2.k2.") {
		t.Fatalf("after a broken key file: token %q", ack.Token)
	}
}

// TestAdminGuards: off loopback the admin endpoint needs a token or the node does not start; with
// a token every path but /healthz needs it; pprof is off unless enabled; a cross-origin POST is
// refused.
func TestAdminGuards(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd := exec.Command(built.moonforge, "run", "-data", filepath.Join(dir, "data"), "-lua", filepath.Join(built.root, "lua"),
		"-proto", filepath.Join(built.root, "proto"), "-tcp", "127.0.0.1:0", "-ws", "127.0.0.1:0", "-admin", "0.0.0.0:0")
	cmd.Env = append(os.Environ(), "MOONFORGE_ADMIN_TOKEN=")
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); err == nil || code != 1 || !strings.Contains(string(out), "MOONFORGE_ADMIN_TOKEN") {
		t.Fatalf("admin on all interfaces without a token: exit %d, %v\n%s", code, err, out)
	}

	const token = "0123456789abcdef-admin"
	s := startServer(t, options{config: "admin:\n  token_file: admin.token\n",
		prepare: func(_ testing.TB, dir string) { writeFile(t, filepath.Join(dir, "admin.token"), token+"\n") }})
	do := func(method, path string, header map[string]string) int {
		req, _ := http.NewRequest(method, s.adminURL(path), nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	bearer := "Bearer " + token
	for _, c := range []struct {
		method, path string
		header       map[string]string
		want         int
	}{
		{"GET", "/healthz", nil, 200},
		{"GET", "/status", nil, 401},
		{"POST", "/reload", nil, 401},
		{"GET", "/status", map[string]string{"Authorization": bearer}, 200},
		{"POST", "/reload", map[string]string{"Authorization": bearer}, 200},
		{"POST", "/reload", map[string]string{"Authorization": bearer, "Origin": "https://evil.example"}, 403},
		{"GET", "/debug/pprof/", map[string]string{"Authorization": bearer}, 404},
	} {
		if got := do(c.method, c.path, c.header); got != c.want {
			t.Errorf("%s %s %v: %d, want %d", c.method, c.path, c.header, got, c.want)
		}
	}
	out, err = exec.Command(built.moonforge, "reload", "-admin", s.admin).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "token") {
		t.Fatalf("reload without the token: %v\n%s", err, out)
	}
	out, err = exec.Command(built.moonforge, "reload", "-admin", s.admin, "-token-file", s.path("missing.token")).CombinedOutput()
	if exitCode(err) != 1 || !strings.Contains(string(out), "missing.token") {
		t.Fatalf("reload with a missing token file: %v\n%s", err, out)
	}
	out, err = exec.Command(built.moonforge, "reload", "-admin", s.admin, "-token-file", s.path("admin.token")).CombinedOutput()
	if err != nil {
		t.Fatalf("reload with the token: %v\n%s", err, out)
	}
}

// TestWebSocketHeaderTimeout: an upgrade request whose headers never end is closed by the
// WebSocket server's header timeout, and the gateway keeps serving.
func TestWebSocketHeaderTimeout(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{})
	nc, err := net.Dial("tcp", s.ws)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	start := time.Now()
	if _, err := nc.Write([]byte("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err = io.ReadAll(nc)
	if err != nil && !isReset(err) {
		t.Fatalf("the unfinished request: %v, want the server to close it", err)
	}
	if took := time.Since(start); took < 4*time.Second {
		t.Fatalf("closed after %v, want about the 5 s header timeout", took)
	}
	guest(t, s.dial(t, "ws"), "after-slow-header")
}
