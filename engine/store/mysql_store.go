package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MySQLConfig configures OpenMySQL.
type MySQLConfig struct {
	// DSN is go-sql-driver/mysql's data source name, naming the database:
	// user:password@tcp(host:port)/dbname. Required.
	DSN string `yaml:"dsn"`
	// Table holds the keys; created if missing. Default moonforge_kv.
	Table string `yaml:"table"`
	// MaxOpenConns bounds the connection pool. Default 32.
	MaxOpenConns int `yaml:"max_open_conns"`
	// Log receives the driver's own messages (mostly connections it found
	// broken), as warnings. Nil: the driver's default, standard error.
	Log *slog.Logger `yaml:"-" json:"-"`
}

// driverLog is the driver's logger on a slog.Logger.
type driverLog struct{ log *slog.Logger }

func (d driverLog) Print(v ...any) { d.log.Warn(strings.TrimSpace(fmt.Sprint(v...))) }

// DefaultMySQLTable is MySQLConfig.Table's default.
const DefaultMySQLTable = "moonforge_kv"

// MySQLStore is the Store on MySQL or MariaDB (InnoDB): one table with the
// key as its primary key, the value, the version and the expiry. A batch is
// one transaction that first locks the rows of its conditions (SELECT ...
// FOR UPDATE), so conditional batches are atomic across any keys; deadlocks
// between batches are retried. Values are limited by the server's
// max_allowed_packet, read at open.
type MySQLStore struct {
	life
	db    *sql.DB
	table string
	caps  Capabilities
	stop  chan struct{}
	swept sync.WaitGroup
}

var _ Store = (*MySQLStore)(nil)

