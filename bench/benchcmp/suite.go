package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagebadger/imagebadger/internal/testing/distreg"
	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/internal/testing/hubapi"
	"github.com/imagebadger/imagebadger/internal/testing/serveproc"
	"github.com/imagebadger/imagebadger/internal/testing/supplyfix"
)

// env is what the comparisons run against.
type env struct {
	registry    string // "127.0.0.1:PORT"
	imagebadger string // the binary built from this tree
	skopeo      string
	crane       string // empty when crane is not installed
	app         string // registry + "/bench/app:1", the realistic image
	appDigest   string // its manifest digest
	// based is the realistic image again, its manifest annotated with the
	// base it was built on (base, which holds its first layer) as a build
	// tool annotates it: what check-base reads.
	based, basedDigest string
	base, baseDigest   string
	slow               string // "127.0.0.1:PORT" of a proxy adding 30 ms to every registry request
	many               string // "bench/many": 1,000 tags over a few digests
	manyTags           int
	// hub is the Docker Hub API double, behind a 30 ms proxy (hubSlow),
	// serving library/many, whose 1,000 tags the registry holds too;
	// hubRegistry is another 30 ms proxy to the registry that stands in
	// for docker.io, counting requests by method.
	hub         *hubapi.Server
	hubSlow     string
	hubRegistry string
	hubCounts   func() map[string]int
	// supply maps a registry kind ("distribution", "referrers") to the
	// references, through a 30 ms proxy, of one BuildKit-shaped image with
	// its attestation manifests ("attested") and one without ("plain").
	supply map[string]map[string]string
}

// row is one comparison of the table.
type row struct {
	name   string
	target float64
	// maxExtra, when set, bounds median(A) − median(B) instead of a ratio.
	maxExtra time.Duration
	commands func(e *env) (a, b []string, err error)
	check    func(e *env, a, b []byte) error
	// rounds, warmup and timeout override the command line for slow rows (0: keep).
	rounds  int
	warmup  int
	timeout time.Duration
}

