package route

import (
	"encoding/json"
	"hash/fnv"
	"reflect"
	"testing"
)

func TestTableRoundTripsThroughJSON(t *testing.T) {
	tab := New("abc123")
	tab.Messages[1001] = Route{Role: "lobby"}
	tab.Messages[1002] = Route{Role: "lobby", Key: "chat"}
	tab.Messages[2001] = Route{Rooms: []string{"arena"}}
	tab.Messages[2002] = Route{Role: "lobby", Rooms: []string{"arena", "duel"}}
	tab.SessionEnd = map[string]string{"matchmaker": "queue"}
	tab.Logins["dev_ticket"] = "login"
	b, err := json.Marshal(tab)
	if err != nil {
		t.Fatal(err)
	}
	var back Table
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(tab, &back) {
		t.Fatalf("round trip changed the table:\n%+v\n%+v", tab, &back)
	}
	if got := back.Roles(); !reflect.DeepEqual(got, map[string]bool{"lobby": true, "login": true, "matchmaker": true}) {
		t.Fatalf("Roles = %v", got)
	}
}

// Message finds every route of Messages by its id, and none for ids between, above or below them.
func TestMessageLooksUpEveryRouteByID(t *testing.T) {
	tab := New("v1")
	tab.Messages[1001] = Route{Role: "lobby"}
	tab.Messages[2002] = Route{Role: "lobby", Rooms: []string{"arena"}}
	for id, want := range tab.Messages {
		if got, ok := tab.Message(id); !ok || !reflect.DeepEqual(got, want) {
			t.Fatalf("Message(%d) = %+v %v, want %+v", id, got, ok, want)
		}
	}
	for _, id := range []uint16{0, 1000, 1002, 2001, 2003, 65535} {
		if got, ok := tab.Message(id); ok {
			t.Fatalf("Message(%d) = %+v, want none", id, got)
		}
	}
	if _, ok := New("empty").Message(0); ok {
		t.Fatal("an empty table has a route for id 0")
	}
}

// The hash is FNV-1a: fixed values, the same in every process and on every platform.
func TestHashIsStable(t *testing.T) {
	for _, key := range []string{"", "p1", "pabcdefghijklmnopqrst", "chat"} {
		h := fnv.New64a()
		h.Write([]byte(key))
		if got, want := Hash(key), h.Sum64(); got != want {
			t.Fatalf("Hash(%q) = %x, want %x", key, got, want)
		}
	}
	if got := Hash("p1"); got != 0x08d59707b575eaba {
		t.Fatalf("Hash(p1) = %#x: placement changed", got)
	}
	counts := make([]int, 16)
	for i := range 16000 {
		counts[Pick(string(rune('a'+i%26))+string(rune(i)), 16)]++
	}
	for i, c := range counts {
		if c < 500 || c > 1500 {
			t.Fatalf("actor %d got %d of 16000 keys: %v", i, c, counts)
		}
	}
}
