// Package pgtest runs a throwaway PostgreSQL cluster (Debian's postgresql
// package: initdb into a temporary directory, the server on a free loopback
// port) for tests that claim database behaviour, and for `make generate`,
// whose atlas diff replays the PostgreSQL migrations on a real server. It
// never skips: a missing PostgreSQL fails with the command that installs it
// (make test runs that command itself).
//
// PostgreSQL refuses to run as root, so under root the cluster runs as the
// "postgres" user the Debian package creates (or "nobody").
package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the driver Ferry uses for PostgreSQL
)

// EnvURL names a server to use instead of starting one: a postgres:// URL of
// a superuser (databases are created and dropped in it).
const EnvURL = "FERRY_TEST_POSTGRES_URL"

// Cluster is a running PostgreSQL server.
type Cluster struct {
	// URL reaches the "postgres" database as the superuser "ferry".
	URL  string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
	n    atomic.Int64
}

// binDir finds the directory of initdb and postgres: Debian keeps them
// off PATH under /usr/lib/postgresql/VERSION/bin.
func binDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("PostgreSQL not found: install it with `apt-get install -y postgresql` (make test does this)")
}

func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// runAs is the user the server runs as: the current one unless that is root.
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("running as root and neither a postgres nor a nobody user exists to run PostgreSQL as")
}

// StartCluster initialises a cluster in a new temporary directory and starts
// its server on a free loopback port, tuned for tests (no fsync). Stop it
// with Stop; if this process dies first the server gets SIGQUIT.
func StartCluster() (*Cluster, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	cred, err := runAs()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "ferry-pgtest-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, done: make(chan struct{})}
	fail := func(err error) (*Cluster, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fail(err)
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "ferry", "--auth=trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb: %v: %s", err, out))
	}
	c.log = filepath.Join(dir, "server.log")
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return fail(err)
		}
		err = c.start(bin, data, port, cred)
		if err == nil {
			return c, nil
		}
		if attempt == 2 {
			return fail(err)
		}
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// start runs the server from a goroutine locked to its OS thread, so that
// the parent-death signal (sent when the forking thread exits) fires only
// when the process does.
func (c *Cluster) start(bin, data string, port int, cred *syscall.Credential) error {
	logf, err := os.OpenFile(c.log, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if cred != nil {
		os.Chown(c.log, int(cred.Uid), int(cred.Gid))
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(port), "-h", "127.0.0.1",
		"-k", c.dir, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300", "-c", "shared_buffers=64MB")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
	started := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the process
		if err := cmd.Start(); err != nil {
			started <- err
			close(done)
			return
		}
		started <- nil
		cmd.Wait()
		logf.Close()
		close(done)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	c.cmd, c.done = cmd, done
	c.URL = fmt.Sprintf("postgres://ferry@127.0.0.1:%d/postgres?sslmode=disable", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			b, _ := os.ReadFile(c.log)
			return fmt.Errorf("postgres exited: %s", b)
		default:
		}
		db, err := sql.Open("pgx", c.URL)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err = db.PingContext(ctx)
			cancel()
			db.Close()
			if err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			c.Stop()
			b, _ := os.ReadFile(c.log)
			return fmt.Errorf("postgres on port %d did not answer within 30s: %v\n%s", port, err, b)
		}
		time.Sleep(50 * time.Millisecond) // polling a freshly started server; bounded by the deadline
	}
}

// Stop shuts the server down (fast shutdown) and removes its directory.
func (c *Cluster) Stop() {
	if c.cmd != nil && c.cmd.Process != nil {
		c.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-c.done:
		case <-time.After(20 * time.Second):
			c.cmd.Process.Kill()
			<-c.done
		}
	}
	os.RemoveAll(c.dir)
}

// CreateDatabase creates an empty database and returns its URL.
func (c *Cluster) CreateDatabase(ctx context.Context, prefix string) (string, error) {
	return CreateDatabaseAt(ctx, c.URL, fmt.Sprintf("%s_%d_%d", prefix, os.Getpid(), c.n.Add(1)))
}

// CreateDatabaseAt creates database name on the server that admin (a
// superuser URL) reaches and returns the new database's URL.
func CreateDatabaseAt(ctx context.Context, admin, name string) (string, error) {
	db, err := sql.Open("pgx", admin)
	if err != nil {
		return "", err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE DATABASE "`+name+`"`); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	u, err := url.Parse(admin)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

// DropDatabase drops a database made by CreateDatabase or Database,
// closing whatever connections are still open to it.
func DropDatabase(ctx context.Context, admin, dbURL string) error {
	u, err := url.Parse(dbURL)
	if err != nil {
		return err
	}
	db, err := sql.Open("pgx", admin)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, `DROP DATABASE IF EXISTS "`+strings.TrimPrefix(u.Path, "/")+`" WITH (FORCE)`)
	return err
}

var (
	shared     *Cluster
	sharedURL  string
	sharedErr  error
	sharedOnce sync.Once
	counter    atomic.Int64
)

// AdminURL returns the superuser URL of the process-wide cluster, starting
// it on first use (or the server named by FERRY_TEST_POSTGRES_URL).
func AdminURL(t testing.TB) string {
	t.Helper()
	sharedOnce.Do(func() {
		if u := os.Getenv(EnvURL); u != "" {
			sharedURL = u
			return
		}
		shared, sharedErr = StartCluster()
		if sharedErr == nil {
			sharedURL = shared.URL
		}
	})
	if sharedErr != nil {
		t.Fatalf("PostgreSQL for tests: %v", sharedErr)
	}
	return sharedURL
}

// Database returns the URL of a new, empty database in the process-wide
// cluster, dropped when the test ends.
func Database(t testing.TB) string {
	t.Helper()
	admin := AdminURL(t)
	name := fmt.Sprintf("t%d_%d", os.Getpid(), counter.Add(1))
	u, err := CreateDatabaseAt(context.Background(), admin, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := DropDatabase(context.Background(), admin, u); err != nil {
			t.Errorf("drop test database: %v", err)
		}
	})
	return u
}

// Main runs a package's tests (call it from TestMain) and stops the
// process-wide cluster afterwards, if one was started.
func Main(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.Stop()
	}
	os.Exit(code)
}
