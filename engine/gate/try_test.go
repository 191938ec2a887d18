//go:build unix

package gate

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(); _ = c.Close() })
	return s.(*net.TCPConn), c.(*net.TCPConn)
}

// The write that never blocks takes what the socket takes, returns 0 and no error when the
// socket is full (the peer does not read), delivers every byte it reports in order, and fails
// once the peer has gone.
func TestTryWriteOnASocket(t *testing.T) {
	s, c := tcpPair(t)
	write := (&tcpTransport{nc: s}).try()
	if write == nil {
		t.Fatal("no try write on a *net.TCPConn")
	}
	if n, err := write(nil); n != 0 || err != nil {
		t.Fatalf("empty write = %d, %v", n, err)
	}
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	var sent []byte
	for full := false; !full; {
		n, err := write(chunk)
		if err != nil {
			t.Fatalf("write to a live socket: %v", err)
		}
		sent = append(sent, chunk[:n]...)
		full = n < len(chunk)
		if len(sent) > 256<<20 {
			t.Fatal("the socket never filled")
		}
	}
	if n, err := write(chunk); n != 0 || err != nil {
		t.Fatalf("write to a full socket = %d, %v; want 0, nil", n, err)
	}
	got := make([]byte, len(sent))
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, sent) {
		t.Fatal("the bytes read differ from the bytes written")
	}

	_ = c.SetLinger(0)
	_ = c.Close() // a reset: the next writes fail
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := write([]byte("x"))
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("writes to a reset connection kept succeeding")
		}
		time.Sleep(time.Millisecond)
	}
}
