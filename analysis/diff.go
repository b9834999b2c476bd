package analysis

import (
	"fmt"
	"net/url"
	"strings"
)

// Diff is what changed between two platform images, the answer of GET
// /api/v1/diff: the longest common prefix of their layer lists (by diffID),
// the layers after it on each side, the deltas, the metadata that differs,
// both parents and, where the forge allows, a link to the source changes.
// It is computed from manifests and configs only.
type Diff struct {
	From     DiffSide `json:"from"`
	To       DiffSide `json:"to"`
	Platform string   `json:"platform"`
	Shared   Shared   `json:"shared"`
	// Removed are the from image's layers after the shared prefix, Added the
	// to image's, base first; both empty (never null) for identical images.
	Removed         []DiffLayer  `json:"removed"`
	Added           []DiffLayer  `json:"added"`
	SizeDelta       int64        `json:"sizeDelta"`
	LayerCountDelta int          `json:"layerCountDelta"`
	Metadata        MetadataDiff `json:"metadata"`
	Parent          DiffParents  `json:"parent"`
	CompareURL      string       `json:"compareUrl,omitempty"`
}

// DiffSide names one of the two compared images: the reference asked for,
// what it resolved to, and the platform manifest compared.
type DiffSide struct {
	Reference      string `json:"reference"`
	Digest         string `json:"digest"`
	PlatformDigest string `json:"platformDigest"`
}

// Shared is the common prefix of two layer lists.
type Shared struct {
	LayerCount int `json:"layerCount"`
	// Size is the compressed size of the shared layers, as the to image
	// stores them.
	Size int64 `json:"size"`
}

// DiffLayer is one layer of a diff's removed or added list.
type DiffLayer struct {
	Digest    string `json:"digest"`
	DiffID    string `json:"diffId,omitempty"`
	Size      int64  `json:"size"`
	CreatedBy string `json:"createdBy,omitempty"`
}

// MetadataDiff holds the metadata keys whose values differ; the others are
// nil and left out of the JSON.
type MetadataDiff struct {
	Version       *ValueChange `json:"version,omitempty"`
	Revision      *ValueChange `json:"revision,omitempty"`
	Source        *ValueChange `json:"source,omitempty"`
	Licenses      *ValueChange `json:"licenses,omitempty"`
	Title         *ValueChange `json:"title,omitempty"`
	Description   *ValueChange `json:"description,omitempty"`
	URL           *ValueChange `json:"url,omitempty"`
	Vendor        *ValueChange `json:"vendor,omitempty"`
	Created       *ValueChange `json:"created,omitempty"`
	Documentation *ValueChange `json:"documentation,omitempty"`
}

// ValueChange is one metadata value on each side; nil where a side has none.
type ValueChange struct {
	From *string `json:"from"`
	To   *string `json:"to"`
}

// Changes lists the differing keys with their changes, in the order of
// docs/API.md's metadata, for pages and terminals.
func (m MetadataDiff) Changes() []KeyChange {
	var out []KeyChange
	for _, k := range []struct {
		key string
		v   *ValueChange
	}{
		{"version", m.Version}, {"revision", m.Revision}, {"source", m.Source}, {"licenses", m.Licenses},
		{"title", m.Title}, {"description", m.Description}, {"url", m.URL}, {"vendor", m.Vendor},
		{"created", m.Created}, {"documentation", m.Documentation},
	} {
		if k.v != nil {
			out = append(out, KeyChange{Key: k.key, From: deref(k.v.From), To: deref(k.v.To)})
		}
	}
	return out
}