var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// OpenMySQL connects, creates the table if missing and reads the server's
// limits.
func OpenMySQL(ctx context.Context, cfg MySQLConfig) (*MySQLStore, error) {
	if cfg.DSN == "" {
		return nil, errors.New("store: MySQLConfig.DSN is empty")
	}
	if cfg.Table == "" {
		cfg.Table = DefaultMySQLTable
	}
	if !tableName.MatchString(cfg.Table) {
		return nil, fmt.Errorf("store: mysql table name %q: letters, digits and _ only", cfg.Table)
	}
	if cfg.MaxOpenConns <= 0 {
		cfg.MaxOpenConns = 32
	}
	mc, err := mysql.ParseDSN(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("store: mysql dsn: %w", err)
	}
	if mc.DBName == "" {
		return nil, errors.New("store: the mysql dsn names no database (user@tcp(host:port)/dbname)")
	}
	mc.ParseTime = false
	if cfg.Log != nil {
		mc.Logger = driverLog{cfg.Log.With("part", "mysql driver")}
	}
	if err := limitIdleTransactions(ctx, mc); err != nil {
		return nil, err
	}
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, fmt.Errorf("store: mysql dsn: %w", err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(cfg.MaxOpenConns)
	db.SetMaxIdleConns(cfg.MaxOpenConns)
	db.SetConnMaxLifetime(time.Hour)
	s := &MySQLStore{db: db, table: "`" + cfg.Table + "`", stop: make(chan struct{})}
	if err := s.init(ctx, mc.Addr); err != nil {
		_ = db.Close()
		return nil, err
	}
	s.swept.Go(s.sweeper)
	return s, nil
}

// idleTransactionTimeout is MariaDB's idle_transaction_timeout on the
// store's connections, in seconds.
const idleTransactionTimeout = "2"

// limitIdleTransactions makes a MariaDB server close the store's connections
// that sit idle inside a transaction for idleTransactionTimeout, unless the
// DSN sets idle_transaction_timeout itself. A batch's transaction holds the
// row locks of its conditions, the lease record among them: without the
// limit, a node frozen inside one (SIGSTOP, a stalled machine) blocks every
// other node's takeover of that lease for as long as it stays frozen. A
// batch's statements follow each other without pause, so the limit never
// ends a live one. MySQL has no such setting.
func limitIdleTransactions(ctx context.Context, mc *mysql.Config) error {
	if _, set := mc.Params["idle_transaction_timeout"]; set {
		return nil
	}
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		return fmt.Errorf("store: mysql dsn: %w", err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	var version string
	if err := db.QueryRowContext(ctx, "SELECT @@version").Scan(&version); err != nil {
		return fmt.Errorf("store: mysql %s: %w", mc.Addr, sqlErr(err))
	}
	if strings.Contains(version, "MariaDB") {
		if mc.Params == nil {
			mc.Params = map[string]string{}
		}
		mc.Params["idle_transaction_timeout"] = idleTransactionTimeout
	}
	return nil
}

func (s *MySQLStore) init(ctx context.Context, addr string) error {
	_, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+s.table+` (
		k VARBINARY(1024) NOT NULL PRIMARY KEY,
		v LONGBLOB NOT NULL,
		n BIGINT UNSIGNED NOT NULL,
		exp BIGINT NOT NULL DEFAULT 0,
		KEY exp (exp)
	) ENGINE=InnoDB`)
	if err != nil {
		return fmt.Errorf("store: mysql %s: %w", addr, sqlErr(err))
	}
	var packet int
	if err := s.db.QueryRowContext(ctx, "SELECT @@max_allowed_packet").Scan(&packet); err != nil {
		return fmt.Errorf("store: mysql %s: %w", addr, sqlErr(err))
	}
	s.caps = Capabilities{
		Backend:       "mysql",
		AtomicBatch:   true,
		Durable:       true,
		MaxValueLen:   min(MaxValueLen, packet-MaxKeyLen-1024),
		MaxBatchOps:   10000,
		MaxBatchBytes: 64 << 20,
	}
	if s.caps.MaxValueLen < 1<<20 {
		return fmt.Errorf("store: mysql %s: max_allowed_packet is %d bytes; at least 1 MiB + 2 KiB is needed", addr, packet)
	}
	return nil
}

// Capabilities implements Store. Durable holds with InnoDB's default
// innodb_flush_log_at_trx_commit=1.
func (s *MySQLStore) Capabilities() Capabilities { return s.caps }

// sqlErr maps a driver error: the server's error replies stay as they are,
// broken connections and timeouts wrap ErrUnavailable.
func sqlErr(err error) error {
	var me *mysql.MySQLError
	switch {
	case err == nil, errors.Is(err, context.Canceled), errors.Is(err, sql.ErrNoRows):
		return err
	case errors.As(err, &me) && me.Number != 1205 && me.Number != 1213:
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

func nowMillis() int64 { return time.Now().UnixMilli() }

// ttlExpiry is the expiry in unix ms of a put with ttl, 0 for none.
func ttlExpiry(ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return time.Now().Add(ttl + time.Millisecond - 1).UnixMilli()
}

// Get implements Store.
func (s *MySQLStore) Get(ctx context.Context, key string) ([]byte, error) {
	v, _, err := s.GetVersion(ctx, key)
	return v, err
}

// GetVersion implements Store.
func (s *MySQLStore) GetVersion(ctx context.Context, key string) ([]byte, uint64, error) {
	if err := validateKey(key); err != nil {
		return nil, 0, err
	}
	v, n, _, err := s.getRow(ctx, key)
	return v, n, err
}

// Put implements Store.
func (s *MySQLStore) Put(ctx context.Context, key string, value []byte) error {
	return s.Batch(ctx, []Op{{Key: key, Value: value}})
}

// Delete implements Store.
func (s *MySQLStore) Delete(ctx context.Context, key string) error {
	return s.Batch(ctx, []Op{{Key: key, Delete: true}})
}

// Batch implements Store: one transaction, retried on deadlocks.
func (s *MySQLStore) Batch(ctx context.Context, ops []Op) error {
	if err := validateOps(ops, s.caps); err != nil {
		return err
	}
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.leave()
	if len(ops) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error { return s.batchTx(ctx, tx, ops) })
	if err != nil && !errors.Is(err, ErrConflict) {
		return fmt.Errorf("store: batch of %d ops: %w", len(ops), sqlErr(err))
	}
	return err
}

// inTx runs fn in a transaction and commits it, again after a deadlock (up
// to 20 times); fn's error rolls it back. A lock wait timeout is not
// retried: the lock has been held for innodb_lock_wait_timeout already.
func (s *MySQLStore) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	for attempt := 0; ; attempt++ {
		tx, err := s.db.BeginTx(ctx, nil)
		if err == nil {
			if err = fn(tx); err == nil {
				err = tx.Commit()
			} else {
				_ = tx.Rollback()
			}
		}
		var me *mysql.MySQLError
		if errors.As(err, &me) && me.Number == 1213 && attempt < 20 && ctx.Err() == nil {
			time.Sleep(time.Duration(attempt+1) * time.Millisecond)
			continue
		}
		return err
	}
}

func (s *MySQLStore) batchTx(ctx context.Context, tx *sql.Tx, ops []Op) error {
	now := nowMillis()
	for _, op := range ops {
		if !op.conditional() {
			continue
		}
		var n uint64
		var exp int64
		err := tx.QueryRowContext(ctx, "SELECT n, exp FROM "+s.table+" WHERE k = ? FOR UPDATE", op.Key).Scan(&n, &exp)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			n = 0
		case err != nil:
			return err
		case exp != 0 && exp <= now:
			n = 0
		}
		if n != op.Version {
			return conflictError(op.Key, op.Version, n)
		}
	}
	for _, op := range ops {
		var err error
		switch {
		case op.Check:
		case op.Delete:
			_, err = tx.ExecContext(ctx, "DELETE FROM "+s.table+" WHERE k = ?", op.Key)
		default:
			value := op.Value
			if value == nil {
				value = []byte{}
			}
			// n is assigned before exp, so it sees the old expiry.
			_, err = tx.ExecContext(ctx, "INSERT INTO "+s.table+" (k, v, n, exp) VALUES (?, ?, 1, ?) "+
				"ON DUPLICATE KEY UPDATE n = IF(exp <> 0 AND exp <= ?, 1, n + 1), v = VALUES(v), exp = VALUES(exp)",
				op.Key, value, ttlExpiry(op.TTL), now)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// mysqlScanChunk is how many rows one Scan query reads.
const mysqlScanChunk = 64

// Scan implements Store: chunks of rows in key order, each chunk one query.
func (s *MySQLStore) Scan(ctx context.Context, prefix string, fn func(key string, value []byte) error) error {
	if err := validatePrefix(prefix); err != nil {
		return err
	}
	from, inclusive := prefix, true
	end, bounded := prefixEnd(prefix)
	for {
		keys, values, err := s.chunk(ctx, from, inclusive, end, bounded)
		if err != nil {
			return err
		}
		for i, k := range keys {
			if err := fn(k, values[i]); err != nil {
				return err
			}
		}
		if len(keys) < mysqlScanChunk {
			return nil
		}
		from, inclusive = keys[len(keys)-1], false
	}
}

func (s *MySQLStore) chunk(ctx context.Context, from string, inclusive bool, end string, bounded bool) (keys []string, values [][]byte, err error) {
	if err := s.enter(ctx); err != nil {
		return nil, nil, err
	}
	defer s.leave()
	q := "SELECT k, v FROM " + s.table + " WHERE k > ?"
	if inclusive {
		q = "SELECT k, v FROM " + s.table + " WHERE k >= ?"
	}
	args := []any{from}
	if bounded {
		q += " AND k < ?"
		args = append(args, end)
	}
	q += fmt.Sprintf(" AND (exp = 0 OR exp > ?) ORDER BY k LIMIT %d", mysqlScanChunk)
	args = append(args, nowMillis())
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("store: scan: %w", sqlErr(err))
	}
	defer rows.Close()
	for rows.Next() {
		var k, v []byte
		if err := rows.Scan(&k, &v); err != nil {
			return nil, nil, fmt.Errorf("store: scan: %w", sqlErr(err))
		}
		if v == nil {
			v = []byte{}
		}
		keys, values = append(keys, string(k)), append(values, v)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("store: scan: %w", sqlErr(err))
	}
	return keys, values, nil
}

// sweeper deletes expired rows every minute until Close.
func (s *MySQLStore) sweeper() {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if s.enter(context.Background()) == nil {
				_, _ = s.db.Exec("DELETE FROM "+s.table+" WHERE exp <> 0 AND exp <= ? LIMIT 10000", nowMillis())
				s.leave()
			}
		}
	}
}

