package process

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// StopContext returns a copy of parent that is done when the process is asked to stop; stop
// releases the signals. The requests are the same two on every platform, which is why this file
// needs no build tag: Go delivers
//   - os.Interrupt for Ctrl-C in a terminal (SIGINT) and, on Windows, for Ctrl-C and Ctrl-Break in
//     the console (CTRL_C_EVENT, CTRL_BREAK_EVENT);
//   - syscall.SIGTERM for kill, systemd and docker stop and, on Windows, for the console window
//     closed, a log-off or a shut-down (CTRL_CLOSE_EVENT and the like; Windows ends the process
//     about 5 seconds after a close, done or not).
//
// SIGHUP is left alone, so nohup keeps working.
func StopContext(parent context.Context) (ctx context.Context, stop context.CancelFunc) {
	return signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
}
