package relay

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"
)

// sink counts the datagrams that reach it, by their first 4 bytes.
func sink(t *testing.T) (*net.UDPConn, chan uint32) {
	t.Helper()
	u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_ = u.SetReadBuffer(4 << 20)
	t.Cleanup(func() { _ = u.Close() })
	got := make(chan uint32, 10000)
	go func() {
		buf := make([]byte, 2048)
		for {
			n, err := u.Read(buf)
			if err != nil {
				close(got)
				return
			}
			if n >= 4 {
				got <- binary.LittleEndian.Uint32(buf)
			}
		}
	}()
	return u, got
}

// send passes n datagrams through a relay with cfg and returns what arrived, in order.
func send(t *testing.T, cfg Config, n int) ([]uint32, Stats) {
	t.Helper()
	target, got := sink(t)
	r, err := ListenUDP(target.LocalAddr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ra, _ := net.ResolveUDPAddr("udp", r.Addr())
	c, err := net.DialUDP("udp", nil, ra)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range n {
		b := binary.LittleEndian.AppendUint32(nil, uint32(i))
		if _, err := c.Write(append(b, make([]byte, 100)...)); err != nil {
			t.Fatal(err)
		}
		if i%100 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	var out []uint32
	for {
		select {
		case v := <-got:
			out = append(out, v)
		case <-time.After(300 * time.Millisecond):
			return out, r.Stats()
		}
	}
}

func TestUDPLoss(t *testing.T) {
	out, st := send(t, Config{Loss: 0.2, Seed: 1}, 2000)
	if st.Dropped+st.Forwarded != 2000 || uint64(len(out)) != st.Forwarded {
		t.Fatalf("stats %+v, %d arrived, want 2000 seen and every forwarded one arriving", st, len(out))
	}
	if st.Dropped < 300 || st.Dropped > 500 {
		t.Errorf("%d of 2000 dropped at 20%%", st.Dropped)
	}
	_, st2 := send(t, Config{Loss: 0.2, Seed: 1}, 2000)
	if st2.Dropped != st.Dropped {
		t.Errorf("the same seed dropped %d, then %d", st.Dropped, st2.Dropped)
	}
}

func TestUDPDuplicateAndReorder(t *testing.T) {
	out, st := send(t, Config{Duplicate: 0.1, Reorder: 0.1, ReorderBy: 5 * time.Millisecond, Seed: 2}, 1000)
	if st.Duplicated == 0 || st.Reordered == 0 {
		t.Fatalf("stats %+v: nothing duplicated or reordered", st)
	}
	if uint64(len(out)) != 1000+st.Duplicated {
		t.Errorf("%d arrived, want %d", len(out), 1000+st.Duplicated)
	}
	inversions := 0
	for i := 1; i < len(out); i++ {
		if out[i] < out[i-1] {
			inversions++
		}
	}
	if inversions == 0 {
		t.Errorf("no datagram overtook another")
	}
}

func TestTCPStalls(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_, _ = io.Copy(c, c)
		_ = c.Close()
	}()
	r, err := ListenTCP(ln.Addr().String(), StallConfig{Loss: 0.5, Stall: 5 * time.Millisecond, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := net.Dial("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := bytes.Repeat([]byte("moonforge"), 2000)
	go func() { _, _ = c.Write(msg) }()
	back := make([]byte, len(msg))
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, back); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, msg) {
		t.Fatalf("the stream changed on its way")
	}
	if r.Stalls() == 0 {
		t.Errorf("no stall at 50%% loss per segment")
	}
}
