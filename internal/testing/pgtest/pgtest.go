// Package pgtest runs throwaway PostgreSQL clusters for tests and
// benchmarks: Debian's postgresql package, a cluster made with initdb in a
// temporary directory and served by pg_ctl on a Unix socket in that
// directory only (no TCP port, so nothing but this machine's processes can
// reach it), as an unprivileged user, since PostgreSQL refuses to run as
// root. It does not import "testing": bench programs use it too.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrNotInstalled is returned when Debian's PostgreSQL binaries are missing.
var ErrNotInstalled = errors.New("pgtest: PostgreSQL's initdb and pg_ctl are not installed (Debian package postgresql)")

// Cluster is one running throwaway cluster.
type Cluster struct {
	dir  string // holds data/ and the socket
	bin  string // the directory of initdb, pg_ctl, psql
	cred *syscall.Credential
	user string
	n    atomic.Int64
}

// Options tunes a cluster; the zero value is a cluster for tests.
type Options struct {
	// Durable keeps fsync and synchronous commit on, for benchmarks that
	// compare engines; tests run without them, faster.
	Durable bool
	// MaxConnections is max_connections (default 200: several serve
	// processes with their pools, plus the test's own).
	MaxConnections int
}

// Start makes and starts a cluster in a new temporary directory.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "ib-pg-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	c := &Cluster{dir: dir, bin: bin}
	if err := c.runAs(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if o.MaxConnections == 0 {
		o.MaxConnections = 200
	}
	if out, err := c.command(ctx, "initdb", "-D", c.data(), "--auth=trust", "--username="+c.user, "--encoding=UTF8", "--no-instructions").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	settings := []string{
		"listen_addresses = ''",
		"unix_socket_directories = '" + dir + "'",
		"max_connections = " + strconv.Itoa(o.MaxConnections),
		"shared_buffers = 64MB",
	}
	if !o.Durable {
		settings = append(settings, "fsync = off", "synchronous_commit = off", "full_page_writes = off")
	}
	conf := filepath.Join(c.data(), "postgresql.conf")
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	_, err = f.WriteString("\n" + strings.Join(settings, "\n") + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if err := c.Resume(ctx); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

// runAs chooses the user the cluster runs as: this process's own, unless
// it is root, then Debian's postgres user, who is given the directory.
func (c *Cluster) runAs() error {
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
		c.user = u.Username
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("pgtest: running as root needs the postgres user of Debian's postgresql package: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	c.cred, c.user = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, "postgres"
	if err := os.Chown(c.dir, uid, gid); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return nil
}

func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, name), args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "PGHOST="+c.dir)
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	cmd.Dir = c.dir
	return cmd
}

// Pause stops the server (fast shutdown: connections are cut) and leaves
// the data, for tests of a database that goes away; Resume starts it again.
func (c *Cluster) Pause(ctx context.Context) error {
	if out, err := c.command(ctx, "pg_ctl", "-D", c.data(), "-m", "fast", "-w", "stop").CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: pg_ctl stop: %w\n%s", err, out)
	}
	return nil
}

// Resume starts the server and waits until it takes connections.
func (c *Cluster) Resume(ctx context.Context) error {
	logf := filepath.Join(c.dir, "server.log")
	if out, err := c.command(ctx, "pg_ctl", "-D", c.data(), "-l", logf, "-w", "-t", "60", "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(logf)
		return fmt.Errorf("pgtest: pg_ctl start: %w\n%s\n%s", err, out, log)
	}
	return nil
}

// Stop stops the server and removes the cluster.
func (c *Cluster) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = c.command(ctx, "pg_ctl", "-D", c.data(), "-m", "immediate", "-w", "stop").Run()
	os.RemoveAll(c.dir)
}

// Log returns the server's log, for a failing test to print.
func (c *Cluster) Log() string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
	return string(b)
}

// DSN is the postgres:// URL of database db on the cluster's socket.
func (c *Cluster) DSN(db string) string {
	q := url.Values{}
	q.Set("host", c.dir)
	q.Set("user", c.user)
	q.Set("sslmode", "disable")
	return "postgres:///" + url.PathEscape(db) + "?" + q.Encode()
}

// NewDatabase creates an empty database of a name of its own and returns
// its DSN.
func (c *Cluster) NewDatabase(ctx context.Context) (string, error) {
	name := fmt.Sprintf("ib_%d", c.n.Add(1))
	if out, err := c.command(ctx, "createdb", "-h", c.dir, "-U", c.user, name).CombinedOutput(); err != nil {
		return "", fmt.Errorf("pgtest: createdb %s: %w\n%s", name, err, out)
	}
	return c.DSN(name), nil
}

// binDir finds Debian's PostgreSQL binaries, which are not on PATH: the
// newest of /usr/lib/postgresql/*/bin.
func binDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", ErrNotInstalled
}

// Dump is pg_dump's plain-text dump of the database at dsn, schema and
// rows: what a backup of it would hold, for tests that look for what must
// never be stored in clear.
func (c *Cluster) Dump(ctx context.Context, dsn string) ([]byte, error) {
	out, err := c.command(ctx, "pg_dump", "--dbname", dsn).Output()
	if err != nil {
		return nil, fmt.Errorf("pgtest: pg_dump: %w", err)
	}
	return out, nil
}