// comparisons is the table of the project's whole-process comparisons. Add a row to
// compare something new; commands builds both command lines from the environment.
// check (optional) judges one run's standard output of each side before timing.
var comparisons = []row{
	{
		name:   "inspect vs skopeo",
		target: 0.50,
		commands: func(e *env) ([]string, []string, error) {
			return []string{e.imagebadger, "inspect", "--json", "--allow-private-registries", e.app},
				[]string{e.skopeo, "inspect", "--tls-verify=false", "docker://" + e.app}, nil
		},
		check: func(e *env, a, b []byte) error {
			var report struct{ Digest string } // the API's image report
			if err := json.Unmarshal(a, &report); err != nil || report.Digest != e.appDigest {
				return fmt.Errorf("imagebadger inspect --json: want a report with digest %s, got %.200q", e.appDigest, a)
			}
			var inspected struct{ Digest string } // skopeo's own output format
			if err := json.Unmarshal(b, &inspected); err != nil || inspected.Digest != e.appDigest {
				return fmt.Errorf("skopeo inspect: want Digest %s, got %.200q", e.appDigest, b)
			}
			return nil
		},
	},
	{
		// check-base reads the image and then its base, manifest and config
		// of each, and compares their layers. Without imagebadger a pipeline
		// learns the same with skopeo inspect of both (each prints the digest
		// and the layers), so that pair is the counterpart: the same four
		// registry reads in two processes, where imagebadger makes them in
		// one. The shell that runs the pair adds its own start-up (about a
		// millisecond) to B's time.
		name:   "check-base vs skopeo inspect of the image and of its base",
		target: 0.50,
		commands: func(e *env) ([]string, []string, error) {
			return []string{e.imagebadger, "check-base", "--json", "--allow-private-registries", e.based},
				[]string{"sh", "-c", fmt.Sprintf("%[1]s inspect --tls-verify=false docker://%[2]s && exec %[1]s inspect --tls-verify=false docker://%[3]s",
					e.skopeo, e.based, e.base)}, nil
		},
		check: func(e *env, a, b []byte) error {
			var check struct{ Digest, Status string } // check-base's answer
			if err := json.Unmarshal(a, &check); err != nil || check.Digest != e.basedDigest || check.Status != "current" {
				return fmt.Errorf("imagebadger check-base --json: want digest %s with its base current, got %.200q", e.basedDigest, a)
			}
			dec := json.NewDecoder(bytes.NewReader(b))
			for _, want := range []string{e.basedDigest, e.baseDigest} {
				var inspected struct{ Digest string }
				if err := dec.Decode(&inspected); err != nil || inspected.Digest != want {
					return fmt.Errorf("skopeo inspect of the image and its base: want Digest %s, got %.200q", want, b)
				}
			}
			return nil
		},
	},
	{
		// The naive way to group tags: list them, then one crane digest per
		// tag, one after the other, each paying the registry's latency.
		name:   "tags listing (1,000 tags, 30 ms per request) vs crane ls + crane digest per tag",
		target: 1.0 / 15,
		rounds: 1, warmup: -1, timeout: 10 * time.Minute,
		commands: func(e *env) ([]string, []string, error) {
			if e.crane == "" {
				return nil, nil, errors.New("crane not found: run `make deps`")
			}
			repo := e.slow + "/" + e.many
			return []string{e.imagebadger, "tags", "--json", "--allow-private-registries", repo},
				[]string{"sh", "-c", fmt.Sprintf(`for t in $(%[1]s ls %[2]s); do %[1]s digest %[2]s:$t; done`, e.crane, repo)}, nil
		},
		check: func(e *env, a, b []byte) error {
			var list struct {
				TagCount int
				Groups   []struct{ Tags []string }
			}
			if err := json.Unmarshal(a, &list); err != nil || list.TagCount != e.manyTags {
				return fmt.Errorf("imagebadger tags --json: want %d tags, got %.200q", e.manyTags, a)
			}
			if n := len(strings.Fields(string(b))); n != e.manyTags {
				return fmt.Errorf("crane: want %d digests, got %d", e.manyTags, n)
			}
			return nil
		},
	},
	{
		// Docker Hub's web API lists 100 tags with their digests a request:
		// grouping docker.io/library/many asks it about 10 times and the
		// registry for no HEAD at all, only a GET for each image never seen.
		name:   "Docker Hub listing (1,000 tags, web API + registry at 30 ms) vs crane ls + crane digest per tag",
		target: 1.0 / 60,
		rounds: 1, warmup: -1, timeout: 10 * time.Minute,
		commands: func(e *env) ([]string, []string, error) {
			if e.crane == "" {
				return nil, nil, errors.New("crane not found: run `make deps`")
			}
			repo := e.slow + "/library/many"
			return []string{e.imagebadger, "tags", "--json", "--allow-private-registries",
					"--dockerhub-api", "http://" + e.hubSlow, "--registry-endpoints", "docker.io=" + e.hubRegistry, "library/many"},
				[]string{"sh", "-c", fmt.Sprintf(`for t in $(%[1]s ls %[2]s); do %[1]s digest %[2]s:$t; done`, e.crane, repo)}, nil
		},
		check: func(e *env, a, b []byte) error {
			var list struct {
				TagCount int
				Groups   []struct{ Tags []string }
			}
			if err := json.Unmarshal(a, &list); err != nil || list.TagCount != e.manyTags || len(list.Groups) != 4 {
				return fmt.Errorf("imagebadger tags --json: want %d tags in 4 groups, got %.200q", e.manyTags, a)
			}
			if n := len(strings.Fields(string(b))); n != e.manyTags {
				return fmt.Errorf("crane: want %d digests, got %d", e.manyTags, n)
			}
			repoAsks, pages := e.hub.Requests()
			heads := e.hubCounts()["HEAD"]
			fmt.Printf("  one listing cost %d Docker Hub API requests (%d tag pages, %d repository) and %d registry HEADs (%v by method)\n",
				repoAsks+pages, pages, repoAsks, heads, e.hubCounts())
			if repoAsks+pages > 12 || heads != 0 {
				return fmt.Errorf("want at most 12 web API requests and 0 registry HEADs, got %d and %d", repoAsks+pages, heads)
			}
			return nil
		},
	},
	supplyRow("distribution", "a registry without the referrers API", 2),
	supplyRow("referrers", "a registry with the referrers API", 1),
}

