// Package demo seeds a self-contained demonstration: go-containerregistry's
// in-process registry on a loopback port, holding a small family of images
// built the way real ones are (children share their parent's layers), and a
// store that has watched that family change over a few weeks. It lets a
// newcomer without network access see every page of imagebadger filled.
package demo

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/registry"
	"github.com/imagebadger/imagebadger/store"
)

// Repositories of the demo family, in the order they are built.
const (
	Base    = "acme/base"
	Runtime = "acme/runtime"
	App     = "acme/app"
	Worker  = "acme/worker"
)

// Registry is the in-process registry the demo images live in.
type Registry struct {
	// Host is "127.0.0.1:PORT", the registry part of the demo's references.
	Host string
	srv  *http.Server
	done chan error
}

// StartRegistry starts go-containerregistry's in-memory registry on a free
// loopback port. Close stops it.
func StartRegistry() (*Registry, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo: listen for the registry: %w", err)
	}
	r := &Registry{
		Host: ln.Addr().String(),
		srv: &http.Server{
			Handler:           ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))),
			ReadHeaderTimeout: 10 * time.Second,
		},
		done: make(chan error, 1),
	}
	go func() { r.done <- r.srv.Serve(ln) }()
	return r, nil
}

// Close stops the registry; its images are gone.
func (r *Registry) Close() error {
	err := r.srv.Close()
	if serr := <-r.done; !errors.Is(serr, http.ErrServerClosed) && serr != nil {
		err = errors.Join(err, serr)
	}
	return err
}

// Ref returns the full reference of repo:tag in the registry.
func (r *Registry) Ref(repoTag string) string { return r.Host + "/" + repoTag }

// Watched returns the repositories a demo server should watch as bases.
func (r *Registry) Watched() []string {
	return []string{r.Host + "/" + Base, r.Host + "/" + Runtime}
}

// Seed pushes the family into the registry in stages and, after each stage,
// lists the changed repositories through an images.Service whose clock is set
// to the stage's time, so the store holds a history spanning weeks: a base
// with several tags, one of them since deleted, rebuilt two days ago; a
// runtime on it; an app on the runtime with OCI labels, with a patch release
// of its older line; multi-platform images; and a worker still built on the
// base as it was before the rebuild (its base is outdated).
func (r *Registry) Seed(ctx context.Context, st *store.Store, client *registry.Client) error {
	now := time.Now().UTC().Truncate(time.Minute)
	clock := &stagedClock{at: now}
	svc := images.New(images.Options{Client: client, Store: st, FreshFor: time.Minute, Now: clock.Now})
	defer svc.Close(context.WithoutCancel(ctx))
	if _, err := svc.LoadIndex(ctx); err != nil {
		return err
	}
	b := &builder{host: r.Host, layers: map[string]v1.Layer{}}
	day := 24 * time.Hour
	stages := []struct {
		at    time.Duration // before now
		build func(time.Time) error
		list  []string
	}{
		{95 * day, b.base319, []string{Base}},
		{41 * day, b.base320, []string{Base}},
		{38 * day, b.runtime13AndWorker, []string{Runtime, Worker}},
		{30 * day, b.base319Retired, []string{Base}},
		{20 * day, b.app22, []string{App}},
		{9 * day, b.app228, []string{App}},
		{2 * day, b.base320Rebuilt, []string{Base}},
		{46 * time.Hour, b.runtime14, []string{Runtime}},
		{3 * time.Hour, b.app23, []string{App}},
	}
	for _, s := range stages {
		at := now.Add(-s.at)
		if err := s.build(at); err != nil {
			return err
		}
		clock.set(at.Add(5 * time.Minute))
		for _, repo := range s.list {
			rp, err := analysis.ParseRepository(r.Host + "/" + repo)
			if err != nil {
				return fmt.Errorf("demo: %w", err)
			}
			if _, err := svc.System().Tags(ctx, rp, images.ReadOptions{Refresh: true}); err != nil {
				return fmt.Errorf("demo: list %s: %w", repo, err)
			}
		}
	}
	return nil
}

