package router

import (
	"errors"
	"fmt"
	"sort"
	"testing"

	"github.com/moonforge/moonforge/engine/call"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/route"
)

type fakeTables struct{ t *route.Table }

func (f fakeTables) Table() *route.Table { return f.t }

type fakeRooms map[string][2]string // player -> room id, room type

func (f fakeRooms) Where(player string) (string, string) { return f[player][0], f[player][1] }

// recorder is a Dispatcher that records what it is given.
type recorder struct {
	dst    []Destination
	logins []Destination
	notes  []Destination
}

func (r *recorder) Dispatch(dst Destination, _ *call.Request) { r.dst = append(r.dst, dst) }
func (r *recorder) Login(dst Destination, _ *call.Login)      { r.logins = append(r.logins, dst) }
func (r *recorder) Notify(dst Destination, _ call.Presence)   { r.notes = append(r.notes, dst) }

func table() *route.Table {
	t := route.New("v1")
	t.Messages[1001] = route.Route{Role: "lobby"}
	t.Messages[1002] = route.Route{Role: "lobby", Key: "chat"}
	t.Messages[2001] = route.Route{Rooms: []string{"arena"}}
	t.Messages[2002] = route.Route{Role: "lobby", Rooms: []string{"arena", "duel"}}
	t.Logins["ticket"] = "login"
	t.SessionEnd = map[string]string{"lobby": "", "match": "queue"}
	return t
}

func TestDecide(t *testing.T) {
	r := New(fakeTables{table()}, fakeRooms{"p1": {"r1", "arena"}, "p3": {"r3", "duel"}}, &recorder{})
	cases := []struct {
		msg    uint16
		player string
		want   Destination
		code   protocol.Code
	}{
		{1001, "p1", Destination{Role: "lobby", Key: "p1"}, 0},
		{1002, "p1", Destination{Role: "lobby", Key: "chat"}, 0},
		{2001, "p1", Destination{Room: "r1"}, 0},
		{2001, "p2", Destination{}, protocol.BadRequest}, // in no room
		{2001, "p3", Destination{}, protocol.BadRequest}, // in a room of another type
		{2002, "p1", Destination{Room: "r1"}, 0},
		{2002, "p3", Destination{Room: "r3"}, 0},
		{2002, "p2", Destination{Role: "lobby", Key: "p2"}, 0}, // the handler for players in no such room
		{3000, "p1", Destination{}, protocol.Unavailable},
	}
	for _, c := range cases {
		got, err := r.Decide(&call.Request{MsgID: c.msg, PlayerID: c.player})
		var ce *protocol.CodeError
		switch {
		case c.code != 0 && (!errors.As(err, &ce) || ce.Code != c.code):
			t.Errorf("msg %d from %s: error %v, want code %s", c.msg, c.player, err, c.code)
		case c.code == 0 && (err != nil || got != c.want):
			t.Errorf("msg %d from %s: %+v, %v; want %+v", c.msg, c.player, got, err, c.want)
		}
	}
}

// The player's hash, computed once per session, goes with the player's key and no other.
func TestDecidePassesThePlayersHash(t *testing.T) {
	r := New(fakeTables{table()}, fakeRooms{}, &recorder{})
	h := route.Hash("p1")
	if got, _ := r.Decide(&call.Request{MsgID: 1001, PlayerID: "p1", PlayerHash: h}); got != (Destination{Role: "lobby", Key: "p1", KeyHash: h}) {
		t.Errorf("keyed by the player: %+v", got)
	}
	if got, _ := r.Decide(&call.Request{MsgID: 1002, PlayerID: "p1", PlayerHash: h}); got != (Destination{Role: "lobby", Key: "chat"}) {
		t.Errorf("keyed by a name: %+v", got)
	}
}

// answers records the answers of requests that Route refused itself.
type answers struct{ codes []protocol.Code }

func (a *answers) Post(ans call.Answer) {
	code := protocol.Code(0)
	if ans.Err != nil {
		code = ans.Err.Code
	}
	a.codes = append(a.codes, code)
}

func TestRouteDispatchesOrAnswers(t *testing.T) {
	rec := &recorder{}
	r := New(fakeTables{table()}, fakeRooms{}, rec)
	a := &answers{}
	r.Route(&call.Request{MsgID: 1001, PlayerID: "p1", Post: a})
	r.Route(&call.Request{MsgID: 2001, PlayerID: "p1", Post: a})
	if len(rec.dst) != 1 || rec.dst[0] != (Destination{Role: "lobby", Key: "p1"}) {
		t.Fatalf("dispatched %+v", rec.dst)
	}
	if len(a.codes) != 1 || a.codes[0] != protocol.BadRequest {
		t.Fatalf("answered %v, want one BAD_REQUEST", a.codes)
	}
	if !r.Login(&call.Login{Method: "ticket", Account: "acc"}) || r.Login(&call.Login{Method: "nope"}) {
		t.Fatal("Login should know ticket and only ticket")
	}
	if len(rec.logins) != 1 || rec.logins[0] != (Destination{Role: "login", Key: "acc"}) {
		t.Fatalf("logins %+v", rec.logins)
	}
}

// rooms records deliveries to rooms.
type roomsRec []string

func (r *roomsRec) Deliver(roomID string, _ *call.Request) { *r = append(*r, roomID) }

func TestLocalDeliversRoomsAndRefusesOtherNodes(t *testing.T) {
	rooms := &roomsRec{}
	l := NewLocal(LocalConfig{Rooms: rooms, Tables: fakeTables{table()}})
	a := &answers{}
	l.Dispatch(Destination{Room: "r1"}, &call.Request{Post: a})
	l.Dispatch(Destination{Node: "n2", Role: "lobby", Key: "p1"}, &call.Request{Post: a})
	l.Login(Destination{Node: "n2", Role: "login", Key: "acc"}, &call.Login{Post: a})
	if len(*rooms) != 1 || (*rooms)[0] != "r1" {
		t.Fatalf("room deliveries %v", *rooms)
	}
	if len(a.codes) != 2 || a.codes[0] != protocol.Unavailable || a.codes[1] != protocol.Unavailable {
		t.Fatalf("requests for another node: %v, want two UNAVAILABLE", a.codes)
	}
}

func TestNotifySendsSessionEndsToHookedRoles(t *testing.T) {
	rec := &recorder{}
	r := New(fakeTables{table()}, fakeRooms{}, rec)
	r.Notify(call.Presence{PlayerID: "p1", Event: call.SessionDetached})
	r.Notify(call.Presence{PlayerID: "p1", Event: call.SessionEnded, Reason: "expired"})
	want := []Destination{{Role: "lobby", Key: "p1"}, {Role: "match", Key: "queue"}}
	sort.Slice(rec.notes, func(i, j int) bool { return rec.notes[i].Role < rec.notes[j].Role })
	if fmt.Sprint(rec.notes) != fmt.Sprint(want) {
		t.Fatalf("notified %+v, want %+v", rec.notes, want)
	}
}
