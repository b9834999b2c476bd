package e2e_test

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagebadger/imagebadger/internal/testing/testenv"
)

// shownBadge is a badge as a browser would show it: status, headers and the
// two texts read back from the SVG.
type shownBadge struct {
	status      int
	header      http.Header
	left, right string
}

func fetchBadge(t *testing.T, url string) shownBadge {
	t.Helper()
	resp, err := client(t).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	b := shownBadge{status: resp.StatusCode, header: resp.Header}
	if ct := resp.Header.Get("Content-Type"); ct != "image/svg+xml" {
		t.Fatalf("GET %s: %s, Content-Type %q\n%s", url, resp.Status, ct, body)
	}
	var doc struct {
		Groups []struct {
			Texts []string `xml:"text"`
		} `xml:"g"`
	}
	if err := xml.Unmarshal(body, &doc); err != nil {
		t.Fatalf("GET %s: not XML: %v\n%s", url, err, body)
	}
	if len(doc.Groups) != 2 || len(doc.Groups[1].Texts) != 4 {
		t.Fatalf("GET %s: unexpected SVG\n%s", url, body)
	}
	b.left, b.right = doc.Groups[1].Texts[0], doc.Groups[1].Texts[2]
	return b
}

// decimalSize formats bytes as MicroBadger did, written out independently of
// the service's own function.
func decimalSize(n int64) string {
	switch {
	case n < 1000:
		return fmt.Sprintf("%d B", n)
	case n < 999_950:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	default:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	}
}

