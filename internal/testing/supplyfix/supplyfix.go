// Package supplyfix builds and pushes images shaped as BuildKit pushes them
// with attestations: an index of platform images, each with an attestation
// manifest in the index holding an in-toto SLSA provenance and an SPDX
// SBOM, for the tests of the supply chain, of provenance as a parent
// method, and of the pages and API that show them. Field names follow
// BuildKit's docs/attestations/slsa-definitions.md and SPDX 2.3.
package supplyfix

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Material is one input the provenance lists.
type Material struct {
	URI    string
	Digest string // sha256:…
}

// Platform is one platform image of the index.
type Platform struct {
	OS, Architecture string
	// Base is the image the platform image is built on (its layers come
	// first); nil builds from scratch.
	Base v1.Image
	// Layers is how many random layers go on top (at least 1).
	Layers int
	// Materials are the provenance's materials.
	Materials []Material
}

// Options describes the image to push.
type Options struct {
	Platforms []Platform
	// SBOMPackages is how many packages the SPDX SBOM lists (pkg-0 …), each
	// with version 1.<i>, purl pkg:generic/pkg-<i>@1.<i> and license MIT.
	SBOMPackages int
	// ProvenanceV1 writes SLSA v1 (resolvedDependencies, buildkit_metadata)
	// instead of v0.2 (materials, the URL-named metadata key).
	ProvenanceV1 bool
	// Source and Revision are the provenance's vcs hints.
	Source, Revision string
	// NoAttestations leaves the attestation manifests out: the same index
	// as a build without them makes it.
	NoAttestations bool
}

// Pushed is what was pushed.
type Pushed struct {
	Index string
	// Platforms maps "os/arch" to the platform image's digest.
	Platforms map[string]string
	// Images maps "os/arch" to the platform image.
	Images map[string]v1.Image
}

// Push builds the image o describes and pushes it to ref.
func Push(t testing.TB, ref string, o Options) *Pushed {
	t.Helper()
	idx, p, err := Index(o)
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(r, idx, remote.WithAuth(authn.Anonymous)); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return p
}

// Index builds the index o describes, for a caller that is not a test
// (the benchmarks) or pushes it its own way.
func Index(o Options) (v1.ImageIndex, *Pushed, error) {
	p := &Pushed{Platforms: map[string]string{}, Images: map[string]v1.Image{}}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, pl := range o.Platforms {
		img, err := build(pl)
		if err != nil {
			return nil, nil, err
		}
		d, err := img.Digest()
		if err != nil {
			return nil, nil, err
		}
		plat := pl.OS + "/" + pl.Architecture
		p.Platforms[plat], p.Images[plat] = d.String(), img
		idx = mutate.AppendManifests(idx,
			mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: pl.OS, Architecture: pl.Architecture}}})
		if o.NoAttestations {
			continue
		}
		att := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
		predType, prov := provenance(pl, o)
		att, err = mutate.Append(att,
			mutate.Addendum{Layer: static.NewLayer(statement(predType, d.String(), prov), "application/vnd.in-toto+json"),
				Annotations: map[string]string{"in-toto.io/predicate-type": predType}},
			mutate.Addendum{Layer: static.NewLayer(statement("https://spdx.dev/Document", d.String(), SPDX(o.SBOMPackages)), "application/vnd.in-toto+json"),
				Annotations: map[string]string{"in-toto.io/predicate-type": "https://spdx.dev/Document"}})
		if err != nil {
			return nil, nil, err
		}
		idx = mutate.AppendManifests(idx,
			mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{
				Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"},
				Annotations: map[string]string{
					"vnd.docker.reference.type":   "attestation-manifest",
					"vnd.docker.reference.digest": d.String(),
				},
			}})
	}
	d, err := idx.Digest()
	if err != nil {
		return nil, nil, err
	}
	p.Index = d.String()
	return idx, p, nil
}

func build(pl Platform) (v1.Image, error) {
	base := pl.Base
	if base == nil {
		base = mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	}
	n := max(pl.Layers, 1)
	var layers []v1.Layer
	for range n {
		l, err := random.Layer(256, types.OCILayer)
		if err != nil {
			return nil, err
		}
		layers = append(layers, l)
	}
	img, err := mutate.AppendLayers(base, layers...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = pl.OS, pl.Architecture
	return mutate.ConfigFile(img, cf)
}

func statement(predicateType, subject, predicate string) []byte {
	return []byte(`{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"` + predicateType + `",` +
		`"subject":[{"name":"pkg:docker/app","digest":{"sha256":"` + strings.TrimPrefix(subject, "sha256:") + `"}}],"predicate":` + predicate + `}`)
}

func provenance(pl Platform, o Options) (predicateType, predicate string) {
	var ms []string
	for _, m := range pl.Materials {
		ms = append(ms, `{"uri":"`+m.URI+`","digest":{"sha256":"`+strings.TrimPrefix(m.Digest, "sha256:")+`"}}`)
	}
	materials := "[" + strings.Join(ms, ",") + "]"
	vcs := `{"vcs":{"source":"` + o.Source + `","revision":"` + o.Revision + `"}}`
	if o.ProvenanceV1 {
		return "https://slsa.dev/provenance/v1", `{"buildDefinition":{"buildType":"https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md",` +
			`"externalParameters":{"request":{"frontend":"dockerfile.v0"}},"resolvedDependencies":` + materials + `},` +
			`"runDetails":{"builder":{"id":"https://ci.example/run/1"},"metadata":{"buildkit_metadata":` + vcs + `}}}`
	}
	return "https://slsa.dev/provenance/v0.2", `{"builder":{"id":"https://ci.example/run/1"},"buildType":"https://mobyproject.org/buildkit@v1",` +
		`"materials":` + materials + `,"invocation":{"parameters":{"frontend":"dockerfile.v0"}},` +
		`"metadata":{"https://mobyproject.org/buildkit@v1#metadata":` + vcs + `}}`
}

// SPDX is an SPDX 2.3 document of n packages, as Push writes it.
func SPDX(n int) string {
	var b strings.Builder
	b.WriteString(`{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","creationInfo":{"creators":["Tool: buildkit-syft-scanner-1.4.0"]},"packages":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"SPDXID":"SPDXRef-%d","name":"pkg-%d","versionInfo":"1.%d","licenseDeclared":"MIT",`+
			`"externalRefs":[{"referenceCategory":"PACKAGE-MANAGER","referenceType":"purl","referenceLocator":"pkg:generic/pkg-%d@1.%d"}]}`, i, i, i, i, i)
	}
	b.WriteString(`]}`)
	return b.String()
}
