package e2e_test

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagebadger/imagebadger/internal/testing/testenv"
)

// report is the part of the image report this test checks, decoded on its
// own rather than through the service's types.
type report struct {
	Reference  string           `json:"reference"`
	Registry   string           `json:"registry"`
	Repository string           `json:"repository"`
	Tag        string           `json:"tag"`
	Digest     string           `json:"digest"`
	MediaType  string           `json:"mediaType"`
	Tags       []string         `json:"tags"`
	Platforms  []platformReport `json:"platforms"`
}

type platformReport struct {
	Platform     string `json:"platform"`
	Digest       string `json:"digest"`
	MediaType    string `json:"mediaType"`
	ConfigDigest string `json:"configDigest"`
	LayerCount   int    `json:"layerCount"`
	DownloadSize int64  `json:"downloadSize"`
	Layers       []struct {
		Digest    string `json:"digest"`
		DiffID    string `json:"diffId"`
		Size      int64  `json:"size"`
		MediaType string `json:"mediaType"`
		CreatedBy string `json:"createdBy"`
	} `json:"layers"`
	Labels   map[string]string `json:"labels"`
	Metadata map[string]string `json:"metadata"`
	Parent   *struct {
		Repository    string   `json:"repository"`
		Tags          []string `json:"tags"`
		Digest        string   `json:"digest"`
		Method        string   `json:"method"`
		Outdated      bool     `json:"outdated"`
		CurrentDigest string   `json:"currentDigest"`
	} `json:"parent"`
}

// craneManifest and craneConfig hold what crane prints, decoded independently.
type craneManifest struct {
	MediaType string `json:"mediaType"`
	Config    struct {
		Digest string `json:"digest"`
	} `json:"config"`
	Layers []struct {
		Digest    string `json:"digest"`
		Size      int64  `json:"size"`
		MediaType string `json:"mediaType"`
	} `json:"layers"`
	Manifests []struct {
		Digest   string `json:"digest"`
		Platform struct {
			OS           string `json:"os"`
			Architecture string `json:"architecture"`
			Variant      string `json:"variant"`
		} `json:"platform"`
	} `json:"manifests"`
}

