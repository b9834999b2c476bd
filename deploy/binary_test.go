package deploy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// build is the imagebadger binary the tests run, built once per test binary.
var build struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// binary builds ./cmd/imagebadger of the repository this module sits in and
// returns its path.
func binary(t *testing.T) string {
	t.Helper()
	build.once.Do(func() {
		if build.dir, build.err = os.MkdirTemp("", "imagebadger-deploy-"); build.err != nil {
			return
		}
		build.path = filepath.Join(build.dir, "imagebadger")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, goTool(), "build", "-o", build.path, "./cmd/imagebadger")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build ./cmd/imagebadger: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

// goTool returns the go command. `go test` puts its own GOROOT/bin first in PATH.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// runBinary runs the binary with args and only the environment env (and
// PATH), the way a container or a unit starts it, and returns its standard
// output, its standard error and its error.
func runBinary(t *testing.T, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// flagLine is a flag in the usage the binary prints: two spaces, one or two
// dashes and the name.
var flagLine = regexp.MustCompile(`^ {2}--?([a-z0-9][a-z0-9-]*)\b`)

// serveVariables returns the environment variables `imagebadger serve` reads:
// IMAGEBADGER_ and each of its flags' names in upper snake case, the rule its
// usage states.
func serveVariables(t *testing.T) map[string]bool {
	t.Helper()
	stdout, stderr, err := runBinary(t, nil, "serve", "--help")
	if err != nil {
		t.Fatalf("imagebadger serve --help: %v\n%s%s", err, stdout, stderr)
	}
	usage := stdout + stderr
	if !strings.Contains(usage, "IMAGEBADGER_") {
		t.Fatalf("imagebadger serve --help no longer says how flags map to environment variables:\n%s", usage)
	}
	vars := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(usage))
	for sc.Scan() {
		if m := flagLine.FindStringSubmatch(sc.Text()); m != nil && m[1] != "h" && m[1] != "help" {
			vars["IMAGEBADGER_"+strings.ToUpper(strings.ReplaceAll(m[1], "-", "_"))] = true
		}
	}
	// Flags every serving process has since the first release; an empty or
	// unparsed list would otherwise make every later check pass.
	for _, v := range []string{"IMAGEBADGER_ADDR", "IMAGEBADGER_DB", "IMAGEBADGER_BASE_URL"} {
		if !vars[v] {
			t.Fatalf("no %s in imagebadger serve --help (parsed %v):\n%s", v, slices.Sorted(maps.Keys(vars)), usage)
		}
	}
	return vars
}

// subcommands returns the subcommands `imagebadger --help` lists.
func subcommands(t *testing.T) map[string]bool {
	t.Helper()
	stdout, stderr, err := runBinary(t, nil, "--help")
	if err != nil {
		t.Fatalf("imagebadger --help: %v\n%s%s", err, stdout, stderr)
	}
	_, list, ok := strings.Cut(stdout, "Subcommands:\n")
	if !ok {
		t.Fatalf("imagebadger --help lists no subcommands:\n%s", stdout)
	}
	cmds := map[string]bool{}
	for _, line := range strings.Split(list, "\n") {
		if !strings.HasPrefix(line, "  ") {
			break
		}
		if f := strings.Fields(line); len(f) > 0 {
			cmds[f[0]] = true
		}
	}
	if !cmds["serve"] {
		t.Fatalf("no serve in the subcommands of imagebadger --help:\n%s", stdout)
	}
	return cmds
}

// checkCommandLine runs the command line a deployment gives the binary, with
// the environment it gives it, and --help added: the binary parses every
// variable it knows and every flag before it prints help, so a subcommand,
// flag or value it does not accept fails here. Variables naming a file (the
// _FILE forms, whose files exist only where the service runs) point at a
// stand-in file holding a value of the kind the variable takes.
func checkCommandLine(t *testing.T, where string, args []string, env map[string]string) {
	t.Helper()
	env = maps.Clone(env)
	if env == nil {
		env = map[string]string{}
	}
	for k := range env {
		if strings.HasSuffix(k, "_FILE") {
			f := filepath.Join(t.TempDir(), "value")
			if err := os.WriteFile(f, []byte(standIn(strings.TrimSuffix(k, "_FILE"))), 0o600); err != nil {
				t.Fatal(err)
			}
			env[k] = f
		}
	}
	stdout, stderr, err := runBinary(t, env, append(slices.Clone(args), "--help")...)
	if err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Fatal(err)
		}
		t.Errorf("%s: imagebadger %s --help with %v: %v\n%s%s", where, strings.Join(args, " "), env, err, stdout, stderr)
	}
}

// standIn is a value for a variable read from a file in a deployment.
func standIn(variable string) string {
	if variable == "IMAGEBADGER_DB" {
		return "postgres://imagebadger:secret@postgres.invalid:5432/imagebadger?sslmode=disable"
	}
	return "stand-in"
}

// checkVariables fails for each IMAGEBADGER_ name that is not a variable of
// `imagebadger serve`; a _FILE form counts as its variable.
func checkVariables(t *testing.T, where string, names []string) {
	t.Helper()
	known := serveVariables(t)
	for _, name := range names {
		if !known[strings.TrimSuffix(name, "_FILE")] {
			t.Errorf("%s names %s, which imagebadger serve does not read (it reads %v)", where, name, slices.Sorted(maps.Keys(known)))
		}
	}
}
