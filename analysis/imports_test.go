package analysis_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports enforces docs/DESIGN.md: analysis is the domain and the pure work
// on it. It depends only on the standard library and go-containerregistry's
// types, never on net/http (talking to registries is registry's job) nor on
// any other package of this module, directly or through a dependency.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/imagebadger/imagebadger/analysis").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		first, _, _ := strings.Cut(dep, "/")
		switch {
		case dep == "github.com/imagebadger/imagebadger/analysis":
		case dep == "net/http" || strings.HasPrefix(dep, "net/http/"):
			t.Errorf("analysis depends on %s; registry I/O belongs in package registry", dep)
		case strings.HasPrefix(dep, "github.com/imagebadger/imagebadger/"):
			t.Errorf("analysis depends on %s", dep)
		case dep == "github.com/opencontainers/go-digest": // what go-containerregistry's names parse digests with
		case strings.Contains(first, ".") && !strings.HasPrefix(dep, "github.com/google/go-containerregistry/pkg/"):
			t.Errorf("analysis depends on %s", dep)
		case strings.HasPrefix(dep, "github.com/google/go-containerregistry/pkg/") &&
			!strings.HasPrefix(dep, "github.com/google/go-containerregistry/pkg/v1") &&
			!strings.HasPrefix(dep, "github.com/google/go-containerregistry/pkg/name"):
			t.Errorf("analysis depends on %s; only go-containerregistry's types and names belong here", dep)
		case strings.HasPrefix(dep, "github.com/google/go-containerregistry/pkg/v1/remote"):
			t.Errorf("analysis depends on %s", dep)
		}
	}
}