// supplyRow compares the first inspect of a BuildKit image with its
// attestations (an SLSA provenance and an SPDX SBOM in the index) against
// the same image without them, through a proxy that holds every registry
// request 30 ms: the supply chain's look may cost at most extra round
// trips more.
func supplyRow(kind, what string, extra int) row {
	return row{
		name:     fmt.Sprintf("inspect with attestations vs without, on %s (30 ms per request)", what),
		maxExtra: time.Duration(extra) * supplyLatency,
		rounds:   10,
		commands: func(e *env) ([]string, []string, error) {
			refs := e.supply[kind]
			return []string{e.imagebadger, "inspect", "--json", "--allow-private-registries", refs["attested"]},
				[]string{e.imagebadger, "inspect", "--json", "--allow-private-registries", refs["plain"]}, nil
		},
		check: func(e *env, a, b []byte) error {
			var with, without struct {
				Platforms []struct {
					SupplyChain *struct {
						Provenance *json.RawMessage
						SBOM       *json.RawMessage
					}
				}
			}
			if err := json.Unmarshal(a, &with); err != nil || len(with.Platforms) != 1 || with.Platforms[0].SupplyChain == nil ||
				with.Platforms[0].SupplyChain.Provenance == nil || with.Platforms[0].SupplyChain.SBOM == nil {
				return fmt.Errorf("inspect of the attested image: want one platform with a provenance and an SBOM, got %.300q", a)
			}
			if err := json.Unmarshal(b, &without); err != nil || len(without.Platforms) != 1 {
				return fmt.Errorf("inspect of the plain image: want one platform, got %.300q", b)
			}
			return nil
		},
	}
}

// supplyLatency is what the supply rows' proxy adds to every request.
const supplyLatency = 30 * time.Millisecond

