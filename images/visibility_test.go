package images_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/crane"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/internal/testing/supplyfix"
)

// keychain holds a user and password per registry host, as a Docker
// config's auths do.
type keychain map[string]authn.AuthConfig

func (k keychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if a, ok := k[r.RegistryStr()]; ok {
		return authn.FromConfig(a), nil
	}
	return authn.Anonymous, nil
}

func mustRef(t *testing.T, s string) analysis.Reference {
	t.Helper()
	r, err := analysis.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func pushImage(t *testing.T, ref string) string {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := crane.Push(img, ref); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return d.String()
}

// TestVisibilityCheck: on a registry the service holds credentials for, a
// repository that refuses anonymous reads is private: hidden from an
// anonymous viewer (the error a repository that does not exist gets),
// shown to a signed-in person and token holders; a read token may not
// refresh it. The anonymous attempt is made once per repository, not per
// read, again on a refresh, and not at all after a restart or on a
// registry without credentials.
func TestVisibilityCheck(t *testing.T) {
	stack.EachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		withCreds, bare := faultreg.Start(t), faultreg.Start(t)
		privDigest := pushImage(t, withCreds.Host+"/private/app:1")
		pushImage(t, withCreds.Host+"/open/app:1")
		pushImage(t, bare.Host+"/public/app:1")
		withCreds.Add(faultreg.Rule{Fault: faultreg.RequireBasicAuth, PathContains: "/private/", Username: "u", Password: "p"})
		withCreds.Requests()
		bare.Requests()
		kc := keychain{withCreds.Host: {Username: "u", Password: "p"}}
		st := stack.OpenStore(t, engine)
		svc := stack.New(t, stack.Options{Store: st, Keychain: kc}).Images

		private := mustRef(t, withCreds.Host+"/private/app:1")
		open := mustRef(t, withCreds.Host+"/open/app:1")
		public := mustRef(t, bare.Host+"/public/app:1")
		missing := mustRef(t, withCreds.Host+"/private/nothere:1")
		anonymous := auth.Viewer{}
		person := auth.Viewer{Person: "dev@example.com"}
		reader := auth.Viewer{Scope: auth.ScopeRead}
		writer := auth.Viewer{Scope: auth.ScopeWrite}

		_, wantErr := svc.Read(ctx, anonymous, missing, images.ReadOptions{})
		for range 3 {
			_, err := svc.Read(ctx, anonymous, private, images.ReadOptions{})
			if !errors.Is(err, analysis.ErrNotFound) {
				t.Fatalf("anonymous read of the private image: %v, want not found", err)
			}
			got, _ := analysis.PublicMessage(err)
			want, _ := analysis.PublicMessage(wantErr)
			if want != "repository "+withCreds.Host+"/private/nothere does not exist" ||
				got != "repository "+withCreds.Host+"/private/app does not exist" {
				t.Fatalf("messages: private %q, missing %q; want each to say its repository does not exist", got, want)
			}
		}
		for _, v := range []auth.Viewer{person, reader, writer, {BadgeRepository: private.Repository.String()}} {
			a, err := svc.Read(ctx, v, private, images.ReadOptions{})
			if err != nil || a.Report.Digest != privDigest {
				t.Fatalf("%+v reads the private image: %v, want digest %s", v, err, privDigest)
			}
		}
		if _, err := svc.Read(ctx, auth.Viewer{BadgeRepository: open.Repository.String()}, private, images.ReadOptions{}); !errors.Is(err, analysis.ErrNotFound) {
			t.Fatalf("another repository's badge token reads the private image: %v", err)
		}
		for _, v := range []auth.Viewer{anonymous, person} {
			if _, err := svc.Read(ctx, v, open, images.ReadOptions{}); err != nil {
				t.Fatalf("%+v reads the public image on the same registry: %v", v, err)
			}
			if _, err := svc.Read(ctx, v, public, images.ReadOptions{}); err != nil {
				t.Fatalf("%+v reads the image of a registry without credentials: %v", v, err)
			}
		}
		if list, err := svc.Tags(ctx, anonymous, private.Repository, images.ReadOptions{}); !errors.Is(err, analysis.ErrNotFound) {
			t.Fatalf("anonymous tag listing of the private repository: %v %v", list, err)
		}
		if _, err := svc.Tags(ctx, person, private.Repository, images.ReadOptions{}); err != nil {
			t.Fatalf("a person lists the private repository: %v", err)
		}

		// One anonymous attempt per repository with credentials, whatever
		// the number of reads; none on the registry without: all of its
		// requests are a first read's (no HEAD: a first read GETs).
		if got := withCreds.Anonymous("/private/app/manifests/"); len(got) != 1 {
			t.Errorf("anonymous attempts on the private repository: %q, want one", got)
		}
		if got := withCreds.Anonymous("/open/app/manifests/"); len(got) != 1 {
			t.Errorf("anonymous attempts on the public repository: %q, want one", got)
		}
		if got := bare.Requests("/public/app/manifests/"); len(got) != 1 || got[0] != "GET /v2/public/app/manifests/1" {
			t.Errorf("manifest requests to the registry without credentials: %q, want the first read's GET alone", got)
		}

		// Writes: a refresh by an anonymous viewer answers as for a
		// missing repository, by a read token with ErrForbidden; a
		// subscription's check likewise. A write token refreshes, and the
		// refresh asks again.
		if _, err := svc.Read(ctx, anonymous, private, images.ReadOptions{Refresh: true}); !errors.Is(err, analysis.ErrNotFound) {
			t.Errorf("anonymous refresh: %v, want not found", err)
		}
		if _, err := svc.Read(ctx, reader, private, images.ReadOptions{Refresh: true}); !errors.Is(err, images.ErrForbidden) {
			t.Errorf("read-token refresh: %v, want forbidden", err)
		}
		if _, err := svc.Tags(ctx, reader, private.Repository, images.ReadOptions{Refresh: true}); !errors.Is(err, images.ErrForbidden) {
			t.Errorf("read-token listing refresh: %v, want forbidden", err)
		}
		if err := svc.MayWrite(ctx, reader, private, 0); !errors.Is(err, images.ErrForbidden) {
			t.Errorf("read-token subscription: %v, want forbidden", err)
		}
		if err := svc.MayWrite(ctx, anonymous, private, 0); !errors.Is(err, analysis.ErrNotFound) {
			t.Errorf("anonymous subscription: %v, want not found", err)
		}
		if err := svc.MayWrite(ctx, anonymous, open, 0); err != nil {
			t.Errorf("anonymous subscription to the public image: %v", err)
		}
		withCreds.Requests()
		if _, err := svc.Read(ctx, writer, private, images.ReadOptions{Refresh: true}); err != nil {
			t.Fatalf("write-token refresh: %v", err)
		}
		if got := withCreds.Anonymous("/private/app/manifests/"); len(got) != 1 {
			t.Errorf("a refresh made anonymous attempts %q, want one", got)
		}
		if _, err := svc.Read(ctx, anonymous, private, images.ReadOptions{}); !errors.Is(err, analysis.ErrNotFound) {
			t.Errorf("after the refresh, anonymous read: %v, want not found", err)
		}

		// A new service over the same database (a restart) knows the
		// verdicts: no anonymous attempt.
		withCreds.Requests()
		again := stack.New(t, stack.Options{Store: st, Keychain: kc}).Images
		for range 2 {
			if _, err := again.Read(ctx, anonymous, private, images.ReadOptions{}); !errors.Is(err, analysis.ErrNotFound) {
				t.Fatalf("after a restart, anonymous read: %v, want not found", err)
			}
			if _, err := again.Read(ctx, anonymous, open, images.ReadOptions{}); err != nil {
				t.Fatalf("after a restart, the public image: %v", err)
			}
		}
		if got := withCreds.Anonymous(); len(got) != 0 {
			t.Errorf("after a restart, anonymous requests %q, want none", got)
		}
	})
}

