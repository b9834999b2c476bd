// Package distreg starts the CNCF distribution registry (Debian's docker-registry) as a
// child process on loopback, and a proxy that makes it as slow as a remote one. The
// end-to-end tests (through internal/testing/testenv), the whole-process benchmarks
// (bench/benchcmp) and the load test (bench/soak) share it so that all talk to
// the same real registry, configured the same way, rather than to
// go-containerregistry's in-process one.
package distreg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultBinary is where Debian's docker-registry package installs the registry.
const DefaultBinary = "/usr/bin/docker-registry"

// ErrNotInstalled reports that the registry binary could not be found, so callers can
// tell the person to run `make deps` instead of showing a confusing exec error.
var ErrNotInstalled = errors.New("distribution registry (Debian package docker-registry) is not installed")

// Options configures Start. Only Dir is required.
type Options struct {
	// Dir receives the storage root, the generated config.yml and registry.log. The
	// caller owns it and removes it after Stop.
	Dir string
	// ExtraYAML is appended verbatim to the generated configuration, for top-level
	// sections the base configuration does not have (such as `notifications:`).
	ExtraYAML string
	// Binary is the registry executable; empty means DefaultBinary, else
	// docker-registry found in PATH.
	Binary string
	// ReadyTimeout bounds the wait for `GET /v2/` to answer 200; zero means 10 s.
	ReadyTimeout time.Duration
}

// Registry is a running registry process.
type Registry struct {
	// Addr is "127.0.0.1:PORT", usable directly in image references.
	Addr string
	// ConfigPath is the generated configuration file.
	ConfigPath string
	// LogPath is the file that receives the registry's stdout and stderr.
	LogPath string

	cmd      *exec.Cmd
	done     chan struct{}
	waitErr  error
	stopOnce sync.Once
}

// maxAttempts bounds the retries after losing the race for a free port to another process.
const maxAttempts = 3

// Start writes a configuration (filesystem storage under Dir, deletes enabled), starts
// the registry on a free loopback port and waits until it answers `GET /v2/` with 200.
// ctx bounds only the start-up; the process lives until Stop.
func Start(ctx context.Context, opts Options) (*Registry, error) {
	if opts.Dir == "" {
		return nil, errors.New("distreg: Options.Dir is required")
	}
	bin, err := findBinary(opts.Binary)
	if err != nil {
		return nil, err
	}
	timeout := opts.ReadyTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	for attempt := 1; ; attempt++ {
		r, err := start(ctx, bin, opts)
		if err == nil {
			return r, nil
		}
		if attempt >= maxAttempts || !errors.Is(err, errPortTaken) {
			return nil, err
		}
	}
}

var errPortTaken = errors.New("port already in use")

func start(ctx context.Context, bin string, opts Options) (*Registry, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	r := &Registry{
		Addr:       net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		ConfigPath: filepath.Join(opts.Dir, "config.yml"),
		LogPath:    filepath.Join(opts.Dir, "registry.log"),
		done:       make(chan struct{}),
	}
	storage := filepath.Join(opts.Dir, "storage")
	if err := os.MkdirAll(storage, 0o755); err != nil {
		return nil, fmt.Errorf("distreg: %w", err)
	}
	cfg := config(r.Addr, storage, opts.ExtraYAML)
	if err := os.WriteFile(r.ConfigPath, []byte(cfg), 0o644); err != nil {
		return nil, fmt.Errorf("distreg: write config: %w", err)
	}
	logf, err := os.OpenFile(r.LogPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("distreg: open log: %w", err)
	}
	defer logf.Close() // the child holds its own descriptor

	r.cmd = exec.Command(bin, "serve", r.ConfigPath)
	r.cmd.Dir = opts.Dir
	r.cmd.Stdout = logf
	r.cmd.Stderr = logf
	r.cmd.Env = cleanEnv(os.Environ())
	DieWithParent(r.cmd)
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("distreg: start %s: %w", bin, err)
	}
	go func() {
		r.waitErr = r.cmd.Wait()
		close(r.done)
	}()

	if err := r.waitReady(ctx); err != nil {
		r.Stop()
		log := r.Log()
		if strings.Contains(log, "address already in use") {
			return nil, fmt.Errorf("distreg: %s: %w", r.Addr, errPortTaken)
		}
		return nil, fmt.Errorf("distreg: registry on %s: %w\nlog %s:\n%s", r.Addr, err, r.LogPath, log)
	}
	return r, nil
}

func (r *Registry) waitReady(ctx context.Context) error {
	// 401 is ready too: the registry then demands credentials (auth:).
	err := WaitStatus(ctx, "http://"+r.Addr+"/v2/", r.done, http.StatusOK, http.StatusUnauthorized)
	if errors.Is(err, ErrExited) {
		return fmt.Errorf("exited before it was ready: %v", r.waitErr)
	}
	if err != nil {
		return fmt.Errorf("not ready in time: %w", err)
	}
	return nil
}

// Stop kills the registry and waits for it to exit. It is safe to call more than once.
// A test registry keeps nothing worth a graceful shutdown, so it is killed outright.
func (r *Registry) Stop() {
	r.stopOnce.Do(func() {
		select {
		case <-r.done:
			return
		default:
		}
		_ = r.cmd.Process.Kill()
		<-r.done
	})
}

// Done is closed when the registry process has exited, for whatever reason.
func (r *Registry) Done() <-chan struct{} { return r.done }

// Log returns the registry's output so far (at most its last 64 KiB), for failure reports.
func (r *Registry) Log() string {
	b, err := os.ReadFile(r.LogPath)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	const max = 64 << 10
	if len(b) > max {
		b = append([]byte("…\n"), b[len(b)-max:]...)
	}
	return string(bytes.TrimRight(b, "\n"))
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. Another process
// may take it before the caller binds it, so callers retry on "address already in use".
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("distreg: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func findBinary(bin string) (string, error) {
	if bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("%w: %v", ErrNotInstalled, err)
		}
		return bin, nil
	}
	if _, err := os.Stat(DefaultBinary); err == nil {
		return DefaultBinary, nil
	}
	if p, err := exec.LookPath("docker-registry"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%w: no %s and no docker-registry in PATH", ErrNotInstalled, DefaultBinary)
}

// cleanEnv drops REGISTRY_* variables, which the registry reads as configuration
// overrides, so the caller's environment cannot change the generated configuration.
func cleanEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "REGISTRY_") {
			out = append(out, kv)
		}
	}
	return out
}

func config(addr, storage, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `version: 0.1
log:
  level: info
  formatter: text
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: %q
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %q
  secret: imagebadger-test-secret
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: false
`, storage, addr)
	if extra != "" {
		b.WriteString(strings.TrimRight(extra, "\n"))
		b.WriteString("\n")
	}
	return b.String()
}