// runSuite sets up the environment, runs every selected comparison and reports each.
// A comparison that fails is reported and the others still run.
func runSuite(ctx context.Context, s settings, out io.Writer) error {
	dir, err := os.MkdirTemp("", "benchcmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	e, cleanup, err := setup(ctx, s, dir, out)
	defer cleanup()
	if err != nil {
		return err
	}

	if s.hold {
		return hold(ctx, e, s, out)
	}
	var failed []string
	for _, row := range comparisons {
		if s.filter != nil && !s.filter.MatchString(row.name) {
			continue
		}
		a, b, err := row.commands(e)
		c := comparison{name: row.name, a: a, b: b, target: row.target, maxExtra: row.maxExtra}
		rs := s
		if row.rounds > 0 {
			rs.rounds = row.rounds
			c.checkIsRound = true
		}
		if row.warmup != 0 {
			rs.warmup = max(row.warmup, 0)
		}
		if row.timeout > 0 {
			rs.timeout = row.timeout
		}
		if row.check != nil {
			c.check = func(outA, outB []byte) error { return row.check(e, outA, outB) }
		}
		var r result
		if err != nil {
			r.err = err
		} else {
			r = measure(ctx, rs, c)
		}
		if err := report(out, rs, c, r); err != nil {
			failed = append(failed, row.name)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

// hold prints the command lines of the selected comparisons and waits until ctx
// ends (an interrupt), keeping the registry and the binary they name.
func hold(ctx context.Context, e *env, s settings, out io.Writer) error {
	for _, row := range comparisons {
		if s.filter != nil && !s.filter.MatchString(row.name) {
			continue
		}
		a, b, err := row.commands(e)
		if err != nil {
			fmt.Fprintf(out, "%s: %v\n", row.name, err)
			continue
		}
		fmt.Fprintf(out, "%s\n  A %s\n  B %s\n", row.name, strings.Join(a, " "), strings.Join(b, " "))
	}
	fmt.Fprintln(out, "holding; interrupt to stop")
	<-ctx.Done()
	return nil
}

// setup starts the registry, pushes the image and builds imagebadger. cleanup is
// always safe to call.
func setup(ctx context.Context, s settings, dir string, out io.Writer) (*env, func(), error) {
	cleanup := func() {}
	e := &env{}
	var err error
	if e.skopeo, err = exec.LookPath("skopeo"); err != nil {
		return nil, cleanup, errors.New("skopeo not found: run `make deps`")
	}
	e.crane = findCrane()

	fmt.Fprintln(out, "starting distribution registry…")
	reg, err := distreg.Start(ctx, distreg.Options{Dir: filepath.Join(dir, "registry")})
	if errors.Is(err, distreg.ErrNotInstalled) {
		return nil, cleanup, fmt.Errorf("%w: run `make deps`", err)
	}
	if err != nil {
		return nil, cleanup, err
	}
	cleanup = reg.Stop
	e.registry = reg.Addr
	e.app = reg.Addr + "/bench/app:1"

	base, img, err := realisticImage()
	if err != nil {
		return nil, cleanup, fmt.Errorf("build image: %w", err)
	}
	if err := push(ctx, img, e.app, "1.0", "latest"); err != nil {
		return nil, cleanup, fmt.Errorf("push %s: %w\nregistry log:\n%s", e.app, err, reg.Log())
	}
	if e.appDigest, err = digest(img); err != nil {
		return nil, cleanup, err
	}
	e.base = reg.Addr + "/bench/base:1"
	if err := push(ctx, base, e.base); err != nil {
		return nil, cleanup, fmt.Errorf("push %s: %w", e.base, err)
	}
	if e.baseDigest, err = digest(base); err != nil {
		return nil, cleanup, err
	}
	based := mutate.Annotations(img, map[string]string{
		"org.opencontainers.image.base.name":   e.base,
		"org.opencontainers.image.base.digest": e.baseDigest,
	}).(v1.Image)
	e.based = reg.Addr + "/bench/app:based"
	if err := push(ctx, based, e.based); err != nil {
		return nil, cleanup, fmt.Errorf("push %s: %w", e.based, err)
	}
	if e.basedDigest, err = digest(based); err != nil {
		return nil, cleanup, err
	}

	fmt.Fprintln(out, "pushing 1,000 tags and starting a 30 ms latency proxy…")
	e.many, e.manyTags = "bench/many", 1000
	if _, err := pushMany(ctx, reg.Addr+"/"+e.many, e.manyTags); err != nil {
		return nil, cleanup, fmt.Errorf("push %s: %w", e.many, err)
	}
	slow, stopSlow, err := distreg.LatencyProxy(reg.Addr, 30*time.Millisecond)
	if err != nil {
		return nil, cleanup, err
	}
	stopReg := cleanup
	cleanup = func() { stopSlow(); stopReg() }
	e.slow = slow

	fmt.Fprintln(out, "pushing library/many and starting the Docker Hub API double…")
	digests, err := pushMany(ctx, reg.Addr+"/library/many", e.manyTags)
	if err != nil {
		return nil, cleanup, fmt.Errorf("push library/many: %w", err)
	}
	e.hub = hubapi.Start()
	hubRepo := hubapi.Repository{Description: "1,000 tags over four images", Stars: 7, Pulls: 123456, LastUpdated: time.Now().UTC()}
	for _, tag := range slices.Sorted(maps.Keys(digests)) {
		d := digests[tag]
		hubRepo.Tags = append(hubRepo.Tags, hubapi.Tag{Name: tag, Digest: d, LastUpdated: hubRepo.LastUpdated, LastPushed: hubRepo.LastUpdated,
			Images: []hubapi.Image{{Digest: d, OS: "linux", Architecture: "amd64"}}})
	}
	e.hub.Put("library/many", hubRepo)
	hubSlow, stopHub, err := distreg.LatencyProxy(strings.TrimPrefix(e.hub.URL, "http://"), 30*time.Millisecond)
	if err != nil {
		return nil, cleanup, err
	}
	hubReg, counts, stopHubReg, err := distreg.MeteredProxy(reg.Addr, 30*time.Millisecond, nil)
	if err != nil {
		stopHub()
		return nil, cleanup, err
	}
	stopRest := cleanup
	cleanup = func() { stopHubReg(); stopHub(); e.hub.Close(); stopRest() }
	e.hubSlow, e.hubRegistry, e.hubCounts = hubSlow, hubReg, counts

	fmt.Fprintln(out, "pushing BuildKit-shaped images with and without attestations…")
	stopSupply, err := setupSupply(e, reg.Addr)
	if err != nil {
		return nil, cleanup, err
	}
	stopBefore := cleanup
	cleanup = func() { stopSupply(); stopBefore() }

	if s.bin != "" {
		e.imagebadger = s.bin
		return e, cleanup, nil
	}
	fmt.Fprintln(out, "building ./cmd/imagebadger…")
	if e.imagebadger, err = serveproc.Build(ctx, dir); err != nil {
		return nil, cleanup, err
	}
	return e, cleanup, nil
}

// setupSupply pushes the supply rows' images to the distribution registry
// at distAddr (no referrers API) and to go-containerregistry's registry
// with its referrers API on, and puts a 30 ms proxy before each.
func setupSupply(e *env, distAddr string) (stop func(), err error) {
	withAPI := faultreg.NewWith(faultreg.Options{Referrers: true})
	var stops []func()
	stop = func() {
		for _, f := range stops {
			f()
		}
		withAPI.Close()
	}
	e.supply = map[string]map[string]string{}
	for kind, addr := range map[string]string{"distribution": distAddr, "referrers": withAPI.Host} {
		slow, stopSlow, err := distreg.LatencyProxy(addr, supplyLatency)
		if err != nil {
			stop()
			return nil, err
		}
		stops = append(stops, stopSlow)
		e.supply[kind] = map[string]string{}
		for variant, none := range map[string]bool{"attested": false, "plain": true} {
			idx, _, err := supplyfix.Index(supplyfix.Options{NoAttestations: none, SBOMPackages: 50, Source: "https://github.com/acme/app", Revision: "abc",
				Platforms: []supplyfix.Platform{{OS: "linux", Architecture: "amd64", Layers: 3,
					Materials: []supplyfix.Material{{URI: "pkg:docker/docker/dockerfile@1.7", Digest: "sha256:" + strings.Repeat("d", 64)}}}}})
			if err == nil {
				var r name.Reference
				if r, err = name.ParseReference(addr + "/bench/" + variant + ":1"); err == nil {
					err = remote.WriteIndex(r, idx)
				}
			}
			if err != nil {
				stop()
				return nil, fmt.Errorf("push the %s image to %s: %w", variant, kind, err)
			}
			e.supply[kind][variant] = slow + "/bench/" + variant + ":1"
		}
	}
	return stop, nil
}

// digest is img's manifest digest as text.
func digest(img v1.Image) (string, error) {
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	return d.String(), nil
}

// realisticImage is an OCI image of 8 layers of varied sizes whose config has history
// (with empty-layer entries between the layers, as Dockerfiles produce), labels,
// environment and an entrypoint: what inspecting a real application image reads. base
// is the image of its first layer alone, the base it was built on.
func realisticImage() (base, app v1.Image, err error) {
	rng := rand.New(rand.NewPCG(1, 2))
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	created := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	steps := []string{
		"/bin/sh -c #(nop) ADD file:4f1b9c0a in / ",
		"/bin/sh -c apt-get update && apt-get install -y --no-install-recommends ca-certificates curl",
		"/bin/sh -c groupadd -r app && useradd -r -g app app",
		"COPY /usr/local/bin/app /usr/local/bin/app # buildkit",
		"COPY config/ /etc/app/ # buildkit",
		"RUN /bin/sh -c app --self-test # buildkit",
		"COPY static/ /srv/static/ # buildkit",
		"RUN /bin/sh -c chown -R app:app /srv # buildkit",
	}
	var history []v1.History
	for i, step := range steps {
		layer, err := random.Layer(int64(4<<10+rng.IntN(256<<10)), types.OCILayer)
		if err != nil {
			return nil, nil, err
		}
		h := v1.History{CreatedBy: step, Created: v1.Time{Time: created.Add(time.Duration(i) * time.Minute)}}
		if img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: h}); err != nil {
			return nil, nil, err
		}
		history = append(history, h)
		if i == 0 {
			history = append(history, v1.History{CreatedBy: `/bin/sh -c #(nop)  CMD ["bash"]`, Created: h.Created, EmptyLayer: true})
			if base, err = withConfig(img, func(cf *v1.ConfigFile) {
				cf.Created = h.Created
				cf.History = slices.Clone(history)
				cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
				cf.Config.Cmd = []string{"bash"}
			}); err != nil {
				return nil, nil, err
			}
		}
	}
	for _, step := range []string{
		"ENV APP_HOME=/srv",
		`LABEL org.opencontainers.image.version=1.0.3`,
		"USER app",
		`ENTRYPOINT ["/usr/local/bin/app"]`,
	} {
		history = append(history, v1.History{CreatedBy: step + " # buildkit", Created: v1.Time{Time: created.Add(time.Hour)}, EmptyLayer: true})
	}

	app, err = withConfig(img, func(cf *v1.ConfigFile) {
		cf.Created = v1.Time{Time: created.Add(time.Hour)}
		cf.History = history
		cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "APP_HOME=/srv"}
		cf.Config.Entrypoint = []string{"/usr/local/bin/app"}
		cf.Config.User = "app"
		cf.Config.WorkingDir = "/srv"
		cf.Config.Labels = map[string]string{
			"org.opencontainers.image.version":     "1.0.3",
			"org.opencontainers.image.revision":    "0f3c2a9e1b7d4c5a6f8e9d0c1b2a3f4e5d6c7b8a",
			"org.opencontainers.image.source":      "https://github.com/acme/app",
			"org.opencontainers.image.licenses":    "Apache-2.0",
			"org.opencontainers.image.title":       "app",
			"org.opencontainers.image.description": "A benchmark image shaped like a real application.",
			"org.opencontainers.image.created":     created.Format(time.RFC3339),
		}
	})
	return base, app, err
}

// withConfig is img with its config file, for linux/amd64, changed by edit.
func withConfig(img v1.Image, edit func(cf *v1.ConfigFile)) (v1.Image, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = "amd64", "linux"
	edit(cf)
	return mutate.ConfigFile(img, cf)
}

// push writes img to ref and tags it with extra tags in the same repository.
func push(ctx context.Context, img v1.Image, ref string, tags ...string) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	if err := remote.Write(r, img, remote.WithContext(ctx)); err != nil {
		return err
	}
	for _, tag := range tags {
		if err := remote.Tag(r.Context().Tag(tag), img, remote.WithContext(ctx)); err != nil {
			return err
		}
	}
	return nil
}

