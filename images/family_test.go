package images_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/crane"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/store"
)

type env struct {
	t     *testing.T
	reg   *faultreg.Registry
	host  string
	svc   *images.Service
	store *store.Store
	log   *logReader
}

// logReader follows the change log from where it last read, as notify's
// fan-out does, so a test sees what a read or a listing recorded.
type logReader struct {
	st  *store.Store
	pos int64
}

// take returns the change sets logged since the last take.
func (r *logReader) take(t *testing.T) [][]store.TagChange {
	t.Helper()
	var out [][]store.TagChange
	for {
		set, err := r.st.NextChangeSet(context.Background(), r.pos)
		if err != nil {
			t.Fatal(err)
		}
		if len(set) == 0 {
			return out
		}
		out = append(out, set)
		r.pos = set[len(set)-1].ID
	}
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t}
	e.reg = faultreg.Start(t)
	e.host = e.reg.Host
	e.store = stack.OpenStore(t, stack.SQLite)
	e.log = &logReader{st: e.store}
	e.svc = e.newService()
	return e
}

// newService is the service on e's store, as a restart would start it.
func (e *env) newService() *images.Service {
	svc := stack.New(e.t, stack.Options{Store: e.store}).Images
	if _, err := svc.LoadIndex(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	return svc
}

// outdatedBy is what the service says the change set makes outdated.
func (e *env) outdatedBy(set []store.TagChange) []images.OutdatedImage {
	e.t.Helper()
	out, err := e.svc.OutdatedBy(context.Background(), set)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *env) push(ref string, img v1.Image) string {
	e.t.Helper()
	if err := crane.Push(img, e.host+"/"+ref); err != nil {
		e.t.Fatal(err)
	}
	return must(img.Digest()).String()
}

func (e *env) pushIndex(ref string, idx v1.ImageIndex) string {
	e.t.Helper()
	r := must(analysisRef(e.host + "/" + ref))
	if err := writeIndex(r, idx); err != nil {
		e.t.Fatal(err)
	}
	return must(idx.Digest()).String()
}

// inspect asks the service for ref, re-resolving the tag.
func (e *env) inspect(ref string) *analysis.Report {
	e.t.Helper()
	r, err := analysis.ParseReference(e.host + "/" + ref)
	if err != nil {
		e.t.Fatal(err)
	}
	a, err := e.svc.Read(context.Background(), auth.Viewer{}, r, images.ReadOptions{Refresh: true})
	if err != nil {
		e.t.Fatalf("inspect %s: %v", ref, err)
	}
	return a.Report
}

// layered returns an image made of base's layers plus n new random ones, for
// the given platform, as a Dockerfile FROM base would.
func layered(t *testing.T, base v1.Image, n int, platform string) v1.Image {
	t.Helper()
	if base == nil {
		base = empty.Image
	}
	var ls []v1.Layer
	for i := 0; i < n; i++ {
		ls = append(ls, must(random.Layer(300, types.DockerLayer)))
	}
	img := must(mutate.AppendLayers(base, ls...))
	cf := must(img.ConfigFile()).DeepCopy()
	parts := strings.Split(platform, "/")
	cf.OS, cf.Architecture = parts[0], parts[1]
	cf.Variant = ""
	if len(parts) == 3 {
		cf.Variant = parts[2]
	}
	return must(mutate.ConfigFile(img, cf))
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestFamilyParents(t *testing.T) {
	e := newEnv(t)
	base := layered(t, nil, 2, "linux/amd64")
	runtime := layered(t, base, 1, "linux/amd64")
	app := layered(t, runtime, 1, "linux/amd64")
	baseDigest := e.push("acme/base:1", base)
	e.push("acme/base:1.0", base)
	runtimeDigest := e.push("acme/runtime:3", runtime)
	e.push("acme/app:2", app)
	lonely := layered(t, nil, 2, "linux/amd64")
	e.push("acme/lonely:1", lonely)

	e.inspect("acme/base:1")
	e.inspect("acme/base:1.0")
	e.inspect("acme/runtime:3")
	appRep := e.inspect("acme/app:2")

	want := &analysis.Parent{Registry: e.host, Repository: "acme/runtime", Tags: []string{"3"}, Digest: runtimeDigest, LayerCount: 3, MatchedLayers: 3, Method: "layers"}
	if diff := cmp.Diff(want, appRep.Platforms[0].Parent); diff != "" {
		t.Errorf("app's parent (-want +got):\n%s", diff)
	}
	rt := e.inspect("acme/runtime:3")
	want = &analysis.Parent{Registry: e.host, Repository: "acme/base", Tags: []string{"1", "1.0"}, Digest: baseDigest, LayerCount: 2, MatchedLayers: 2, Method: "layers"}
	if diff := cmp.Diff(want, rt.Platforms[0].Parent); diff != "" {
		t.Errorf("runtime's parent (-want +got):\n%s", diff)
	}
	if p := e.inspect("acme/base:1").Platforms[0].Parent; p != nil {
		t.Errorf("base has parent %+v; its other tag is the same repository, never a parent", p)
	}
	if p := e.inspect("acme/lonely:1").Platforms[0].Parent; p != nil {
		t.Errorf("an image with no known parent got %+v", p)
	}

	// A new process rebuilds the index from the store and finds the same parent.
	e.svc = e.newService()
	if got := e.inspect("acme/app:2").Platforms[0].Parent; got == nil || got.Repository != "acme/runtime" {
		t.Errorf("after restart, app's parent = %+v", got)
	}
}

func TestRebuiltBaseMakesChildOutdated(t *testing.T) {
	e := newEnv(t)
	base := layered(t, nil, 2, "linux/amd64")
	child := layered(t, base, 1, "linux/amd64")
	oldBase := e.push("acme/base:1", base)
	e.push("acme/child:1", child)
	e.inspect("acme/base:1")
	if p := e.inspect("acme/child:1").Platforms[0].Parent; p == nil || p.Outdated {
		t.Fatalf("before the rebuild: parent %+v", p)
	}
	e.log.take(t)

	// Re-pushed with only a new label: the tag moves, the layers do not, and
	// the child is not outdated (nobody needs to rebuild).
	cf := must(base.ConfigFile()).DeepCopy()
	cf.Config.Labels = map[string]string{"org.opencontainers.image.revision": "relabelled"}
	relabelled := e.push("acme/base:1", must(mutate.ConfigFile(base, cf)))
	e.inspect("acme/base:1")
	if sets := e.log.take(t); len(sets) != 1 || len(sets[0]) != 1 || len(e.outdatedBy(sets[0])) != 0 {
		t.Fatalf("relabel: changes = %+v, want one move outdating nothing", sets)
	}
	if p := e.inspect("acme/child:1").Platforms[0].Parent; p == nil || p.Outdated {
		t.Errorf("after a relabel: parent %+v, want current", p)
	}

	rebuilt := layered(t, nil, 2, "linux/amd64")
	newBase := e.push("acme/base:1", rebuilt)
	e.inspect("acme/base:1")
	sets := e.log.take(t)
	if len(sets) != 1 || len(sets[0]) != 1 || sets[0][0].Previous != relabelled || sets[0][0].Digest != newBase || sets[0][0].Kind != store.ChangeMoved {
		t.Fatalf("changes = %+v", sets)
	}
	wantOutdated := []images.OutdatedImage{{
		Child: must(analysis.ParseRepository(e.host + "/acme/child")), Digest: must(child.Digest()).String(), Tags: []string{"1"},
		Platforms: []string{"linux/amd64"}, Base: must(analysis.ParseRepository(e.host + "/acme/base")), BaseDigest: newBase,
		BaseTags: []string{"1"}, BuiltOn: relabelled,
	}}
	if diff := cmp.Diff(wantOutdated, e.outdatedBy(sets[0])); diff != "" {
		t.Errorf("outdated children (-want +got):\n%s", diff)
	}
	p := e.inspect("acme/child:1").Platforms[0].Parent
	want := &analysis.Parent{Registry: e.host, Repository: "acme/base", Tags: []string{"1"}, Digest: oldBase, LayerCount: 2, MatchedLayers: 2,
		Method: "layers", Outdated: true, CurrentDigest: newBase, MovedTags: []string{"1"}}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("child's parent after the rebuild (-want +got):\n%s", diff)
	}
}

func TestMultiPlatformBaseRebuiltForArmOnly(t *testing.T) {
	e := newEnv(t)
	amd := layered(t, nil, 2, "linux/amd64")
	arm := layered(t, nil, 2, "linux/arm64/v8")
	index := func(amd, arm v1.Image) v1.ImageIndex {
		return mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
			mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
			mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}})
	}
	e.pushIndex("acme/base:1", index(amd, arm))
	e.push("acme/amdchild:1", layered(t, amd, 1, "linux/amd64"))
	e.push("acme/armchild:1", layered(t, arm, 1, "linux/arm64/v8"))
	e.inspect("acme/base:1")
	e.inspect("acme/amdchild:1")
	e.inspect("acme/armchild:1")
	e.log.take(t)

	arm2 := layered(t, nil, 2, "linux/arm64/v8")
	newIndex := e.pushIndex("acme/base:1", index(amd, arm2))
	e.inspect("acme/base:1")
	sets := e.log.take(t)
	if len(sets) != 1 {
		t.Fatalf("changes = %+v, want one move", sets)
	}
	if outdated := e.outdatedBy(sets[0]); len(outdated) != 1 || outdated[0].Child.Name != "acme/armchild" ||
		!cmp.Equal(outdated[0].Platforms, []string{"linux/arm64/v8"}) {
		t.Fatalf("outdated = %+v, want only acme/armchild", outdated)
	}
	if p := e.inspect("acme/amdchild:1").Platforms[0].Parent; p == nil || p.Outdated {
		t.Errorf("amd64 child: parent %+v, want current (its base layers did not change)", p)
	}
	p := e.inspect("acme/armchild:1").Platforms[0].Parent
	if p == nil || !p.Outdated || p.CurrentDigest != newIndex {
		t.Errorf("arm64 child: parent %+v, want outdated with currentDigest %s", p, newIndex)
	}
}

