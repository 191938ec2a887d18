package room_test

import (
	"testing"
	"time"
)

// CloseIfEmpty closes a room nobody is in, and leaves a room with a member alone.
func TestCloseIfEmpty(t *testing.T) {
	m, _, _ := setup(t)
	empty, err := m.Create("duel", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := join(m, empty, "x", map[string]any{"refuse": true}); err == nil {
		t.Fatal("the refused join succeeded")
	}
	used, err := m.Create("duel", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := join(m, used, "a", nil); err != nil {
		t.Fatal(err)
	}
	m.CloseIfEmpty(empty)
	m.CloseIfEmpty(used)
	m.CloseIfEmpty("no-such-room")
	deadline := time.Now().Add(5 * time.Second)
	for m.Count() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d rooms open, want the used one only", m.Count())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if m.Of("a") != used {
		t.Fatal("the member lost its room")
	}
}