// findCrane looks in PATH, then in $(go env GOPATH)/bin, where `make deps` installs it.
func findCrane() string {
	if p, err := exec.LookPath("crane"); err == nil {
		return p
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		return ""
	}
	for _, dir := range filepath.SplitList(strings.TrimSpace(string(out))) {
		p := filepath.Join(dir, "bin", "crane")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// pushMany pushes n tags of repo spread over four images and returns the
// digest of each tag.
func pushMany(ctx context.Context, repo string, n int) (map[string]string, error) {
	var imgs []v1.Image
	var digests []string
	tags := map[string]string{}
	for i := 0; i < 4; i++ {
		img, err := random.Image(1024, int64(1+i))
		if err != nil {
			return nil, err
		}
		if err := push(ctx, img, fmt.Sprintf("%s:seed%d", repo, i)); err != nil {
			return nil, err
		}
		d, err := img.Digest()
		if err != nil {
			return nil, err
		}
		imgs, digests = append(imgs, img), append(digests, d.String())
		tags[fmt.Sprintf("seed%d", i)] = d.String()
	}
	r, err := name.NewRepository(repo)
	if err != nil {
		return nil, err
	}
	for i := 4; i < n; i++ {
		if err := remote.Tag(r.Tag(fmt.Sprintf("v%d", i)), imgs[i%4], remote.WithContext(ctx)); err != nil {
			return nil, err
		}
		tags[fmt.Sprintf("v%d", i)] = digests[i%4]
	}
	return tags, nil
}
