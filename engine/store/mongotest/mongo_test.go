package mongotest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/store"
	"github.com/moonforge/moonforge/engine/store/storetest"
)

func TestMongoConformance(t *testing.T) {
	url := storetest.MongoURL(t)
	storetest.RunConformance(t, func(t *testing.T) store.Store {
		s, err := store.OpenMongo(t.Context(), store.MongoConfig{URL: url, Database: storetest.MongoDatabase(t, url)})
		return storetest.Opened(t, s, err)
	})
}

func TestOpenMongoErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := store.OpenMongo(ctx, store.MongoConfig{}); err == nil {
		t.Error("no URL: no error")
	}
	if _, err := store.OpenMongo(ctx, store.MongoConfig{URL: "http://x"}); err == nil {
		t.Error("bad URL: no error")
	}
	url := fmt.Sprintf("mongodb://127.0.0.1:%d/", storetest.FreePort(t))
	_, err := store.OpenMongo(ctx, store.MongoConfig{URL: url, Timeout: 300 * time.Millisecond})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("nothing listening: %v, want ErrUnavailable", err)
	}
}
