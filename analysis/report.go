package analysis

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Report is the image report of docs/API.md: what a reference resolves to, broken
// down per platform image. It is derived entirely from stored manifests and
// configs, so it can be rebuilt at any time without the registry.
type Report struct {
	Reference  string     `json:"reference"`
	Registry   string     `json:"registry"`
	Repository string     `json:"repository"`
	Tag        string     `json:"tag,omitempty"`
	Digest     string     `json:"digest"`
	MediaType  string     `json:"mediaType"`
	Tags       []string   `json:"tags"`
	CheckedAt  time.Time  `json:"checkedAt"`
	Platforms  []Platform `json:"platforms"`
	// RepositoryInfo holds what the registry's own web API says of the
	// repository (Docker Hub's, for docker.io); nil when it says nothing.
	RepositoryInfo *RepositoryInfo `json:"repositoryInfo"`
}

// RepositoryInfo is what a registry's web API says of a repository beyond
// the registry protocol: Docker Hub's description, counts and last push,
// which MicroBadger's users relied on.
type RepositoryInfo struct {
	// Source names the API ("dockerhub").
	Source      string     `json:"source"`
	Description string     `json:"description"`
	PullCount   int64      `json:"pullCount"`
	StarCount   int64      `json:"starCount"`
	LastUpdated *time.Time `json:"lastUpdated"`
}

// SourceDockerHub is RepositoryInfo.Source for Docker Hub's web API.
const SourceDockerHub = "dockerhub"