func TestIdenticalImagesInTwoRepositories(t *testing.T) {
	e := newEnv(t)
	base := layered(t, nil, 2, "linux/amd64")
	e.push("acme/mirror:1", base)
	e.push("library/alpine:3", base)
	e.push("other/copy:1", base)
	e.push("other/copy:1.0", base)
	e.push("other/copy:latest", base)
	e.push("acme/app:1", layered(t, base, 1, "linux/amd64"))
	for _, r := range []string{"acme/mirror:1", "library/alpine:3", "other/copy:1", "other/copy:1.0", "other/copy:latest"} {
		e.inspect(r)
	}
	if p := e.inspect("acme/app:1").Platforms[0].Parent; p == nil || p.Repository != "library/alpine" {
		t.Errorf("parent = %+v, want the official library/alpine among identical images", p)
	}
	// Between non-official repositories, more tags win.
	if p := e.inspect("acme/mirror:1").Platforms[0].Parent; p == nil || p.Repository != "library/alpine" || p.LayerCount != 2 {
		t.Errorf("mirror's parent = %+v, want library/alpine (equal layer lists count)", p)
	}
	if p := e.inspect("library/alpine:3").Platforms[0].Parent; p == nil || p.Repository != "other/copy" {
		t.Errorf("alpine's parent = %+v, want other/copy (3 tags beat acme/mirror's 1)", p)
	}
}

