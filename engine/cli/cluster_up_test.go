package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The shipped cluster file loads with its restart policy; a restart policy that cannot work is
// refused with a message naming what it needs.
func TestLoadLocalCluster(t *testing.T) {
	c, err := loadLocalCluster(filepath.Join("..", "..", "deploy", "local", "cluster.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Restart; r.Backoff != time.Second || r.MaxBackoff != 30*time.Second || r.Limit != 5 || r.Stable != 10*time.Second || len(c.Nodes) != 8 {
		t.Fatalf("deploy/local/cluster.yaml: %+v", c)
	}
	dir := t.TempDir()
	for _, bad := range []string{"{limit: 0}", "{backoff: 0s}", "{backoff: 2s, max_backoff: 1s}", "{stable: -1s}"} {
		path := filepath.Join(dir, "c.yaml")
		yaml := "restart: " + bad + "\nnodes:\n  - {id: master-1, role: master}\n"
		if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := loadLocalCluster(path); err == nil || !strings.Contains(err.Error(), "restart needs") {
			t.Errorf("restart %s: %v", bad, err)
		}
	}
}
