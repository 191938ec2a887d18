package tests

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/moonforge/moonforge/engine/protocol"
)

// reloadByHand triggers POST /reload and checks that a new version was applied.
func (s *server) reloadByHand(t testing.TB) {
	t.Helper()
	code, body := s.httpDo(t, http.MethodPost, "/reload")
	if code != http.StatusOK || !strings.Contains(string(body), `"result": "applied"`) {
		t.Fatalf("POST /reload: %d %s", code, body)
	}
}

// editFile replaces old with new in a file of the server's directory, as an editor saves it.
func (s *server) editFile(t testing.TB, rel, old, new string) {
	t.Helper()
	b, err := os.ReadFile(s.path(rel))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s does not contain %q", rel, old)
	}
	replaceFile(t, s.path(rel), strings.Replace(string(b), old, new, 1))
}

// TestReloadKeepsState checks DESIGN.md's reload contract: module tables survive a reload while
// functions are replaced, and a room keeps its players and state and goes on ticking.
func TestReloadKeepsState(t *testing.T) {
	t.Parallel()
	s := startServer(t, options{fixtures: true, config: "lua:\n  watch: false\n"})

	t.Run("module", func(t *testing.T) {
		c := s.dial(t, "tcp")
		guest(t, c, "stateful")
		s.mustCall(t, c, "NoteReq", `{"text": "kept"}`, "NoteAck")
		actor, calls, note := s.who(t, c)
		if note != "kept" {
			t.Fatalf("note %q before the reload", note)
		}
		s.editFile(t, "lua/lobby/zz_test.lua", `note = state.note }`, `note = state.note .. "!" }`)
		s.reloadByHand(t)
		actor2, calls2, note2 := s.who(t, c)
		if actor2 != actor || calls2 != calls+1 || note2 != "kept!" {
			t.Errorf("after the reload: actor %s calls %d note %q; want actor %s calls %d note %q",
				actor2, calls2, note2, actor, calls+1, "kept!")
		}
	})

	t.Run("room", func(t *testing.T) {
		c := s.dial(t, "tcp")
		me := guest(t, c, "arena-reload").PlayerId
		s.mustCall(t, c, "ArenaJoinReq", `{}`, "ArenaJoinAck")
		var pos protoreflect.Message
		for range 3 {
			pos = field(s.mustCall(t, c, "ArenaMoveReq", `{"dir": {"x": 1, "y": 1}}`, "ArenaMoveAck"), "pos").Message()
		}
		log := newPushLog(t, s)
		mine := func(p protoreflect.Message) (x, y float32, hp int32, ok bool) {
			list := p.Get(p.Descriptor().Fields().ByName("players")).List()
			for i := range list.Len() {
				pl := list.Get(i).Message()
				fd := pl.Descriptor().Fields()
				if pl.Get(fd.ByName("id")).String() == me {
					v := pl.Get(fd.ByName("pos")).Message()
					vf := v.Descriptor().Fields()
					return float32(v.Get(vf.ByName("x")).Float()), float32(v.Get(vf.ByName("y")).Float()), int32(pl.Get(fd.ByName("hp")).Int()), true
				}
			}
			return 0, 0, 0, false
		}
		wantX, wantY := float32(pos.Get(pos.Descriptor().Fields().ByName("x")).Float()), float32(pos.Get(pos.Descriptor().Fields().ByName("y")).Float())
		log.collect(c, 200*time.Millisecond)

		s.editFile(t, "lua/game/arena.lua", `room.state.msg.tick = room.tick`,
			`room.state.msg.tick = room.tick; for _, e in ipairs(room.state.msg.players) do e.hp = 42 end`)
		s.reloadByHand(t)
		deadline := time.Now().Add(3 * time.Second)
		for {
			p := nextPush(t, c, 2*time.Second)
			if p.MsgID == protocol.MsgKick {
				t.Fatalf("kicked: %v", c.Kicked())
			}
			log.add(p.Seq, p.MsgID, p.Payload)
			m, err := s.msgs.Message(p.MsgID, p.Payload)
			if err != nil || m.Descriptor().Name() != "ArenaState" {
				continue
			}
			x, y, hp, ok := mine(m)
			if !ok {
				t.Fatalf("ArenaState without this player after the reload: the room lost its players")
			}
			if x != wantX || y != wantY {
				t.Fatalf("position (%g, %g) in ArenaState, want (%g, %g): the room lost its state", x, y, wantX, wantY)
			}
			if hp == 42 {
				break
			}
			if hp != 100 || time.Now().After(deadline) {
				t.Fatalf("hp %d in ArenaState; want 100 before the new on_tick and 42 after, within 3s", hp)
			}
		}
		log.collect(c, 200*time.Millisecond) // ticks go on, one by one
		if log.byName["ArenaState"] < 4 {
			t.Errorf("only %d ArenaState pushes around the reload", log.byName["ArenaState"])
		}
	})
}