type craneConfig struct {
	Config struct {
		Labels map[string]string `json:"Labels"`
	} `json:"config"`
	RootFS struct {
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
	History []struct {
		CreatedBy  string `json:"created_by"`
		EmptyLayer bool   `json:"empty_layer"`
	} `json:"history"`
}

func labelled(t *testing.T, layers int, platform v1.Platform, labels map[string]string, history []v1.History) v1.Image {
	t.Helper()
	img, err := random.Image(2048, int64(layers))
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = platform.OS, platform.Architecture, platform.Variant
	cf.Config.Labels = labels
	cf.History = history
	cf.Created = v1.Time{Time: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestInspectAgainstDistribution(t *testing.T) {
	reg := testenv.Distribution(t)
	history := []v1.History{
		{CreatedBy: "/bin/sh -c #(nop) ADD file:0a1b in /"},
		{CreatedBy: `/bin/sh -c #(nop)  CMD ["sh"]`, EmptyLayer: true},
		{CreatedBy: "/bin/sh -c apk add --no-cache curl"},
		{CreatedBy: "COPY app /app"},
	}
	single := labelled(t, 3, v1.Platform{OS: "linux", Architecture: "amd64"}, map[string]string{
		"org.opencontainers.image.version":  "2.3.1",
		"org.opencontainers.image.revision": "0f3c2a9e1d",
		"org.label-schema.license":          "Apache-2.0",
	}, history)
	if err := remote.Write(must(name.ParseReference(reg+"/acme/app:2.3.1")), single); err != nil {
		t.Fatal(err)
	}
	if err := remote.Tag(must(name.NewTag(reg+"/acme/app:2.3")), single); err != nil {
		t.Fatal(err)
	}
	amd := labelled(t, 2, v1.Platform{OS: "linux", Architecture: "amd64"}, nil, nil)
	arm := labelled(t, 2, v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, nil, nil)
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	)
	if err := remote.WriteIndex(must(name.ParseReference(reg+"/acme/multi:1")), idx); err != nil {
		t.Fatal(err)
	}

	srv := testenv.Serve(t, testenv.Binary(t))
	for _, ref := range []string{reg + "/acme/app:2.3.1", reg + "/acme/multi:1"} {
		t.Run(ref, func(t *testing.T) {
			var rep report
			getJSON(t, srv+"/api/v1/images/"+ref, &rep)
			// The digest is what crane and skopeo say the tag resolves to.
			if want := strings.TrimSpace(string(testenv.Crane(t, "digest", ref))); rep.Digest != want {
				t.Errorf("digest = %s, crane digest says %s", rep.Digest, want)
			}
			var top craneManifest
			raw := testenv.Skopeo(t, "inspect", "--raw", "--tls-verify=false", "docker://"+ref)
			if err := json.Unmarshal(raw, &top); err != nil {
				t.Fatal(err)
			}
			if rep.MediaType != top.MediaType {
				t.Errorf("mediaType = %s, skopeo --raw says %s", rep.MediaType, top.MediaType)
			}
			// Per platform: what crane manifest/config say of that platform image.
			type want struct {
				platform, digest string
			}
			var wants []want
			if len(top.Manifests) == 0 {
				wants = []want{{"linux/amd64", rep.Digest}}
			}
			for _, m := range top.Manifests {
				p := m.Platform.OS + "/" + m.Platform.Architecture
				if m.Platform.Variant != "" {
					p += "/" + m.Platform.Variant
				}
				wants = append(wants, want{p, m.Digest})
			}
			if len(rep.Platforms) != len(wants) {
				t.Fatalf("%d platforms, crane lists %d", len(rep.Platforms), len(wants))
			}
			for _, w := range wants {
				i := slices.IndexFunc(rep.Platforms, func(p platformReport) bool {
					return p.Platform == w.platform
				})
				if i < 0 {
					t.Errorf("platform %s missing", w.platform)
					continue
				}
				p := rep.Platforms[i]
				pref := ref[:strings.LastIndex(ref, ":")] + "@" + w.digest
				var m craneManifest
				if err := json.Unmarshal(testenv.Crane(t, "manifest", pref), &m); err != nil {
					t.Fatal(err)
				}
				var c craneConfig
				if err := json.Unmarshal(testenv.Crane(t, "config", pref), &c); err != nil {
					t.Fatal(err)
				}
				if p.Digest != w.digest || p.ConfigDigest != m.Config.Digest || p.LayerCount != len(m.Layers) {
					t.Errorf("%s: digest %s config %s layers %d; crane says %s %s %d",
						w.platform, p.Digest, p.ConfigDigest, p.LayerCount, w.digest, m.Config.Digest, len(m.Layers))
				}
				var size int64
				var commands []string
				for _, h := range c.History {
					if !h.EmptyLayer {
						commands = append(commands, h.CreatedBy)
					}
				}
				for j, l := range m.Layers {
					size += l.Size
					got := p.Layers[j]
					var cmd string
					if j < len(commands) {
						cmd = commands[j]
					}
					if got.Digest != l.Digest || got.Size != l.Size || got.MediaType != l.MediaType || got.DiffID != c.RootFS.DiffIDs[j] || got.CreatedBy != cmd {
						t.Errorf("%s layer %d = %+v; crane says %+v diffID %s createdBy %q", w.platform, j, got, l, c.RootFS.DiffIDs[j], cmd)
					}
				}
				if p.DownloadSize != size {
					t.Errorf("%s: downloadSize %d, crane's layers add up to %d", w.platform, p.DownloadSize, size)
				}
				if diff := cmp.Diff(c.Config.Labels, p.Labels, cmpEmptyMap); diff != "" {
					t.Errorf("%s labels (-crane +got):\n%s", w.platform, diff)
				}
			}
		})
	}

	// Both tags of the single image are listed once both were asked for.
	var rep report
	getJSON(t, srv+"/api/v1/images/"+reg+"/acme/app:2.3", &rep)
	if !cmp.Equal(rep.Tags, []string{"2.3", "2.3.1"}) {
		t.Errorf("tags = %v, want [2.3 2.3.1]", rep.Tags)
	}
	if rep.Platforms[0].Metadata["version"] != "2.3.1" || rep.Platforms[0].Metadata["licenses"] != "Apache-2.0" || rep.Platforms[0].Metadata["revision"] != "0f3c2a9e1d" {
		t.Errorf("metadata = %v", rep.Platforms[0].Metadata)
	}
}

// TestInspectCommand runs `imagebadger inspect` as a user would.
func TestInspectCommand(t *testing.T) {
	reg := testenv.Distribution(t)
	img := labelled(t, 2, v1.Platform{OS: "linux", Architecture: "amd64"}, map[string]string{"org.opencontainers.image.title": "cli-app"},
		[]v1.History{{CreatedBy: "ADD rootfs.tar /"}, {CreatedBy: "RUN make install"}})
	ref := reg + "/acme/cli:1"
	if err := remote.Write(must(name.ParseReference(ref)), img); err != nil {
		t.Fatal(err)
	}
	bin := testenv.Binary(t)
	out, err := exec.Command(bin, "inspect", "--allow-private-registries", ref).CombinedOutput()
	if err != nil {
		t.Fatalf("inspect: %v\n%s", err, out)
	}
	digest := strings.TrimSpace(string(testenv.Crane(t, "digest", ref)))
	for _, want := range []string{digest, "linux/amd64", "ADD rootfs.tar /", "RUN make install", "title: cli-app", "2 layers"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
	out, err = exec.Command(bin, "inspect", "--json", "--allow-private-registries", ref).Output()
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(out, &rep); err != nil || rep.Digest != digest {
		t.Errorf("inspect --json: digest %q err %v, crane says %s", rep.Digest, err, digest)
	}
	// Without --allow-private-registries, loopback is refused by policy,
	// and the message says which flag would allow it.
	out, err = exec.Command(bin, "inspect", ref).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "refused") || !strings.Contains(string(out), "--allow-private-registries") {
		t.Errorf("inspect of a loopback registry without permission: err %v, output %s", err, out)
	}
}

var cmpEmptyMap = cmp.FilterValues(func(a, b map[string]string) bool { return len(a) == 0 && len(b) == 0 }, cmp.Ignore())

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := client(t).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
