package e2e_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagebadger/imagebadger/internal/testing/testenv"
)

// baseAnswer is check-base's JSON, the part these tests read.
type baseAnswer struct {
	Status    string `json:"status"`
	Platforms []struct {
		Platform string  `json:"platform"`
		BuiltOn  *string `json:"builtOn"`
		Current  *string `json:"current"`
		Moved    bool    `json:"moved"`
	} `json:"platforms"`
}

// ran is one run of the built binary.
type ran struct {
	code           int
	stdout, stderr string
}

// runBinary runs bin with args in the test's environment without
// IMAGEBADGER_ variables.
func runBinary(t *testing.T, bin string, args ...string) ran {
	t.Helper()
	return runWithEnv(t, cleanEnv(), bin, args...)
}

// runWithEnv runs name with args in exactly env.
func runWithEnv(t *testing.T, env []string, name string, args ...string) ran {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return ran{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// layerTar writes a tarball of one file holding content, for crane append.
func layerTar(t *testing.T, content string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "file"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(t.TempDir(), "layer.tar")
	if out, err := exec.Command("tar", "-cf", tarball, "-C", dir, "file").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	return tarball
}

// pushBase pushes a linux/amd64 base of one layer holding content, with
// crane, and returns the digest crane gives for the tag.
func pushBase(t *testing.T, ref, content string) string {
	t.Helper()
	testenv.Crane(t, "append", "-f", layerTar(t, content), "-t", ref)
	testenv.Crane(t, "mutate", "--set-platform", "linux/amd64", "-t", ref, ref)
	return strings.TrimSpace(string(testenv.Crane(t, "digest", ref)))
}

// TestCheckBaseCommand runs `imagebadger check-base` as a CI pipeline
// would, against the distribution registry: children of a base pushed with
// crane, one annotated with go-containerregistry (mutate.Append, then the OCI
// base.name and base.digest annotations), one annotated by crane itself
// (append --set-base-image-annotations), one without annotations. It exits
// 0 while the base is as built on, 1 once crane moves the base's tag to a
// rebuilt base (naming the digests crane gives before and after), and 2
// for an image that names no base, unless --base names it.
func TestCheckBaseCommand(t *testing.T) {
	reg := testenv.Distribution(t)
	bin := testenv.Binary(t)
	base := reg + "/acme/base:1"
	built := pushBase(t, base, "base, first build")

	parent, err := remote.Image(must(name.ParseReference(base)))
	if err != nil {
		t.Fatal(err)
	}
	layer, err := random.Layer(512, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	child, err := mutate.AppendLayers(parent, layer)
	if err != nil {
		t.Fatal(err)
	}
	child = mutate.Annotations(child, map[string]string{
		"org.opencontainers.image.base.name":   base,
		"org.opencontainers.image.base.digest": built,
	}).(v1.Image)
	if err := remote.Write(must(name.ParseReference(reg+"/acme/app:1")), child); err != nil {
		t.Fatal(err)
	}
	testenv.Crane(t, "append", "-b", base, "-f", layerTar(t, "app2"), "--set-base-image-annotations", "-t", reg+"/acme/app2:1")
	testenv.Crane(t, "append", "-b", base, "-f", layerTar(t, "plain"), "-t", reg+"/acme/plain:1")

	check := func(args ...string) ran {
		return runBinary(t, bin, append([]string{"check-base", "--allow-private-registries"}, args...)...)
	}
	for _, ref := range []string{reg + "/acme/app:1", reg + "/acme/app2:1"} {
		if r := check(ref); r.code != 0 || !strings.Contains(r.stdout, "current") || !strings.Contains(r.stdout, built) {
			t.Errorf("%s on the base as built: exit %d\n%s%s", ref, r.code, r.stdout, r.stderr)
		}
	}
	if r := check(reg + "/acme/plain:1"); r.code != 2 || !strings.Contains(r.stderr, "--base") {
		t.Errorf("an image naming no base: exit %d, want 2 and a word on --base\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := check("--base", base, reg+"/acme/plain:1"); r.code != 0 {
		t.Errorf("--base for an image naming none: exit %d, want 0\n%s%s", r.code, r.stdout, r.stderr)
	}

	now := pushBase(t, base, "base, rebuilt")
	if now == built {
		t.Fatal("crane gives the rebuilt base the digest of the first build")
	}
	for _, ref := range []string{reg + "/acme/app:1", reg + "/acme/app2:1"} {
		r := check(ref)
		if r.code != 1 || !strings.Contains(r.stdout, built) || !strings.Contains(r.stdout, now) || !strings.Contains(r.stderr, built) || !strings.Contains(r.stderr, now) {
			t.Errorf("%s after the base's rebuild: exit %d, want 1 naming %s and %s\n%s%s", ref, r.code, built, now, r.stdout, r.stderr)
		}
		r = check("--json", ref)
		var a baseAnswer
		if err := json.Unmarshal([]byte(r.stdout), &a); err != nil {
			t.Fatalf("--json: %v\n%s", err, r.stdout)
		}
		if r.code != 1 || a.Status != "moved" || len(a.Platforms) != 1 || a.Platforms[0].Platform != "linux/amd64" ||
			!a.Platforms[0].Moved || a.Platforms[0].BuiltOn == nil || *a.Platforms[0].BuiltOn != built || a.Platforms[0].Current == nil || *a.Platforms[0].Current != now {
			t.Errorf("%s --json after the rebuild: exit %d, %+v; want moved from %s to %s", ref, r.code, a, built, now)
		}
	}
	if r := check("--base", base, reg+"/acme/plain:1"); r.code != 1 || !strings.Contains(r.stdout, now) {
		t.Errorf("--base after the base's rebuild: exit %d, want 1 naming %s\n%s%s", r.code, now, r.stdout, r.stderr)
	}
}
