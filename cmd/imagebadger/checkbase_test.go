package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
)

// baseCheckAnswer is check-base's JSON, decoded on its own rather than
// through the command's types.
type baseCheckAnswer struct {
	Image     string  `json:"image"`
	Digest    string  `json:"digest"`
	Base      *string `json:"base"`
	Status    string  `json:"status"`
	Platforms []struct {
		Platform string  `json:"platform"`
		Base     *string `json:"base"`
		Source   string  `json:"source"`
		BuiltOn  *string `json:"builtOn"`
		Current  *string `json:"current"`
		Moved    bool    `json:"moved"`
		Status   string  `json:"status"`
	} `json:"platforms"`
}

var (
	amd64 = v1.Platform{OS: "linux", Architecture: "amd64"}
	arm64 = v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
)

// image builds n random layers on parent (nil: on nothing) for platform.
func image(t *testing.T, parent v1.Image, n int, platform v1.Platform) v1.Image {
	t.Helper()
	if parent == nil {
		parent = mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	}
	for range n {
		l, err := random.Layer(300, types.OCILayer)
		if err != nil {
			t.Fatal(err)
		}
		var err2 error
		if parent, err2 = mutate.AppendLayers(parent, l); err2 != nil {
			t.Fatal(err2)
		}
	}
	cf, err := parent.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = platform.OS, platform.Architecture, platform.Variant
	img, err := mutate.ConfigFile(parent, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// relabelled is img with a label added: another digest, the same layers.
func relabelled(t *testing.T, img v1.Image) v1.Image {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config.Labels = map[string]string{"rebuilt": "same layers"}
	out, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// index puts platform images into an OCI index, each descriptor with its
// annotations.
func index(t *testing.T, annotations map[string]string, imgs map[*v1.Platform]v1.Image, descriptorAnnotations map[string]string) v1.ImageIndex {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for p, img := range imgs {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: p, Annotations: descriptorAnnotations}})
	}
	if annotations != nil {
		idx = mutate.Annotations(idx, annotations).(v1.ImageIndex)
	}
	return idx
}

func annotated(img v1.Image, base, digest string) v1.Image {
	return mutate.Annotations(img, map[string]string{
		"org.opencontainers.image.base.name":   base,
		"org.opencontainers.image.base.digest": digest,
	}).(v1.Image)
}

func digestOf(t *testing.T, d interface{ Digest() (v1.Hash, error) }) string {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

func put(t *testing.T, ref string, content any) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	switch c := content.(type) {
	case v1.Image:
		err = remote.Write(r, c, remote.WithAuth(authn.Anonymous))
	case v1.ImageIndex:
		err = remote.WriteIndex(r, c, remote.WithAuth(authn.Anonymous))
	}
	if err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

// checkBaseRun runs check-base --json with args and returns its answer and
// exit status.
func checkBaseRun(t *testing.T, args ...string) (baseCheckAnswer, int, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), append([]string{"check-base", "--json", "--allow-private-registries"}, args...), noEnv, &out, &errOut)
	code := 0
	msg := ""
	if err != nil {
		code, msg = exitCode(err), message(err)
	}
	var a baseCheckAnswer
	if out.Len() > 0 {
		if err := json.Unmarshal(out.Bytes(), &a); err != nil {
			t.Fatalf("check-base %v: %v\n%s", args, err, out.String())
		}
	}
	return a, code, msg
}

func str(p *string) string {
	if p == nil {
		return "<null>"
	}
	return *p
}

