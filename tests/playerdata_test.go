package tests

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/moonforge/moonforge/engine/client"
	"github.com/moonforge/moonforge/engine/protocol"
	"github.com/moonforge/moonforge/engine/schema"
)

// describe prints a message's fields in field order as name=value (lists as [a b]), whatever the
// schema version.
func describe(m protoreflect.Message) string {
	var parts []string
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		v := m.Get(fd)
		if fd.IsList() {
			var items []string
			for j := range v.List().Len() {
				items = append(items, v.List().Get(j).String())
			}
			parts = append(parts, fmt.Sprintf("%s=[%s]", fd.Name(), strings.Join(items, " ")))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s=%v", fd.Name(), v.Interface()))
	}
	return strings.Join(parts, " ")
}

// profile asks for the player's data with the schema msgs and describes it.
func profile(t testing.TB, msgs client.Messages, c *client.Client) string {
	t.Helper()
	m, err := callWith(timeout(t, 10*time.Second), msgs, c, "ProfileReq", `{}`)
	if err != nil {
		t.Fatalf("ProfileReq: %v", err)
	}
	return describe(field(m, "data").Message())
}

// logout logs the client out (its session ends at once) and waits for the server to close it.
func logout(t testing.TB, c *client.Client) {
	t.Helper()
	payload, _ := proto.Marshal(&protocol.LogoutReq{})
	if _, err := c.Request(timeout(t, 10*time.Second), protocol.MsgLogoutReq, payload); err != nil {
		t.Fatalf("logout: %v", err)
	}
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not close the connection after the logout")
	}
}

// data describes a ProfileAck's data.
func data(m *dynamicpb.Message) string { return describe(field(m, "data").Message()) }