func withLabels(t *testing.T, img v1.Image, plat v1.Platform, labels map[string]string) v1.Image {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = plat.OS, plat.Architecture, plat.Variant
	cf.Config.Labels = labels
	out, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func randomImage(t *testing.T, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(2048, layers)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func writeImage(t *testing.T, ref string, img v1.Image, alsoTags ...string) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	for _, tag := range alsoTags {
		if err := remote.Tag(r.Context().Tag(tag), img); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBadgesAgainstDistribution serves badges for images in the real
// distribution registry and checks every text against what crane reads from
// the same registry: labels from `crane config`, sizes and layers from
// `crane manifest`, and the parent's move after a rebuild of the base.
func TestBadgesAgainstDistribution(t *testing.T) {
	reg := testenv.Distribution(t)
	amd64 := v1.Platform{OS: "linux", Architecture: "amd64"}

	runtime := withLabels(t, randomImage(t, 2), amd64, nil)
	writeImage(t, reg+"/acme/runtime:3.0", runtime, "3")
	layer, err := random.Layer(4096, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	app, err := mutate.AppendLayers(runtime, layer)
	if err != nil {
		t.Fatal(err)
	}
	app = withLabels(t, app, amd64, map[string]string{
		"org.opencontainers.image.version":  "2.3.1",
		"org.opencontainers.image.revision": "0f3c2a9e1b7d4c5a6f8e9d0c1b2a3f4e5d6c7b8a",
		"org.opencontainers.image.licenses": "Apache-2.0 OR MIT",
	})
	writeImage(t, reg+"/acme/app:2.3.1", app, "2.3")
	appRef := reg + "/acme/app:2.3"

	amd := withLabels(t, randomImage(t, 1), amd64, map[string]string{"org.opencontainers.image.version": "5.0-amd64"})
	arm := withLabels(t, randomImage(t, 3), v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"},
		map[string]string{"org.opencontainers.image.version": "5.0-arm64"})
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &amd64}},
	)
	multiRef := reg + "/acme/multi:5"
	r, err := name.ParseReference(multiRef)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}

	srv := testenv.Serve(t, testenv.Binary(t))
	badgeURL := func(kind, ref string) string { return srv + "/badges/" + kind + "/" + ref + ".svg" }

	// The base is known first (a page or badge asked for it), so the app's
	// parent can be found by its layers.
	if b := fetchBadge(t, badgeURL("image", reg+"/acme/runtime:3.0")); b.status != 200 || b.right != "2 layers" {
		t.Fatalf("runtime image badge: %d %q", b.status, b.right)
	}

	// What crane says of the app.
	var cfg struct {
		Config struct {
			Labels map[string]string `json:"Labels"`
		} `json:"config"`
	}
	if err := json.Unmarshal(testenv.Crane(t, "config", appRef), &cfg); err != nil {
		t.Fatal(err)
	}
	var man struct {
		Layers []struct {
			Size int64 `json:"size"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(testenv.Crane(t, "manifest", appRef), &man); err != nil {
		t.Fatal(err)
	}
	var size int64
	for _, l := range man.Layers {
		size += l.Size
	}
	labels := cfg.Config.Labels
	for _, tc := range []struct{ kind, left, right string }{
		{"image", decimalSize(size), fmt.Sprintf("%d layers", len(man.Layers))},
		{"version", "version", labels["org.opencontainers.image.version"]},
		{"commit", "commit", labels["org.opencontainers.image.revision"][:7]},
		{"license", "license", labels["org.opencontainers.image.licenses"]},
		{"base", "base", "acme/runtime:3.0"},
	} {
		b := fetchBadge(t, badgeURL(tc.kind, appRef))
		if b.status != 200 || b.left != tc.left || b.right != tc.right {
			t.Errorf("%s badge: %d %q | %q, want 200 %q | %q", tc.kind, b.status, b.left, b.right, tc.left, tc.right)
		}
		if b.header.Get("ETag") == "" || !strings.Contains(b.header.Get("Cache-Control"), "max-age=") ||
			b.header.Get("X-Content-Type-Options") != "nosniff" ||
			b.header.Get("Content-Security-Policy") != "default-src 'none'; style-src 'unsafe-inline'" {
			t.Errorf("%s badge headers: %v", tc.kind, b.header)
		}
	}

	// A multi-platform image: linux/amd64 unless a platform is asked for.
	for _, tc := range []struct{ query, want string }{
		{"", "5.0-amd64"},
		{"?platform=linux/arm64/v8", "5.0-arm64"},
	} {
		if b := fetchBadge(t, badgeURL("version", multiRef)+tc.query); b.status != 200 || b.right != tc.want {
			t.Errorf("multi version%s: %d %q, want %q", tc.query, b.status, b.right, tc.want)
		}
	}
	if b := fetchBadge(t, badgeURL("image", multiRef)+"?platform=linux/arm64/v8"); b.right != "3 layers" {
		t.Errorf("multi arm64 image badge says %q, want 3 layers", b.right)
	}

	// An image the registry does not have: a grey badge, status 200.
	if b := fetchBadge(t, badgeURL("version", reg+"/acme/missing:1")); b.status != 200 || b.right != "not found" {
		t.Errorf("missing image: %d %q", b.status, b.right)
	}

	// Rebuild the base: once the service has seen its tag move, the report
	// says the app is outdated, and the very next badge request says so too
	// (no cache keeps the old answer for a while).
	writeImage(t, reg+"/acme/runtime:3.0", withLabels(t, randomImage(t, 2), amd64, nil))
	resp, err := client(t).Post(srv+"/api/v1/images/"+reg+"/acme/runtime:3.0/refresh", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("refresh of the base: %s", resp.Status)
	}
	var rep struct {
		Platforms []struct {
			Parent *struct {
				Outdated bool `json:"outdated"`
			} `json:"parent"`
		} `json:"platforms"`
	}
	getJSON(t, srv+"/api/v1/images/"+appRef, &rep)
	if len(rep.Platforms) != 1 || rep.Platforms[0].Parent == nil || !rep.Platforms[0].Parent.Outdated {
		t.Fatalf("after the base's refresh the report says %+v, want the parent outdated", rep)
	}
	if b := fetchBadge(t, badgeURL("base", appRef)); b.right != "acme/runtime:3.0 (outdated)" {
		t.Errorf("the badge request right after the report said outdated says %q", b.right)
	}
}
