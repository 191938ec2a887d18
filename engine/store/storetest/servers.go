package storetest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // the driver of MySQLDSN's check
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Missing stops a test that needs a server this machine lacks: a skip naming
// what is missing, or under CI=true (where every store test must run) a
// failure.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: store tests must run)", msg)
	}
	t.Skip(msg)
}

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Server is a server process a test started; it is killed at the test's end.
type Server struct {
	Addr string
	cmd  *exec.Cmd
	dir  string
	args []string
}

// Kill ends the server with SIGKILL and waits for it.
func (s *Server) Kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
	s.cmd = nil
}

// Signal sends sig to the server (SIGSTOP, SIGCONT).
func (s *Server) Signal(sig os.Signal) error { return s.cmd.Process.Signal(sig) }

// Restart starts the server again with its first arguments, on the same
// address and data directory, and waits until it accepts connections.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Kill()
	s.start(t)
}

func (s *Server) start(t testing.TB) {
	t.Helper()
	cmd := exec.Command(s.args[0], s.args[1:]...)
	cmd.Dir = s.dir
	dieWithParent(cmd)
	log, err := os.OpenFile(filepath.Join(s.dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", s.args[0], err)
	}
	s.cmd = cmd
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
			t.Fatalf("%s did not listen on %s: %s", s.args[0], s.Addr, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// StartRedis starts a redis-server of its own on a free port, in a
// temporary directory, with the extra config arguments given (such as
// "--appendonly", "yes"). Durable: StartRedis(t, DurableRedis...).
func StartRedis(t testing.TB, extra ...string) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		Missing(t, "redis-server is not installed (Debian package redis-server)")
	}
	port := FreePort(t)
	s := &Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), dir: t.TempDir()}
	s.args = append([]string{bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--dir", s.dir}, extra...)
	s.start(t)
	t.Cleanup(s.Kill)
	return s
}

// StartSentinel starts a Redis Sentinel of its own on a free port that
// monitors the master at masterAddr under name: quorum Sentinels must agree
// that the master is down, after downAfter without an answer, to fail it
// over.
func StartSentinel(t testing.TB, masterAddr, name string, quorum int, downAfter time.Duration) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		Missing(t, "redis-server is not installed (Debian package redis-server)")
	}
	port := FreePort(t)
	s := &Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), dir: t.TempDir()}
	host, mport, _ := strings.Cut(masterAddr, ":")
	conf := filepath.Join(s.dir, "sentinel.conf") // Sentinel rewrites it: its state
	text := fmt.Sprintf("sentinel monitor %[1]s %[2]s %[3]s %[4]d\nsentinel down-after-milliseconds %[1]s %[5]d\nsentinel failover-timeout %[1]s %[6]d\n",
		name, host, mport, quorum, downAfter.Milliseconds(), 4*downAfter.Milliseconds())
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	s.args = []string{bin, conf, "--sentinel", "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--dir", s.dir}
	s.start(t)
	t.Cleanup(s.Kill)
	return s
}

// StartRedisCluster starts a Redis Cluster of its own: masters masters,
// each with replicas replicas, every node started with extra arguments
// (such as DurableRedis...) and a node timeout of nodeTimeout, and waits
// until it serves every slot and every replica has synced. The masters
// come first in the result.
func StartRedisCluster(t testing.TB, masters, replicas int, nodeTimeout time.Duration, extra ...string) []*Server {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		Missing(t, "redis-cli is not installed (Debian package redis-tools)")
	}
	var nodes []*Server
	var addrs []string
	for range masters * (1 + replicas) {
		args := append([]string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", fmt.Sprint(nodeTimeout.Milliseconds())}, extra...)
		srv := StartRedis(t, args...)
		nodes = append(nodes, srv)
		addrs = append(addrs, srv.Addr)
	}
	args := append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", fmt.Sprint(replicas), "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	var ordered, replicaNodes []*Server
	for _, srv := range nodes {
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			info, _ := exec.Command("redis-cli", "-u", "redis://"+srv.Addr, "cluster", "info").Output()
			if strings.Contains(string(info), "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the cluster did not become ready at %s: %s", srv.Addr, info)
			}
		}
		role, err := exec.Command("redis-cli", "-u", "redis://"+srv.Addr, "role").Output()
		if err != nil {
			t.Fatalf("redis-cli role: %v", err)
		}
		if strings.HasPrefix(string(role), "master") {
			ordered = append(ordered, srv)
			continue
		}
		replicaNodes = append(replicaNodes, srv)
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			info, _ := exec.Command("redis-cli", "-u", "redis://"+srv.Addr, "info", "replication").Output()
			if strings.Contains(string(info), "master_link_status:up") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the replica %s did not sync: %s", srv.Addr, info)
			}
		}
	}
	if len(ordered) != masters {
		t.Fatalf("the cluster has %d masters, want %d", len(ordered), masters)
	}
	return append(ordered, replicaNodes...)
}

// DurableRedis are the redis-server arguments under which an acknowledged
// write survives a kill -9 of the server.
var DurableRedis = []string{"--appendonly", "yes", "--appendfsync", "always"}

// FastReplication are redis-server arguments for a master whose replicas
// should sync at once: a full sync starts without Redis' default delay of
// 5 s, which waits for more replicas.
var FastReplication = []string{"--repl-diskless-sync-delay", "0"}

