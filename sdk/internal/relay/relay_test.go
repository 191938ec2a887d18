package relay

import (
	"io"
	"math/rand"
	"net"
	"reflect"
	"testing"
	"time"
)

// echo starts a server that writes back what it reads, and returns its address and what each
// connection received in all, when it ends.
func echo(t *testing.T) (string, chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	received := make(chan string, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				var all []byte
				buf := make([]byte, 1024)
				for {
					n, err := c.Read(buf)
					all = append(all, buf[:n]...)
					if _, werr := c.Write(buf[:n]); err != nil || werr != nil {
						break
					}
				}
				_ = c.Close()
				received <- string(all)
			}()
		}
	}()
	return ln.Addr().String(), received
}

// dial connects through r and returns the client side and the relay's link for it.
func dial(t *testing.T, r *Relay) (net.Conn, *link) {
	t.Helper()
	r.mu.Lock()
	before := len(r.links)
	r.mu.Unlock()
	c, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		r.mu.Lock()
		n := len(r.links)
		var l *link
		if n > before {
			l = r.links[n-1]
		}
		r.mu.Unlock()
		if l != nil {
			return c, l
		}
	}
	t.Fatal("the relay made no link")
	return nil, nil
}

func roundTrip(t *testing.T, c net.Conn, msg string) (string, error) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, len(msg))
	n, err := io.ReadFull(c, buf)
	return string(buf[:n]), err
}

func TestFaults(t *testing.T) {
	target, received := echo(t)
	r, err := New(target, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	c, l := dial(t, r)
	if got, err := roundTrip(t, c, "hello"); err != nil || got != "hello" {
		t.Fatalf("forwarding: %q, %v", got, err)
	}
	l.stall(200 * time.Millisecond)
	start := time.Now()
	if got, err := roundTrip(t, c, "stalled"); err != nil || got != "stalled" || time.Since(start) < 150*time.Millisecond {
		t.Fatalf("a 200 ms stall: %q, %v after %v", got, err, time.Since(start))
	}
	l.cutAt(0.5)
	if got, err := roundTrip(t, c, "0123456789"); err == nil {
		t.Fatalf("a cut connection still echoes: %q", got)
	}
	if all := <-received; all != "hellostalled01234" {
		t.Fatalf("the server received %q; want the cut at half of the last write", all)
	}

	c, l = dial(t, r)
	l.close(true)
	if _, err := roundTrip(t, c, "x"); err == nil {
		t.Fatal("a reset connection still echoes")
	}
	if _, ok := r.Inject(); ok {
		t.Fatal("a fault injected with no live connection")
	}
}

func TestSameSeedSameFaults(t *testing.T) {
	draw := func(seed int64) []any {
		rnd := rand.New(rand.NewSource(seed))
		var out []any
		for i := 0; i < 200; i++ {
			f, d, cut := choose(rnd)
			out = append(out, f, d, cut)
		}
		return out
	}
	a := draw(7)
	if !reflect.DeepEqual(a, draw(7)) {
		t.Fatal("one seed drew two fault sequences")
	}
	if reflect.DeepEqual(a, draw(8)) {
		t.Fatal("two seeds drew one fault sequence")
	}
	kinds := map[any]bool{}
	for i := 0; i < len(a); i += 3 {
		kinds[a[i]] = true
	}
	if len(kinds) != 4 {
		t.Fatalf("200 draws gave %d kinds of fault, want 4", len(kinds))
	}
}
