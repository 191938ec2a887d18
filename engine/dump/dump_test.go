package dump

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moonforge/moonforge/engine/store"
	"github.com/moonforge/moonforge/engine/store/storetest"
)

// sample is the data the tests copy around: binary keys, an empty value,
// a large one, keys in groups.
func sample() map[string][]byte {
	m := map[string][]byte{
		"\x00":                        []byte("zero"),
		"\xff\xfe":                    {0, 1, 2},
		"empty":                       {},
		"big":                         bytes.Repeat([]byte("0123456789abcdef"), 1<<16), // 1 MiB
		store.PlayerKey("a", "data"):  []byte(`{"gold":1}`),
		store.PlayerKey("a", "lease"): []byte(`{"owner":""}`),
	}
	for i := range 300 {
		m[fmt.Sprintf("lua/k%04d", i)] = []byte(fmt.Sprint(i))
	}
	return m
}

func openBolt(t *testing.T, dir string) *store.BoltStore {
	t.Helper()
	s, err := store.OpenBolt(store.BoltConfig{Path: filepath.Join(dir, "moonforge.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func fill(t *testing.T, s store.Store, m map[string][]byte) {
	t.Helper()
	for k, v := range m {
		if err := s.Put(t.Context(), k, v); err != nil {
			t.Fatal(err)
		}
	}
}

func wantContent(t *testing.T, s store.Store, want map[string][]byte) {
	t.Helper()
	got := map[string][]byte{}
	err := s.Scan(t.Context(), "", func(k string, v []byte) error {
		got[k] = bytes.Clone(v)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%s store has %d keys, want %d", s.Capabilities().Backend, len(got), len(want))
	}
	for k, v := range want {
		if !bytes.Equal(got[k], v) {
			t.Fatalf("%s store: key %q = %d bytes, want %d", s.Capabilities().Backend, k, len(got[k]), len(v))
		}
	}
}

// TestRoundTrip: bolt -> file -> MySQL -> Redis -> MongoDB -> file; both
// files are the same bytes.
func TestRoundTrip(t *testing.T) {
	ctx := t.Context()
	data := sample()
	src := openBolt(t, t.TempDir())
	fill(t, src, data)
	var first bytes.Buffer
	var log bytes.Buffer
	n, err := Export(ctx, src, &first, NewProgress(&log, "export", uint64(len(data))))
	if err != nil || n != uint64(len(data)) {
		t.Fatalf("Export: %d keys, %v", n, err)
	}
	if !strings.Contains(log.String(), fmt.Sprintf("%d/%d keys", len(data), len(data))) {
		t.Errorf("progress report: %q", log.String())
	}

	my, err := store.OpenMySQL(ctx, store.MySQLConfig{DSN: storetest.MySQLDSN(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer my.Close()
	if _, err := Import(ctx, bytes.NewReader(first.Bytes()), my, false, NewProgress(nil, "", 0)); err != nil {
		t.Fatal(err)
	}
	wantContent(t, my, data)

	rd, err := store.OpenRedis(ctx, store.RedisConfig{Addrs: []string{storetest.StartRedis(t).Addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	if _, err := Copy(ctx, my, rd, false, NewProgress(nil, "", 0)); err != nil {
		t.Fatal(err)
	}
	wantContent(t, rd, data)

	mongoURL := storetest.MongoURL(t)
	mg, err := store.OpenMongo(ctx, store.MongoConfig{URL: mongoURL, Database: storetest.MongoDatabase(t, mongoURL)})
	if err != nil {
		t.Fatal(err)
	}
	defer mg.Close()
	if _, err := Copy(ctx, rd, mg, false, NewProgress(nil, "", 0)); err != nil {
		t.Fatal(err)
	}
	var last bytes.Buffer
	if _, err := Export(ctx, mg, &last, NewProgress(nil, "", 0)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.Bytes(), last.Bytes()) {
		t.Fatalf("the dump of MongoDB (%d bytes) differs from bolt's (%d bytes)", last.Len(), first.Len())
	}
}

// run runs Command and returns its error and what it wrote to stderr.
func run(args ...string) (string, error) {
	var out, errs bytes.Buffer
	err := Command(args, &out, &errs)
	return errs.String(), err
}

func TestCommand(t *testing.T) {
	dir := t.TempDir()
	data := map[string][]byte{"a": []byte("1"), "b": []byte("2")}
	src := openBolt(t, filepath.Join(dir, "src"))
	fill(t, src, data)
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "backup.mfdump")
	if _, err := run("export", "-from", filepath.Join(dir, "src"), "-o", file); err != nil {
		t.Fatal(err)
	}
	if _, err := run("import", "-to", filepath.Join(dir, "dst"), "-i", file, "-q"); err != nil {
		t.Fatal(err)
	}
	if _, err := run("copy", "-from", filepath.Join(dir, "src"), "-to", filepath.Join(dir, "dst2")); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "redis.yaml")
	srv := storetest.StartRedis(t)
	err := os.WriteFile(cfg, []byte("store:\n  backend: redis\n  redis:\n    addrs: ["+srv.Addr+"]\n"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := run("copy", "-from", filepath.Join(dir, "dst"), "-to", cfg); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"dst", "dst2"} {
		wantContent(t, openBolt(t, filepath.Join(dir, d)), data)
	}
	rd, err := store.Open(t.Context(), store.Config{Backend: "redis", Timeout: time.Second, Redis: store.RedisConfig{Addrs: []string{srv.Addr}, Prefix: "moonforge:"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	wantContent(t, rd, data)
}

// TestCommandFailures: each bad use fails with a clear message, and
// changes nothing.
func TestCommandFailures(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	s := openBolt(t, src)
	fill(t, s, map[string][]byte{"a": []byte("1")})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.mfdump")
	var buf bytes.Buffer
	w := NewWriter(&buf)
	_ = w.Add("k", []byte("v"))
	_ = w.Close()
	if err := os.WriteFile(good, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	damaged := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flipped := bytes.Clone(buf.Bytes())
	flipped[len(magic)+4] ^= 1 // the value's byte
	badYAML := damaged("bad.yaml", []byte("store:\n  backend: sqlite\n"))
	noRedis := damaged("noredis.yaml", []byte(fmt.Sprintf("store:\n  backend: redis\n  open_timeout: 2s\n  redis:\n    addrs: [127.0.0.1:%d]\n", storetest.FreePort(t))))

	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "needs a command"},
		{"unknown command", []string{"restore"}, `unknown data command "restore"`},
		{"bad flag", []string{"export", "-frm", "x"}, "flag provided but not defined"},
		{"extra argument", []string{"export", "-from", src, "-o", "x", "extra"}, `unexpected argument "extra"`},
		{"missing -o", []string{"export", "-from", src}, "needs -o"},
		{"missing -from", []string{"copy", "-to", dir}, "needs -from"},
		{"missing data dir", []string{"export", "-from", filepath.Join(dir, "none"), "-o", filepath.Join(dir, "x")}, "is not a data directory"},
		{"output exists", []string{"export", "-from", src, "-o", good}, "file exists"},
		{"missing dump file", []string{"import", "-to", filepath.Join(dir, "d1"), "-i", filepath.Join(dir, "none.mfdump")}, "no such file"},
		{"not a dump", []string{"import", "-to", filepath.Join(dir, "d2"), "-i", damaged("text", []byte("hello"))}, "not a Moonforge dump"},
		{"truncated", []string{"import", "-to", filepath.Join(dir, "d3"), "-i", damaged("trunc", buf.Bytes()[:buf.Len()-3])}, "no checksum"},
		{"checksum", []string{"import", "-to", filepath.Join(dir, "d4"), "-i", damaged("flip", flipped)}, "checksum mismatch"},
		{"not empty", []string{"import", "-to", src, "-i", good}, "not empty"},
		{"bad config", []string{"copy", "-from", src, "-to", badYAML}, "store.backend"},
		{"store down", []string{"copy", "-from", src, "-to", noRedis}, "unavailable"},
		{"missing config", []string{"copy", "-from", src, "-to", filepath.Join(dir, "none.yaml")}, "no such file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := run(c.args...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one containing %q", err, c.want)
			}
		})
	}
	for _, d := range []string{"d2", "d3", "d4"} {
		wantContent(t, openBolt(t, filepath.Join(dir, d)), map[string][]byte{})
	}
	if _, err := run("import", "-to", src, "-i", good, "-overwrite"); err != nil {
		t.Fatalf("-overwrite: %v", err)
	}

	openBolt(t, filepath.Join(dir, "locked")) // held, as by a running node
	if _, err := run("import", "-to", filepath.Join(dir, "locked"), "-i", good); err == nil || !strings.Contains(err.Error(), "node running") {
		t.Errorf("a store in use: %v", err)
	}
}

// TestValueTooLargeForDestination: a value bbolt holds but MySQL's
// max_allowed_packet does not is reported with its key.
func TestValueTooLargeForDestination(t *testing.T) {
	ctx := t.Context()
	src := openBolt(t, t.TempDir())
	fill(t, src, map[string][]byte{"huge": make([]byte, store.MaxValueLen)})
	my, err := store.OpenMySQL(ctx, store.MySQLConfig{DSN: storetest.MySQLDSN(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer my.Close()
	if my.Capabilities().MaxValueLen >= store.MaxValueLen {
		t.Skip("this MySQL takes 16 MiB values")
	}
	_, err = Copy(ctx, src, my, false, NewProgress(nil, "", 0))
	if !errors.Is(err, store.ErrValueTooLarge) || !strings.Contains(err.Error(), `"huge"`) {
		t.Fatalf("err = %v, want ErrValueTooLarge naming the key", err)
	}
}

func FuzzRead(f *testing.F) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	_ = w.Add("key", []byte("value"))
	_ = w.Add("\x00", nil)
	_ = w.Close()
	f.Add(buf.Bytes())
	f.Add([]byte(magic + "E\x00\x00\x00\x00\x00"))
	f.Add([]byte(magic + "K\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var keys []string
		n, err := Read(bytes.NewReader(b), func(k string, v []byte) error {
			if k == "" || len(k) > store.MaxKeyLen || len(v) > store.MaxValueLen {
				t.Fatalf("Read handed out a key of %d bytes, a value of %d", len(k), len(v))
			}
			keys = append(keys, k)
			return nil
		})
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error not wrapping ErrCorrupt: %v", err)
		}
		if err == nil && n != uint64(len(keys)) {
			t.Fatalf("count %d, %d keys", n, len(keys))
		}
	})
}
