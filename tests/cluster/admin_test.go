package cluster

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/registry"
)

var adminField = regexp.MustCompile(`\badmin=(\S+)`)

// The master's admin endpoint serves the cluster's state: every live node with its roles,
// address, state, script version and load, as `moonforge cluster status -json` prints it.
func TestMasterAdminServesCluster(t *testing.T) {
	e := newEnvWithout(t)
	addr := freePort(t)
	e.url = "nats://" + addr
	master := e.start("master-1", "master", "-nats-listen", addr, "-admin", "127.0.0.1:0")
	m := adminField.FindStringSubmatch(master.logText())
	if m == nil {
		t.Fatalf("the master names no admin address:\n%s", master.logText())
	}
	e.start("proxy-1", "proxy")
	e.start("lobby-1", "lobby")
	e.waitNodes("master-1", "proxy-1", "lobby-1")
	e.dial("proxy-1", "admin-view")

	get := func() []registry.Record {
		resp, err := http.Get("http://" + m[1] + "/cluster")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var out []registry.Record
		if resp.StatusCode != 200 || json.Unmarshal(b, &out) != nil {
			t.Fatalf("GET /cluster: %d %s", resp.StatusCode, b)
		}
		return out
	}
	var nodes []registry.Record
	end := time.Now().Add(15 * time.Second)
	for {
		nodes = get()
		i := slices.IndexFunc(nodes, func(r registry.Record) bool { return r.ID == "proxy-1" })
		if len(nodes) == 3 && i >= 0 && nodes[i].Load.Sessions == 1 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("GET /cluster never listed the 3 nodes with proxy-1's session: %+v", nodes)
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, err := e.moonforge("cluster", "status", "-json", "-nats", e.url)
	if err != nil {
		t.Fatalf("cluster status: %v\n%s", err, out)
	}
	var status []registry.Record
	if err := json.Unmarshal([]byte(out), &status); err != nil {
		t.Fatalf("cluster status -json: %v\n%s", err, out)
	}
	for i, want := range []struct{ id, role string }{{"lobby-1", "lobby"}, {"master-1", "master"}, {"proxy-1", "proxy"}} {
		n := nodes[i]
		if n.ID != want.id || !slices.Contains(n.Roles, want.role) || n.State != registry.StateUp || n.Version == "" {
			t.Fatalf("node %d: %+v, want %s with role %s, up, a version", i, n, want.id, want.role)
		}
		if i >= len(status) || status[i].ID != n.ID || status[i].Version != n.Version || status[i].Address != n.Address || status[i].State != n.State {
			t.Fatalf("GET /cluster %+v differs from cluster status %+v", n, status)
		}
	}
	if nodes[2].Address == "" {
		t.Fatalf("the proxy's record names no address: %+v", nodes[2])
	}
}
