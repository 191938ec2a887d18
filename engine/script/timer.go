package script

import (
	"container/heap"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// maxTimers bounds the timers of one VM, so that a runaway script cannot exhaust memory.
const maxTimers = 10000

// minInterval is the shortest period of a repeating timer.
const minInterval = time.Millisecond

type timer struct {
	id       int64
	at       time.Time
	every    time.Duration // 0: runs once
	fn       *lua.LFunction
	loadTime bool // set while the scripts loaded: cancelled by the next reload
	where    string
	index    int
}

// timers is a min-heap by due time plus an index by id.
type timers struct {
	heap   []*timer
	byID   map[int64]*timer
	nextID int64
}

func (h *timers) Len() int           { return len(h.heap) }
func (h *timers) Less(i, j int) bool { return h.heap[i].at.Before(h.heap[j].at) }
func (h *timers) Swap(i, j int) {
	h.heap[i], h.heap[j] = h.heap[j], h.heap[i]
	h.heap[i].index, h.heap[j].index = i, j
}
func (h *timers) Push(x any) {
	t := x.(*timer)
	t.index = len(h.heap)
	h.heap = append(h.heap, t)
}
func (h *timers) Pop() any {
	t := h.heap[len(h.heap)-1]
	h.heap[len(h.heap)-1] = nil
	h.heap = h.heap[:len(h.heap)-1]
	t.index = -1
	return t
}

func (h *timers) add(t *timer) {
	if h.byID == nil {
		h.byID = map[int64]*timer{}
	}
	h.byID[t.id] = t
	heap.Push(h, t)
}

func (h *timers) cancel(id int64) bool {
	t, ok := h.byID[id]
	if !ok {
		return false
	}
	delete(h.byID, id)
	if t.index >= 0 {
		heap.Remove(h, t.index)
	}
	return true
}

// takeLoadTime removes and returns the timers set while scripts loaded.
func (h *timers) takeLoadTime() []*timer {
	var out []*timer
	for _, t := range h.byID {
		if t.loadTime {
			out = append(out, t)
		}
	}
	for _, t := range out {
		h.cancel(t.id)
	}
	return out
}

// NextTimer returns when the earliest timer, or the deadline of a waiting handler, is due.
func (vm *VM) NextTimer() (time.Time, bool) {
	at, ok := vm.nextWait()
	if len(vm.timers.heap) > 0 && (!ok || vm.timers.heap[0].at.Before(at)) {
		return vm.timers.heap[0].at, true
	}
	return at, ok
}

// RunTimers ends the waiting handlers past their deadline and runs every timer due at now. A
// failing timer is logged; a repeating one keeps running.
func (vm *VM) RunTimers(now time.Time) {
	vm.expireWaits(now)
	for len(vm.timers.heap) > 0 && !vm.timers.heap[0].at.After(now) {
		t := vm.timers.heap[0]
		if t.every > 0 {
			t.at = t.at.Add(t.every)
			if t.at.Before(now) {
				t.at = now.Add(t.every) // fell behind: skip the missed runs
			}
			heap.Fix(&vm.timers, 0)
		} else {
			vm.timers.cancel(t.id)
		}
		if _, err := vm.protectedCall(t.fn, 0, vm.limit(now, time.Time{})); err != nil {
			vm.callError(err, "timer set at "+t.where, time.Time{})
		}
	}
}

func (vm *VM) newTimerTable() *lua.LTable {
	return vm.funcs(map[string]lua.LGFunction{
		"after":  func(L *lua.LState) int { return vm.luaTimer(L, false) },
		"every":  func(L *lua.LState) int { return vm.luaTimer(L, true) },
		"cancel": vm.luaTimerCancel,
	}, 0)
}

// luaTimer implements mf.timer.after(seconds, fn) and mf.timer.every(seconds, fn).
func (vm *VM) luaTimer(L *lua.LState, repeat bool) int {
	seconds := float64(L.CheckNumber(1))
	fn := L.CheckFunction(2)
	d := time.Duration(seconds * float64(time.Second))
	if seconds < 0 || seconds != seconds || seconds > 365*24*3600 {
		vm.errorf("mf.timer: seconds must be between 0 and one year, got %v", seconds)
	}
	if repeat && d < minInterval {
		vm.errorf("mf.timer.every: the period must be at least %s", minInterval)
	}
	if len(vm.timers.byID) >= maxTimers {
		vm.errorf("mf.timer: this actor already has %d timers", maxTimers)
	}
	vm.timers.nextID++
	id := vm.timers.nextID
	if vm.svc != nil {
		tm := &timer{id: id, at: time.Now().Add(d), fn: fn, loadTime: vm.loading, where: vm.where()}
		if repeat {
			tm.every = d
		}
		vm.timers.add(tm)
	}
	L.Push(lua.LNumber(id))
	return 1
}

func (vm *VM) luaTimerCancel(L *lua.LState) int {
	L.Push(lua.LBool(vm.timers.cancel(int64(L.CheckInt64(1)))))
	return 1
}
