package bus

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// BenchmarkRequestReplyInProcess is one bus hop and back over the embedded server's in-process
// connections, the cost a request pays when its role runs on another node of the same process's
// bus; a same-process role skips it (straight to the actor's mailbox).
func BenchmarkRequestReplyInProcess(b *testing.B) {
	f, err := Open(Options{DataDir: b.TempDir(), MaxPayload: 1 << 20, Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Conn.Subscribe("bench.echo", func(m *nats.Msg) { _ = m.Respond(m.Data) }); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := f.Conn.Request("bench.echo", []byte("0123456789abcdef"), 5*time.Second); err != nil {
			b.Fatal(err)
		}
	}
}
