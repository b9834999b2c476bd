// Package serveproc builds and runs `imagebadger serve` processes for the
// benchmark programs under bench/, which measure the real binary. (Tests
// use testenv, which reports through testing.TB; this package does not
// import "testing".)
package serveproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/imagebadger/imagebadger/internal/testing/distreg"
)

// Build builds ./cmd/imagebadger of the module the program runs in into dir
// and returns the binary's path.
func Build(ctx context.Context, dir string) (string, error) {
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	bin := filepath.Join(dir, "imagebadger")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/imagebadger")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/imagebadger: %v\n%s", err, out)
	}
	return bin, nil
}

// BuildRevision builds ./cmd/imagebadger as it was at the git revision rev
// of the module the program runs in (extracted with git archive into dir,
// built there) and returns the binary's path: the "before" of a benchmark
// that compares a change with the code it replaced, in one run.
func BuildRevision(ctx context.Context, dir, rev string) (string, error) {
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	src := filepath.Join(dir, "src-"+rev)
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	archive := exec.CommandContext(ctx, "sh", "-c", `git -C "$1" archive --format=tar "$2" | tar -x -C "$3"`, "sh", root, rev, src)
	if out, err := archive.CombinedOutput(); err != nil {
		return "", fmt.Errorf("git archive %s: %v\n%s", rev, err, out)
	}
	bin := filepath.Join(dir, "imagebadger-"+rev)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/imagebadger")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/imagebadger at %s: %v\n%s", rev, err, out)
	}
	return bin, nil
}

// Proc is a running `imagebadger serve`.
type Proc struct {
	Addr    string // "127.0.0.1:PORT"
	URL     string // "http://" + Addr
	LogPath string // its standard output and error

	cmd     *exec.Cmd
	done    chan struct{}
	stopped bool
}

// PID is the process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Start starts bin serve on a free loopback port with --db db, --base-url
// its own URL and args, its output to logPath, and waits for /healthz,
// trying another port if the one picked was taken meanwhile. Only the flags
// configure it: IMAGEBADGER_* variables of this environment are not passed.
func Start(ctx context.Context, bin, db, logPath string, args []string) (*Proc, error) {
	for attempt := 1; ; attempt++ {
		p, err := startOnce(ctx, bin, db, logPath, args)
		if err == nil || attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			return p, err
		}
	}
}

func startOnce(ctx context.Context, bin, db, logPath string, args []string) (*Proc, error) {
	port, err := distreg.FreePort()
	if err != nil {
		return nil, err
	}
	p := &Proc{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), LogPath: logPath, done: make(chan struct{})}
	p.URL = "http://" + p.Addr
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor
	p.cmd = exec.Command(bin, append([]string{"serve", "--addr", p.Addr, "--db", db, "--base-url", p.URL}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "IMAGEBADGER_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	distreg.DieWithParent(p.cmd)
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	ready, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = distreg.WaitOK(ready, p.URL+"/healthz", p.done)
	if errors.Is(err, distreg.ErrExited) {
		return nil, fmt.Errorf("imagebadger serve exited before it was ready:\n%s", p.Tail())
	}
	if err != nil {
		p.Stop()
		return nil, fmt.Errorf("imagebadger serve not ready in 30 s (%v):\n%s", err, p.Tail())
	}
	return p, nil
}

// Stop sends SIGTERM and waits for the graceful shutdown (at most 30 s,
// then SIGKILL). It is safe to call more than once.
func (p *Proc) Stop() { p.StopWithin(30 * time.Second) }

// StopWithin is Stop with another grace period: a benchmark that restarts
// the server between phases ends work a phase left running without
// waiting for it.
func (p *Proc) StopWithin(grace time.Duration) {
	if p.stopped {
		return
	}
	p.stopped = true
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Tail is the end of the process's log, for error messages.
func (p *Proc) Tail() string {
	b, _ := os.ReadFile(p.LogPath)
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}
