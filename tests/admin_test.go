package tests

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/protocol"
)

// TestAdmin checks /healthz, /metrics and /status after some traffic.
func TestAdmin(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{})
	c := s.dial(t, "tcp")
	guest(t, c, "observer")
	w := s.dial(t, "ws")
	guest(t, w, "observer-ws")
	for i := range 5 {
		s.mustEcho(t, c, int64(i), int64(i))
	}
	_, err := s.call(timeout(t, 5*time.Second), c, "ChatSendReq", `{"text": ""}`)
	expectCode(t, "empty chat", err, 1001)
	_, err = c.Request(timeout(t, 5*time.Second), 60000, nil)
	expectCode(t, "unknown id", err, protocol.UnknownMessage)

	code, body := s.httpGet(t, "/healthz")
	if code != http.StatusOK {
		t.Errorf("/healthz: %d %s", code, body)
	}

	code, body = s.httpGet(t, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	metrics := string(body)
	for _, want := range []string{
		`moonforge_connections{transport="tcp"} 1`,
		`moonforge_connections{transport="ws"} 1`,
		`moonforge_sessions 2`,
		`moonforge_requests_total{code="OK",msg="demo.EchoReq"} 5`,
		`moonforge_requests_total{code="APP_1001",msg="demo.ChatSendReq"} 1`,
		`moonforge_requests_total{code="UNKNOWN_MESSAGE",msg="unknown"} 1`,
		`moonforge_requests_total{code="OK",msg="moonforge.LoginReq"} 2`,
		`moonforge_handler_seconds_count{msg="demo.EchoReq"} 5`,
		`moonforge_mailbox_depth `,
		`moonforge_reloads_total{result="initial"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if !regexp.MustCompile(`(?m)^moonforge_handler_seconds_bucket\{[^}]*msg="demo\.EchoReq"[^}]*\} 5$`).MatchString(metrics) {
		t.Errorf("/metrics lacks moonforge_handler_seconds buckets for demo.EchoReq")
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", grepLines(metrics, "moonforge_"))
	}

	code, body = s.httpGet(t, "/status")
	var st struct {
		Version     string `json:"version"`
		Connections int    `json:"connections"`
		Sessions    int    `json:"sessions"`
		Bus         *struct {
			PushesLost *uint64 `json:"pushes_lost"`
		} `json:"bus"`
	}
	if err := json.Unmarshal(body, &st); code != http.StatusOK || err != nil {
		t.Fatalf("/status: %d %v %s", code, err, body)
	}
	if st.Version == "" || st.Version != s.version || st.Connections != 2 || st.Sessions != 2 {
		t.Errorf("/status: %s, want version %s, 2 connections, 2 sessions", body, s.version)
	}
	if st.Bus == nil || st.Bus.PushesLost == nil {
		t.Errorf("/status: %s, want the bus counters with pushes_lost", body)
	}

	r := s.lastReload(t)
	if r.Result != "initial" || r.Version != s.version || len(r.Files) == 0 {
		t.Errorf("GET /reload at start: %+v", r)
	}
	if code, _ := s.httpGet(t, "/nonexistent"); code != http.StatusNotFound {
		t.Errorf("/nonexistent: %d, want 404", code)
	}

	// Closed connections leave the gauge; their sessions wait for a resume.
	_ = c.Close()
	_ = w.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, body := s.httpGet(t, "/metrics")
		m := string(body)
		if strings.Contains(m, `moonforge_connections{transport="tcp"} 0`) && strings.Contains(m, `moonforge_connections{transport="ws"} 0`) {
			if !strings.Contains(m, "moonforge_sessions 2") {
				t.Errorf("sessions after the connections closed: %s", grepLines(m, "moonforge_sessions"))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("connections after closing both clients: %s", grepLines(m, "moonforge_connections"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// grepLines returns the lines of text that contain sub.
func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
