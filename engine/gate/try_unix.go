//go:build unix

package gate

import (
	"errors"
	"net"
	"syscall"
)

// try returns a write that never blocks (wire.Queue.SetTry) for a plain TCP socket, or nil for
// any other connection (TLS, a wrapper, a test pipe), whose writes must go through its Write.
func (t *tcpTransport) try() func([]byte) (int, error) {
	tc, ok := t.nc.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	w := &rawWrite{rc: rc}
	w.fn = w.once
	return w.write
}

// rawWrite is one write(2) on a non-blocking socket. Used by one goroutine at a time (the queue's
// busy flag), so its fields carry the call's arguments and results without allocating.
type rawWrite struct {
	rc  syscall.RawConn
	fn  func(fd uintptr) bool
	b   []byte
	n   int
	err error
}

func (w *rawWrite) once(fd uintptr) bool {
	w.n, w.err = syscall.Write(int(fd), w.b)
	return true // never wait for the socket to become writable
}

func (w *rawWrite) write(b []byte) (int, error) {
	w.b = b
	err := w.rc.Write(w.fn)
	n, werr := w.n, w.err
	w.b, w.err = nil, nil
	if errors.Is(werr, syscall.EAGAIN) || errors.Is(werr, syscall.EINTR) {
		werr = nil
	}
	if err == nil {
		err = werr
	}
	return n, err
}