func TestAnnotationNamesTheParent(t *testing.T) {
	e := newEnv(t)
	base := layered(t, nil, 2, "linux/amd64")
	baseDigest := e.push("acme/base:1", base)
	e.inspect("acme/base:1")
	// Layers say nothing (no shared prefix); the annotations name the base.
	child := layered(t, nil, 3, "linux/amd64")
	child = mutate.Annotations(child, map[string]string{
		"org.opencontainers.image.base.name":   e.host + "/acme/base:1",
		"org.opencontainers.image.base.digest": baseDigest,
	}).(v1.Image)
	e.push("acme/child:1", child)
	p := e.inspect("acme/child:1").Platforms[0].Parent
	// The child's layers share nothing with the base: 0 matched.
	want := &analysis.Parent{Registry: e.host, Repository: "acme/base", Tags: []string{"1"}, Digest: baseDigest, LayerCount: 2, MatchedLayers: 0, Method: "annotation"}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("parent (-want +got):\n%s", diff)
	}
	newBase := e.push("acme/base:1", layered(t, nil, 2, "linux/amd64"))
	e.inspect("acme/base:1")
	p = e.inspect("acme/child:1").Platforms[0].Parent
	if p == nil || !p.Outdated || p.CurrentDigest != newBase {
		t.Errorf("after the base moved: parent %+v, want outdated at %s", p, newBase)
	}
}

