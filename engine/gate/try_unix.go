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
// busy flag), so its fields carry the call's arguments and results without allocating. It goes
// through RawConn.Control, not RawConn.Write: Write first checks the connection's write deadline,
// which the writer goroutine set for its own last (blocking) write and which has passed once the
// writer has been idle that long; a write that never blocks has no use for it.
type rawWrite struct {
	rc  syscall.RawConn
	fn  func(fd uintptr)
	b   []byte
	n   int
	err error
}

func (w *rawWrite) once(fd uintptr) {
	w.n, w.err = writeNow(fd, w.b)
}

// write writes what the socket takes of b at once; it returns 0 and no error when it takes
// nothing (EAGAIN), and 0 with the error when the socket failed.
func (w *rawWrite) write(b []byte) (int, error) {
	w.b, w.n, w.err = b, 0, nil
	err := w.rc.Control(w.fn)
	n, werr := w.n, w.err
	w.b, w.err = nil, nil
	if err != nil {
		return 0, err
	}
	if errors.Is(werr, syscall.EAGAIN) || errors.Is(werr, syscall.EINTR) {
		werr = nil
	}
	return max(n, 0), werr
}