// stagedClock is the seeding service's clock, moved from stage to stage.
type stagedClock struct {
	mu sync.Mutex
	at time.Time
}

func (c *stagedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at
}

func (c *stagedClock) set(t time.Time) {
	c.mu.Lock()
	c.at = t
	c.mu.Unlock()
}

// builder makes the demo images. Layers are cached by name, so the same
// name always gives the same blob, as a real build cache does.
type builder struct {
	host   string
	layers map[string]v1.Layer
	// built images kept for their children, by name.
	baseV1, baseV2, runtimeV13, runtimeV14 map[string]v1.Image
}

// platforms of the multi-platform images.
func platforms() []v1.Platform {
	return []v1.Platform{
		{OS: "linux", Architecture: "amd64"},
		{OS: "linux", Architecture: "arm64", Variant: "v8"},
	}
}

// step is one Dockerfile instruction: a layer of size bytes, or an
// instruction that changes only the config (size 0).
type step struct {
	cmd  string
	size int
}

// spec describes one platform image built on parent (nil for a root image).
type spec struct {
	name    string
	parent  v1.Image
	plat    v1.Platform
	created time.Time
	steps   []step
	labels  map[string]string
	env     []string
	cmd     []string
	workdir string
	user    string
}

// layer returns the named layer: a tar holding one file of size
// pseudo-random bytes, seeded by the name, gzip-compressed. Random content
// does not compress, so the blob is about size bytes, like a real layer of
// that compressed size.
func (b *builder) layer(nameSeed string, size int) (v1.Layer, error) {
	if l, ok := b.layers[nameSeed]; ok {
		return l, nil
	}
	seed := sha256.Sum256([]byte(nameSeed))
	rng := rand.NewChaCha8(seed)
	data := make([]byte, size)
	_, _ = rng.Read(data)
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	if err := tw.WriteHeader(&tar.Header{Name: "opt/" + fmt.Sprintf("%x", seed[:6]) + ".bin", Mode: 0o644, Size: int64(size), ModTime: time.Unix(0, 0)}); err != nil {
		return nil, fmt.Errorf("demo: layer %s: %w", nameSeed, err)
	}
	if _, err := tw.Write(data); err != nil {
		return nil, fmt.Errorf("demo: layer %s: %w", nameSeed, err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("demo: layer %s: %w", nameSeed, err)
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if _, err := zw.Write(tb.Bytes()); err != nil {
		return nil, fmt.Errorf("demo: layer %s: %w", nameSeed, err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("demo: layer %s: %w", nameSeed, err)
	}
	blob := gz.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(blob)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("demo: layer %s: %w", nameSeed, err)
	}
	b.layers[nameSeed] = l
	return l, nil
}

// image builds one platform image on its parent, one history entry per step.
func (b *builder) image(s spec) (v1.Image, error) {
	base := s.parent
	if base == nil {
		base = mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	}
	var adds []mutate.Addendum
	for i, st := range s.steps {
		created := s.created.Add(time.Duration(i) * 7 * time.Second)
		h := v1.History{CreatedBy: st.cmd, Created: v1.Time{Time: created}}
		if st.size == 0 {
			h.EmptyLayer = true
			adds = append(adds, mutate.Addendum{History: h})
			continue
		}
		l, err := b.layer(s.name+"/"+s.plat.Architecture+"/"+st.cmd, st.size)
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.Addendum{Layer: l, History: h, MediaType: types.OCILayer})
	}
	img, err := mutate.Append(base, adds...)
	if err != nil {
		return nil, fmt.Errorf("demo: build %s: %w", s.name, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("demo: build %s: %w", s.name, err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = s.plat.OS, s.plat.Architecture, s.plat.Variant
	cf.Created = v1.Time{Time: s.created.Add(time.Duration(len(s.steps)) * 7 * time.Second)}
	if s.labels != nil {
		// Labels are inherited, as docker build does.
		labels := map[string]string{}
		for k, v := range cf.Config.Labels {
			labels[k] = v
		}
		for k, v := range s.labels {
			labels[k] = v
		}
		cf.Config.Labels = labels
	}
	cf.Config.Env = append(cf.Config.Env, s.env...)
	if s.cmd != nil {
		cf.Config.Cmd = s.cmd
	}
	if s.workdir != "" {
		cf.Config.WorkingDir = s.workdir
	}
	if s.user != "" {
		cf.Config.User = s.user
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("demo: build %s: %w", s.name, err)
	}
	return img, nil
}

// multi builds one image per platform and pushes the index under every tag.
// It returns the platform images by architecture, for children to build on.
func (b *builder) multi(repo string, plats []v1.Platform, tags []string, attest bool, mk func(v1.Platform) spec) (map[string]v1.Image, error) {
	out := map[string]v1.Image{}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var adds []mutate.IndexAddendum
	for _, p := range plats {
		img, err := b.image(mk(p))
		if err != nil {
			return nil, err
		}
		out[p.Architecture] = img
		plat := p
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &plat}})
	}
	if attest {
		// BuildKit adds an attestation manifest per platform image; the
		// service leaves them out of reports, as it should.
		for _, a := range adds {
			d, err := a.Add.(v1.Image).Digest()
			if err != nil {
				return nil, fmt.Errorf("demo: %s: %w", repo, err)
			}
			att, err := b.image(spec{name: repo + "/attestation/" + d.Hex[:12], plat: v1.Platform{OS: "unknown", Architecture: "unknown"},
				created: time.Unix(0, 0), steps: []step{{cmd: "in-toto provenance", size: 1200}}})
			if err != nil {
				return nil, err
			}
			adds = append(adds, mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{
				Platform:    &v1.Platform{OS: "unknown", Architecture: "unknown"},
				Annotations: map[string]string{"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": d.String()},
			}})
		}
	}
	idx = mutate.AppendManifests(idx, adds...)
	for _, t := range tags {
		ref, err := name.ParseReference(b.host + "/" + repo + ":" + t)
		if err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		if err := remote.WriteIndex(ref, idx); err != nil {
			return nil, fmt.Errorf("demo: push %s: %w", ref, err)
		}
	}
	return out, nil
}