// StartMariaDB starts a mariadbd of its own on a free port, with a fresh
// data directory and a database mf, and returns it and the database's DSN.
// Restart keeps the data directory.
func StartMariaDB(t testing.TB) (*Server, string) {
	t.Helper()
	bin, err := exec.LookPath("mariadbd")
	if err != nil {
		Missing(t, "mariadbd is not installed (Debian package mariadb-server)")
	}
	install, err := exec.LookPath("mariadb-install-db")
	if err != nil {
		Missing(t, "mariadb-install-db is not installed (Debian package mariadb-server)")
	}
	port := FreePort(t)
	s := &Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), dir: t.TempDir()}
	data := filepath.Join(s.dir, "data")
	out, err := exec.Command(install, "--no-defaults", "--datadir="+data, "--auth-root-authentication-method=normal", "--skip-test-db", "--user=root").CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	s.args = []string{bin, "--no-defaults", "--datadir=" + data, "--port=" + fmt.Sprint(port), "--bind-address=127.0.0.1",
		"--socket=" + filepath.Join(s.dir, "sock"), "--user=root", "--skip-grant-tables", "--innodb-buffer-pool-size=32M",
		"--innodb-flush-log-at-trx-commit=1", "--skip-name-resolve"}
	s.start(t)
	t.Cleanup(s.Kill)
	db, err := sql.Open("mysql", "root@tcp("+s.Addr+")/")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err = db.Exec("CREATE DATABASE IF NOT EXISTS mf"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mariadbd on %s: %v", s.Addr, err)
		}
	}
	return s, "root@tcp(" + s.Addr + ")/mf"
}

// MySQLDSN returns the DSN of a fresh database on the machine's MariaDB (or
// MOONFORGE_MYSQL_DSN's server), dropped at the test's end. The DSN names
// the database, so that backends under test see only their own tables.
func MySQLDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv("MOONFORGE_MYSQL_DSN")
	if base == "" {
		base = "root@tcp(127.0.0.1:3306)/"
	}
	db, err := sql.Open("mysql", base)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		Missing(t, "no MySQL/MariaDB at %s (set MOONFORGE_MYSQL_DSN): %v", base, err)
	}
	name := "mftest_" + RandomName()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("mysql", base)
		if err == nil {
			_, _ = db.Exec("DROP DATABASE " + name)
			_ = db.Close()
		}
	})
	i := strings.LastIndex(base, "/")
	return base[:i+1] + name + base[i+1:]
}

// RandomName returns 12 random hex digits, for prefixes and names that tests
// running in parallel do not share.
func RandomName() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

var ferretBuild struct {
	once sync.Once
	bin  string
	err  error
}

// ferretBinary builds tools/ferretdb (FerretDB v1.24.2 embedded in a small
// command, a module of its own) once per machine into the user's cache
// directory, keyed by the hash of its sources, and returns its path. The
// first build downloads FerretDB's modules and takes about a minute.
func ferretBinary() (string, error) {
	ferretBuild.once.Do(func() {
		_, self, _, _ := runtime.Caller(0)
		src := filepath.Join(filepath.Dir(self), "..", "..", "..", "tools", "ferretdb")
		h := sha256.New()
		for _, f := range []string{"go.mod", "go.sum", "main.go"} {
			b, err := os.ReadFile(filepath.Join(src, f))
			if err != nil {
				ferretBuild.err = err
				return
			}
			h.Write(b)
		}
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		bin := filepath.Join(cache, "moonforge", "ferretdb-"+hex.EncodeToString(h.Sum(nil))[:16])
		if _, err := os.Stat(bin); err == nil {
			ferretBuild.bin = bin
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
		defer cancel()
		tmp := bin + ".tmp" + RandomName()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp, ".")
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			ferretBuild.err = fmt.Errorf("go build tools/ferretdb: %v: %s", err, out)
			return
		}
		if err := os.Rename(tmp, bin); err != nil {
			ferretBuild.err = err
			return
		}
		ferretBuild.bin = bin
	})
	return ferretBuild.bin, ferretBuild.err
}

// MongoURL returns the URL of a MongoDB-wire server for the test:
// MOONFORGE_MONGO_URL when set, else a FerretDB of its own on the machine's
// PostgreSQL (MOONFORGE_POSTGRES_URL, default postgres://root@127.0.0.1:5432/test),
// in a schema of its own that is dropped at the end.
func MongoURL(t testing.TB) string {
	t.Helper()
	if url := os.Getenv("MOONFORGE_MONGO_URL"); url != "" {
		return url
	}
	pg := os.Getenv("MOONFORGE_POSTGRES_URL")
	if pg == "" {
		pg = "postgres://root@127.0.0.1:5432/test"
	}
	if c, err := net.DialTimeout("tcp", hostOf(pg), time.Second); err != nil {
		Missing(t, "no PostgreSQL for FerretDB at %s (or set MOONFORGE_MONGO_URL): %v", pg, err)
	} else {
		c.Close()
	}
	bin, err := ferretBinary()
	if err != nil {
		Missing(t, "FerretDB could not be built (or set MOONFORGE_MONGO_URL): %v", err)
	}
	port := FreePort(t)
	s := &Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), dir: t.TempDir()}
	s.args = []string{bin, "-listen", s.Addr, "-postgresql-url", pg}
	s.start(t)
	t.Cleanup(s.Kill)
	return "mongodb://" + s.Addr + "/"
}

// MongoDatabase returns the name of a fresh database on the server at url,
// dropped at the test's end (on FerretDB, a PostgreSQL schema).
func MongoDatabase(t testing.TB, url string) string {
	name := "mftest_" + RandomName()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := mongo.Connect(options.Client().ApplyURI(url))
		if err != nil {
			return
		}
		defer c.Disconnect(ctx)
		if err := c.Database(name).Drop(ctx); err != nil {
			t.Logf("dropping test database %s: %v", name, err)
		}
	})
	return name
}

// hostOf returns host:port of a postgres:// URL.
func hostOf(url string) string {
	rest, _ := strings.CutPrefix(url, "postgres://")
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		rest = rest[:i]
	}
	return rest
}
