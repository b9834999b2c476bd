package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/imagebadger/imagebadger/internal/testing/distreg"
)

const (
	// serveReadyTimeout bounds the wait for GET /healthz to answer 200.
	serveReadyTimeout = 15 * time.Second
	// serveStopGrace is how long a SIGTERM gets before SIGKILL.
	serveStopGrace = 5 * time.Second
)

// ServeOptions configures ServeProcess.
type ServeOptions struct {
	// DBPath is the SQLite file or a postgres:// URL (see Postgres); empty means a new
	// imagebadger.db in t.TempDir(). Pass a previous Server's DBPath to restart on the
	// same database, or one URL to several processes to run replicas.
	DBPath string
	// Args are appended after the fixed serve flags.
	Args []string
	// Env holds extra KEY=VALUE pairs. IMAGEBADGER_* variables of the test's own
	// environment are never passed on, so only the test decides the configuration.
	Env []string
}

// Server is a running `imagebadger serve` process. Use its methods to stop it; do not
// call Cmd.Wait, which a goroutine of this package already does.
type Server struct {
	// Cmd is the process, for signals a test wants to send itself.
	Cmd *exec.Cmd
	// URL is "http://127.0.0.1:PORT".
	URL string
	// Addr is "127.0.0.1:PORT".
	Addr string
	// DBPath is the database file the server uses.
	DBPath string

	out     *Buffer
	done    chan struct{}
	waitErr error
}

// Serve starts `bin serve` on a free loopback port with a fresh database in
// t.TempDir() and --allow-private-registries, followed by args; waits until GET /healthz
// answers 200; and stops it with SIGTERM when the test ends. Its output is printed
// when the test fails. It returns the base URL.
func Serve(t testing.TB, bin string, args ...string) string {
	t.Helper()
	return ServeProcess(t, bin, ServeOptions{Args: args}).URL
}

// ServeProcess is Serve returning the process, for tests that kill and restart it.
func ServeProcess(t testing.TB, bin string, opts ServeOptions) *Server {
	t.Helper()
	if opts.DBPath == "" {
		opts.DBPath = filepath.Join(t.TempDir(), "imagebadger.db")
	}
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		var s *Server
		s, err = startServer(bin, opts)
		if err == nil {
			t.Cleanup(func() {
				if err := s.stop(); err != nil {
					t.Logf("imagebadger serve on %s: %v", s.Addr, err)
				}
				if t.Failed() {
					t.Logf("imagebadger serve on %s output:\n%s", s.Addr, s.Output())
				}
			})
			return s
		}
		if !errors.Is(err, errAddrInUse) {
			break
		}
	}
	t.Fatal(err)
	return nil
}

var errAddrInUse = errors.New("address already in use")

// ServeProcesses starts one process per option set at the same moment, as
// replicas of a deployment start together (so that they race to migrate one
// PostgreSQL database), and returns them once all serve.
func ServeProcesses(t testing.TB, bin string, opts ...ServeOptions) []*Server {
	t.Helper()
	out := make([]*Server, len(opts))
	errs := make([]error, len(opts))
	var wg sync.WaitGroup
	for i, o := range opts {
		if o.DBPath == "" {
			o.DBPath = filepath.Join(t.TempDir(), "imagebadger.db")
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for attempt := 1; attempt <= 3; attempt++ {
				out[i], errs[i] = startServer(bin, o)
				if !errors.Is(errs[i], errAddrInUse) {
					return
				}
			}
		}()
	}
	wg.Wait()
	for i, s := range out {
		if s == nil {
			continue
		}
		t.Cleanup(func() {
			if err := s.stop(); err != nil {
				t.Logf("imagebadger serve %d on %s: %v", i, s.Addr, err)
			}
			if t.Failed() {
				t.Logf("imagebadger serve %d on %s output:\n%s", i, s.Addr, s.Output())
			}
		})
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return out
}

func startServer(bin string, opts ServeOptions) (*Server, error) {
	port, err := distreg.FreePort()
	if err != nil {
		return nil, err
	}
	s := &Server{
		Addr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		DBPath: opts.DBPath,
		out:    &Buffer{},
		done:   make(chan struct{}),
	}
	s.URL = "http://" + s.Addr
	args := append([]string{"serve",
		"--addr", s.Addr,
		"--db", s.DBPath,
		"--allow-private-registries",
	}, opts.Args...)
	s.Cmd = exec.Command(bin, args...)
	s.Cmd.Stdout = s.out
	s.Cmd.Stderr = s.out
	s.Cmd.Env = append(withoutPrefix(os.Environ(), "IMAGEBADGER_"), opts.Env...)
	distreg.DieWithParent(s.Cmd)
	if err := s.Cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		s.waitErr = s.Cmd.Wait()
		close(s.done)
	}()
	if err := s.waitHealthy(); err != nil {
		s.Kill()
		out := s.Output()
		if strings.Contains(out, "address already in use") {
			return nil, errAddrInUse
		}
		return nil, fmt.Errorf("imagebadger %s: %v\noutput:\n%s", strings.Join(args, " "), err, out)
	}
	return s, nil
}

func (s *Server) waitHealthy() error {
	ctx, cancel := context.WithTimeout(context.Background(), serveReadyTimeout)
	defer cancel()
	err := distreg.WaitOK(ctx, s.URL+"/healthz", s.done)
	if errors.Is(err, distreg.ErrExited) {
		return fmt.Errorf("exited before it was healthy: %v", s.waitErr)
	}
	if err != nil {
		return fmt.Errorf("not healthy within %s: %w", serveReadyTimeout, err)
	}
	return nil
}

// Kill sends SIGKILL, as a crash would, and waits for the process to exit. The
// database is left as the crash left it, for a restart with the same DBPath.
func (s *Server) Kill() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.Cmd.Process.Kill()
	<-s.done
}

// Stop sends SIGTERM, waits up to 5 s, then sends SIGKILL. It returns an error when
// the process did not exit cleanly within the grace period.
func (s *Server) Stop() error { return s.stop() }

func (s *Server) stop() error {
	select {
	case <-s.done:
		return nil // already stopped or killed; the test saw to it
	default:
	}
	_ = s.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		if s.waitErr != nil {
			return fmt.Errorf("exit after SIGTERM: %w", s.waitErr)
		}
		return nil
	case <-time.After(serveStopGrace):
		s.Kill()
		return fmt.Errorf("still running %s after SIGTERM; killed", serveStopGrace)
	}
}

// Done is closed when the process has exited.
func (s *Server) Done() <-chan struct{} { return s.done }

// ExitErr is the process's exit status once Done is closed (nil for exit code 0).
func (s *Server) ExitErr() error {
	<-s.done
	return s.waitErr
}

// Output returns everything the process wrote to stdout and stderr so far.
func (s *Server) Output() string { return s.out.String() }

// Buffer is a bytes.Buffer safe for concurrent use: the output of a process
// (or of an in-process server's log) that its goroutines write while a test
// reads it.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func withoutPrefix(env []string, prefix string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, prefix) {
			out = append(out, kv)
		}
	}
	return out
}
