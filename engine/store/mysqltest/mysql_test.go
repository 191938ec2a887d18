package mysqltest

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/playerdata"
	"github.com/moonforge/moonforge/engine/store"
	"github.com/moonforge/moonforge/engine/store/storetest"
)

func openMySQL(t *testing.T, cfg store.MySQLConfig) *store.MySQLStore {
	t.Helper()
	s, err := store.OpenMySQL(t.Context(), cfg)
	return storetest.Opened(t, s, err)
}

func TestMySQLConformance(t *testing.T) {
	dsn := storetest.MySQLDSN(t)
	storetest.RunConformance(t, func(t *testing.T) store.Store {
		return openMySQL(t, store.MySQLConfig{DSN: dsn, Table: "kv_" + storetest.RandomName()})
	})
}

func TestOpenMySQLErrors(t *testing.T) {
	ctx := context.Background()
	for _, cfg := range []store.MySQLConfig{
		{},
		{DSN: "root@tcp(127.0.0.1:3306)/"},
		{DSN: "root@tcp(127.0.0.1:3306)/test", Table: "bad name"},
		{DSN: "not a dsn"},
	} {
		if _, err := store.OpenMySQL(ctx, cfg); err == nil {
			t.Errorf("OpenMySQL(%+v): no error", cfg)
		}
	}
	_, err := store.OpenMySQL(ctx, store.MySQLConfig{DSN: "root@tcp(127.0.0.1:" + fmt.Sprint(storetest.FreePort(t)) + ")/test"})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("nothing listening: %v, want ErrUnavailable", err)
	}
}

// TestMySQLRestartUnderLoadLosesNothing: a mariadbd of the test's own is
// killed (SIGKILL) while players are saved through playerdata, and started
// again on its data directory; every save that returned nil is there.
func TestMySQLRestartUnderLoadLosesNothing(t *testing.T) {
	ctx := t.Context()
	srv, dsn := storetest.StartMariaDB(t)
	s := openMySQL(t, store.MySQLConfig{DSN: dsn + "?timeout=500ms&readTimeout=1s&writeTimeout=1s"})
	m, err := playerdata.Open(playerdata.Config{Store: s, Owner: "node-a", Dir: t.TempDir(), FlushEvery: time.Hour, LeaseTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	const players = 4
	data := make([]*playerdata.Data, players)
	for p := range players {
		d, err := m.Load(ctx, fmt.Sprint("p", p))
		if err != nil {
			t.Fatal(err)
		}
		data[p] = d
	}
	load := storetest.StartWriteLoad(players, time.Second, func(ctx context.Context, p int, i int64) error {
		_ = data[p].Set("n", []byte(strconv.FormatInt(i, 10)))
		return m.Save(ctx, fmt.Sprint("p", p))
	})
	load.WaitAcked(t, 5, time.Minute)
	srv.Kill() // kill -9 in the middle of the saves
	load.Stop()
	srv.Restart(t)
	for p := range players {
		var got []byte
		var err error
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if got, err = s.Get(ctx, store.PlayerKey(fmt.Sprint("p", p), "n")); !errors.Is(err, store.ErrUnavailable) || time.Now().After(deadline) {
				break
			}
		}
		n, _ := strconv.ParseInt(string(got), 10, 64)
		if err != nil || n < load.Acked(p) {
			t.Fatalf("player %d: stored %q (%v), last acknowledged save %d", p, got, err, load.Acked(p))
		}
	}
}

// TestDriverMessagesGoToTheLog: the driver's own messages (here: a pooled
// connection the server closed) go to MySQLConfig.Log, not to standard error.
func TestDriverMessagesGoToTheLog(t *testing.T) {
	ctx := t.Context()
	dsn := storetest.MySQLDSN(t)
	var out lockedBuffer
	s := openMySQL(t, store.MySQLConfig{DSN: dsn, Table: "kv_" + storetest.RandomName(), MaxOpenConns: 1,
		Log: slog.New(slog.NewTextHandler(&out, nil))})
	if _, err := s.Get(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	admin, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	rows, err := admin.QueryContext(ctx, "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND ID <> CONNECTION_ID()")
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Close(); err != nil || len(ids) == 0 {
		t.Fatalf("the store's connections: %v, %v", ids, err)
	}
	for _, id := range ids {
		if _, err := admin.ExecContext(ctx, "KILL "+strconv.FormatInt(id, 10)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "closing bad idle connection") {
		if time.Now().After(deadline) {
			t.Fatalf("no driver message in the log after its connection was killed; the log:\n%s", out.String())
		}
		if _, err := s.Get(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("get after the kill: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if line := out.String(); !strings.Contains(line, "level=WARN") || !strings.Contains(line, `part="mysql driver"`) {
		t.Fatalf("driver message not a warning of the mysql driver part: %s", line)
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
