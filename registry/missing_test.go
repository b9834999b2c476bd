package registry_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/crane"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/registry"
)

// TestNotFoundSaysWhatIsMissing: a read of something the registry lacks is
// of kind not found, and says whether the repository or its tag (or digest)
// is missing, as crane's listing of the repository judges: a repository
// crane cannot list does not exist.
func TestNotFoundSaysWhatIsMissing(t *testing.T) {
	reg := newTestRegistry(t)
	push(t, reg.Host+"/acme/app:1", imageSpec{layers: 1}.build(t))
	client, _ := newInspector(t, registry.Options{Timeout: 5 * time.Second})
	zero := "sha256:" + strings.Repeat("0", 64)
	for _, tc := range []struct {
		ref  string
		says string
	}{
		{"acme/app:nope", "repository " + reg.Host + "/acme/app has no tag nope"},
		{"acme/app@" + zero, "repository " + reg.Host + "/acme/app has no image sha256:000000000000"},
		{"acme/nothing:1", "repository " + reg.Host + "/acme/nothing does not exist"},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			ref := reg.ref(t, tc.ref)
			_, listErr := crane.ListTags(ref.Repository.String(), crane.WithAuth(authn.Anonymous))
			wantPart := analysis.MissingImage
			if listErr != nil {
				wantPart = analysis.MissingRepository
			}
			if (wantPart == analysis.MissingRepository) != strings.HasSuffix(tc.says, "does not exist") {
				t.Fatalf("crane lists %s: %v; the case expects otherwise", ref.Repository, listErr)
			}
			_, _, err := client.Fetch(context.Background(), ref)
			msg, _ := analysis.PublicMessage(err)
			m, ok := analysis.MissingIn(err)
			if !errors.Is(err, analysis.ErrNotFound) || msg != tc.says || !ok || m.Part != wantPart || m.Ref != ref {
				t.Errorf("Fetch: %v (missing %+v), want not found saying %q", err, m, tc.says)
			}
		})
	}
	_, err := client.ListTags(context.Background(), reg.ref(t, "acme/nothing:1").Repository)
	if msg, _ := analysis.PublicMessage(err); !errors.Is(err, analysis.ErrNotFound) || msg != "repository "+reg.Host+"/acme/nothing does not exist" {
		t.Errorf("ListTags of a repository crane cannot list either: %v", err)
	}
}