// single pushes a single-platform image under every tag.
func (b *builder) single(repo string, tags []string, s spec) error {
	img, err := b.image(s)
	if err != nil {
		return err
	}
	for _, t := range tags {
		ref, err := name.ParseReference(b.host + "/" + repo + ":" + t)
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		if err := remote.Write(ref, img); err != nil {
			return fmt.Errorf("demo: push %s: %w", ref, err)
		}
	}
	return nil
}

func rootfs(p v1.Platform, version string, size int) []step {
	arch := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[p.Architecture]
	return []step{
		{cmd: fmt.Sprintf("ADD alpine-minirootfs-%s-%s.tar.gz / # buildkit", version, arch), size: size},
		{cmd: `CMD ["/bin/sh"]`},
	}
}

func (b *builder) base319(at time.Time) error {
	_, err := b.multi(Base, platforms(), []string{"3.19", "3.19.4"}, false, func(p v1.Platform) spec {
		return spec{name: "base-3.19", plat: p, created: at.Add(-time.Hour), steps: rootfs(p, "3.19.4", sizeFor(p, 3_310_000, 3_190_000)),
			labels: map[string]string{"maintainer": "Acme platform team <platform@acme.example>"}, cmd: []string{"/bin/sh"}}
	})
	return err
}

func (b *builder) base320(at time.Time) (err error) {
	b.baseV1, err = b.multi(Base, platforms(), []string{"3.20", "3.20.3", "3", "latest"}, false, func(p v1.Platform) spec {
		return spec{name: "base-3.20.3", plat: p, created: at.Add(-time.Hour), steps: rootfs(p, "3.20.3", sizeFor(p, 3_420_000, 3_280_000)),
			labels: map[string]string{"maintainer": "Acme platform team <platform@acme.example>"}, cmd: []string{"/bin/sh"}}
	})
	return err
}

