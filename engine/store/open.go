package store

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"
)

// Backends are the names Config.Backend accepts.
var Backends = []string{"bolt", "redis", "mysql", "mongo", "tiered"}

// Config chooses and configures a backend; it is the store section of the
// node's configuration (engine/config holds its defaults).
type Config struct {
	Backend string        `yaml:"backend"` // bolt, redis, mysql, mongo or tiered
	Bolt    BoltConfig    `yaml:"bolt"`    // Path "": <data_dir>/moonforge.db
	Redis   RedisConfig   `yaml:"redis"`
	MySQL   MySQLConfig   `yaml:"mysql"`
	Mongo   MongoConfig   `yaml:"mongo"`
	Tiered  TieredOptions `yaml:"tiered"`
	// Timeout bounds opening the backend.
	Timeout time.Duration `yaml:"open_timeout"`
}

// TieredOptions is the tiered section; the front is the redis section, the
// back the mysql one.
type TieredOptions struct {
	WriteBack time.Duration `yaml:"write_back"` // how often Redis' changes are written to MySQL
}

// Validate checks the options of the chosen backend, naming them as in the
// configuration file.
func (c Config) Validate() error {
	if !slices.Contains(Backends, c.Backend) {
		return fmt.Errorf("store.backend %q: must be one of %v", c.Backend, Backends)
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("store.open_timeout must be positive")
	}
	needRedis := func() error {
		switch {
		case len(c.Redis.Addrs) == 0:
			return fmt.Errorf("store.redis.addrs is empty (store.backend is %s)", c.Backend)
		case c.Redis.Cluster && c.Redis.MasterName != "":
			return fmt.Errorf("store.redis: cluster and master_name exclude each other")
		}
		return c.Redis.validate()
	}
	needMySQL := func() error {
		if c.MySQL.DSN == "" {
			return fmt.Errorf("store.mysql.dsn is empty (store.backend is %s)", c.Backend)
		}
		return nil
	}
	switch c.Backend {
	case "redis":
		return needRedis()
	case "mysql":
		return needMySQL()
	case "mongo":
		if c.Mongo.URL == "" {
			return fmt.Errorf("store.mongo.url is empty (store.backend is mongo)")
		}
	case "tiered":
		if err := needRedis(); err != nil {
			return err
		}
		if c.Redis.Cluster {
			return fmt.Errorf("store.backend tiered needs a single Redis or Sentinel, not store.redis.cluster")
		}
		if err := needMySQL(); err != nil {
			return err
		}
		if c.Tiered.WriteBack < 10*time.Millisecond {
			return fmt.Errorf("store.tiered.write_back must be at least 10ms")
		}
	}
	return nil
}

// Open opens the backend that cfg chooses; dataDir is where the bolt file
// lives unless store.bolt.path says otherwise.
func Open(ctx context.Context, cfg Config, dataDir string) (Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	switch cfg.Backend {
	case "redis":
		return OpenRedis(ctx, cfg.Redis)
	case "mysql":
		return OpenMySQL(ctx, cfg.MySQL)
	case "mongo":
		return OpenMongo(ctx, cfg.Mongo)
	case "tiered":
		return OpenTiered(ctx, TieredConfig{Front: cfg.Redis, Back: cfg.MySQL, WriteBack: cfg.Tiered.WriteBack})
	}
	bolt := cfg.Bolt
	if bolt.Path == "" {
		bolt.Path = filepath.Join(dataDir, "moonforge.db")
	}
	return OpenBolt(bolt)
}