// A read of a tag never seen fetches its manifest with one GET, which gives
// the digest too; a tag seen before is checked with a HEAD, which costs a
// registry no pull, and its manifest is not fetched again unless it moved.
func TestFirstReadOfATagFetchesOnce(t *testing.T) {
	e := newEnv(t)
	img := layered(t, nil, 2, "linux/amd64")
	digest := e.push("acme/app:1", img)
	e.reg.Requests()
	manifests := func() []string {
		var out []string
		for _, r := range e.reg.Requests("/manifests/") {
			out = append(out, strings.Fields(r)[0]+" "+strings.Fields(r)[1])
		}
		return out
	}
	if got := e.inspect("acme/app:1").Digest; got != digest {
		t.Fatalf("digest %s, want %s", got, digest)
	}
	if got, want := manifests(), []string{"GET /v2/acme/app/manifests/1"}; !cmp.Equal(got, want) {
		t.Errorf("first read asked %v, want %v", got, want)
	}
	e.inspect("acme/app:1")
	if got, want := manifests(), []string{"HEAD /v2/acme/app/manifests/1"}; !cmp.Equal(got, want) {
		t.Errorf("second read asked %v, want %v", got, want)
	}
}

// TestOutdatedByJudgesEachSetAsItStood: the fan-out may read a change set
// long after it was recorded. Two tags of a base move to a rebuild, each in
// a set of its own, before either is judged: the first set makes the child
// outdated (as of right after it, one tag still pointed at the old base,
// but the other no longer did), the second makes nothing outdated any more,
// however the store stands when they are judged.
func TestOutdatedByJudgesEachSetAsItStood(t *testing.T) {
	e := newEnv(t)
	base := layered(t, nil, 2, "linux/amd64")
	child := layered(t, base, 1, "linux/amd64")
	oldBase := e.push("acme/base:1", base)
	e.push("acme/base:latest", base)
	e.push("acme/child:1", child)
	e.inspect("acme/base:1")
	e.inspect("acme/base:latest")
	e.inspect("acme/child:1")
	e.log.take(t)

	rebuilt := layered(t, nil, 2, "linux/amd64")
	newBase := e.push("acme/base:1", rebuilt)
	e.push("acme/base:latest", rebuilt)
	e.inspect("acme/base:1")
	e.inspect("acme/base:latest")
	sets := e.log.take(t)
	if len(sets) != 2 || sets[0][0].Tag != "1" || sets[1][0].Tag != "latest" {
		t.Fatalf("change sets %+v, want tag 1's move, then latest's", sets)
	}
	want := []images.OutdatedImage{{
		Child: must(analysis.ParseRepository(e.host + "/acme/child")), Digest: must(child.Digest()).String(), Tags: []string{"1"},
		Platforms: []string{"linux/amd64"}, Base: must(analysis.ParseRepository(e.host + "/acme/base")), BaseDigest: newBase,
		BaseTags: []string{"1"}, BuiltOn: oldBase,
	}}
	if diff := cmp.Diff(want, e.outdatedBy(sets[0])); diff != "" {
		t.Errorf("the first set's outdated images (-want +got):\n%s", diff)
	}
	if got := e.outdatedBy(sets[1]); len(got) != 0 {
		t.Errorf("the second set makes %+v outdated, want nothing new", got)
	}
}
