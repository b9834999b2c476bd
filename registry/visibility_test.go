package registry_test

import (
	"context"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/registry"
)

// The visibility check asks the registry once, anonymously, when the
// service holds credentials for it; a repository that needs them is
// private, one served anonymously public. On a registry without
// credentials it asks nothing: what the service reads there, anyone can.
func TestVisibility(t *testing.T) {
	ctx := context.Background()
	reg := newTestRegistry(t)
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	push(t, reg.Host+"/open/app:1", img)
	push(t, reg.Host+"/private/app:1", img)
	reg.Add(faultreg.Rule{Fault: faultreg.RequireBasicAuth, PathContains: "/private/", Username: "u", Password: "p"})

	withCreds, _ := newInspector(t, registry.Options{Keychain: dockerConfig(t, map[string]string{reg.Host: "u:p"})})
	bare, _ := newInspector(t, registry.Options{Keychain: authn.NewMultiKeychain()})

	cases := []struct {
		name   string
		client *registry.Client
		ref    string
		want   analysis.Visibility
		// anonymous is how many anonymous requests to the repository the
		// check may make.
		anonymous int
	}{
		{"credentials, needs them", withCreds, "private/app:1", analysis.VisibilityPrivate, 1},
		{"credentials, bare repository", withCreds, "private/app", analysis.VisibilityPrivate, 1},
		{"credentials, served anonymously", withCreds, "open/app:1", analysis.VisibilityPublic, 1},
		{"no credentials", bare, "open/app:1", analysis.VisibilityPublic, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reg.Requests()
			ref := reg.ref(t, c.ref)
			got, err := c.client.Visibility(ctx, ref)
			if err != nil || got != c.want {
				t.Fatalf("Visibility(%s) = %q, %v; want %q", ref, got, err, c.want)
			}
			if anon := reg.Anonymous("/" + ref.Repository.Name + "/"); len(anon) != c.anonymous {
				t.Errorf("anonymous requests to the repository: %q, want %d", anon, c.anonymous)
			}
			if all := reg.Peek(); c.anonymous == 0 && len(all) != 0 {
				t.Errorf("a registry without credentials was asked: %q", all)
			}
		})
	}

	// The credentials still read the private repository.
	if _, _, err := withCreds.Resolve(ctx, reg.ref(t, "private/app:1")); err != nil {
		t.Fatalf("read with credentials: %v", err)
	}
}

// A registry that answers HEAD on manifests with an error is asked with
// GET, as Resolve does, rather than leaving the repository without a
// verdict.
func TestVisibilityWithoutHead(t *testing.T) {
	ctx := context.Background()
	reg := newTestRegistry(t)
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	push(t, reg.Host+"/open/app:1", img)
	reg.Add(faultreg.Rule{Method: "HEAD", PathContains: "/manifests/", Fault: faultreg.ServerError})
	c, _ := newInspector(t, registry.Options{Keychain: dockerConfig(t, map[string]string{reg.Host: "u:p"})})
	reg.Requests()
	if got, err := c.Visibility(ctx, reg.ref(t, "open/app:1")); err != nil || got != analysis.VisibilityPublic {
		t.Fatalf("Visibility = %q, %v; want public", got, err)
	}
	if got := reg.Anonymous("/open/app/manifests/"); len(got) == 0 || got[len(got)-1] != "GET /v2/open/app/manifests/1" {
		t.Errorf("anonymous requests %q, want a GET after the refused HEAD", got)
	}
}
