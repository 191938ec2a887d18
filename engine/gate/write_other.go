//go:build unix && !linux

package gate

import "syscall"

// writeNow is write(2) on a non-blocking socket.
func writeNow(fd uintptr, b []byte) (int, error) { return syscall.Write(int(fd), b) }
