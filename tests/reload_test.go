package tests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/client"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/schema"
)

// echoLua returns a lua/lobby/echo.lua whose reply's n is the request's plus add.
func echoLua(add int) string {
	return fmt.Sprintf(`-- Echo, changed by the tests: n comes back plus %d.
mf.handle("EchoReq", function(ctx, req)
  return "EchoAck", { body = req.body, n = req.n + %d }
end)
`, add, add)
}

// reloadResult is the JSON of the admin /reload endpoint.
type reloadResult struct {
	Trigger  string   `json:"trigger"`
	Result   string   `json:"result"`
	Version  string   `json:"version"`
	Previous string   `json:"previous"`
	Files    []string `json:"files"`
	Problems []struct {
		File    string `json:"file"`
		Line    int    `json:"line"`
		Message string `json:"message"`
	} `json:"problems"`
	At time.Time `json:"at"`
}

func (r reloadResult) problems() string {
	var b strings.Builder
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "%s:%d: %s; ", p.File, p.Line, p.Message)
	}
	return b.String()
}

// lastReload returns GET /reload.
func (s *server) lastReload(t testing.TB) reloadResult {
	t.Helper()
	code, body := s.httpGet(t, "/reload")
	if code != http.StatusOK {
		t.Fatalf("GET /reload: %d %s", code, body)
	}
	var r reloadResult
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("GET /reload: %v in %s", err, body)
	}
	return r
}

