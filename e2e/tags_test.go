package e2e_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagebadger/imagebadger/internal/testing/testenv"
)

type tagList struct {
	Registry   string `json:"registry"`
	Repository string `json:"repository"`
	TagCount   int    `json:"tagCount"`
	Groups     []struct {
		Digest    string   `json:"digest"`
		Tags      []string `json:"tags"`
		Platforms []string `json:"platforms"`
	} `json:"groups"`
}

// on returns base plus n new layers, as FROM base then n RUN lines would.
func on(t *testing.T, base v1.Image, n int) v1.Image {
	t.Helper()
	var ls []v1.Layer
	for i := 0; i < n; i++ {
		ls = append(ls, must(random.Layer(1000, types.DockerLayer)))
	}
	img := must(mutate.AppendLayers(base, ls...))
	cf := must(img.ConfigFile()).DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	return must(mutate.ConfigFile(img, cf))
}

func tag(t *testing.T, ref string, img v1.Image) {
	t.Helper()
	if err := remote.Write(must(name.ParseReference(ref)), img); err != nil {
		t.Fatal(err)
	}
}

func diffIDs(t *testing.T, ref string) []string {
	t.Helper()
	var c craneConfig
	if err := json.Unmarshal(testenv.Crane(t, "config", ref), &c); err != nil {
		t.Fatal(err)
	}
	return c.RootFS.DiffIDs
}

func TestTagsAndParentsAgainstDistribution(t *testing.T) {
	reg := testenv.Distribution(t)
	empty := must(random.Image(0, 0))
	base := on(t, empty, 2)
	old := on(t, empty, 2)
	runtime := on(t, base, 1)
	app := on(t, runtime, 2)
	for _, tg := range []string{"1", "1.0", "latest"} {
		tag(t, reg+"/acme/base:"+tg, base)
	}
	tag(t, reg+"/acme/base:0.9", old)
	tag(t, reg+"/acme/runtime:3", runtime)
	tag(t, reg+"/acme/app:2", app)

	// Watching acme/base and acme/runtime lists them at start-up, so the
	// app's parents are known before anyone asks for the app.
	srv := testenv.Serve(t, testenv.Binary(t), "--watch", reg+"/acme/base,"+reg+"/acme/runtime")
	var list tagList
	deadline := time.Now().Add(10 * time.Second)
	for {
		getJSON(t, srv+"/api/v1/repositories/"+reg+"/acme/base/tags", &list)
		if list.TagCount == 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The groups are what crane ls and crane digest say, tag by tag.
	want := map[string][]string{}
	for _, tg := range strings.Fields(string(testenv.Crane(t, "ls", reg+"/acme/base"))) {
		d := strings.TrimSpace(string(testenv.Crane(t, "digest", reg+"/acme/base:"+tg)))
		want[d] = append(want[d], tg)
	}
	got := map[string][]string{}
	for _, g := range list.Groups {
		got[g.Digest] = g.Tags
		if !cmp.Equal(g.Platforms, []string{"linux/amd64"}) {
			t.Errorf("group %s platforms %v", g.Digest, g.Platforms)
		}
	}
	sorted := cmp.Transformer("sort", func(in []string) []string {
		out := slices.Clone(in)
		slices.Sort(out)
		return out
	})
	if diff := cmp.Diff(want, got, sorted); diff != "" || list.TagCount != 4 {
		t.Errorf("tagCount %d, groups (-crane +got):\n%s", list.TagCount, diff)
	}

	// The app's parent is the runtime, whose layers crane shows to be the
	// longest prefix of the app's among known images; the runtime's is base.
	var rep report
	getJSON(t, srv+"/api/v1/images/"+reg+"/acme/app:2", &rep)
	appIDs, rtIDs, baseIDs := diffIDs(t, reg+"/acme/app:2"), diffIDs(t, reg+"/acme/runtime:3"), diffIDs(t, reg+"/acme/base:1")
	if !slices.Equal(appIDs[:len(rtIDs)], rtIDs) || !slices.Equal(rtIDs[:len(baseIDs)], baseIDs) {
		t.Fatal("test setup: crane does not show the family's layer prefixes")
	}
	p := rep.Platforms[0].Parent
	rtDigest := strings.TrimSpace(string(testenv.Crane(t, "digest", reg+"/acme/runtime:3")))
	if p == nil || p.Repository != "acme/runtime" || p.Digest != rtDigest || p.Method != "layers" || !cmp.Equal(p.Tags, []string{"3"}) || p.Outdated {
		t.Errorf("app's parent = %+v, want acme/runtime@%s tags [3]", p, rtDigest)
	}
	getJSON(t, srv+"/api/v1/images/"+reg+"/acme/runtime:3", &rep)
	if p := rep.Platforms[0].Parent; p == nil || p.Repository != "acme/base" || !cmp.Equal(p.Tags, []string{"latest", "1", "1.0"}) {
		t.Errorf("runtime's parent = %+v, want acme/base with tags latest, 1, 1.0", p)
	}

	// Rebuild the base: the runtime's parent becomes outdated, pointing at
	// where crane says base:1 is now.
	tag(t, reg+"/acme/base:1", on(t, empty, 2))
	getJSON(t, srv+"/api/v1/repositories/"+reg+"/acme/base/tags?refresh=1", &list)
	getJSON(t, srv+"/api/v1/images/"+reg+"/acme/runtime:3", &rep)
	now := strings.TrimSpace(string(testenv.Crane(t, "digest", reg+"/acme/base:1")))
	if p := rep.Platforms[0].Parent; p == nil || !p.Outdated || p.CurrentDigest != now {
		t.Errorf("after the rebuild, runtime's parent = %+v, want outdated at %s", p, now)
	}

	// MicroBadger's API over the same data.
	var mb struct {
		ImageName     string
		LatestSHA     string
		LatestVersion string
		LayerCount    int
		Versions      []struct {
			SHA  string
			Tags []struct {
				Tag string `json:"tag"`
			}
		}
	}
	getJSON(t, srv+"/v1/images/"+reg+"/acme/base:latest", &mb)
	latest := strings.TrimSpace(string(testenv.Crane(t, "digest", reg+"/acme/base:latest")))
	if mb.LatestSHA != latest || mb.LatestVersion != "1.0" || mb.LayerCount != 2 || len(mb.Versions) != 3 {
		t.Errorf("microbadger answer = %+v; want LatestSHA %s, LatestVersion 1.0, 2 layers, 3 versions", mb, latest)
	}
}
