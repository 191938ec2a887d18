package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/moonforge/moonforge/engine/client"
	"github.com/moonforge/moonforge/engine/protocol"
)

// profileCall sends a demo profile request and returns the ProfileAck's data as JSON values.
func (e *env) profileCall(c *client.Client, name, body string) map[string]any {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, payload, err := e.msgs.Encode(name, body)
	if err != nil {
		e.t.Fatal(err)
	}
	f, err := c.Request(ctx, id, payload)
	if err != nil {
		e.t.Fatalf("%s: %v", name, err)
	}
	reply, js, err := e.msgs.Decode(f.MsgID, f.Payload)
	if err != nil || !strings.HasSuffix(reply, "ProfileAck") {
		e.t.Fatalf("%s answered %s %s %v", name, reply, js, err)
	}
	var out struct {
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal([]byte(js), &out); err != nil {
		e.t.Fatal(err)
	}
	return out.Data
}

// Player data in a cluster of processes: the lobby node loads the player's data at the first
// mf.player.data (it sees no session start, which happens on the proxy) and holds the player's
// lease; the logout on the proxy reaches it over the bus and unloads the data (saved, lease
// released), so a kill -9 of the lobby node right after loses nothing, and its restart on the same
// data directory serves the player again.
func TestPlayerDataOnALobbyNode(t *testing.T) {
	e := newEnv(t)
	debug := filepath.Join(e.dir, "debug.yaml")
	if err := os.WriteFile(debug, []byte(testConfig+"log:\n  level: debug\nplayer:\n  flush_every: 1h\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.start("proxy-1", "proxy")
	e.start("lobby-1", "lobby", "-c", debug)
	e.waitNodes("proxy-1", "lobby-1")
	c, ack := e.dial("proxy-1", "cluster-hero")
	got := e.profileCall(c, "QuestDoneReq", `{"xp": 120, "gold": 1}`)
	if fmt.Sprintf("%v %v %v", got["level"], got["xp"], got["gold"]) != "2 120 101" {
		t.Fatalf("after a quest: %v", got)
	}
	payload, _ := proto.Marshal(&protocol.LogoutReq{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Request(ctx, protocol.MsgLogoutReq, payload); err != nil {
		t.Fatal(err)
	}
	lobby := e.nodes["lobby-1"]
	waitFor(t, "the lobby node unloads the player", func() bool {
		log := lobby.logText()
		return strings.Contains(log, `msg="player data unloaded"`) && strings.Contains(log, ack.PlayerId)
	})
	e.kill9("lobby-1")
	e.start("lobby-1", "lobby", "-c", debug)
	e.waitNodes("proxy-1", "lobby-1")
	c, _ = e.dial("proxy-1", "cluster-hero")
	if got := e.profileCall(c, "ProfileReq", `{}`); fmt.Sprintf("%v %v %v", got["level"], got["xp"], got["gold"]) != "2 120 101" {
		t.Fatalf("after logout and kill -9 of the lobby node: %v", got)
	}
}