// TestPlayerData plays the demo's profiles (lua/lobby/profile.lua, mf.player.data) through the
// binary: data survives a logout and login, a graceful restart, and a kill -9 right after a reply
// that mf.player.save marked saved; data changed and not saved is lost by a kill -9 (the window
// of loss, with player.flush_every far away); a hot reload that adds and removes a field of the
// message keeps stored and loaded data readable.
func TestPlayerData(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{config: "lua:\n  watch: false\nplayer:\n  flush_every: 1h\n"})

	c := s.dial(t, "tcp")
	hero := guest(t, c, "hero").PlayerId
	const fresh = "name=player-"
	if got := profile(t, s.msgs, c); !strings.HasPrefix(got, fresh) || !strings.HasSuffix(got, " level=1 xp=0 gold=100 items=[]") {
		t.Fatalf("a new player's profile: %s", got)
	}
	s.mustCall(t, c, "QuestDoneReq", `{"xp": 250, "gold": 5}`, "ProfileAck")
	m := s.mustCall(t, c, "RenameReq", `{"name": "Ayla"}`, "ProfileAck")
	const afterQuest = "name=Ayla level=3 xp=250 gold=105 items=[]"
	if got := data(m); got != afterQuest {
		t.Fatalf("after a quest and a rename: %s, want %s", got, afterQuest)
	}
	_, err := s.call(timeout(t, 10*time.Second), c, "RenameReq", `{"name": ""}`)
	expectCode(t, "an empty name", err, protocol.BadRequest)

	// Logout: the session's end saves the data and releases the lease (just after the LogoutAck,
	// on a goroutine: the test waits for it); a kill -9 after it loses nothing, and the next start
	// takes the lease at once.
	logout(t, c)
	if !s.log.waitFor(10*time.Second, `msg="player data unloaded"`, hero) {
		t.Fatal("the player's data was not unloaded after the logout")
	}
	s.kill()
	s.restart()
	c = s.dial(t, "tcp")
	guest(t, c, "hero")
	if got := profile(t, s.msgs, c); got != afterQuest {
		t.Fatalf("after logout, kill -9 and restart: %s, want %s", got, afterQuest)
	}

	// A graceful stop saves every player's changes.
	s.mustCall(t, c, "QuestDoneReq", `{"xp": 50}`, "ProfileAck")
	if code := s.stop(); code != 0 {
		t.Fatalf("graceful stop: exit code %d", code)
	}
	s.restart()
	c = s.dial(t, "tcp")
	guest(t, c, "hero")
	const afterStop = "name=Ayla level=4 xp=300 gold=105 items=[]"
	if got := profile(t, s.msgs, c); got != afterStop {
		t.Fatalf("after a graceful restart: %s, want %s", got, afterStop)
	}

	// kill -9 right after a saved reply: the purchase is kept; the quest after it, not saved and
	// not yet flushed, is lost.
	elder := s.dial(t, "tcp")
	guest(t, elder, "elder")
	s.mustCall(t, elder, "BuyReq", `{"item": "staff", "price": 60}`, "BuyAck")
	ack := s.mustCall(t, c, "BuyReq", `{"item": "sword", "price": 30}`, "BuyAck")
	if gold := field(ack, "gold").Uint(); gold != 75 {
		t.Fatalf("BuyAck gold %d, want 75", gold)
	}
	_, err = s.call(timeout(t, 10*time.Second), c, "BuyReq", `{"item": "castle", "price": 1000}`)
	expectCode(t, "buying beyond one's gold", err, 1301)
	s.mustCall(t, c, "QuestDoneReq", `{"xp": 10}`, "ProfileAck")
	s.kill()
	s.restart()
	c = s.dial(t, "tcp")
	guest(t, c, "hero")
	const afterKill = "name=Ayla level=4 xp=300 gold=75 items=[sword]"
	if got := profile(t, s.msgs, c); got != afterKill {
		t.Fatalf("after kill -9 following a saved reply: %s, want %s", got, afterKill)
	}

	// A hot reload that removes PlayerData.items and adds a title: the loaded player's table is
	// read again with the new message, and a record stored before the change reads too.
	s.editFile(t, "proto/demo/demo.proto", "  repeated string items = 5;\n", "  string title = 6;\n")
	s.editFile(t, "lua/lobby/profile.lua", "  me.level = 1 + math.floor(me.xp / 100)\n",
		"  me.level = 1 + math.floor(me.xp / 100)\n  me.title = \"veteran\"\n")
	s.editFile(t, "lua/lobby/profile.lua", "  me.items[#me.items + 1] = req.item\n", "")
	s.editFile(t, "lua/lobby/profile.lua", "items = me.items", "items = {}")
	s.reloadByHand(t)
	sch, err := schema.Load(s.path("proto"))
	if err != nil {
		t.Fatal(err)
	}
	v2 := client.Messages{Schema: sch}
	if got, want := profile(t, v2, c), "name=Ayla level=4 xp=300 gold=75 title="; got != want {
		t.Fatalf("the loaded player after the reload: %s, want %s", got, want)
	}
	m, err = callWith(timeout(t, 10*time.Second), v2, c, "QuestDoneReq", `{"xp": 0}`)
	if err != nil {
		t.Fatal(err)
	}
	const afterReload = "name=Ayla level=4 xp=300 gold=75 title=veteran"
	if got := data(m); got != afterReload {
		t.Fatalf("after a quest on the new message: %s, want %s", got, afterReload)
	}
	elder = s.dial(t, "tcp")
	guest(t, elder, "elder")
	if got := profile(t, v2, elder); !strings.HasSuffix(got, " level=1 xp=0 gold=40 title=") {
		t.Fatalf("a record stored before the change, read with the new message: %s", got)
	}
	logout(t, c)
	if code := s.stop(); code != 0 {
		t.Fatalf("graceful stop: exit code %d", code)
	}
	s.restart()
	c = s.dial(t, "tcp")
	guest(t, c, "hero")
	if got := profile(t, v2, c); got != afterReload {
		t.Fatalf("after the reload and a restart: %s, want %s", got, afterReload)
	}
}