// Platform describes one platform image: the manifest an `docker pull` on that
// platform would use.
type Platform struct {
	Platform     string            `json:"platform"`
	OS           string            `json:"os"`
	Architecture string            `json:"architecture"`
	Variant      string            `json:"variant,omitempty"`
	Digest       string            `json:"digest"`
	MediaType    string            `json:"mediaType"`
	ConfigDigest string            `json:"configDigest"`
	Created      *time.Time        `json:"created,omitempty"`
	LayerCount   int               `json:"layerCount"`
	DownloadSize int64             `json:"downloadSize"`
	Layers       []Layer           `json:"layers"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Metadata     Metadata          `json:"metadata"`
	Parent       *Parent           `json:"parent"`
	// SupplyChain is what signs and attests the image, as last looked at;
	// nil when it never was.
	SupplyChain *SupplyChain `json:"supplyChain"`

	// Author is the config's author field, which MicroBadger's API shows.
	// Not part of the report's JSON.
	Author string `json:"-"`

	// DiffIDs is the uncompressed layer list of the config, the identity of the
	// image's filesystem used for parent matching. Not part of the JSON.
	DiffIDs []string `json:"-"`
}

// Layer is one layer blob of a platform image, paired with the history entry
// that produced it.
type Layer struct {
	Digest    string     `json:"digest"`
	DiffID    string     `json:"diffId,omitempty"`
	Size      int64      `json:"size"`
	MediaType string     `json:"mediaType"`
	CreatedBy string     `json:"createdBy,omitempty"`
	Created   *time.Time `json:"created,omitempty"`
}

// Parent is the image this platform image was built on, as docs/API.md defines it.
type Parent struct {
	Registry   string   `json:"registry"`
	Repository string   `json:"repository"`
	Tags       []string `json:"tags"`
	Digest     string   `json:"digest"`
	LayerCount int      `json:"layerCount"`
	// MatchedLayers is how many leading layers the image shares with the
	// parent: for method "layers" the parent's whole layer count; for
	// "annotation" as many as agree (0 when the parent's layers are unknown).
	MatchedLayers int    `json:"matchedLayers"`
	Method        string `json:"method"`
	Outdated      bool   `json:"outdated"`
	CurrentDigest string `json:"currentDigest,omitempty"`
	// MovedTags are the parent's tags that now point at CurrentDigest, so a
	// page can say which one moved on. Not part of the JSON.
	MovedTags []string `json:"-"`
}

// Descriptor is what a tag or digest resolves to.
type Descriptor struct {
	Digest    string
	MediaType string
	Size      int64
}

// Limits on what one report may make the service read. The registry client
// enforces the byte limits as it reads; ParseManifest checks a config's
// declared size before anything is fetched for it; CheckShape holds a
// manifest or index to the counts before anything of it is stored.
//
// The counts are chosen from what registries hold. Docker's overlay2
// driver refuses to mount more than 128 layers, so images people run
// stay under it; MaxLayers leaves twice that for images built by other
// tools. The largest indexes of Docker Hub's official images list a few
// dozen platform images, each with an attestation manifest beside it:
// MaxPlatforms platform images and MaxIndexManifests entries in all cover
// them twice over. Within these a report is at most about 8 MiB in memory
// (images' BenchmarkCachedReportsHeap: 7.3 MiB for MaxPlatforms images of
// MaxLayers layers with 120-byte commands), where a 64-platform index of
// 2,000-layer images was 50 MB.
const (
	MaxManifestBytes = 4 << 20
	MaxConfigBytes   = 4 << 20
	MaxPlatforms     = 64
	// MaxIndexManifests bounds an index's entries of any kind: platform
	// images, attestations and whatever else it lists.
	MaxIndexManifests = 128
	// MaxLayers bounds the layers of one platform image.
	MaxLayers = 256
)

// CheckShape refuses a manifest or index (of media type mt, already
// accepted by CheckMediaType) with more layers or entries than the limits
// above, with a message naming the limit and the count; what names the
// image. It reads only the counts, so it is cheap enough to run on every
// manifest a registry sends, before it is stored.
func CheckShape(mt string, body []byte, what string) error {
	switch {
	case IsIndex(mt):
		var idx struct {
			Manifests []struct{} `json:"manifests"`
		}
		if err := json.Unmarshal(body, &idx); err != nil {
			return Errorf(ErrUpstream, err, "%s is not a valid index", what)
		}
		if n := len(idx.Manifests); n > MaxIndexManifests {
			return Errorf(ErrUpstream, ErrUnsupportedContent, "%s lists %d manifests, more than the %d this service reads", what, n, MaxIndexManifests)
		}
	case IsImageManifest(mt):
		var m struct {
			Layers []struct{} `json:"layers"`
		}
		if err := json.Unmarshal(body, &m); err != nil {
			return Errorf(ErrUpstream, err, "%s is not a valid image manifest", what)
		}
		if n := len(m.Layers); n > MaxLayers {
			return Errorf(ErrUpstream, ErrUnsupportedContent, "%s has %d layers, more than the %d this service reads", what, n, MaxLayers)
		}
	}
	return nil
}

// IsIndex reports whether a media type is a multi-platform index.
func IsIndex(mt string) bool {
	return mt == string(types.OCIImageIndex) || mt == string(types.DockerManifestList)
}

// IsImageManifest reports whether a media type is a single-platform image manifest.
func IsImageManifest(mt string) bool {
	return mt == string(types.OCIManifestSchema1) || mt == string(types.DockerManifestSchema2)
}

// CheckMediaType refuses what this service cannot read, with a message that
// says why; what names the image for that message.
func CheckMediaType(mt string, what string) error {
	switch {
	case IsIndex(mt), IsImageManifest(mt):
		return nil
	case mt == string(types.DockerManifestSchema1), mt == string(types.DockerManifestSchema1Signed):
		return Errorf(ErrUpstream, ErrUnsupportedContent, "%s is a Docker schema 1 manifest, which is not supported (push it again with a current client)", what)
	default:
		return Errorf(ErrUpstream, ErrUnsupportedContent, "%s has media type %q, which is not an image manifest or index", what, truncate(mt, 100))
	}
}

// ParseIndex parses an index and keeps the platform images people pull:
// attestations and unknown/unknown entries are left out. It returns the
// index's own annotations, which its platform images inherit.
func ParseIndex(body []byte, what string) (annotations map[string]string, entries []v1.Descriptor, err error) {
	var idx v1.IndexManifest
	if err := json.Unmarshal(body, &idx); err != nil {
		return nil, nil, Errorf(ErrUpstream, err, "%s is not a valid index", what)
	}
	if len(idx.Manifests) > MaxIndexManifests {
		return nil, nil, Errorf(ErrUpstream, ErrUnsupportedContent, "%s lists %d manifests, more than the %d this service reads", what, len(idx.Manifests), MaxIndexManifests)
	}
	for _, d := range idx.Manifests {
		if !IsImageManifest(string(d.MediaType)) {
			continue
		}
		if _, ok := d.Annotations["vnd.docker.reference.type"]; ok {
			continue
		}
		if d.Platform == nil || d.Platform.OS == "" || d.Platform.OS == "unknown" || d.Platform.Architecture == "unknown" {
			continue
		}
		entries = append(entries, d)
	}
	if len(entries) > MaxPlatforms {
		return nil, nil, Errorf(ErrUpstream, nil, "%s lists %d platform images, more than the %d this service reads", what, len(entries), MaxPlatforms)
	}
	return idx.Annotations, entries, nil
}

// ParseManifest parses an image manifest and checks the declared config size
// before anything is fetched for it.
func ParseManifest(body []byte, what string) (*v1.Manifest, error) {
	var m v1.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, Errorf(ErrUpstream, err, "%s is not a valid image manifest", what)
	}
	if m.Config.Digest.Hex == "" {
		return nil, Errorf(ErrUpstream, nil, "%s has no config", what)
	}
	if len(m.Layers) > MaxLayers {
		return nil, Errorf(ErrUpstream, ErrUnsupportedContent, "%s has %d layers, more than the %d this service reads", what, len(m.Layers), MaxLayers)
	}
	if m.Config.Size < 0 || m.Config.Size > MaxConfigBytes {
		return nil, Errorf(ErrUpstream, nil, "%s declares a config of %d bytes, more than the %d MiB limit", what, m.Config.Size, MaxConfigBytes>>20)
	}
	return &m, nil
}

// platformString formats os/arch[/variant], the form used in URLs and badges.
func platformString(p v1.Platform) string {
	if p.OS == "" {
		p.OS = "unknown"
	}
	if p.Architecture == "" {
		p.Architecture = "unknown"
	}
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// NewReport assembles the digest-level report of an image from its platform
// images, ordered the way people read them (linux/amd64 first). The fields
// that depend on how the image was reached (Reference, Tag, Tags,
// CheckedAt) are the caller's.
func NewReport(repo Repository, digest, mediaType string, platforms []Platform) *Report {
	sortPlatforms(platforms)
	return &Report{
		Reference:  repo.WithDigest(digest).String(),
		Registry:   repo.Registry,
		Repository: repo.Name,
		Digest:     digest,
		MediaType:  mediaType,
		Tags:       []string{},
		Platforms:  platforms,
	}
}

// BuildPlatform assembles the report of one platform image from its
// manifest and config as the registry sent them; what names the image in
// error messages. plat is the index entry's platform when there is one (the
// config's own fields are used otherwise), and indexAnnotations the index's
// annotations, which the manifest's own override.
func BuildPlatform(digest, mediaType string, m *v1.Manifest, config []byte, plat *v1.Platform, indexAnnotations map[string]string, what string) (Platform, error) {
	if !IsImageManifest(mediaType) {
		return Platform{}, Errorf(ErrUpstream, nil, "%s is listed as a platform image but has media type %q", what, truncate(mediaType, 100))
	}
	var cfg v1.ConfigFile
	if err := json.Unmarshal(config, &cfg); err != nil {
		return Platform{}, Errorf(ErrUpstream, err, "the config of %s is not valid JSON", what)
	}
	return buildPlatform(digest, mediaType, m, &cfg, plat, indexAnnotations), nil
}

// buildPlatform assembles the report of one platform image from its manifest
// and config. plat is the index entry's platform when there is one; the
// config's own fields are used otherwise.
func buildPlatform(digest, mediaType string, m *v1.Manifest, cfg *v1.ConfigFile, plat *v1.Platform, indexAnnotations map[string]string) Platform {
	p := Platform{
		Digest:       digest,
		MediaType:    mediaType,
		ConfigDigest: m.Config.Digest.String(),
		LayerCount:   len(m.Layers),
		Labels:       map[string]string{},
		Annotations:  m.Annotations,
	}
	os, arch, variant := cfg.OS, cfg.Architecture, cfg.Variant
	if plat != nil {
		os, arch, variant = plat.OS, plat.Architecture, plat.Variant
	}
	p.OS, p.Architecture, p.Variant = os, arch, variant
	p.Platform = platformString(v1.Platform{OS: os, Architecture: arch, Variant: variant})
	if !cfg.Created.IsZero() {
		t := cfg.Created.UTC()
		p.Created = &t
	}
	if cfg.Config.Labels != nil {
		p.Labels = cfg.Config.Labels
	}
	p.Author = cfg.Author

	seen := make(map[string]bool, len(m.Layers))
	for _, l := range m.Layers {
		if d := l.Digest.String(); !seen[d] {
			seen[d] = true
			p.DownloadSize += l.Size
		}
	}

	for _, d := range cfg.RootFS.DiffIDs {
		p.DiffIDs = append(p.DiffIDs, d.String())
	}
	history := nonEmptyHistory(cfg.History)
	p.Layers = make([]Layer, len(m.Layers))
	for i, l := range m.Layers {
		layer := Layer{Digest: l.Digest.String(), Size: l.Size, MediaType: string(l.MediaType)}
		// Pair by position only while both lists describe the same layers; a
		// config whose diff_ids do not line up with the manifest gives no diffIDs.
		if len(p.DiffIDs) == len(m.Layers) {
			layer.DiffID = p.DiffIDs[i]
		}
		if i < len(history) {
			layer.CreatedBy = history[i].CreatedBy
			if !history[i].Created.IsZero() {
				t := history[i].Created.UTC()
				layer.Created = &t
			}
		}
		p.Layers[i] = layer
	}

	p.Metadata = mergeMetadata(mergeAnnotations(indexAnnotations, m.Annotations), p.Labels)
	return p
}

func nonEmptyHistory(h []v1.History) []v1.History {
	out := make([]v1.History, 0, len(h))
	for _, e := range h {
		if !e.EmptyLayer {
			out = append(out, e)
		}
	}
	return out
}

// mergeAnnotations gives the platform manifest's annotations precedence over
// the index's.
func mergeAnnotations(index, manifest map[string]string) map[string]string {
	if len(index) == 0 {
		return manifest
	}
	out := make(map[string]string, len(index)+len(manifest))
	for k, v := range index {
		out[k] = v
	}
	for k, v := range manifest {
		out[k] = v
	}
	return out
}

// sortPlatforms orders platform images the way people expect to read them,
// linux/amd64 first, then alphabetically.
func sortPlatforms(ps []Platform) {
	slices.SortStableFunc(ps, func(a, b Platform) int {
		if a.Platform == "linux/amd64" && b.Platform != "linux/amd64" {
			return -1
		}
		if b.Platform == "linux/amd64" && a.Platform != "linux/amd64" {
			return 1
		}
		return strings.Compare(a.Platform, b.Platform)
	})
}

// Select returns the platform image a badge or a single-platform view should
// describe: the one matching want ("os/arch[/variant]"), else linux/amd64,
// else the first. ok is false when want is given and nothing matches.
func (r *Report) Select(want string) (p *Platform, ok bool) {
	if len(r.Platforms) == 0 {
		return nil, false
	}
	if want != "" {
		for i := range r.Platforms {
			if r.Platforms[i].Platform == want {
				return &r.Platforms[i], true
			}
		}
		// "linux/arm64" matches "linux/arm64/v8", as docker does.
		for i := range r.Platforms {
			if strings.HasPrefix(r.Platforms[i].Platform, want+"/") {
				return &r.Platforms[i], true
			}
		}
		return nil, false
	}
	for i := range r.Platforms {
		if r.Platforms[i].Platform == "linux/amd64" {
			return &r.Platforms[i], true
		}
	}
	return &r.Platforms[0], true
}

// Clone returns a copy of r that can be changed (tags, parents, reference)
// without touching r; layers, labels and other read-only parts are shared.
func (r *Report) Clone() *Report {
	c := *r
	if r.RepositoryInfo != nil {
		ri := *r.RepositoryInfo
		c.RepositoryInfo = &ri
	}
	// slices.Clone keeps an empty list empty (not nil): the JSON says [] for
	// it, as docs/openapi.yaml wants, where nil would say null. A report read
	// while its tag is deleted or moved can have no tag sharing its digest.
	c.Tags = slices.Clone(r.Tags)
	c.Platforms = slices.Clone(r.Platforms)
	for i := range c.Platforms {
		if p := c.Platforms[i].Parent; p != nil {
			cp := *p
			cp.Tags = slices.Clone(p.Tags)
			cp.MovedTags = slices.Clone(p.MovedTags)
			c.Platforms[i].Parent = &cp
		}
	}
	return &c
}
