// Package testenv starts the real programs that end-to-end tests run against: Debian's
// CNCF distribution registry, the imagebadger binary built from this tree, and the
// crane and skopeo command-line tools used as independent judges of what a registry
// holds. It imports "testing", so it must be imported from _test.go files only (a test
// in this package enforces that).
//
// Nothing here skips: a missing tool fails the test with a hint to run `make deps`, so
// a machine without the tools cannot pass by running fewer tests.
package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imagebadger/imagebadger/internal/testing/distreg"
)

// toolTimeout bounds one crane, skopeo or go invocation, so a hung tool fails its
// test instead of the whole package at the go test timeout.
const toolTimeout = 2 * time.Minute

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := distreg.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// Distribution starts Debian's distribution registry on 127.0.0.1 with filesystem
// storage in t.TempDir() and deletes enabled, waits until it answers, and stops it
// when the test ends. It returns "127.0.0.1:PORT". The registry's log is printed when
// the test fails.
func Distribution(t testing.TB) string {
	t.Helper()
	return DistributionWithConfig(t, "")
}

// DistributionWithConfig is Distribution with extraYAML appended to the registry's
// configuration; it is for top-level sections the base configuration lacks, such as
// a `notifications:` section pointing at a test's hook endpoint.
func DistributionWithConfig(t testing.TB, extraYAML string) string {
	t.Helper()
	dir := t.TempDir() // registered first, so removed after the registry has stopped
	reg, err := distreg.Start(context.Background(), distreg.Options{Dir: dir, ExtraYAML: extraYAML})
	if errors.Is(err, distreg.ErrNotInstalled) {
		t.Fatalf("%v: run `make deps`", err)
	}
	if err != nil {
		t.Fatalf("start distribution registry: %v", err)
	}
	t.Cleanup(func() {
		reg.Stop()
		if t.Failed() {
			t.Logf("distribution registry %s log (%s):\n%s", reg.Addr, reg.LogPath, reg.Log())
		}
	})
	return reg.Addr
}

// build holds the one imagebadger binary built per test process.
var build struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// RepoRoot returns the directory holding this module's go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func repoRoot() (string, error) {
	out, err := exec.Command(goTool(), "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("go env GOMOD: not inside the imagebadger module")
	}
	return filepath.Dir(gomod), nil
}

// Binary builds ./cmd/imagebadger once per test process and returns the executable's
// path. Packages that call it should use Main in their TestMain so the build folder is
// removed afterwards.
func Binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		var root string
		if root, build.err = repoRoot(); build.err != nil {
			return
		}
		if build.dir, build.err = os.MkdirTemp("", "imagebadger-testenv-"); build.err != nil {
			return
		}
		build.path = filepath.Join(build.dir, "imagebadger")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, goTool(), "build", "-o", build.path, "./cmd/imagebadger")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build ./cmd/imagebadger: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

// BinaryWithLDFlags builds ./cmd/imagebadger with go build -ldflags ldflags
// (a release build's -X main.version=… and the like) into t.TempDir() and
// returns the executable's path, for a test of what those flags set.
func BinaryWithLDFlags(t testing.TB, ldflags string) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "imagebadger")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool(), "build", "-ldflags", ldflags, "-o", bin, "./cmd/imagebadger")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build -ldflags %q ./cmd/imagebadger: %v\n%s", ldflags, err, out)
	}
	return bin
}

// Main runs the package's tests, then stops the shared PostgreSQL cluster and
// removes the binary that Binary built and the image layout that Image wrote.
// Use it as `func TestMain(m *testing.M) { testenv.Main(m) }`.
func Main(m *testing.M) {
	code := m.Run()
	stopShared()
	for _, dir := range []string{build.dir, imageBuild.dir} {
		if dir != "" {
			os.RemoveAll(dir)
		}
	}
	os.Exit(code)
}

// Crane runs the crane CLI (from PATH, else $(go env GOPATH)/bin) and returns its
// standard output; a failure fails the test with crane's standard error. No --insecure
// is added: crane, like go-containerregistry, speaks plain HTTP to 127.0.0.1 and
// localhost by itself, which is where the test registries listen.
func Crane(t testing.TB, args ...string) []byte {
	t.Helper()
	bin, err := craneBinary()
	if err != nil {
		t.Fatalf("%v: run `make deps`", err)
	}
	return run(t, bin, args...)
}

// Skopeo runs skopeo and returns its standard output; a failure fails the test with
// skopeo's standard error. Callers pass --tls-verify=false for the loopback registries.
func Skopeo(t testing.TB, args ...string) []byte {
	t.Helper()
	bin, err := exec.LookPath("skopeo")
	if err != nil {
		t.Fatalf("skopeo not found (Debian package skopeo): run `make deps`")
	}
	return run(t, bin, args...)
}

var craneBinary = sync.OnceValues(func() (string, error) {
	if p, err := exec.LookPath("crane"); err == nil {
		return p, nil
	}
	out, err := exec.Command(goTool(), "env", "GOPATH").Output()
	if err != nil {
		return "", fmt.Errorf("crane not in PATH and go env GOPATH failed: %v", err)
	}
	for _, dir := range filepath.SplitList(strings.TrimSpace(string(out))) {
		p := filepath.Join(dir, "bin", "crane")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("crane not found in PATH or $(go env GOPATH)/bin")
})

// goTool returns the go command. `go test` puts its own GOROOT/bin first in PATH.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

func run(t testing.TB, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstderr:\n%s", filepath.Base(bin), strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}