// TestHiddenParentLeftOut: a public image built on a private one names its
// parent only to a viewer who may see the parent; to anyone else its
// report has no parent, and the answer's Version differs, so nothing made
// for one viewer is served to the other.
func TestHiddenParentLeftOut(t *testing.T) {
	ctx := context.Background()
	reg := faultreg.Start(t)
	base, err := random.Image(256, 2)
	if err != nil {
		t.Fatal(err)
	}
	layer, err := random.Layer(256, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	child, err := mutate.AppendLayers(base, layer)
	if err != nil {
		t.Fatal(err)
	}
	for ref, img := range map[string]v1.Image{reg.Host + "/private/base:1": base, reg.Host + "/open/child:1": child} {
		if err := crane.Push(img, ref); err != nil {
			t.Fatal(err)
		}
	}
	reg.Add(faultreg.Rule{Fault: faultreg.RequireBasicAuth, PathContains: "/private/", Username: "u", Password: "p"})
	svc := stack.New(t, stack.Options{Keychain: keychain{reg.Host: {Username: "u", Password: "p"}}}).Images
	person := auth.Viewer{Person: "dev@example.com"}
	if _, err := svc.Read(ctx, person, mustRef(t, reg.Host+"/private/base:1"), images.ReadOptions{}); err != nil {
		t.Fatal(err)
	}
	childRef := mustRef(t, reg.Host+"/open/child:1")
	seen, err := svc.Read(ctx, person, childRef, images.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p := seen.Report.Platforms[0].Parent; p == nil || p.Repository != "private/base" {
		t.Fatalf("a person sees the parent %+v, want private/base", p)
	}
	hidden, err := svc.Read(ctx, auth.Viewer{}, childRef, images.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p := hidden.Report.Platforms[0].Parent; p != nil {
		t.Errorf("an anonymous viewer sees the private parent %+v", p)
	}
	if hidden.Version == seen.Version {
		t.Errorf("both answers have Version %q", seen.Version)
	}
	if again, _ := svc.Read(ctx, person, childRef, images.ReadOptions{}); again.Report.Platforms[0].Parent == nil {
		t.Error("leaving the parent out for one viewer changed the kept answer")
	}
}

// TestHiddenLeaveRoom: a private repository ranked first in search, or
// changed last, does not crowd the visible one out of a short page.
func TestHiddenLeaveRoom(t *testing.T) {
	ctx := context.Background()
	reg := faultreg.Start(t)
	pushImage(t, reg.Host+"/open/app:1")
	pushImage(t, reg.Host+"/a-private/app:1") // ranked before open/app by name
	reg.Add(faultreg.Rule{Fault: faultreg.RequireBasicAuth, PathContains: "/a-private/", Username: "u", Password: "p"})
	svc := stack.New(t, stack.Options{Keychain: keychain{reg.Host: {Username: "u", Password: "p"}}}).Images
	person := auth.Viewer{Person: "dev@example.com"}
	for _, r := range []string{"/open/app:1", "/a-private/app:1"} { // the private one changed last
		if _, err := svc.Read(ctx, person, mustRef(t, reg.Host+r), images.ReadOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if found, err := svc.Search(ctx, person, "app", 1); err != nil || len(found) != 1 || found[0].Repo.Name != "a-private/app" {
		t.Fatalf("a person's search: %+v %v, want a-private/app first", found, err)
	}
	found, err := svc.Search(ctx, auth.Viewer{}, "app", 1)
	if err != nil || len(found) != 1 || found[0].Repo.Name != "open/app" {
		t.Errorf("anonymous search, one result: %+v %v, want open/app", found, err)
	}
	if recent, err := svc.RecentChanges(ctx, person, 1); err != nil || len(recent) != 1 || recent[0].Repository != "a-private/app" {
		t.Fatalf("a person's recent changes: %+v %v, want a-private/app first", recent, err)
	}
	recent, err := svc.RecentChanges(ctx, auth.Viewer{}, 1)
	if err != nil || len(recent) != 1 || recent[0].Repository != "open/app" {
		t.Errorf("anonymous recent changes, one row: %+v %v, want open/app's", recent, err)
	}
}

// TestPrivateBaseMoveToldOnlyOfPrivateChildren: base.updated names the
// base and its digests, and anyone may subscribe to a public image; so a
// rebuild of a private base makes outdated, for the fan-out, only the
// children that are private themselves, unless the policy shows private
// images to everyone. The report still says the public child is outdated
// to a person who may see its base.
func TestPrivateBaseMoveToldOnlyOfPrivateChildren(t *testing.T) {
	stack.EachEngine(t, func(t *testing.T, engine string) {
		for _, policy := range []images.Policy{images.PrivateToSignedIn, images.PrivateToEveryone} {
			t.Run(string(policy), func(t *testing.T) { privateBaseMove(t, engine, policy) })
		}
	})
}

func privateBaseMove(t *testing.T, engine string, policy images.Policy) {
	ctx := context.Background()
	reg := faultreg.Start(t)
	base, err := random.Image(256, 2)
	if err != nil {
		t.Fatal(err)
	}
	grow := func(img v1.Image) v1.Image {
		layer, err := random.Layer(256, types.DockerLayer)
		if err != nil {
			t.Fatal(err)
		}
		out, err := mutate.AppendLayers(img, layer)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	for ref, img := range map[string]v1.Image{
		reg.Host + "/private/base:1":  base,
		reg.Host + "/open/child:1":    grow(base),
		reg.Host + "/private/child:1": grow(base),
	} {
		if err := crane.Push(img, ref); err != nil {
			t.Fatal(err)
		}
	}
	reg.Add(faultreg.Rule{Fault: faultreg.RequireBasicAuth, PathContains: "/private/", Username: "u", Password: "p"})
	s := stack.New(t, stack.Options{Engine: engine, Keychain: keychain{reg.Host: {Username: "u", Password: "p"}}, Images: images.Options{PrivateImages: policy}})
	person := auth.Viewer{Person: "dev@example.com"}
	for _, r := range []string{"/private/base:1", "/open/child:1", "/private/child:1"} {
		if _, err := s.Images.Read(ctx, person, mustRef(t, reg.Host+r), images.ReadOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	log := &logReader{st: s.Store}
	log.take(t) // the first sightings

	rebuilt, err := random.Image(256, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := crane.Push(rebuilt, reg.Host+"/private/base:1", crane.WithAuth(&authn.Basic{Username: "u", Password: "p"})); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Images.Read(ctx, person, mustRef(t, reg.Host+"/private/base:1"), images.ReadOptions{Refresh: true}); err != nil {
		t.Fatal(err)
	}
	sets := log.take(t)
	if len(sets) != 1 {
		t.Fatalf("%d change sets after the rebuild, want 1", len(sets))
	}
	out, err := s.Images.OutdatedBy(ctx, sets[0])
	if err != nil {
		t.Fatal(err)
	}
	var told []string
	for _, o := range out {
		told = append(told, o.Child.Name)
	}
	slices.Sort(told)
	want := []string{"private/child"}
	if policy == images.PrivateToEveryone {
		want = []string{"open/child", "private/child"}
	}
	if !slices.Equal(told, want) {
		t.Errorf("outdated children told of: %v, want %v", told, want)
	}
	seen, err := s.Images.Read(ctx, person, mustRef(t, reg.Host+"/open/child:1"), images.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p := seen.Report.Platforms[0].Parent; p == nil || !p.Outdated {
		t.Errorf("the public child's parent, to a person: %+v, want outdated", p)
	}
}

// TestHiddenProvenanceBaseLeftOut: a public image whose provenance names a
// private base (never read by anyone before) has that base as its parent,
// by provenance, and among its materials, for a viewer who may see the
// base; to an anonymous viewer the parent is null and the material is not
// listed, while the materials that name nothing private (the frontend, a
// Git repository) stay, and the answer's Version differs.
func TestHiddenProvenanceBaseLeftOut(t *testing.T) {
	stack.EachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		reg := faultreg.Start(t)
		host := reg.Host
		plat := []supplyfix.Platform{{OS: "linux", Architecture: "amd64", Layers: 2}}
		base := supplyfix.Push(t, host+"/private/base:1", supplyfix.Options{Platforms: plat, SBOMPackages: 1})
		baseURI := "pkg:docker/" + host + "/private/base@1?platform=linux%2Famd64"
		frontend := "pkg:docker/docker/dockerfile@1.7"
		git := "https://github.com/acme/app.git#abc"
		supplyfix.Push(t, host+"/open/app:1", supplyfix.Options{SBOMPackages: 1, Platforms: []supplyfix.Platform{{
			OS: "linux", Architecture: "amd64", Layers: 1, Base: base.Images["linux/amd64"],
			Materials: []supplyfix.Material{
				{URI: frontend, Digest: "sha256:" + strings.Repeat("d", 64)},
				{URI: baseURI, Digest: base.Index},
				{URI: git, Digest: "sha1:" + strings.Repeat("a", 40)},
			},
		}}})
		reg.Add(faultreg.Rule{Fault: faultreg.RequireBasicAuth, PathContains: "/private/", Username: "u", Password: "p"})
		svc := stack.New(t, stack.Options{Engine: engine, Keychain: keychain{host: {Username: "u", Password: "p"}}}).Images
		app := mustRef(t, host+"/open/app:1")
		uris := func(a images.Answer) []string {
			var out []string
			if sc := a.Report.Platforms[0].SupplyChain; sc != nil && sc.Provenance != nil {
				for _, m := range sc.Provenance.Materials {
					out = append(out, m.URI)
				}
			}
			return out
		}

		person := auth.Viewer{Person: "dev@example.com"}
		seen, err := svc.Read(ctx, person, app, images.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p := seen.Report.Platforms[0].Parent; p == nil || p.Repository != "private/base" || p.Method != "provenance" ||
			p.Digest != base.Platforms["linux/amd64"] {
			t.Fatalf("a person sees the parent %+v, want private/base's %s by provenance", p, base.Platforms["linux/amd64"])
		}
		if got, want := uris(seen), []string{frontend, baseURI, git}; !slices.Equal(got, want) {
			t.Errorf("a person sees the materials %q, want %q", got, want)
		}

		hidden, err := svc.Read(ctx, auth.Viewer{}, app, images.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p := hidden.Report.Platforms[0].Parent; p != nil {
			t.Errorf("an anonymous viewer sees the private parent %+v", p)
		}
		if got, want := uris(hidden), []string{frontend, git}; !slices.Equal(got, want) {
			t.Errorf("an anonymous viewer sees the materials %q, want %q", got, want)
		}
		if hidden.Version == seen.Version {
			t.Errorf("both answers have Version %q", seen.Version)
		}
		if _, err := svc.Read(ctx, auth.Viewer{}, mustRef(t, host+"/private/base:1"), images.ReadOptions{}); !errors.Is(err, analysis.ErrNotFound) {
			t.Errorf("anonymous read of the base: %v, want not found", err)
		}
		again, err := svc.Read(ctx, person, app, images.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := uris(again); len(got) != 3 || again.Report.Platforms[0].Parent == nil {
			t.Errorf("leaving the base out for one viewer changed the kept answer: materials %q, parent %+v", got, again.Report.Platforms[0].Parent)
		}
	})
}
