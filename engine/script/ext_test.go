package script_test

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/script"
)

// tally is a Go value with state and methods, as a studio would register one.
type tally struct {
	mu sync.Mutex
	n  int
}

func (t *tally) Add(k int) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n += k
	return t.n
}

func TestExtensionsAreMfExtAcrossReloads(t *testing.T) {
	ext := script.Extensions{"tally": &tally{}}
	files := func(mul string) map[string]string {
		return map[string]string{"lobby/e.lua": `mf.handle("EchoReq", function(ctx, req)
	return "EchoAck", { n = mf.ext.tally:Add(req.n * ` + mul + `) }
end)`}
	}
	b1, err := script.Compile(writeTree(t, files("1")), loadSchema(t), ext)
	if err != nil {
		t.Fatal(err)
	}
	vm := newVM(t, b1, "lobby", &script.Services{})
	if got := replyField(t, vm, request(t, vm, "EchoReq", "{n = 2}"), "n"); got != "2" {
		t.Fatalf("first call: %s", got)
	}
	b2, err := script.Compile(writeTree(t, files("10")), loadSchema(t), ext)
	if err != nil {
		t.Fatal(err)
	}
	if err := vm.Apply(b2); err != nil {
		t.Fatal(err)
	}
	if got := replyField(t, vm, request(t, vm, "EchoReq", "{n = 2}"), "n"); got != "22" {
		t.Fatalf("after the reload the Go value keeps its state: n = %s, want 22", got)
	}
	if err := script.CheckExtensions(script.Extensions{"Bad-Name": 1}); err == nil {
		t.Fatal("a name Lua cannot write was accepted")
	}
}

func (t *tally) Check(k int) (int, error) {
	if k < 0 {
		return 0, errors.New("negative")
	}
	return k, nil
}

func (t *tally) Boom() int { panic("boom") }

// A Go error comes back as a second result; a Go panic is a Lua error (INTERNAL for the client).
func TestExtensionErrorsAndPanics(t *testing.T) {
	b, err := script.Compile(writeTree(t, map[string]string{"lobby/e.lua": `mf.handle("EchoReq", function(ctx, req)
	if req.n == 0 then mf.ext.tally:Boom() end
	local v, e = mf.ext.tally:Check(req.n)
	return "EchoAck", { n = v, body = e and e:Error() or "nil" }
end)`}), loadSchema(t), script.Extensions{"tally": &tally{}})
	if err != nil {
		t.Fatal(err)
	}
	vm := newVM(t, b, "lobby", &script.Services{})
	if got := replyField(t, vm, request(t, vm, "EchoReq", "{n = 3}"), "body"); got != "nil" {
		t.Fatalf("no error: %q", got)
	}
	if got := replyField(t, vm, request(t, vm, "EchoReq", "{n = -1}"), "body"); !strings.Contains(got, "negative") {
		t.Fatalf("a Go error: %q", got)
	}
	if a := request(t, vm, "EchoReq", "{n = 0}"); a.err == nil || a.err.Code != protocol.Internal {
		t.Fatalf("a Go panic: %v", a.err)
	}
}
