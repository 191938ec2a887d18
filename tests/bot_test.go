package tests

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestBot runs the built tools/bot against the server over TCP, WebSocket and KCP.
func TestBot(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{})
	for _, transport := range []string{"tcp", "ws", "kcp"} {
		t.Run(transport, func(t *testing.T) {
			args := []string{"-addr", s.addr(transport), "-proto", s.path("proto"), "-device", "bot-device-0001-" + transport, "-moves", "5", "-watch", "300ms"}
			if transport != "tcp" {
				args = append(args, "-"+transport)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, built.bot, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("bot %v: %v\n%s", args, err, out)
			}
			if !strings.Contains(string(out), "bot bot-device-0001-"+transport+": ok") {
				t.Errorf("bot output lacks its ok line:\n%s", out)
			}
			if !strings.Contains(string(out), "ArenaState") {
				t.Errorf("the bot saw no ArenaState push:\n%s", out)
			}
		})
	}
	// -duel against a server without the duel example: a clear error, exit 1.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, built.bot, "-addr", s.tcp, "-proto", s.path("proto"), "-duel").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), `no message "duel.QueueReq"`) {
		t.Errorf("bot -duel without the example: %v\n%s", err, out)
	}
}
