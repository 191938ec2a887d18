package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestReferenceFileIsTheDefault keeps moonforge.yaml, the documented reference, equal to Default.
func TestReferenceFileIsTheDefault(t *testing.T) {
	cfg, err := Load("../../moonforge.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	if len(cfg.Gate.DisabledMethods) == 0 && len(want.Gate.DisabledMethods) == 0 {
		cfg.Gate.DisabledMethods = want.Gate.DisabledMethods // [] in the file, nil by default
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("moonforge.yaml differs from config.Default():\n file    %+v\n default %+v", cfg, want)
	}
}

func TestLoadOverridesAndRejects(t *testing.T) {
	dir := t.TempDir()
	write := func(text string) string {
		p := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg, err := Load(write("gate:\n  heartbeat: 250ms\n  rate_limit: 50\nlua:\n  pool_size: 4\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Gate.Heartbeat != 250*time.Millisecond || cfg.Gate.RateLimit != 50 || cfg.Lua.PoolSize != 4 || cfg.Gate.TCP != ":7001" {
		t.Fatalf("%+v", cfg)
	}
	cfg, err = Load(write("store:\n  backend: tiered\n  mysql:\n    dsn: u@tcp(db:3306)/game\n  tiered:\n    write_back: 200ms\n"))
	if err != nil || cfg.Store.Backend != "tiered" || cfg.Store.MySQL.DSN != "u@tcp(db:3306)/game" || cfg.Store.Redis.Addrs[0] != "127.0.0.1:6379" || cfg.Store.Tiered.WriteBack != 200*time.Millisecond {
		t.Fatalf("store section: %+v, %v", cfg.Store, err)
	}
	if _, err := Load(write("")); err != nil {
		t.Fatalf("empty file: %v", err)
	}
	for text, want := range map[string]string{
		"gate:\n  hearbeat: 1s\n":                                                     "hearbeat",
		"lua:\n  pool_size: 0\n":                                                      "pool_size",
		"gate:\n  heartbeat: soon\n":                                                  "time.Duration",
		"log:\n  format: xml\n":                                                       "log.format",
		"auth:\n  token_ttl: 1s\n":                                                    "token_ttl",
		"gate:\n  max_frame: 4\n":                                                     "max_frame",
		"store:\n  backend: sqlite\n":                                                 "store.backend",
		"store:\n  backend: redis\n  redis:\n    addrs: []\n":                         "store.redis.addrs",
		"store:\n  backend: mysql\n  mysql:\n    dsn: \"\"\n":                         "store.mysql.dsn",
		"store:\n  backend: mongo\n  mongo:\n    url: \"\"\n":                         "store.mongo.url",
		"store:\n  backend: tiered\n  redis:\n    cluster: true\n":                    "store.redis.cluster",
		"store:\n  backend: tiered\n  tiered:\n    write_back: 1ms\n":                 "store.tiered.write_back",
		"store:\n  backend: redis\n  redis:\n    cluster: true\n    master_name: m\n": "master_name",
		"store:\n  open_timeout: 0s\n":                                                "store.open_timeout",
		"store:\n  redis:\n    adrs: [x]\n":                                           "adrs",
	} {
		if _, err := Load(write(text)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want an error about %s", text, err, want)
		}
	}
}
