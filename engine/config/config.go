// Package config is the node's configuration: defaults, the YAML file, and its validation. Every
// option is listed, with its default, in moonforge.yaml at the repository root and in the README.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/moonforge/moonforge/engine/store"
)

// Config is everything a node reads at start.
type Config struct {
	Dev      bool          `yaml:"dev"`       // error replies carry file:line; text logs at debug level
	DataDir  string        `yaml:"data_dir"`  // embedded store and generated keys
	LuaDir   string        `yaml:"lua_dir"`   // gameplay scripts
	ProtoDir string        `yaml:"proto_dir"` // .proto schema
	Log      Log           `yaml:"log"`
	Gate     Gate          `yaml:"gate"`
	TLS      TLS           `yaml:"tls"`
	Admin    Admin         `yaml:"admin"`
	Lua      Lua           `yaml:"lua"`
	Session  Session       `yaml:"session"`
	Player   Player        `yaml:"player"`
	Auth     Auth          `yaml:"auth"`
	Store    store.Config  `yaml:"store"`
	Cluster  Cluster       `yaml:"cluster"`
	Shutdown time.Duration `yaml:"shutdown_timeout"` // how long a graceful stop may take
	// GCPercent is Go's GOGC: how much the heap may grow between collections. Above Go's 100 it
	// trades memory for CPU and for the latency of the requests a collection delays: the gateway
	// and the Lua tables allocate per request, and on a small machine each collection holds
	// requests back for a few milliseconds. With MemoryLimit 0, run sets a soft memory limit of
	// three quarters of the memory there is, so that a large GCPercent cannot outgrow it.
	GCPercent int `yaml:"gc_percent"`
	// MemoryLimit is Go's soft memory limit in bytes. Above MemoryHighWater of it, new logins and
	// rooms are refused with UNAVAILABLE until the heap falls. 0: run sets the soft limit to three
	// quarters of the container's or machine's memory, and nothing is refused.
	MemoryLimit     int64   `yaml:"memory_limit"`
	MemoryHighWater float64 `yaml:"memory_high_water"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// Gate configures the client gateway.
type Gate struct {
	TCP                 string        `yaml:"tcp"`     // listen address, "-" to disable
	WS                  string        `yaml:"ws"`      // listen address, "-" to disable
	WSPath              string        `yaml:"ws_path"` // WebSocket path
	MaxFrame            int           `yaml:"max_frame"`
	Heartbeat           time.Duration `yaml:"heartbeat"`
	RequestTimeout      time.Duration `yaml:"request_timeout"`
	MaxUnauthenticated  int           `yaml:"max_unauthenticated"`
	SendQueueBytes      int           `yaml:"send_queue_bytes"`
	RateLimit           float64       `yaml:"rate_limit"` // requests per second per connection (each 1 + 1 per KiB of payload), 0 = off
	RateBurst           int           `yaml:"rate_burst"`
	DisabledMethods     []string      `yaml:"disabled_login_methods"`
	TLSTCP              string        `yaml:"tls_tcp"` // TCP over TLS listen address, "-" to disable
	TLSWS               string        `yaml:"tls_ws"`  // WebSocket over TLS listen address, "-" to disable
	LoginTimeout        time.Duration `yaml:"login_timeout"`
	MaxFrameBeforeLogin int           `yaml:"max_frame_before_login"`
	MaxConnections      int           `yaml:"max_connections"`        // 0 = no limit
	MaxConnectionsPerIP int           `yaml:"max_connections_per_ip"` // 0 = no limit
	MaxInFlight         int           `yaml:"max_in_flight"`
	KCP                 KCP           `yaml:"kcp"`
}

// TLS names the certificate of the TLS listeners and the admin endpoint. The files are read again
// when they change. Without them TLS is off, except in dev mode, which makes a self-signed
// certificate in the data directory.
type TLS struct {
	CertFile string `yaml:"cert_file"` // PEM certificate chain
	KeyFile  string `yaml:"key_file"`  // PEM private key
}

// KCP configures the KCP-over-UDP gateway. The defaults are the protocol's fast mode; docs/protocol.md
// ("KCP") says which a client must match.
type KCP struct {
	Addr              string        `yaml:"addr"`        // UDP listen address, "-" to disable
	MTU               int           `yaml:"mtu"`         // largest datagram, KCP header included
	SendWindow        int           `yaml:"send_window"` // segments
	RecvWindow        int           `yaml:"recv_window"` // segments
	NoDelay           bool          `yaml:"nodelay"`
	Interval          time.Duration `yaml:"interval"`
	Resend            int           `yaml:"resend"` // fast resend after this many later acks, 0 = off
	CongestionControl bool          `yaml:"congestion_control"`
	MaxSessions       int           `yaml:"max_sessions"`
	SocketBuffer      int           `yaml:"socket_buffer"` // UDP receive and send buffer, bytes
}

// Admin configures the operator's HTTP endpoint.
type Admin struct {
	Addr string `yaml:"addr"` // "-" to disable
	// TokenFile holds the bearer token that every call but /healthz needs (or $MOONFORGE_ADMIN_TOKEN).
	// Required when Addr is not a loopback address.
	TokenFile string `yaml:"token_file"`
	Pprof     bool   `yaml:"pprof"` // serve /debug/pprof/ (behind the token, if any)
}

// Lua configures the script host.
type Lua struct {
	PoolSize       int           `yaml:"pool_size"`     // actors per role
	MailboxSize    int           `yaml:"mailbox_size"`  // tasks per actor
	MailboxBytes   int64         `yaml:"mailbox_bytes"` // request bytes queued per actor
	HandlerTimeout time.Duration `yaml:"handler_timeout"`
	Watch          bool          `yaml:"watch"` // reload on file changes
	Debounce       time.Duration `yaml:"reload_debounce"`
}

// Session configures sessions and resume.
type Session struct {
	ResumeWindow time.Duration `yaml:"resume_window"`
	ReplayPushes int           `yaml:"replay_pushes"`
	ReplayBytes  int           `yaml:"replay_bytes"`
	MaxRooms     int           `yaml:"max_rooms"`
	// MaxRoomsPerPlayer bounds the open rooms whose first member was one player.
	MaxRoomsPerPlayer int `yaml:"max_rooms_per_player"`
	RoomMailboxes     int `yaml:"room_mailbox_size"`
}

// Player configures typed player data (mf.player.data, docs/persistence.md).
type Player struct {
	// Message is the full name of the proto message that holds a player's data.
	Message string `yaml:"message"`
	// Role is the role whose handlers hold players' data: the node running it keeps each
	// player's data while the player's session lasts.
	Role       string        `yaml:"role"`
	FlushEvery time.Duration `yaml:"flush_every"` // write-behind interval of changed data
	LeaseTTL   time.Duration `yaml:"lease_ttl"`   // one writer per player: the lease, renewed every third
	// OrphanAfter is how long a player's data stays loaded while the player has no session
	// anywhere (a session's end that never reached this node, an unload that failed) before the
	// node unloads it.
	OrphanAfter time.Duration `yaml:"orphan_after"`
}

// Auth configures logins and tokens.
type Auth struct {
	TokenTTL       time.Duration `yaml:"token_ttl"`   // access tokens
	RefreshTTL     time.Duration `yaml:"refresh_ttl"` // refresh tokens
	KeysFile       string        `yaml:"keys_file"`   // token signing keys; "" = <data_dir>/token_keys
	MinPasswordLen int           `yaml:"min_password_len"`
	// HashConcurrency bounds the argon2id computations running at once; 0 = half the cores.
	HashConcurrency int `yaml:"hash_concurrency"`
	// FailureDelay is the wait imposed after a failed login, doubling per further failure of the
	// same account or IP; LockoutFailures failures lock the account for Lockout (IPs: 5 times as many).
	FailureDelay    time.Duration `yaml:"failure_delay"`
	LockoutFailures int           `yaml:"lockout_failures"`
	Lockout         time.Duration `yaml:"lockout"`
	// GuestsPerIPMinute bounds the new guest accounts one IP may create per minute; 0 = no limit.
	GuestsPerIPMinute int `yaml:"guests_per_ip_minute"`
}

// Cluster configures the node's place in a cluster: its id and role, the NATS bus, the registry.
type Cluster struct {
	NodeID string `yaml:"node_id"` // unique in the cluster; default: the role and a random suffix
	// Roles this process runs; `moonforge run` runs all of them, `moonforge node --role` one.
	Roles []string `yaml:"roles"`
	// Address clients reach this node's gateway at (a proxy's public address), for the registry.
	Address   string        `yaml:"address"`
	Weight    int           `yaml:"weight"`    // share of new players under weighted balancing
	Heartbeat time.Duration `yaml:"heartbeat"` // how often the node refreshes its registry record
	NodeTTL   time.Duration `yaml:"node_ttl"`  // a record not refreshed for this long disappears
	// Balance names the policy that places players on each role's nodes: round_robin,
	// weighted, least_load or hash (consistent hashing on the player id).
	Balance map[string]string `yaml:"balance"`
	// DrainTimeout is how long a draining node waits for its rooms to end before it closes them.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	NATS         NATS          `yaml:"nats"`
}

// NATS configures the bus: an embedded nats-server, or an existing NATS cluster (URLs).
type NATS struct {
	URLs          []string `yaml:"urls"`           // an existing NATS cluster; empty: a server embedded in this process
	Listen        string   `yaml:"listen"`         // embedded server's client address ("": in-process connections only)
	Routes        []string `yaml:"routes"`         // embedded server's routes to other masters (nats://host:port)
	ClusterListen string   `yaml:"cluster_listen"` // embedded server's route address (with routes)
	Name          string   `yaml:"name"`           // NATS cluster name (with routes)
	StoreDir      string   `yaml:"store_dir"`      // embedded JetStream storage; default: data_dir/nats
	Replicas      int      `yaml:"replicas"`       // copies of each registry bucket: 1, or 3 with three masters
	// User and Password authenticate the node to the bus and, on an embedded server that listens,
	// every node to it; MOONFORGE_NATS_USER and MOONFORGE_NATS_PASSWORD override them.
	User     string `yaml:"user"`
	Password string `yaml:"password"`
	CAFile   string `yaml:"ca_file"`   // TLS: CA of the servers (client side)
	CertFile string `yaml:"cert_file"` // TLS: certificate of the embedded server
	KeyFile  string `yaml:"key_file"`
}

// Default returns the configuration `moonforge run` uses without a file.
func Default() Config {
	return Config{
		DataDir:  "data",
		LuaDir:   "lua",
		ProtoDir: "proto",
		Log:      Log{Level: "info", Format: "text"},
		Gate: Gate{
			TCP:                 ":7001",
			WS:                  ":7002",
			WSPath:              "/ws",
			MaxFrame:            1 << 20,
			Heartbeat:           10 * time.Second,
			RequestTimeout:      10 * time.Second,
			MaxUnauthenticated:  3,
			SendQueueBytes:      4 << 20,
			RateLimit:           1000,
			RateBurst:           2000,
			TLSTCP:              ":7443",
			TLSWS:               ":7444",
			LoginTimeout:        10 * time.Second,
			MaxFrameBeforeLogin: 4096,
			MaxConnections:      100000,
			MaxInFlight:         64,
			KCP: KCP{
				Addr:         ":7003",
				MTU:          1400,
				SendWindow:   256,
				RecvWindow:   256,
				NoDelay:      true,
				Interval:     10 * time.Millisecond,
				Resend:       2,
				MaxSessions:  10000,
				SocketBuffer: 4 << 20,
			},
		},
		Admin: Admin{Addr: "127.0.0.1:7080"},
		Lua: Lua{
			PoolSize:       16,
			MailboxSize:    4096,
			MailboxBytes:   16 << 20,
			HandlerTimeout: 2 * time.Second,
			Watch:          true,
			Debounce:       150 * time.Millisecond,
		},
		Session: Session{
			ResumeWindow:      60 * time.Second,
			ReplayPushes:      1024,
			ReplayBytes:       256 << 10,
			MaxRooms:          100000,
			MaxRoomsPerPlayer: 16,
			RoomMailboxes:     256,
		},
		Player: Player{Message: "demo.PlayerData", Role: "lobby", FlushEvery: 5 * time.Second, LeaseTTL: 15 * time.Second, OrphanAfter: time.Minute},
		Auth: Auth{
			TokenTTL:          15 * time.Minute,
			RefreshTTL:        30 * 24 * time.Hour,
			MinPasswordLen:    8,
			FailureDelay:      time.Second,
			LockoutFailures:   10,
			Lockout:           15 * time.Minute,
			GuestsPerIPMinute: 30,
		},
		Store: store.Config{
			Backend: "bolt",
			Redis:   store.RedisConfig{Addrs: []string{"127.0.0.1:6379"}, Prefix: "moonforge:"},
			MySQL:   store.MySQLConfig{DSN: "root@tcp(127.0.0.1:3306)/moonforge", Table: store.DefaultMySQLTable, MaxOpenConns: 32},
			Mongo: store.MongoConfig{URL: "mongodb://127.0.0.1:27017/", Database: store.DefaultMongoDatabase,
				Collection: store.DefaultMongoCollection, Timeout: 10 * time.Second},
			Tiered:  store.TieredOptions{WriteBack: time.Second},
			Timeout: 10 * time.Second,
		},
		Cluster: Cluster{
			Weight:       1,
			Heartbeat:    time.Second,
			NodeTTL:      3 * time.Second,
			Balance:      map[string]string{},
			DrainTimeout: 30 * time.Second,
			NATS:         NATS{Name: "moonforge", Replicas: 1},
		},
		Shutdown:        10 * time.Second,
		GCPercent:       1000,
		MemoryHighWater: 0.9,
	}
}

// Load reads a YAML file over the defaults. Unknown keys are errors, so a typo is not ignored;
// every error names the file, the line and the option.
func Load(path string) (Config, error) {
	raw, err := os.ReadFile(path)
	var pe *fs.PathError
	if errors.As(err, &pe) {
		pe.Path = filepath.ToSlash(pe.Path) // the same message on every OS
	}
	if err != nil {
		return Default(), fmt.Errorf("config: %w", err)
	}
	cfg, err := Parse(raw)
	if err != nil {
		return cfg, fmt.Errorf("config %s: %w", filepath.ToSlash(path), err)
	}
	return cfg, nil
}

// Parse reads YAML text over the defaults and validates the result, as Load does.
func Parse(raw []byte) (Config, error) {
	cfg := Default()
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return cfg, err
	}
	if len(doc.Content) > 0 { // not an empty file
		if err := errors.Join(decode(doc.Content[0], reflect.ValueOf(&cfg).Elem(), "")...); err != nil {
			return cfg, err
		}
	}
	return cfg, cfg.Validate()
}

// decode sets v from the YAML node n, option by option, so that an error names the option (path)
// and says what its value should be.
func decode(n *yaml.Node, v reflect.Value, path string) []error {
	if n.Tag == "!!null" {
		return nil
	}
	if v.Kind() != reflect.Struct {
		if err := n.Decode(v.Addr().Interface()); err != nil {
			return []error{fmt.Errorf("line %d: %s: %s is not %s", n.Line, path, shown(n), expected(v.Type()))}
		}
		return nil
	}
	if n.Kind != yaml.MappingNode {
		what := "the file"
		if path != "" {
			what = path
		}
		return []error{fmt.Errorf("line %d: %s must be a mapping of options, not %s", n.Line, what, shown(n))}
	}
	var errs []error
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		name := key.Value
		if path != "" {
			name = path + "." + key.Value
		}
		field, ok := fieldByTag(v, key.Value)
		if !ok {
			errs = append(errs, fmt.Errorf("line %d: unknown option %s", key.Line, name))
			continue
		}
		errs = append(errs, decode(val, field, name)...)
	}
	return errs
}

// fieldByTag returns the field of struct v whose yaml tag is name.
func fieldByTag(v reflect.Value, name string) (reflect.Value, bool) {
	for i := 0; i < v.NumField(); i++ {
		if strings.Split(v.Type().Field(i).Tag.Get("yaml"), ",")[0] == name {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// shown quotes a scalar node's text, or names a node's kind.
func shown(n *yaml.Node) string {
	switch n.Kind {
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	return "this value"
}

// expected describes the values of an option's type.
func expected(t reflect.Type) string {
	switch {
	case t == reflect.TypeOf(time.Duration(0)):
		return "a duration (like 10s, 250ms or 1h30m)"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.Int:
		return "a whole number"
	case t.Kind() == reflect.Float64:
		return "a number"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Slice:
		return "a list of strings, like [a, b]"
	}
	return "a " + t.String()
}

// Validate checks ranges that would otherwise fail later and less clearly.
func (c Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.Gate.MaxFrame >= 8 && c.Gate.MaxFrame <= 64<<20, "gate.max_frame must be between 8 and 64 MiB")
	check(c.Gate.Heartbeat >= 100*time.Millisecond, "gate.heartbeat must be at least 100ms")
	check(c.Gate.RequestTimeout >= 10*time.Millisecond, "gate.request_timeout must be at least 10ms")
	check(c.Gate.MaxUnauthenticated >= 1, "gate.max_unauthenticated must be at least 1")
	check(c.Gate.RateLimit >= 0, "gate.rate_limit must not be negative")
	check(c.Gate.KCP.MTU >= 50 && c.Gate.KCP.MTU <= 1472, "gate.kcp.mtu must be between 50 and 1472")
	check(c.Gate.KCP.SendWindow >= 1 && c.Gate.KCP.RecvWindow >= 1, "gate.kcp.send_window and recv_window must be at least 1")
	check(c.Gate.KCP.RecvWindow <= 65535, "gate.kcp.recv_window must be at most 65535")
	check(c.Gate.KCP.Interval >= time.Millisecond && c.Gate.KCP.Interval <= 5*time.Second, "gate.kcp.interval must be between 1ms and 5s")
	check(c.Gate.KCP.Resend >= 0, "gate.kcp.resend must not be negative")
	check(c.Gate.KCP.MaxSessions >= 1, "gate.kcp.max_sessions must be at least 1")
	check(c.Gate.KCP.SocketBuffer >= 0, "gate.kcp.socket_buffer must not be negative")
	check(c.Lua.PoolSize >= 1 && c.Lua.PoolSize <= 4096, "lua.pool_size must be between 1 and 4096")
	check(c.Lua.MailboxSize >= 1 && c.Lua.MailboxSize <= 1<<20, "lua.mailbox_size must be between 1 and 1048576")
	check(c.Lua.MailboxBytes >= 64<<10 && c.Lua.MailboxBytes <= 1<<36, "lua.mailbox_bytes must be between 65536 and 68719476736 (64 GiB)")
	check(c.Session.RoomMailboxes <= 1<<20, "session.room_mailbox_size must be at most 1048576")
	check(c.Lua.HandlerTimeout >= time.Millisecond, "lua.handler_timeout must be at least 1ms")
	check(c.Session.ResumeWindow >= 0, "session.resume_window must not be negative")
	check(c.Session.ReplayPushes >= 1, "session.replay_pushes must be at least 1")
	check(c.Session.MaxRoomsPerPlayer >= 1, "session.max_rooms_per_player must be at least 1")
	check(c.Player.Message != "" && c.Player.Role != "", "player.message and player.role must not be empty")
	check(c.Player.FlushEvery >= 10*time.Millisecond, "player.flush_every must be at least 10ms")
	check(c.Player.LeaseTTL >= time.Second, "player.lease_ttl must be at least 1s")
	check(c.Player.OrphanAfter > 0, "player.orphan_after must be positive")
	check(c.GCPercent >= 10, "gc_percent must be at least 10")
	check(c.MemoryLimit == 0 || c.MemoryLimit >= 64<<20, "memory_limit must be 0 (3/4 of the memory there is, no shedding) or at least 64 MiB")
	check(c.MemoryHighWater > 0 && c.MemoryHighWater <= 1, "memory_high_water must be above 0 and at most 1")
	check(c.Auth.TokenTTL >= time.Minute, "auth.token_ttl must be at least 1m")
	check(c.Auth.RefreshTTL >= c.Auth.TokenTTL, "auth.refresh_ttl must be at least auth.token_ttl")
	check(c.Auth.HashConcurrency >= 0, "auth.hash_concurrency must not be negative")
	check(c.Auth.FailureDelay >= 0 && c.Auth.Lockout >= 0 && c.Auth.LockoutFailures >= 0, "auth.failure_delay, auth.lockout and auth.lockout_failures must not be negative")
	check(c.Auth.GuestsPerIPMinute >= 0, "auth.guests_per_ip_minute must not be negative")
	check(c.Gate.LoginTimeout >= 100*time.Millisecond, "gate.login_timeout must be at least 100ms")
	check(c.Gate.MaxFrameBeforeLogin >= 64, "gate.max_frame_before_login must be at least 64 (gate.max_frame caps it)")
	check(c.Gate.MaxConnections >= 0 && c.Gate.MaxConnectionsPerIP >= 0, "gate.max_connections and gate.max_connections_per_ip must not be negative")
	check(c.Gate.MaxInFlight >= 1, "gate.max_in_flight must be at least 1")
	check((c.TLS.CertFile == "") == (c.TLS.KeyFile == ""), "tls.cert_file and tls.key_file go together")
	check(c.Cluster.Heartbeat >= 10*time.Millisecond, "cluster.heartbeat must be at least 10ms")
	check(c.Cluster.NodeTTL >= 2*c.Cluster.Heartbeat, "cluster.node_ttl must be at least twice cluster.heartbeat")
	check(c.Cluster.DrainTimeout >= 0, "cluster.drain_timeout must not be negative")
	check(c.Cluster.Weight >= 1, "cluster.weight must be at least 1")
	check(c.Cluster.NATS.Replicas == 1 || c.Cluster.NATS.Replicas == 3, "cluster.nats.replicas must be 1 or 3")
	for role, p := range c.Cluster.Balance {
		check(p == "round_robin" || p == "weighted" || p == "least_load" || p == "hash",
			"cluster.balance.%s must be round_robin, weighted, least_load or hash", role)
	}
	check(c.Log.Format == "text" || c.Log.Format == "json", "log.format must be text or json")
	check(c.Log.Level == "debug" || c.Log.Level == "info" || c.Log.Level == "warn" || c.Log.Level == "error", "log.level must be debug, info, warn or error")
	if err := c.Store.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
