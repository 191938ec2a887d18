package gate

import (
	"encoding/binary"
	"net"
	"testing"
	"time"
)

func segment(conv uint32, cmd byte, sn uint32, data []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, conv)
	b = append(b, cmd, 0)
	b = binary.LittleEndian.AppendUint16(b, 256)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, sn)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

func TestParseKCPDatagram(t *testing.T) {
	push0 := segment(7, kcpCmdPush, 0, []byte("abc"))
	ack := segment(7, 82, 3, nil)
	cases := []struct {
		name    string
		b       []byte
		ok      bool
		opening bool
	}{
		{"opening push", push0, true, true},
		{"ack then push", append(append([]byte{}, ack...), push0...), true, true},
		{"later push", segment(7, kcpCmdPush, 5, []byte("x")), true, false},
		{"ack only", ack, true, false},
		{"window probe", segment(7, 83, 0, nil), true, false},
		{"empty", nil, false, false},
		{"short", push0[:23], false, false},
		{"truncated data", push0[:len(push0)-1], false, false},
		{"trailing bytes", append(append([]byte{}, push0...), 1, 2), false, false},
		{"conversation 0", segment(0, kcpCmdPush, 0, nil), false, false},
		{"two conversations", append(append([]byte{}, push0...), segment(8, 82, 0, nil)...), false, false},
		{"unknown command", segment(7, 80, 0, nil), false, false},
		{"ack with data", segment(7, 82, 0, []byte("x")), false, false},
		{"length past the MTU", segment(7, kcpCmdPush, 0, make([]byte, 1401)), false, false},
	}
	for _, c := range cases {
		d, ok := parseKCPDatagram(c.b, 1400)
		if ok != c.ok || (ok && (d.opening != c.opening || d.conv != 7)) {
			t.Errorf("%s: got %+v %v, want ok %v opening %v", c.name, d, ok, c.ok, c.opening)
		}
	}
}

func TestKCPGuardAdmit(t *testing.T) {
	g := newKCPGuard(nil, 1400, 2, nil)
	a := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	b := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2}
	c := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 3}
	steps := []struct {
		name string
		b    []byte
		from net.Addr
		want string
	}{
		{"a stray segment before opening", segment(10, kcpCmdPush, 1, nil), a, dropStray},
		{"a opens 10", segment(10, kcpCmdPush, 0, nil), a, ""},
		{"a goes on", segment(10, 82, 4, nil), a, ""},
		{"a switches conversation", segment(11, kcpCmdPush, 0, nil), a, dropForged},
		{"b forges a's conversation", segment(10, kcpCmdPush, 0, nil), b, dropForged},
		{"b opens 20", segment(20, kcpCmdPush, 0, nil), b, ""},
		{"c beyond the limit", segment(30, kcpCmdPush, 0, nil), c, dropLimit},
		{"oversized", make([]byte, 1401), c, dropOversized},
		{"junk", []byte("hello"), c, dropMalformed},
	}
	for _, s := range steps {
		if got := g.admit(s.b, s.from); got != s.want {
			t.Fatalf("%s: got %q, want %q", s.name, got, s.want)
		}
	}
	g.accepted(a)
	g.forget(b)
	if got := g.admit(segment(30, kcpCmdPush, 0, nil), c); got != "" {
		t.Fatalf("c after b was forgotten: %q", got)
	}
	if got := g.admit(segment(20, kcpCmdPush, 0, nil), b); got != dropLimit {
		t.Fatalf("b again at the limit: %q", got)
	}
	if g.count() != 2 {
		t.Fatalf("count %d, want 2", g.count())
	}
}

// FuzzParseKCPDatagram checks that any datagram is parsed without a panic, and that an accepted
// one is whole segments of one conversation.
func FuzzParseKCPDatagram(f *testing.F) {
	f.Add(segment(7, kcpCmdPush, 0, []byte("abc")))
	f.Add(append(segment(7, 82, 1, nil), segment(7, kcpCmdPush, 0, []byte{1})...))
	f.Add([]byte{})
	f.Add(make([]byte, 30))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, ok := parseKCPDatagram(b, 1400)
		if !ok {
			return
		}
		for len(b) > 0 {
			if len(b) < kcpHeaderSize || binary.LittleEndian.Uint32(b) != d.conv {
				t.Fatalf("accepted a datagram that is not whole segments of conversation %d", d.conv)
			}
			b = b[kcpHeaderSize+int(binary.LittleEndian.Uint32(b[20:])):]
		}
	})
}

// TestKCPGuardReadLoop runs the read loop on a real socket, in batches and one at a time: the
// receiver gets exactly the admitted datagrams, the rest is counted, and closing the socket ends
// the loop with an error for the receiver.
func TestKCPGuardReadLoop(t *testing.T) {
	for _, batch := range []bool{true, false} {
		udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		g := newKCPGuard(udp, 1400, 10, nil)
		g.batch = batch
		got := make(chan []byte, 10)
		ended := make(chan error, 1)
		g.SetPacketReceiver(func(b []byte, _ net.Addr, err error) {
			if err != nil {
				ended <- err
				return
			}
			got <- append([]byte(nil), b...)
		})
		c, err := net.DialUDP("udp", nil, udp.LocalAddr().(*net.UDPAddr))
		if err != nil {
			t.Fatal(err)
		}
		open := segment(9, kcpCmdPush, 0, []byte("hi"))
		for _, d := range [][]byte{[]byte("junk"), make([]byte, 3000), open, segment(10, kcpCmdPush, 0, nil)} {
			if _, err := c.Write(d); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case b := <-got:
			if string(b) != string(open) {
				t.Fatalf("batch %v: the receiver got %x, want the opening datagram", batch, b)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("batch %v: the opening datagram did not arrive", batch)
		}
		deadline := time.Now().Add(5 * time.Second)
		for st := g.stats(); st[dropMalformed] != 1 || st[dropOversized] != 1 || st[dropForged] != 1; st = g.stats() {
			if time.Now().After(deadline) {
				t.Fatalf("batch %v: drops %v, want one malformed, one oversized, one forged", batch, st)
			}
			time.Sleep(10 * time.Millisecond)
		}
		_ = c.Close()
		_ = udp.Close()
		select {
		case <-ended:
		case <-time.After(5 * time.Second):
			t.Fatalf("batch %v: closing the socket did not end the read loop", batch)
		}
		if len(got) != 0 {
			t.Fatalf("batch %v: more datagrams than the opening one reached the receiver", batch)
		}
	}
}
