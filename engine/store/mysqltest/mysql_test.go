package mysqltest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/moonforge/moonforge/engine/store"
	"github.com/moonforge/moonforge/engine/store/storetest"
)

func openMySQL(t *testing.T, cfg store.MySQLConfig) *store.MySQLStore {
	t.Helper()
	s, err := store.OpenMySQL(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return s
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
