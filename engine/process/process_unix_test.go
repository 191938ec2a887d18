//go:build unix

package process

import (
	"context"
	"syscall"
	"testing"
	"time"
)

func TestFileLimit(t *testing.T) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		t.Skip("no RLIMIT_NOFILE:", err)
	}
	n, ok := FileLimit()
	if !ok || n <= 0 || uint64(n) != min(l.Cur, 1<<30) {
		t.Fatalf("FileLimit() = %d, %v; the soft limit is %d", n, ok, l.Cur)
	}
}

// Each stop request ends the context: SIGINT (Ctrl-C) and SIGTERM.
func TestStopContext(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		ctx, stop := StopContext(context.Background())
		if err := syscall.Kill(syscall.Getpid(), sig); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("%v did not end the context", sig)
		}
		stop()
	}
}
