package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// imageBuildTimeout bounds one build of the service's image: two static cgo
// binaries, which take minutes when the build cache is cold.
const imageBuildTimeout = 12 * time.Minute

// imageBuild holds the one `make image` run per test process.
var imageBuild struct {
	once sync.Once
	dir  string
	out  string
	err  error
}

// Image runs `make image` once per test process, as a person or a release
// pipeline would, and returns the OCI image layout it wrote. Packages that
// call it should use Main in their TestMain so the layout is removed
// afterwards.
func Image(t testing.TB) string {
	t.Helper()
	imageBuild.once.Do(func() {
		var root string
		if root, imageBuild.err = repoRoot(); imageBuild.err != nil {
			return
		}
		if imageBuild.dir, imageBuild.err = os.MkdirTemp("", "imagebadger-testenv-image-"); imageBuild.err != nil {
			return
		}
		imageBuild.out = filepath.Join(imageBuild.dir, "image")
		ctx, cancel := context.WithTimeout(context.Background(), imageBuildTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "image", "OUT="+imageBuild.out)
		cmd.Dir = root
		// Only the Makefile's defaults: make reads these from the environment too.
		for _, kv := range os.Environ() {
			if name, _, _ := strings.Cut(kv, "="); !slices.Contains([]string{"OUT", "VERSION", "PLATFORMS", "GO", "SOURCE_DATE_EPOCH"}, name) {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			imageBuild.err = fmt.Errorf("make image: %v\n%s", err, out)
			return
		}
		fmt.Fprintf(os.Stderr, "testenv: make image took %s\n", time.Since(start).Round(time.Second))
	})
	if imageBuild.err != nil {
		t.Fatal(imageBuild.err)
	}
	return imageBuild.out
}
