package tests

import (
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLogFlood: 40 connections from one address each break the frame format. The log keeps at
// most a handful of their warnings; the metrics count all of them.
func TestLogFlood(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{})
	const n = 40
	for range n {
		nc, err := net.Dial("tcp", s.tcp)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = nc.Write([]byte{0, 0, 0, 1, 0}) // length 1: MALFORMED_FRAME
		_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _ = nc.Read(make([]byte, 64))
		nc.Close()
	}
	counted := regexp.MustCompile(`moonforge_connection_warnings_total\{kind="bad_frame",logged="(true|false)"\} (\d+)`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := s.httpGet(t, "/metrics")
		total := 0
		for _, m := range counted.FindAllStringSubmatch(string(body), -1) {
			v, _ := strconv.Atoi(m[2])
			total += v
		}
		if total == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bad_frame warnings counted: %d, want %d", total, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if logged := strings.Count(s.log.String(), `msg="protocol violation"`); logged < 1 || logged > 5 {
		t.Fatalf("%d protocol violation lines logged for %d connections, want 1 to 5", logged, n)
	}
}