// Close implements Store.
func (s *MySQLStore) Close() error {
	err := s.end(func() error {
		close(s.stop)
		return s.db.Close()
	})
	if errors.Is(err, ErrClosed) {
		return err
	}
	s.swept.Wait()
	if err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// backRow is one key that the tiered store writes back: its value, version
// and expiry as they are in Redis, or its deletion.
type backRow struct {
	key     string
	value   []byte
	version uint64
	expiry  int64 // unix ms, 0: none
	delete  bool
}

// writeBack writes rows in one transaction, setting versions as given.
func (s *MySQLStore) writeBack(ctx context.Context, rows []backRow) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.leave()
	if err := s.inTx(ctx, func(tx *sql.Tx) error { return s.writeBackTx(ctx, tx, rows) }); err != nil {
		return fmt.Errorf("store: write back %d keys: %w", len(rows), sqlErr(err))
	}
	return nil
}

func (s *MySQLStore) writeBackTx(ctx context.Context, tx *sql.Tx, rows []backRow) error {
	for _, r := range rows {
		var err error
		if r.delete {
			_, err = tx.ExecContext(ctx, "DELETE FROM "+s.table+" WHERE k = ?", r.key)
		} else {
			_, err = tx.ExecContext(ctx, "INSERT INTO "+s.table+" (k, v, n, exp) VALUES (?, ?, ?, ?) "+
				"ON DUPLICATE KEY UPDATE v = VALUES(v), n = VALUES(n), exp = VALUES(exp)", r.key, r.value, r.version, r.expiry)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// getRow returns the value, version and expiry (unix ms, 0: none) of a live
// key, or ErrNotFound.
func (s *MySQLStore) getRow(ctx context.Context, key string) (value []byte, version uint64, expiry int64, err error) {
	if err := s.enter(ctx); err != nil {
		return nil, 0, 0, err
	}
	defer s.leave()
	err = s.db.QueryRowContext(ctx, "SELECT v, n, exp FROM "+s.table+" WHERE k = ? AND (exp = 0 OR exp > ?)", key, nowMillis()).Scan(&value, &version, &expiry)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, 0, 0, ErrNotFound
	case err != nil:
		return nil, 0, 0, fmt.Errorf("store: get %s: %w", quoteStart(key), sqlErr(err))
	}
	if value == nil {
		value = []byte{}
	}
	return value, version, expiry, nil
}
