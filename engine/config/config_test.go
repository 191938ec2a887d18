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
	for _, l := range []struct{ file, def *[]string }{
		{&cfg.Cluster.Roles, &want.Cluster.Roles}, {&cfg.Cluster.NATS.URLs, &want.Cluster.NATS.URLs}, {&cfg.Cluster.NATS.Routes, &want.Cluster.NATS.Routes},
	} {
		if len(*l.file) == 0 && len(*l.def) == 0 {
			*l.file = *l.def
		}
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
	for _, empty := range []string{"", "# nothing\n", "gate:\n"} {
		if cfg, err := Load(write(empty)); err != nil || !reflect.DeepEqual(cfg, Default()) {
			t.Fatalf("%q: %v, %+v", empty, err, cfg)
		}
	}
	for text, want := range map[string]string{
		"gate:\n  hearbeat: 1s\n":                                     "line 2: unknown option gate.hearbeat",
		"lua:\n  pool_size: 0\n":                                      "lua.pool_size must be between",
		"lua:\n  mailbox_size: 2000000\n":                             "lua.mailbox_size must be between",
		"lua:\n  mailbox_bytes: 100000000000\n":                       "lua.mailbox_bytes must be between",
		"session:\n  room_mailbox_size: 2000000\n":                    "session.room_mailbox_size must be at most",
		"gate:\n  heartbeat: soon\n":                                  `line 2: gate.heartbeat: "soon" is not a duration`,
		"gate:\n  heartbeat: 10\n":                                    `line 2: gate.heartbeat: "10" is not a duration (like 10s`,
		"gate:\n  heartbeat: [1s]\n":                                  "gate.heartbeat: a list is not a duration",
		"gate:\n  max_frame: big\n":                                   `gate.max_frame: "big" is not a whole number`,
		"gate:\n  rate_limit: fast\n":                                 `gate.rate_limit: "fast" is not a number`,
		"dev: maybe\n":                                                `line 1: dev: "maybe" is not true or false`,
		"gate:\n  disabled_login_methods: guest\n":                    `gate.disabled_login_methods: "guest" is not a list of strings`,
		"gate: 7001\n":                                                `line 1: gate must be a mapping of options, not "7001"`,
		"- a\n":                                                       "the file must be a mapping of options",
		"store:\n  backend: sqlite\n":                                 "store.backend",
		"store:\n  backend: redis\n  redis:\n    addrs: []\n":         "store.redis.addrs",
		"store:\n  backend: mysql\n  mysql:\n    dsn: \"\"\n":         "store.mysql.dsn",
		"store:\n  backend: mongo\n  mongo:\n    url: \"\"\n":         "store.mongo.url",
		"store:\n  backend: tiered\n  redis:\n    cluster: true\n":    "store.redis.cluster",
		"store:\n  backend: tiered\n  tiered:\n    write_back: 1ms\n": "store.tiered.write_back",
		"store:\n  backend: redis\n  redis:\n    cluster: true\n    master_name: m\n": "master_name",
		"store:\n  open_timeout: 0s\n":      "store.open_timeout",
		"store:\n  redis:\n    adrs: [x]\n": "unknown option store.redis.adrs",
		"gate:\n  tcp: [\n":                 "yaml: line 2",
		"log:\n  format: xml\n":             "log.format",
		"auth:\n  token_ttl: 1s\n":          "token_ttl",
		"gate:\n  max_frame: 4\n":           "max_frame",
		"player:\n  message: \"\"\n":        "player.message",
		"player:\n  flush_every: 1ms\n":     "player.flush_every",
		"player:\n  lease_ttl: 10ms\n":      "player.lease_ttl",
		"player:\n  orphan_after: 0s\n":     "player.orphan_after",
		"nope: 1\ngate:\n  nada: 2\n":       "line 3: unknown option gate.nada",
	} {
		if _, err := Load(write(text)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want an error about %s", text, err, want)
		}
	}
}