// nextReload waits until GET /reload shows an attempt other than prev (by its time).
func (s *server) nextReload(t testing.TB, prev reloadResult) reloadResult {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := s.lastReload(t)
		if !r.At.Equal(prev.At) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reload within 10s after the one at %s", prev.At)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// statusVersion returns the version of GET /status.
func (s *server) statusVersion(t testing.TB) string {
	t.Helper()
	code, body := s.httpGet(t, "/status")
	var st struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(body, &st); code != http.StatusOK || err != nil {
		t.Fatalf("GET /status: %d %v %s", code, err, body)
	}
	return st.Version
}

// mustEcho sends EchoReq{n} and checks EchoAck.n.
func (s *server) mustEcho(t testing.TB, c *client.Client, n, want int64) {
	t.Helper()
	got, err := s.echo(timeout(t, 10*time.Second), c, n)
	if err != nil {
		t.Fatalf("echo %d: %v", n, err)
	}
	if got != want {
		t.Fatalf("echo %d: got %d, want %d", n, got, want)
	}
}

// noRateLimit is the configuration of tests whose clients send requests back to back, as fast as
// the server answers: faster than gate.rate_limit's default allows.
const noRateLimit = "gate:\n  rate_limit: 0\n"

// TestHotReloadUnderLoad rewrites echo.lua as an editor saves it while 8 clients send requests:
// no request may fail, and every client must see the new code within 1 s of the rename.
func TestHotReloadUnderLoad(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{config: noRateLimit})
	const clients, add = 8, 1000000
	type result struct {
		firstNew atomic.Int64 // unix nanoseconds of the first reply of the new code
		requests int
		errs     []error
	}
	results := make([]result, clients)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range clients {
		c := s.dial(t, []string{"tcp", "ws"}[i%2])
		guest(t, c, fmt.Sprintf("loader-%d", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := &results[i]
			for n := int64(1); ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				got, err := s.echo(ctx, c, n)
				cancel()
				res.requests++
				switch {
				case err != nil:
					res.errs = append(res.errs, err)
				case got == n+add:
					res.firstNew.CompareAndSwap(0, time.Now().UnixNano())
				case got == n && res.firstNew.Load() == 0:
				default:
					res.errs = append(res.errs, fmt.Errorf("echo %d answered %d (new code seen before: %v)", n, got, res.firstNew.Load() != 0))
				}
				if len(res.errs) > 5 {
					return
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	saved := time.Now()
	replaceFile(t, s.path("lua/lobby/echo.lua"), echoLua(add))
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		all := true
		for i := range results {
			all = all && results[i].firstNew.Load() != 0
		}
		if all {
			break
		}
	}
	time.Sleep(200 * time.Millisecond) // the new code keeps answering
	close(stop)
	wg.Wait()

	var first, last time.Duration
	total := 0
	for i := range results {
		r := &results[i]
		total += r.requests
		for _, err := range r.errs {
			t.Errorf("client %d: %v", i, err)
		}
		if r.firstNew.Load() == 0 {
			t.Errorf("client %d never saw the new code (%d requests)", i, r.requests)
			continue
		}
		d := time.Unix(0, r.firstNew.Load()).Sub(saved)
		if first == 0 || d < first {
			first = d
		}
		last = max(last, d)
	}
	t.Logf("%d requests; new code seen %s (first client) to %s (last client) after the rename", total, first, last)
	if last > time.Second {
		t.Errorf("the last client saw the new code %s after the rename, want within 1s", last)
	}
	r := s.lastReload(t)
	if r.Result != "applied" || r.Trigger != "watch" || r.Version == s.version || r.Previous != s.version {
		t.Errorf("GET /reload: %+v, want applied by watch, previous %s", r, s.version)
	}
	if !slices.Contains(r.Files, "lua/lobby/echo.lua") {
		t.Errorf("GET /reload files %v, want lua/lobby/echo.lua", r.Files)
	}
}

// TestReloadByHand turns the watcher off, changes echo.lua and reloads with the CLI and with
// POST /reload.
func TestReloadByHand(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{config: "lua:\n  watch: false\n"})
	c := s.dial(t, "tcp")
	guest(t, c, "by-hand")
	s.mustEcho(t, c, 5, 5)

	replaceFile(t, s.path("lua/lobby/echo.lua"), echoLua(2))
	s.mustEcho(t, c, 5, 5) // no watcher: nothing changes by itself

	out, err := exec.Command(built.moonforge, "reload", "-admin", s.admin).CombinedOutput()
	if err != nil {
		t.Fatalf("moonforge reload: %v\n%s", err, out)
	}
	v1 := s.statusVersion(t)
	if want := "applied: version " + v1; !strings.HasPrefix(string(out), want) {
		t.Errorf("moonforge reload printed %q, want it to start with %q", out, want)
	}
	if !strings.Contains(string(out), "changed lua/lobby/echo.lua") {
		t.Errorf("moonforge reload printed %q, want the changed file", out)
	}
	if v1 == s.version {
		t.Errorf("the version did not change: %s", v1)
	}
	s.mustEcho(t, c, 5, 7)

	replaceFile(t, s.path("lua/lobby/echo.lua"), echoLua(3))
	code, body := s.httpDo(t, http.MethodPost, "/reload")
	var r reloadResult
	if err := json.Unmarshal(body, &r); code != http.StatusOK || err != nil {
		t.Fatalf("POST /reload: %d %v %s", code, err, body)
	}
	if r.Result != "applied" || r.Trigger != "admin" || r.Previous != v1 || r.Version == v1 || !slices.Equal(r.Files, []string{"lua/lobby/echo.lua"}) {
		t.Errorf("POST /reload: %s", body)
	}
	if got := s.statusVersion(t); got != r.Version {
		t.Errorf("/status version %s, POST /reload said %s", got, r.Version)
	}
	s.mustEcho(t, c, 5, 8)

	code, body = s.httpDo(t, http.MethodPost, "/reload")
	r = reloadResult{}
	if err := json.Unmarshal(body, &r); code != http.StatusOK || err != nil || r.Result != "unchanged" || len(r.Files) != 0 {
		t.Errorf("POST /reload without a change: %d %s", code, body)
	}

	// A broken file: the CLI fails and names the file and line; the old code keeps serving.
	replaceFile(t, s.path("lua/lobby/echo.lua"), "-- broken\n\nmf.handle(\"EchoReq\", function(ctx, req)\n  return \"EchoAck\" req\nend)\n")
	out, err = exec.Command(built.moonforge, "reload", "-admin", s.admin).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Errorf("moonforge reload of a broken file: %v, want a non-zero exit\n%s", err, out)
	}
	if !strings.Contains(string(out), "rejected") || !strings.Contains(string(out), "lua/lobby/echo.lua:4") {
		t.Errorf("moonforge reload of a broken file printed %q, want rejected and lua/lobby/echo.lua:4", out)
	}
	code, _ = s.httpDo(t, http.MethodPost, "/reload")
	if code != http.StatusUnprocessableEntity {
		t.Errorf("POST /reload of a broken file: status %d, want 422", code)
	}
	s.mustEcho(t, c, 5, 8)
}

// TestBrokenScript saves broken Lua and .proto files into a watched server: each change is
// rejected with its file and line, the old code and schema keep serving, and a fix is applied.
func TestBrokenScript(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{})
	c := s.dial(t, "tcp")
	guest(t, c, "broken")
	load := startEchoLoad(t, s, "ws", "broken-load")

	cases := []struct {
		name, path, content string
		file                string // the problem's file, as GET /reload shows it
		line                int    // 0: any
		mentions            []string
	}{
		{"lua syntax error", "lua/lobby/echo.lua", "-- broken\n\nlocal x = = 1\n", "lua/lobby/echo.lua", 3, nil},
		{"lua error while loading", "lua/lobby/echo.lua", "-- broken\nlocal t = nil\nlocal y = t.field\n", "lua/lobby/echo.lua", 3, nil},
		{"handler of an unknown message", "lua/lobby/zz_new.lua", "\nmf.handle(\"NoSuchReq\", function() end)\n", "lua/lobby/zz_new.lua", 2, []string{"NoSuchReq"}},
		{"proto syntax error", "proto/demo/zz_bad.proto", "syntax = \"proto3\";\npackage bad;\nmessage {\n", "proto/demo/zz_bad.proto", 3, nil},
		{"duplicate msg_id", "proto/demo/zz_dup.proto", "syntax = \"proto3\";\npackage dup;\nimport \"moonforge/protocol.proto\";\nmessage DupReq { option (moonforge.msg_id) = 1001; }\n", "proto/demo/zz_dup.proto", 4, []string{"DupReq", "EchoReq"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := s.path(tc.path)
			orig, err := os.ReadFile(path)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			prev := s.lastReload(t)
			replaceFile(t, path, tc.content)
			r := s.nextReload(t, prev)
			if r.Result != "rejected" || r.Version != prev.Version {
				t.Fatalf("saving a broken file: %s version %s, want rejected with version %s kept", r.Result, r.Version, prev.Version)
			}
			found := false
			for _, p := range r.Problems {
				if (tc.file == "" || p.File == tc.file) && (tc.line == 0 || p.Line == tc.line) {
					found = true
				}
			}
			t.Logf("rejected: %s", r.problems())
			if !found {
				t.Errorf("problems %s, want one at %s:%d", r.problems(), tc.file, tc.line)
			}
			for _, m := range tc.mentions {
				if !strings.Contains(r.problems(), m) {
					t.Errorf("problems %s do not mention %s", r.problems(), m)
				}
			}
			where := tc.file
			if tc.line > 0 {
				where = fmt.Sprintf("%s:%d", tc.file, tc.line)
			}
			if !s.log.waitFor(5*time.Second, "reload rejected", where) {
				t.Errorf("the server log has no reload rejected line with %s", where)
			}
			s.mustEcho(t, c, 9, 9) // the old code serves
			if got := s.statusVersion(t); got != prev.Version {
				t.Errorf("/status version %s after a rejected reload, want %s", got, prev.Version)
			}
			load.progressed(t)

			// Undo: the previous sources come back.
			prev = r
			if orig == nil {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			} else {
				replaceFile(t, path, string(orig))
			}
			r = s.nextReload(t, prev)
			if r.Result != "unchanged" && r.Result != "applied" {
				t.Fatalf("restoring the file: %s %s", r.Result, r.problems())
			}
			s.mustEcho(t, c, 9, 9)
		})
	}
	if errs := load.stop(); len(errs) > 0 {
		t.Errorf("the background client failed: %v", errs)
	}

	// A fix that changes behaviour is applied.
	prev := s.lastReload(t)
	replaceFile(t, s.path("lua/lobby/echo.lua"), "-- broken\n\nlocal x = = 1\n")
	if r := s.nextReload(t, prev); r.Result != "rejected" {
		t.Fatalf("broken file: %s", r.Result)
	}
	prev = s.lastReload(t)
	replaceFile(t, s.path("lua/lobby/echo.lua"), echoLua(7))
	if r := s.nextReload(t, prev); r.Result != "applied" {
		t.Fatalf("fixed file: %s %s", r.Result, r.problems())
	}
	s.mustEcho(t, c, 9, 16)
}