// TestCheckBaseSinglePlatform: an image naming its base in annotations is
// current while the base's tag points at the image it was built on, and
// while the tag moves to an image with the same layers; it has moved (exit
// 1, from the annotation's digest to the tag's new one) once the tag points
// at a base with other layers. Without an annotation the base is unknown
// (exit 2) unless --base names it; then the layer prefix alone decides.
// Every digest expected is the pushed image's own.
func TestCheckBaseSinglePlatform(t *testing.T) {
	reg := faultreg.Start(t).Host
	base := image(t, nil, 2, amd64)
	put(t, reg+"/acme/base:1", base)
	built := digestOf(t, base)
	child := image(t, base, 1, amd64)
	put(t, reg+"/acme/app:1", annotated(child, reg+"/acme/base:1", built))
	put(t, reg+"/acme/plain:1", child)

	a, code, msg := checkBaseRun(t, reg+"/acme/app:1")
	if code != 0 || a.Status != "current" || str(a.Base) != reg+"/acme/base:1" || len(a.Platforms) != 1 {
		t.Fatalf("unchanged base: exit %d (%s), %+v", code, msg, a)
	}
	if p := a.Platforms[0]; p.Platform != "linux/amd64" || str(p.BuiltOn) != built || str(p.Current) != built || p.Moved || p.Source != "annotation" {
		t.Errorf("unchanged base: %+v, want built on and now %s", p, built)
	}

	// The same layers under another digest: the tag moved, the image
	// still contains the base as it is.
	same := relabelled(t, base)
	put(t, reg+"/acme/base:1", same)
	a, code, msg = checkBaseRun(t, reg+"/acme/app:1")
	if code != 0 || a.Status != "current" || str(a.Platforms[0].Current) != digestOf(t, same) || str(a.Platforms[0].BuiltOn) != built {
		t.Errorf("base relabelled: exit %d (%s), %+v", code, msg, a)
	}

	rebuilt := image(t, nil, 2, amd64)
	put(t, reg+"/acme/base:1", rebuilt)
	now := digestOf(t, rebuilt)
	a, code, msg = checkBaseRun(t, reg+"/acme/app:1")
	if code != 1 || a.Status != "moved" || !a.Platforms[0].Moved || a.Platforms[0].Status != "moved" || str(a.Platforms[0].BuiltOn) != built || str(a.Platforms[0].Current) != now {
		t.Errorf("base rebuilt: exit %d, %+v; want 1, moved from %s to %s", code, a, built, now)
	}
	if !strings.Contains(msg, built) || !strings.Contains(msg, now) || !strings.Contains(msg, reg+"/acme/base:1") {
		t.Errorf("base rebuilt: the message %q does not say from where to where", msg)
	}

	a, code, msg = checkBaseRun(t, reg+"/acme/plain:1")
	if code != 2 || a.Status != "unknown" || a.Base != nil || !strings.Contains(msg, "--base") {
		t.Errorf("no annotation, no --base: exit %d (%s), %+v; want 2, unknown, a message naming --base", code, msg, a)
	}
	put(t, reg+"/acme/base:1", base)
	a, code, msg = checkBaseRun(t, "--base", reg+"/acme/base:1", reg+"/acme/plain:1")
	if code != 0 || a.Status != "current" || a.Platforms[0].BuiltOn != nil || a.Platforms[0].Source != "flag" || str(a.Platforms[0].Current) != built {
		t.Errorf("--base, the base as built on: exit %d (%s), %+v", code, msg, a)
	}
	put(t, reg+"/acme/base:1", rebuilt)
	a, code, msg = checkBaseRun(t, "--base", reg+"/acme/base:1", reg+"/acme/plain:1")
	if code != 1 || a.Status != "moved" || str(a.Platforms[0].Current) != now || !strings.Contains(msg, now) {
		t.Errorf("--base, the base rebuilt: exit %d (%s), %+v", code, msg, a)
	}
	// A base the registry lacks is an error (exit 2) that says which.
	_, code, msg = checkBaseRun(t, "--base", reg+"/acme/base:nope", reg+"/acme/plain:1")
	if code != 2 || !strings.HasPrefix(msg, "the base "+reg+"/acme/base:nope: ") {
		t.Errorf("--base a missing tag: exit %d, %q", code, msg)
	}
}

