package gate

import (
	"syscall"
	"unsafe"
)

// writeNow is write(2) on a non-blocking socket, made without telling the scheduler that the
// goroutine enters a system call (syscall.RawSyscall): the call never waits, and one that the
// scheduler sees in progress can be taken for a blocked one, its P handed to another thread.
func writeNow(fd uintptr, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if errno != 0 {
		return -1, errno
	}
	return int(n), nil
}