// base320Rebuilt is the security rebuild: 3.20, 3 and latest move, 3.20.3
// stays where it was.
func (b *builder) base320Rebuilt(at time.Time) (err error) {
	b.baseV2, err = b.multi(Base, platforms(), []string{"3.20", "3.20.4", "3", "latest"}, false, func(p v1.Platform) spec {
		return spec{name: "base-3.20.4", plat: p, created: at.Add(-time.Hour), steps: rootfs(p, "3.20.4", sizeFor(p, 3_440_000, 3_300_000)),
			labels: map[string]string{"maintainer": "Acme platform team <platform@acme.example>"}, cmd: []string{"/bin/sh"}}
	})
	return err
}

func runtimeSpec(name, version, revision string, parent v1.Image, p v1.Platform, created time.Time, size int) spec {
	return spec{
		name: name, parent: parent, plat: p, created: created,
		steps: []step{
			{cmd: "ENV RUNTIME_HOME=/usr/local/runtime PATH=/usr/local/runtime/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			{cmd: "RUN /bin/sh -c apk add --no-cache ca-certificates tzdata libstdc++ # buildkit", size: sizeFor(p, 1_180_000, 1_120_000)},
			{cmd: "COPY /out/runtime-" + version + " /usr/local/runtime # buildkit", size: size},
			{cmd: "RUN /bin/sh -c runtime --version && adduser -D -u 10001 app # buildkit", size: 4_200},
			{cmd: "WORKDIR /srv"},
		},
		labels: map[string]string{
			"org.label-schema.schema-version": "1.0",
			"org.label-schema.name":           "acme-runtime",
			"org.label-schema.version":        version,
			"org.label-schema.vcs-url":        "https://gitlab.com/acme/runtime.git",
			"org.label-schema.vcs-ref":        revision,
			"org.label-schema.license":        "MIT",
			"org.label-schema.description":    "The Acme application runtime on Acme base.",
		},
		env:     []string{"RUNTIME_HOME=/usr/local/runtime"},
		workdir: "/srv",
	}
}

func (b *builder) runtime13AndWorker(at time.Time) (err error) {
	b.runtimeV13, err = b.multi(Runtime, platforms(), []string{"1.3", "1.3.5"}, false, func(p v1.Platform) spec {
		return runtimeSpec("runtime-1.3.5", "1.3.5", "5c1e0b7d2f93a41e8c6b0d4f7a2e9c1b3d5f7a90", b.baseV1[p.Architecture], p, at.Add(-30*time.Minute), sizeFor(p, 2_950_000, 2_840_000))
	})
	if err != nil {
		return err
	}
	// The worker is built once on the base of the day and never rebuilt.
	return b.single(Worker, []string{"1.0", "1.0.2", "latest"}, spec{
		name: "worker-1.0.2", parent: b.baseV1["amd64"], plat: platforms()[0], created: at.Add(-20 * time.Minute),
		steps: []step{
			{cmd: "RUN /bin/sh -c apk add --no-cache curl jq # buildkit", size: 1_640_000},
			{cmd: "COPY worker.sh /usr/local/bin/worker # buildkit", size: 6_800},
			{cmd: "USER 10001"},
			{cmd: `ENTRYPOINT ["/usr/local/bin/worker"]`},
		},
		labels: map[string]string{
			"org.opencontainers.image.title":    "acme-worker",
			"org.opencontainers.image.version":  "1.0.2",
			"org.opencontainers.image.source":   "https://github.com/acme/worker",
			"org.opencontainers.image.revision": "9a4d1e2c7b8f0a3d6e5c4b2a1f0e9d8c7b6a5f43",
			"org.opencontainers.image.licenses": "Apache-2.0",
		},
		user: "10001",
	})
}

func (b *builder) runtime14(at time.Time) (err error) {
	b.runtimeV14, err = b.multi(Runtime, platforms(), []string{"1.4", "1.4.2", "1", "latest"}, false, func(p v1.Platform) spec {
		return runtimeSpec("runtime-1.4.2", "1.4.2", "e41b7c0a9d2f5e8c1b4a7d0e3f6c9b2a5d8e1f47", b.baseV2[p.Architecture], p, at.Add(-30*time.Minute), sizeFor(p, 3_120_000, 2_990_000))
	})
	return err
}

// base319Retired deletes base:3.19.4 from the registry (3.19 stays): the
// history and the repository page show a removed tag.
func (b *builder) base319Retired(time.Time) error {
	ref, err := name.ParseReference(b.host + "/" + Base + ":3.19.4")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if err := remote.Delete(ref); err != nil {
		return fmt.Errorf("demo: delete %s: %w", ref, err)
	}
	return nil
}

func appSpec(version, revision string, parent v1.Image, p v1.Platform, created time.Time, deps int) spec {
	return spec{
		name: "app-" + version, parent: parent, plat: p, created: created,
		steps: []step{
			{cmd: "ARG APP_VERSION=" + version},
			{cmd: "COPY requirements.lock /srv/ # buildkit", size: 2_100},
			{cmd: "RUN |1 APP_VERSION=" + version + " /bin/sh -c runtime pkg install --locked --no-cache -r requirements.lock # buildkit", size: deps},
			{cmd: "COPY --chown=10001:10001 ./dist /srv/app # buildkit", size: sizeFor(p, 412_000, 409_000)},
			{cmd: "COPY --chown=10001:10001 ./static /srv/static # buildkit", size: 96_400},
			{cmd: "USER 10001"},
			{cmd: "EXPOSE map[8080/tcp:{}]"},
			{cmd: `CMD ["runtime", "/srv/app/main"]`},
		},
		labels: map[string]string{
			"org.opencontainers.image.title":         "acme-app",
			"org.opencontainers.image.description":   "Acme's order-tracking web service.",
			"org.opencontainers.image.version":       version,
			"org.opencontainers.image.revision":      revision,
			"org.opencontainers.image.source":        "https://github.com/acme/app",
			"org.opencontainers.image.url":           "https://acme.example/app",
			"org.opencontainers.image.documentation": "https://github.com/acme/app#readme",
			"org.opencontainers.image.licenses":      "Apache-2.0",
			"org.opencontainers.image.vendor":        "Acme Corp",
			"org.opencontainers.image.created":       created.Format(time.RFC3339),
		},
		cmd:  []string{"runtime", "/srv/app/main"},
		user: "10001",
	}
}

func (b *builder) app22(at time.Time) error {
	_, err := b.multi(App, platforms(), []string{"2.2", "2.2.7", "2", "latest"}, true, func(p v1.Platform) spec {
		return appSpec("2.2.7", "3f9a1c5e7b2d4f6a8c0e1b3d5f7a9c2e4b6d8f01", b.runtimeV13[p.Architecture], p, at.Add(-15*time.Minute), sizeFor(p, 2_310_000, 2_270_000))
	})
	return err
}

// app228 is a patch release of the 2.2 line on the same runtime: 2.2 moves
// to it, 2.2.7 stays, and the two share the base and runtime layers.
func (b *builder) app228(at time.Time) error {
	_, err := b.multi(App, platforms(), []string{"2.2", "2.2.8"}, true, func(p v1.Platform) spec {
		return appSpec("2.2.8", "7c4e1a9b3d5f2e8a0c6b4d2f1e3a5c7b9d0f2e4a", b.runtimeV13[p.Architecture], p, at.Add(-15*time.Minute), sizeFor(p, 2_340_000, 2_290_000))
	})
	return err
}

func (b *builder) app23(at time.Time) error {
	_, err := b.multi(App, platforms(), []string{"2.3", "2.3.1", "2", "latest"}, true, func(p v1.Platform) spec {
		return appSpec("2.3.1", "0f3c2a9d8e7b6c5a4f3e2d1c0b9a8f7e6d5c4b3a", b.runtimeV14[p.Architecture], p, at.Add(-15*time.Minute), sizeFor(p, 2_460_000, 2_410_000))
	})
	return err
}

func sizeFor(p v1.Platform, amd, arm int) int {
	if p.Architecture == "arm64" {
		return arm
	}
	return amd
}