// TestCheckBaseMultiPlatform: every platform of an index is checked against
// the base's image for the same platform, with the base named on the index,
// or on the index's descriptors; a rebuild of one platform of the base
// moves that platform alone, and --platform checks one.
func TestCheckBaseMultiPlatform(t *testing.T) {
	reg := faultreg.Start(t).Host
	baseAmd, baseArm := image(t, nil, 2, amd64), image(t, nil, 2, arm64)
	baseIdx := index(t, nil, map[*v1.Platform]v1.Image{&amd64: baseAmd, &arm64: baseArm}, nil)
	put(t, reg+"/acme/base:3", baseIdx)
	built := digestOf(t, baseIdx)
	names := map[string]string{"org.opencontainers.image.base.name": reg + "/acme/base:3", "org.opencontainers.image.base.digest": built}
	children := map[*v1.Platform]v1.Image{&amd64: image(t, baseAmd, 1, amd64), &arm64: image(t, baseArm, 1, arm64)}
	put(t, reg+"/acme/app:on-index", index(t, names, children, nil))
	put(t, reg+"/acme/app:on-descriptors", index(t, nil, children, names))

	for _, tag := range []string{"on-index", "on-descriptors"} {
		a, code, msg := checkBaseRun(t, reg+"/acme/app:"+tag)
		if code != 0 || a.Status != "current" || len(a.Platforms) != 2 {
			t.Errorf("%s: exit %d (%s), %+v; want both platforms current", tag, code, msg, a)
		}
	}

	// arm64 rebuilt, amd64 kept: only arm64 has moved.
	rebuiltArm := image(t, nil, 2, arm64)
	newIdx := index(t, nil, map[*v1.Platform]v1.Image{&amd64: baseAmd, &arm64: rebuiltArm}, nil)
	put(t, reg+"/acme/base:3", newIdx)
	now := digestOf(t, newIdx)
	for _, tag := range []string{"on-index", "on-descriptors"} {
		a, code, _ := checkBaseRun(t, reg+"/acme/app:"+tag)
		status := map[string]string{}
		for _, p := range a.Platforms {
			status[p.Platform] = p.Status
			if str(p.BuiltOn) != built || str(p.Current) != now {
				t.Errorf("%s %s: built on %s, now %s; want %s and %s", tag, p.Platform, str(p.BuiltOn), str(p.Current), built, now)
			}
		}
		if code != 1 || a.Status != "moved" || status["linux/amd64"] != "current" || status["linux/arm64/v8"] != "moved" {
			t.Errorf("%s after the arm64 rebuild: exit %d, %s, per platform %v", tag, code, a.Status, status)
		}
	}
	a, code, msg := checkBaseRun(t, "--platform", "linux/amd64", reg+"/acme/app:on-index")
	if code != 0 || len(a.Platforms) != 1 || a.Platforms[0].Platform != "linux/amd64" {
		t.Errorf("--platform linux/amd64: exit %d (%s), %+v", code, msg, a)
	}
	if _, code, msg := checkBaseRun(t, "--platform", "linux/s390x", reg+"/acme/app:on-index"); code != 2 || !strings.Contains(msg, "linux/s390x") {
		t.Errorf("--platform the image lacks: exit %d, %q", code, msg)
	}
}

// TestCheckBaseHelp: --help lists check-base, whose own --help lists its
// flags; a missing REFERENCE is a usage error (exit 2).
func TestCheckBaseHelp(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, noEnv, &out, &out); err != nil || !strings.Contains(out.String(), "  check-base REFERENCE") {
		t.Errorf("--help: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"check-base", "--help"}, noEnv, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"  --base ", "  --platform ", "  --json\n", "  --allow-private-registries\n"} {
		if !strings.Contains(out.String(), f) {
			t.Errorf("check-base --help lacks %q:\n%s", f, out.String())
		}
	}
	if err := run(context.Background(), []string{"check-base"}, noEnv, &out, &out); exitCode(err) != 2 {
		t.Errorf("check-base without a reference: %v (exit %d)", err, exitCode(err))
	}
}
