package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// versionLabel is the label the badges read.
const versionLabel = "org.opencontainers.image.version"

// clientVersion is the version of the well-behaved client's image, which
// its badge shows.
const clientVersion = "1.0.3"

// pusher writes blobs and manifests to a registry over its HTTP API, on
// one kept-alive connection pool: thousands of manifest PUTs (a tag each)
// take seconds this way, where a client that pings and authenticates per
// push would take minutes.
type pusher struct {
	base   string // "http://127.0.0.1:PORT"
	client *http.Client
}

func newPusher(host string) *pusher {
	tr := &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true}
	return &pusher{base: "http://" + host, client: &http.Client{Transport: tr, Timeout: time.Minute}}
}

func (p *pusher) close() { p.client.CloseIdleConnections() }

// blob uploads b in one request (the distribution API's monolithic upload).
func (p *pusher) blob(ctx context.Context, repo string, b []byte) (v1.Descriptor, error) {
	h, size, err := v1.SHA256(bytes.NewReader(b))
	if err != nil {
		return v1.Descriptor{}, err
	}
	err = p.do(ctx, http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+h.String(), "application/octet-stream", b, http.StatusCreated)
	return v1.Descriptor{Digest: h, Size: size}, err
}

// manifest puts b as repo's manifest under ref (a tag or a digest).
func (p *pusher) manifest(ctx context.Context, repo, ref string, mt types.MediaType, b []byte) error {
	return p.do(ctx, http.MethodPut, "/v2/"+repo+"/manifests/"+ref, string(mt), b, http.StatusCreated)
}

func (p *pusher) do(ctx context.Context, method, path, contentType string, body []byte, want int) error {
	req, err := http.NewRequestWithContext(ctx, method, p.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s %s", method, path, resp.Status, msg)
	}
	return nil
}

// parallel runs f(0) … f(n-1), workers at a time, and returns the first
// error.
func parallel(n, workers int, f func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// smallImage is a linux/amd64 image of a few small layers, pushed once to
// a registry; variants of it (another config, so another digest, on the
// same layers) cost one config blob and one manifest each.
type smallImage struct {
	p        *pusher
	manifest v1.Manifest
	config   *v1.ConfigFile
}

// pushSmall pushes a small image labelled version to host/repo:tag and
// returns it for variants.
func pushSmall(ctx context.Context, host, repo, tag, version string) (*smallImage, error) {
	img, err := random.Image(2048, 3)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Labels = map[string]string{versionLabel: version}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, err
	}
	ref, err := name.ParseReference(host + "/" + repo + ":" + tag)
	if err != nil {
		return nil, err
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		return nil, fmt.Errorf("push %s: %w", ref, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	return &smallImage{p: newPusher(host), manifest: *m, config: cf}, nil
}

// variant pushes repo:tag as an image of its own: the same layers under a
// config labelled version, so a digest nobody has seen. It returns the
// manifest, for more tags of it (tag).
func (s *smallImage) variant(ctx context.Context, repo, tag, version string) ([]byte, error) {
	cf := s.config.DeepCopy()
	cf.Config.Labels = map[string]string{versionLabel: version}
	cb, err := json.Marshal(cf)
	if err != nil {
		return nil, err
	}
	desc, err := s.p.blob(ctx, repo, cb)
	if err != nil {
		return nil, err
	}
	m := s.manifest
	m.Config.Digest, m.Config.Size = desc.Digest, desc.Size
	mb, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return mb, s.tag(ctx, repo, tag, mb)
}

// tag points repo:tag at manifest, one of the image's variants.
func (s *smallImage) tag(ctx context.Context, repo, tag string, manifest []byte) error {
	return s.p.manifest(ctx, repo, tag, s.manifest.MediaType, manifest)
}

// bigIndex is an image index of many platforms of many layers each: the
// largest image inside the service's limits, built by hand. Its configs
// exist (inspection reads them); its layer blobs do not (nothing reads
// them to build a report).
type bigIndex struct {
	index     []byte
	manifests [][]byte // one per platform, in the index's order
	digests   []string
}

// platformNames gives n distinct linux platforms: architectures times
// variants, as many as needed.
func platformNames(n int) []v1.Platform {
	archs := []string{"amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64", "mips64le"}
	out := make([]v1.Platform, n)
	for i := range out {
		out[i] = v1.Platform{OS: "linux", Architecture: archs[i%len(archs)], Variant: "v" + strconv.Itoa(i/len(archs)+1)}
	}
	return out
}

// buildBigIndex makes the index of platforms × layers with random layer
// digests (seeded, so every run serves the same bytes) and uploads the
// configs to p, whose blobs every repository of the registry shares.
func buildBigIndex(ctx context.Context, p *pusher, repo string, platforms, layers int) (*bigIndex, error) {
	rng := rand.New(rand.NewChaCha8([32]byte{'a', 't', 't', 'a', 'c', 'k'}))
	digest := func() v1.Hash {
		var b [32]byte
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(b[:])}
	}
	created := v1.Time{Time: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	big := &bigIndex{}
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	for _, plat := range platformNames(platforms) {
		cf := v1.ConfigFile{Architecture: plat.Architecture, OS: plat.OS, Variant: plat.Variant, Created: created,
			Config: v1.Config{Labels: map[string]string{versionLabel: "9.9.9"}}, RootFS: v1.RootFS{Type: "layers"}}
		m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1}
		for l := range layers {
			cf.RootFS.DiffIDs = append(cf.RootFS.DiffIDs, digest())
			cf.History = append(cf.History, v1.History{Created: created, CreatedBy: fmt.Sprintf("/bin/sh -c make step-%d", l)})
			m.Layers = append(m.Layers, v1.Descriptor{MediaType: types.OCILayer, Size: 1000 + rng.Int64N(1<<20), Digest: digest()})
		}
		cb, err := json.Marshal(cf)
		if err != nil {
			return nil, err
		}
		desc, err := p.blob(ctx, repo, cb)
		if err != nil {
			return nil, err
		}
		m.Config = v1.Descriptor{MediaType: types.OCIConfigJSON, Digest: desc.Digest, Size: desc.Size}
		mb, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		h, size, err := v1.SHA256(bytes.NewReader(mb))
		if err != nil {
			return nil, err
		}
		big.manifests = append(big.manifests, mb)
		big.digests = append(big.digests, h.String())
		pl := plat
		idx.Manifests = append(idx.Manifests, v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: h, Size: size, Platform: &pl})
	}
	var err error
	big.index, err = json.Marshal(idx)
	return big, err
}

// push writes the index and its manifests to repo:tag.
func (b *bigIndex) push(ctx context.Context, p *pusher, repo, tag string) error {
	for i, m := range b.manifests {
		if err := p.manifest(ctx, repo, b.digests[i], types.OCIManifestSchema1, m); err != nil {
			return err
		}
	}
	return p.manifest(ctx, repo, tag, types.OCIImageIndex, b.index)
}

// size is the index's bytes with its manifests'.
func (b *bigIndex) size() int {
	n := len(b.index)
	for _, m := range b.manifests {
		n += len(m)
	}
	return n
}