// TestNewMessageWithoutRestart adds two messages to the schema and their handlers in one burst,
// one in an existing role and one in a new role directory; a client connected before the change
// can use them without a restart.
func TestNewMessageWithoutRestart(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{})
	c := s.dial(t, "tcp")
	guest(t, c, "newcomer")
	_, err := c.Request(timeout(t, 5*time.Second), 9100, nil)
	expectCode(t, "id 9100 before it exists", err, protocol.UnknownMessage)

	saved := time.Now()
	writeFile(t, s.path("proto/extra/shout.proto"), `syntax = "proto3";
package extra;
import "moonforge/protocol.proto";
message ShoutReq   { option (moonforge.msg_id) = 9100; string text = 1; }
message ShoutAck   { option (moonforge.msg_id) = 9101; string text = 1; uint32 length = 2; }
message WhisperReq { option (moonforge.msg_id) = 9102; string text = 1; }
message WhisperAck { option (moonforge.msg_id) = 9103; string text = 1; string role = 2; }
`)
	writeFile(t, s.path("lua/lobby/shout.lua"), `mf.handle("ShoutReq", function(ctx, req)
  return "ShoutAck", { text = string.upper(req.text), length = #req.text }
end)
`)
	writeFile(t, s.path("lua/micro/whisper.lua"), `mf.handle("WhisperReq", function(ctx, req)
  return "WhisperAck", { text = string.lower(req.text), role = mf.role }
end)
`)
	sch, err := schema.Load(s.path("proto"))
	if err != nil {
		t.Fatal(err)
	}
	msgs := client.Messages{Schema: sch}
	for _, tc := range []struct{ name, json, field, want string }{
		{"ShoutReq", `{"text": "hello"}`, "text", "HELLO"},
		{"WhisperReq", `{"text": "HUSH"}`, "role", "micro"},
	} {
		deadline := time.Now().Add(5 * time.Second)
		for {
			m, err := callWith(timeout(t, 5*time.Second), msgs, c, tc.name, tc.json)
			if err == nil {
				if got := field(m, tc.field).String(); got != tc.want {
					t.Fatalf("%s: %s = %q, want %q", tc.name, tc.field, got, tc.want)
				}
				break
			}
			if code := codeOf(err); code != protocol.UnknownMessage && code != protocol.Unavailable || time.Now().After(deadline) {
				t.Fatalf("%s %s after the files were written: %v", tc.name, time.Since(saved), err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("%s works %s after the files were written", tc.name, time.Since(saved))
	}
	if r := s.lastReload(t); r.Result != "applied" {
		t.Errorf("last reload: %s %s", r.Result, r.problems())
	}
	c2 := s.dial(t, "ws")
	guest(t, c2, "late-newcomer")
	if m, err := callWith(timeout(t, 5*time.Second), msgs, c2, "ShoutReq", `{"text": "ws"}`); err != nil || field(m, "text").String() != "WS" {
		t.Errorf("ShoutReq on a new connection: %v %v", m, err)
	}
}

// TestEditorSaves saves echo.lua the ways editors and tools do (in place, rename over, backup
// rename, move to another file) while a client sends requests: every request is answered by the
// old or the new code, never fails, and each change takes effect.
func TestEditorSaves(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{config: noRateLimit})
	c := s.dial(t, "tcp")
	guest(t, c, "editor")
	var add atomic.Int64 // the latest code's addend; the previous one is add-1
	stop := make(chan struct{})
	done := make(chan []error)
	go func() {
		var errs []error
		for n := int64(0); ; n++ {
			select {
			case <-stop:
				done <- errs
				return
			default:
			}
			latest := add.Load()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			got, err := s.echo(ctx, c, n)
			cancel()
			if err == nil && got != n+latest && got != n+latest-1 && got != n+add.Load() {
				err = fmt.Errorf("echo %d answered %d with the code changing to +%d", n, got, latest)
			}
			if err != nil {
				errs = append(errs, err)
				if len(errs) > 5 {
					<-stop
					done <- errs
					return
				}
			}
		}
	}()
	echo := s.path("lua/lobby/echo.lua")
	saves := []struct {
		name string
		save func(content string)
	}{
		{"in place", func(content string) { writeFile(t, echo, content) }},
		{"rename over", func(content string) { replaceFile(t, echo, content) }},
		{"backup rename", func(content string) {
			move(t, echo, echo+"~")
			writeFile(t, echo, content)
			if err := os.Remove(echo + "~"); err != nil {
				t.Fatal(err)
			}
		}},
		{"move to another file", func(content string) {
			writeFile(t, s.path("lua/lobby/echo2.lua"), content)
			if err := os.Remove(echo); err != nil {
				t.Fatal(err)
			}
		}},
		{"move back", func(content string) {
			writeFile(t, echo, content)
			if err := os.Remove(s.path("lua/lobby/echo2.lua")); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for i, sv := range saves {
		k := int64(i + 1)
		add.Store(k)
		sv.save(echoLua(int(k)))
		deadline := time.Now().Add(5 * time.Second)
		for {
			got, err := s.echo(timeout(t, 5*time.Second), c, 0)
			if err == nil && got == k {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: echo 0 answered %d, %v; want %d within 5s", sv.name, got, err, k)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	close(stop)
	for _, err := range <-done {
		t.Errorf("background requests: %v", err)
	}
}
