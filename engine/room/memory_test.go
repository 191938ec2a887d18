package room_test

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/actor"
	"github.com/moonforge/moonforge/engine/room"
	"github.com/moonforge/moonforge/engine/schema"
	"github.com/moonforge/moonforge/engine/script"
)

// BenchmarkIdleRoomMemory reports what one open arena room of the demo game with no players
// costs: its actor's goroutine, mailbox and Lua state with the game role's scripts loaded. It is
// a measurement (bytes/room), not an assertion, taken once however often the benchmark runs.
func BenchmarkIdleRoomMemory(b *testing.B) {
	roomMemoryOnce.Do(func() { roomMemory = measureRoomMemory(b) })
	b.ReportMetric(roomMemory, "bytes/room")
	for i := 0; i < b.N; i++ {
	}
}

var (
	roomMemoryOnce sync.Once
	roomMemory     float64
)

func measureRoomMemory(b *testing.B) float64 {
	sch, err := schema.Load("../../proto")
	if err != nil {
		b.Fatal(err)
	}
	bundle, err := script.Compile("../../lua", sch, nil)
	if err != nil {
		b.Fatal(err)
	}
	versions := script.NewVersions(bundle)
	p := &players{n: map[string]int{}}
	svc := &script.Services{Players: p}
	sys := actor.NewSystem(actor.SystemConfig{Services: svc, Versions: versions})
	m := room.NewManager(room.Config{System: sys, Versions: versions, Players: p, MailboxSize: 256})
	svc.Rooms = m
	defer func() { m.Stop(); sys.Stop() }()

	const rooms = 500
	before := heapAndStacks()
	for i := 0; i < rooms; i++ {
		if _, err := m.Create("arena", nil); err != nil {
			b.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond) // every room runs on_create and a few ticks
	after := heapAndStacks()
	return float64(after-before) / rooms
}

func heapAndStacks() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}