// KeyChange is one changed metadata key; an empty side had no value.
type KeyChange struct {
	Key, From, To string
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// DiffParents is each side's parent as the image report gives it.
type DiffParents struct {
	From *Parent `json:"from"`
	To   *Parent `json:"to"`
}

// DiffPlatforms compares two platform images. The shared prefix is found
// by diffID (the uncompressed layer, what a rebuild on the same base keeps)
// and, where a side's config does not line up its diffIDs, by blob digest.
// It allocates the removed and added lists and the changed metadata, and
// nothing per shared layer.
func DiffPlatforms(from, to *Platform) Diff {
	n := 0
	for n < len(from.Layers) && n < len(to.Layers) && sameLayer(&from.Layers[n], &to.Layers[n]) {
		n++
	}
	d := Diff{
		From:            DiffSide{PlatformDigest: from.Digest},
		To:              DiffSide{PlatformDigest: to.Digest},
		Platform:        to.Platform,
		Shared:          Shared{LayerCount: n},
		Removed:         diffLayers(from.Layers[n:]),
		Added:           diffLayers(to.Layers[n:]),
		SizeDelta:       to.DownloadSize - from.DownloadSize,
		LayerCountDelta: to.LayerCount - from.LayerCount,
		Metadata:        diffMetadata(&from.Metadata, &to.Metadata),
		Parent:          DiffParents{From: from.Parent, To: to.Parent},
		CompareURL:      CompareURL(from.Metadata, to.Metadata),
	}
	for i := range n {
		d.Shared.Size += to.Layers[i].Size
	}
	return d
}

func sameLayer(a, b *Layer) bool {
	if a.DiffID != "" && b.DiffID != "" {
		return a.DiffID == b.DiffID
	}
	return a.Digest == b.Digest
}

func diffLayers(ls []Layer) []DiffLayer {
	out := make([]DiffLayer, len(ls))
	for i := range ls {
		l := &ls[i]
		out[i] = DiffLayer{Digest: l.Digest, DiffID: l.DiffID, Size: l.Size, CreatedBy: l.CreatedBy}
	}
	return out
}

func diffMetadata(a, b *Metadata) MetadataDiff {
	return MetadataDiff{
		Version: valueChange(a.Version, b.Version), Revision: valueChange(a.Revision, b.Revision),
		Source: valueChange(a.Source, b.Source), Licenses: valueChange(a.Licenses, b.Licenses),
		Title: valueChange(a.Title, b.Title), Description: valueChange(a.Description, b.Description),
		URL: valueChange(a.URL, b.URL), Vendor: valueChange(a.Vendor, b.Vendor),
		Created: valueChange(a.Created, b.Created), Documentation: valueChange(a.Documentation, b.Documentation),
	}
}

// valueChange is nil for equal values, else one allocation holding both.
func valueChange(from, to string) *ValueChange {
	if from == to {
		return nil
	}
	c := &struct {
		ValueChange
		from, to string
	}{from: from, to: to}
	if c.from != "" {
		c.From = &c.from
	}
	if c.to != "" {
		c.To = &c.to
	}
	return &c.ValueChange
}

// DefaultDiffPlatform is the platform a diff compares unless told otherwise.
const DefaultDiffPlatform = "linux/amd64"

// DiffImages compares the platform want ("os/arch[/variant]") of two image
// reports; without want, linux/amd64, or the only platform of two
// single-platform images of the same platform. A side without the platform
// is an error of kind ErrInvalidRequest whose message says what each side
// has. The sides are named by the reports' references.
func DiffImages(from, to *Report, want string) (Diff, error) {
	var fp, tp *Platform
	switch {
	case want != "":
		var ok bool
		if fp, ok = from.Select(want); !ok {
			return Diff{}, missingPlatform(from, want)
		}
		if tp, ok = to.Select(want); !ok {
			return Diff{}, missingPlatform(to, want)
		}
	case hasPlatform(from, DefaultDiffPlatform) && hasPlatform(to, DefaultDiffPlatform):
		fp, _ = from.Select(DefaultDiffPlatform)
		tp, _ = to.Select(DefaultDiffPlatform)
	case len(from.Platforms) == 1 && len(to.Platforms) == 1 && from.Platforms[0].Platform == to.Platforms[0].Platform:
		fp, tp = &from.Platforms[0], &to.Platforms[0]
	case !hasPlatform(from, DefaultDiffPlatform):
		return Diff{}, missingPlatform(from, DefaultDiffPlatform)
	default:
		return Diff{}, missingPlatform(to, DefaultDiffPlatform)
	}
	d := DiffPlatforms(fp, tp)
	d.From.Reference, d.From.Digest = from.Reference, from.Digest
	d.To.Reference, d.To.Digest = to.Reference, to.Digest
	return d, nil
}

func hasPlatform(r *Report, p string) bool {
	for i := range r.Platforms {
		if r.Platforms[i].Platform == p {
			return true
		}
	}
	return false
}

func missingPlatform(r *Report, want string) error {
	names := make([]string, len(r.Platforms))
	for i, p := range r.Platforms {
		names[i] = p.Platform
	}
	has := "no platform images"
	if len(names) > 0 {
		has = strings.Join(names, ", ")
	}
	return Errorf(ErrInvalidRequest, nil, "%s has no %s image (it has %s); pass platform= to compare another one", r.Reference, want, has)
}

// ForgeRepository parses a source URL as images label it (https://, git+https://,
// git@host:path, with or without .git) into a forge host, lower-case and
// without www., and the repository's path ("/owner/repo"); ok is false
// for anything that names no repository on a host.
func ForgeRepository(source string) (host, path string, ok bool) {
	src := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(source), "git+"))
	if rest, found := strings.CutPrefix(src, "git@"); found {
		h, p, found := strings.Cut(rest, ":")
		if !found {
			return "", "", false
		}
		src = "https://" + h + "/" + p
	}
	u, err := url.Parse(src)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http" && u.Scheme != "ssh" && u.Scheme != "git") || u.Host == "" {
		return "", "", false
	}
	host = strings.TrimPrefix(strings.ToLower(u.Hostname()), "www.")
	p := u.Path
	if i := strings.Index(p, "/-/"); i >= 0 { // GitLab's /-/tree/main and the like
		p = p[:i]
	}
	parts := strings.FieldsFunc(p, func(r rune) bool { return r == '/' })
	if host == "github.com" || host == "codeberg.org" {
		if len(parts) > 2 { // /owner/repo/tree/main
			parts = parts[:2]
		}
	}
	if len(parts) < 2 {
		return "", "", false
	}
	parts[len(parts)-1] = strings.TrimSuffix(parts[len(parts)-1], ".git")
	return host, "/" + strings.Join(parts, "/"), true
}

// CompareURL links two revisions of the same repository on GitHub, GitLab
// or Codeberg to the forge's compare page; "" when a revision is missing,
// the sources differ or the forge is another.
func CompareURL(from, to Metadata) string {
	if from.Revision == "" || to.Revision == "" {
		return ""
	}
	h1, p1, ok1 := ForgeRepository(from.Source)
	h2, p2, ok2 := ForgeRepository(to.Source)
	if !ok1 || !ok2 || h1 != h2 || !strings.EqualFold(p1, p2) {
		return ""
	}
	var compare string
	switch h1 {
	case "github.com", "codeberg.org":
		compare = "/compare/"
	case "gitlab.com":
		compare = "/-/compare/"
	default:
		return ""
	}
	return fmt.Sprintf("https://%s%s%s%s...%s", h1, p2, compare, url.PathEscape(from.Revision), url.PathEscape(to.Revision))
}
