package analysis

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// SupplyChain is what an image's signatures and attestations say of it, as
// docs/API.md's "Supply chain" defines it: who signed it, what is in it (the
// SBOM) and how it was built (the provenance).
type SupplyChain struct {
	Signatures   []Signature   `json:"signatures"`
	Attestations []Attestation `json:"attestations"`
	SBOM         *SBOMSummary  `json:"sbom"`
	Provenance   *Provenance   `json:"provenance"`
}

// Signature is one signature found for a platform image. Verified is nil
// when no trust rule applies, so "not checked" is never shown as "bad".
type Signature struct {
	Format   string `json:"format"`
	Digest   string `json:"digest"`
	FoundBy  string `json:"foundBy"`
	Verified *bool  `json:"verified"`
	Signer   string `json:"signer,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// Attestation is one in-toto statement found for a platform image.
type Attestation struct {
	PredicateType string `json:"predicateType"`
	Kind          string `json:"kind"`
	Digest        string `json:"digest"`
	FoundBy       string `json:"foundBy"`
}

// SBOMSummary is what the report says of an SBOM; its packages are served
// page by page on their own route, since an SBOM can list thousands.
type SBOMSummary struct {
	Format    string `json:"format"`
	Packages  int    `json:"packages"`
	Generator string `json:"generator"`
}

// Provenance is what a SLSA provenance says of how the image was built.
type Provenance struct {
	PredicateType string     `json:"predicateType"`
	Builder       string     `json:"builder"`
	Source        string     `json:"source"`
	Revision      string     `json:"revision"`
	Materials     []Material `json:"materials"`
}

// Material is one input of a build: an image, a Git repository, a file.
type Material struct {
	URI    string `json:"uri"`
	Digest string `json:"digest"`
}

// SBOM is the package list of an SBOM document, whichever format it came in.
type SBOM struct {
	Format    string    `json:"format"`
	Generator string    `json:"generator"`
	Packages  []Package `json:"packages"`
}

// Package is one package an SBOM lists.
type Package struct {
	Name     string   `json:"name"`
	Version  string   `json:"version"`
	Purl     string   `json:"purl"`
	Licenses []string `json:"licenses"`
}

// Where a signature or attestation was found, and of which format a
// signature is; the words of docs/API.md.
const (
	FoundByIndex     = "index"
	FoundByReferrers = "referrers"
	FoundByTag       = "tag"

	SignatureCosign   = "cosign"
	SignatureBundle   = "sigstore-bundle"
	SignatureNotation = "notation"

	KindProvenance = "provenance"
	KindSBOM       = "sbom"
	KindVEX        = "vex"
	KindOther      = "other"

	SBOMSPDX      = "spdx"
	SBOMCycloneDX = "cyclonedx"
)

// Predicate types the service reads.
const (
	PredicateSLSAv02   = "https://slsa.dev/provenance/v0.2"
	PredicateSLSAv1    = "https://slsa.dev/provenance/v1"
	PredicateSPDX      = "https://spdx.dev/Document"
	PredicateCycloneDX = "https://cyclonedx.org/bom"
)

// Limits on what the supply chain of one platform image may make the
// service read and keep. SBOMs of large images run to megabytes; one larger
// than MaxAttestationBytes is listed but not read.
const (
	MaxAttestationBytes = 16 << 20
	// MaxSBOMPackages bounds the packages kept of one SBOM.
	MaxSBOMPackages = 50000
	// MaxMaterials bounds the materials kept of one provenance.
	MaxMaterials = 1000
	// MaxSupplyItems bounds the signatures and attestations listed for one
	// platform image.
	MaxSupplyItems = 64
)

// Annotations and media types by which attestations and signatures are
// recognised in indexes and manifests.
const (
	AnnotationReferenceType   = "vnd.docker.reference.type"
	AnnotationReferenceDigest = "vnd.docker.reference.digest"
	ReferenceTypeAttestation  = "attestation-manifest"
	AnnotationPredicateType   = "in-toto.io/predicate-type"
	// AnnotationCosignSignature carries a cosign signature on its layer.
	AnnotationCosignSignature = "dev.cosignproject.cosign/signature"
	// A keyless cosign signature's layer also carries its certificate
	// (PEM), the certificate's chain, the Rekor entry that logged it (a
	// "bundle" of cosign's own, not a sigstore bundle) and an RFC 3161
	// timestamp.
	AnnotationCosignCertificate = "dev.sigstore.cosign/certificate"
	AnnotationCosignChain       = "dev.sigstore.cosign/chain"
	AnnotationCosignBundle      = "dev.sigstore.cosign/bundle"
	AnnotationCosignTimestamp   = "dev.sigstore.cosign/rfc3161timestamp"

	MediaTypeInToto          = "application/vnd.in-toto+json"
	MediaTypeDSSE            = "application/vnd.dsse.envelope.v1+json"
	MediaTypeCosignSimple    = "application/vnd.dev.cosign.simplesigning.v1+json"
	MediaTypeSigstoreBundle  = "application/vnd.dev.sigstore.bundle.v0.3+json"
	MediaTypeNotation        = "application/vnd.cncf.notary.signature"
	MediaTypeCosignArtifact  = "application/vnd.dev.cosign.artifact.sig.v1+json"
	MediaTypeSPDXJSON        = "text/spdx+json"
	MediaTypeCycloneDXJSON   = "application/vnd.cyclonedx+json"
	sigstoreBundleTypePrefix = "application/vnd.dev.sigstore.bundle"
)

// AttestationKind classifies a predicate type for the report.
func AttestationKind(predicateType string) string {
	switch {
	case strings.HasPrefix(predicateType, "https://slsa.dev/provenance/"):
		return KindProvenance
	case strings.HasPrefix(predicateType, "https://spdx.dev/Document"), strings.HasPrefix(predicateType, "https://cyclonedx.org/bom"):
		return KindSBOM
	case strings.HasPrefix(predicateType, "https://openvex.dev/ns"), predicateType == "https://cyclonedx.org/vex":
		return KindVEX
	}
	return KindOther
}

// SignatureFormat says which kind of signature an artifact of that type (a
// referrer's artifactType, or its config's media type) is; ok is false for
// anything that is not a signature.
func SignatureFormat(artifactType string) (format string, ok bool) {
	switch {
	case strings.HasPrefix(artifactType, sigstoreBundleTypePrefix):
		return SignatureBundle, true
	case artifactType == MediaTypeNotation:
		return SignatureNotation, true
	case artifactType == MediaTypeCosignArtifact, artifactType == MediaTypeCosignSimple:
		return SignatureCosign, true
	}
	return "", false
}

// AttestationManifests returns the attestation manifests an index holds
// (BuildKit's way), keyed by the digest of the platform image each describes.
func AttestationManifests(index []byte) map[string][]v1.Descriptor {
	var idx v1.IndexManifest
	if json.Unmarshal(index, &idx) != nil {
		return nil
	}
	out := map[string][]v1.Descriptor{}
	for _, d := range idx.Manifests {
		if d.Annotations[AnnotationReferenceType] != ReferenceTypeAttestation {
			continue
		}
		subject := d.Annotations[AnnotationReferenceDigest]
		if _, err := v1.NewHash(subject); err != nil {
			continue
		}
		if len(out[subject]) < MaxSupplyItems {
			out[subject] = append(out[subject], d)
		}
	}
	return out
}

// Statement is an in-toto statement: what is claimed (the predicate) about
// which artifacts (the subjects).
type Statement struct {
	Type          string          `json:"_type"`
	PredicateType string          `json:"predicateType"`
	Subject       []Subject       `json:"subject"`
	Predicate     json.RawMessage `json:"predicate"`
}

// Subject names an artifact by name and digests.
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// inTotoStatementTypes are the statement types of in-toto's v0.1 and v1.
var inTotoStatementTypes = []string{"https://in-toto.io/Statement/v0.1", "https://in-toto.io/Statement/v1"}

// ParseStatement reads an in-toto statement, bare (as BuildKit stores it)
// or in a DSSE envelope (as cosign attests). what names it in errors.
func ParseStatement(body []byte, what string) (*Statement, error) {
	if len(body) > MaxAttestationBytes {
		return nil, Errorf(ErrUpstream, nil, "%s is larger than the %d MiB limit", what, MaxAttestationBytes>>20)
	}
	if payload, ok, err := envelopePayload(body, what); err != nil {
		return nil, err
	} else if ok {
		body = payload
	}
	var st Statement
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, Errorf(ErrUpstream, err, "%s is not an in-toto statement", what)
	}
	if !slices.Contains(inTotoStatementTypes, st.Type) {
		return nil, Errorf(ErrUpstream, nil, "%s has statement type %q, not in-toto's", what, truncate(st.Type, 100))
	}
	if st.PredicateType == "" {
		return nil, Errorf(ErrUpstream, nil, "%s has no predicate type", what)
	}
	return &st, nil
}

// envelope is a DSSE envelope; its signatures are trust's concern.
type envelope struct {
	PayloadType string `json:"payloadType"`
	Payload     string `json:"payload"`
}

// envelopePayload returns the payload of a DSSE envelope; ok is false when
// body is not one.
func envelopePayload(body []byte, what string) (payload []byte, ok bool, err error) {
	if !bytes.Contains(body, []byte(`"payloadType"`)) {
		return nil, false, nil
	}
	var env envelope
	if json.Unmarshal(body, &env) != nil || env.PayloadType == "" {
		return nil, false, nil
	}
	if env.PayloadType != "application/vnd.in-toto+json" {
		return nil, false, Errorf(ErrUpstream, nil, "%s is an envelope of %q, not of an in-toto statement", what, truncate(env.PayloadType, 100))
	}
	p, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return nil, false, Errorf(ErrUpstream, err, "%s has a payload that is not base64", what)
	}
	return p, true, nil
}

// slsaDigest is a DigestSet of SLSA: algorithm → hex.
type slsaDigest map[string]string

// best returns the digest in the form the rest of the service uses,
// "sha256:hex" when there is one, else any algorithm (sorted, so the
// choice is stable).
func (d slsaDigest) best() string {
	if h, ok := d["sha256"]; ok {
		return "sha256:" + h
	}
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if len(keys) == 0 {
		return ""
	}
	return keys[0] + ":" + d[keys[0]]
}

type slsaResource struct {
	URI    string     `json:"uri"`
	Digest slsaDigest `json:"digest"`
}

// buildkitMetadata is BuildKit's extension: under
// "https://mobyproject.org/buildkit@v1#metadata" in its first provenance
// generation, "buildkit_metadata" in the later one.
type buildkitMetadata struct {
	VCS struct {
		Source   string `json:"source"`
		Revision string `json:"revision"`
	} `json:"vcs"`
}

type slsaMetadata struct {
	Old *buildkitMetadata `json:"https://mobyproject.org/buildkit@v1#metadata"`
	New *buildkitMetadata `json:"buildkit_metadata"`
}

func (m slsaMetadata) vcs() (source, revision string) {
	for _, b := range []*buildkitMetadata{m.New, m.Old} {
		if b != nil && b.VCS.Source != "" {
			return b.VCS.Source, b.VCS.Revision
		}
	}
	return "", ""
}

type slsaV02 struct {
	Builder struct {
		ID string `json:"id"`
	} `json:"builder"`
	Invocation struct {
		ConfigSource slsaResource `json:"configSource"`
	} `json:"invocation"`
	Materials []slsaResource `json:"materials"`
	Metadata  slsaMetadata   `json:"metadata"`
}

type slsaV1 struct {
	BuildDefinition struct {
		ExternalParameters struct {
			ConfigSource slsaResource `json:"configSource"`
			// GitHub's generic workflow provenance names its source here.
			Workflow struct {
				Repository string `json:"repository"`
			} `json:"workflow"`
		} `json:"externalParameters"`
		ResolvedDependencies []slsaResource `json:"resolvedDependencies"`
	} `json:"buildDefinition"`
	RunDetails struct {
		Builder struct {
			ID string `json:"id"`
		} `json:"builder"`
		Metadata slsaMetadata `json:"metadata"`
	} `json:"runDetails"`
}

// ParseProvenance reads a SLSA provenance predicate, v0.2 (`materials`)
// or v1 (`buildDefinition.resolvedDependencies`). The source and revision
// come from the config source when the build started from a repository, else
// from BuildKit's vcs hints.
func ParseProvenance(predicateType string, predicate []byte, what string) (*Provenance, error) {
	if len(predicate) > MaxAttestationBytes {
		return nil, Errorf(ErrUpstream, nil, "%s is larger than the %d MiB limit", what, MaxAttestationBytes>>20)
	}
	p := &Provenance{PredicateType: predicateType, Materials: []Material{}}
	var config slsaResource
	var meta slsaMetadata
	var materials []slsaResource
	switch {
	case strings.HasPrefix(predicateType, "https://slsa.dev/provenance/v0."):
		var v slsaV02
		if err := json.Unmarshal(predicate, &v); err != nil {
			return nil, Errorf(ErrUpstream, err, "%s is not a SLSA v0.2 provenance", what)
		}
		p.Builder, config, meta, materials = v.Builder.ID, v.Invocation.ConfigSource, v.Metadata, v.Materials
	case strings.HasPrefix(predicateType, "https://slsa.dev/provenance/v1"):
		var v slsaV1
		if err := json.Unmarshal(predicate, &v); err != nil {
			return nil, Errorf(ErrUpstream, err, "%s is not a SLSA v1 provenance", what)
		}
		p.Builder, config, meta, materials = v.RunDetails.Builder.ID, v.BuildDefinition.ExternalParameters.ConfigSource, v.RunDetails.Metadata, v.BuildDefinition.ResolvedDependencies
		if config.URI == "" && v.BuildDefinition.ExternalParameters.Workflow.Repository != "" {
			config.URI = v.BuildDefinition.ExternalParameters.Workflow.Repository
		}
	default:
		return nil, Errorf(ErrUpstream, nil, "%s has predicate type %q, not a SLSA provenance", what, truncate(predicateType, 100))
	}
	if config.URI != "" {
		p.Source = config.URI
		if rev, ok := config.Digest["sha1"]; ok {
			p.Revision = rev
		} else if rev, ok := config.Digest["gitCommit"]; ok {
			p.Revision = rev
		}
	}
	if src, rev := meta.vcs(); p.Source == "" || p.Revision == "" {
		if p.Source == "" {
			p.Source = src
		}
		if p.Revision == "" {
			p.Revision = rev
		}
	}
	if p.Source == "" {
		// A build that names no config source lists its repository among
		// the materials, a Git URI with its commit.
		for _, m := range materials {
			rev := m.Digest["gitCommit"]
			if rev == "" {
				rev = m.Digest["sha1"]
			}
			if rev != "" && (strings.HasPrefix(m.URI, "git+") || strings.HasPrefix(m.URI, "https://")) {
				p.Source, p.Revision = strings.TrimPrefix(m.URI, "git+"), rev
				break
			}
		}
	}
	// A Git source carries its ref after '#'; the repository is what is shown.
	if i := strings.IndexByte(p.Source, '#'); i >= 0 {
		p.Source = p.Source[:i]
	}
	p.Source = strings.TrimSuffix(p.Source, ".git")
	for _, m := range materials {
		if len(p.Materials) == MaxMaterials {
			break
		}
		p.Materials = append(p.Materials, Material{URI: m.URI, Digest: m.Digest.best()})
	}
	return p, nil
}

// ImageMaterial is a provenance material that names a container image.
type ImageMaterial struct {
	Ref      Reference
	Platform string
}

// ParseImageMaterial reads a material's package URL of type docker
// ("pkg:docker/alpine@3.20?platform=linux%2Famd64", as BuildKit writes them),
// with the material's digest as the image's; ok is false for anything
// else (Git sources, HTTP files, a material without a sha256 digest).
func ParseImageMaterial(m Material) (ImageMaterial, bool) {
	rest, ok := strings.CutPrefix(m.URI, "pkg:docker/")
	if !ok || !strings.HasPrefix(m.Digest, "sha256:") {
		return ImageMaterial{}, false
	}
	rest, query, _ := strings.Cut(rest, "?")
	rest, _, _ = strings.Cut(rest, "#")
	path, version, _ := strings.Cut(rest, "@")
	path, err := url.PathUnescape(path)
	if err != nil || path == "" {
		return ImageMaterial{}, false
	}
	q, _ := url.ParseQuery(query)
	if repo := q.Get("repository_url"); repo != "" {
		// The purl spec's way to name another registry: the full repository.
		path = repo
	}
	ref, err := ParseReference(path + "@" + m.Digest)
	if err != nil {
		return ImageMaterial{}, false
	}
	if v, err := url.PathUnescape(version); err == nil && v != "" && TagProblem(v) == "" {
		// A version that is not a tag (a digest, a name outside the tag
		// grammar) names no tag to follow; the digest still names the image.
		ref.Tag = v
	}
	if ref.Digest != m.Digest {
		return ImageMaterial{}, false
	}
	return ImageMaterial{Ref: ref, Platform: q.Get("platform")}, true
}

// IsFrontend reports whether repo is a BuildKit frontend image (the
// Dockerfile frontend), which builds an image but is never its base.
func IsFrontend(repo Repository) bool {
	return repo.Registry == DockerHub && (repo.Name == "docker/dockerfile" || repo.Name == "docker/dockerfile-upstream")
}

type spdxDoc struct {
	SPDXVersion  string `json:"spdxVersion"`
	CreationInfo struct {
		Creators []string `json:"creators"`
	} `json:"creationInfo"`
	Packages []struct {
		SPDXID           string `json:"SPDXID"`
		Name             string `json:"name"`
		VersionInfo      string `json:"versionInfo"`
		LicenseConcluded string `json:"licenseConcluded"`
		LicenseDeclared  string `json:"licenseDeclared"`
		ExternalRefs     []struct {
			ReferenceCategory string `json:"referenceCategory"`
			ReferenceType     string `json:"referenceType"`
			ReferenceLocator  string `json:"referenceLocator"`
		} `json:"externalRefs"`
	} `json:"packages"`
}

type cdxComponent struct {
	Name     string `json:"name"`
	Group    string `json:"group"`
	Version  string `json:"version"`
	Purl     string `json:"purl"`
	Licenses []struct {
		License struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"license"`
		Expression string `json:"expression"`
	} `json:"licenses"`
	Components []cdxComponent `json:"components"`
}

type cdxDoc struct {
	BOMFormat   string `json:"bomFormat"`
	SpecVersion string `json:"specVersion"`
	Metadata    struct {
		// Tools is a list in CycloneDX 1.4 and an object with components
		// and services from 1.5 on.
		Tools json.RawMessage `json:"tools"`
	} `json:"metadata"`
	Components []cdxComponent `json:"components"`
}

type cdxTool struct {
	Vendor  string `json:"vendor"`
	Name    string `json:"name"`
	Version string `json:"version"`
}

// ParseSBOM reads an SPDX 2.x JSON or CycloneDX JSON document: its packages
// (name, version, purl, licenses, in document order; at most
// MaxSBOMPackages) and the tool that made it.
func ParseSBOM(body []byte, what string) (*SBOM, error) {
	if len(body) > MaxAttestationBytes {
		return nil, Errorf(ErrUpstream, nil, "%s is larger than the %d MiB limit", what, MaxAttestationBytes>>20)
	}
	var probe struct {
		SPDXVersion string `json:"spdxVersion"`
		BOMFormat   string `json:"bomFormat"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		return nil, Errorf(ErrUpstream, err, "%s is not a JSON SBOM", what)
	}
	switch {
	case strings.HasPrefix(probe.SPDXVersion, "SPDX-2."):
		return parseSPDX(body, what)
	case probe.BOMFormat == "CycloneDX":
		return parseCycloneDX(body, what)
	}
	return nil, Errorf(ErrUpstream, nil, "%s is neither SPDX 2 nor CycloneDX JSON", what)
}

func parseSPDX(body []byte, what string) (*SBOM, error) {
	var doc spdxDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, Errorf(ErrUpstream, err, "%s is not a valid SPDX document", what)
	}
	s := &SBOM{Format: SBOMSPDX, Packages: []Package{}}
	for _, c := range doc.CreationInfo.Creators {
		if tool, ok := strings.CutPrefix(c, "Tool:"); ok {
			s.Generator = strings.TrimSpace(tool)
			break
		}
	}
	for _, p := range doc.Packages {
		if len(s.Packages) == MaxSBOMPackages {
			break
		}
		pkg := Package{Name: p.Name, Version: p.VersionInfo, Licenses: []string{}}
		for _, r := range p.ExternalRefs {
			if r.ReferenceType == "purl" {
				pkg.Purl = r.ReferenceLocator
				break
			}
		}
		for _, l := range []string{p.LicenseConcluded, p.LicenseDeclared} {
			if l != "" && l != "NOASSERTION" && l != "NONE" && !slices.Contains(pkg.Licenses, l) {
				pkg.Licenses = append(pkg.Licenses, l)
			}
		}
		s.Packages = append(s.Packages, pkg)
	}
	return s, nil
}

func parseCycloneDX(body []byte, what string) (*SBOM, error) {
	var doc cdxDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, Errorf(ErrUpstream, err, "%s is not a valid CycloneDX document", what)
	}
	s := &SBOM{Format: SBOMCycloneDX, Packages: []Package{}}
	var tools []cdxTool
	if json.Unmarshal(doc.Metadata.Tools, &tools) != nil {
		var obj struct {
			Components []cdxTool `json:"components"`
		}
		if json.Unmarshal(doc.Metadata.Tools, &obj) == nil {
			tools = obj.Components
		}
	}
	if len(tools) > 0 {
		s.Generator = strings.TrimSpace(tools[0].Name + " " + tools[0].Version)
	}
	// Components nest (a JAR's classes, a Go binary's modules): walked
	// depth first, with an explicit stack so nesting cannot exhaust ours.
	stack := [][]cdxComponent{doc.Components}
	for len(stack) > 0 && len(s.Packages) < MaxSBOMPackages {
		top := stack[len(stack)-1]
		if len(top) == 0 {
			stack = stack[:len(stack)-1]
			continue
		}
		c := top[0]
		stack[len(stack)-1] = top[1:]
		name := c.Name
		if c.Group != "" {
			name = c.Group + "/" + c.Name
		}
		pkg := Package{Name: name, Version: c.Version, Purl: c.Purl, Licenses: []string{}}
		for _, l := range c.Licenses {
			for _, v := range []string{l.License.ID, l.License.Name, l.Expression} {
				if v != "" && !slices.Contains(pkg.Licenses, v) {
					pkg.Licenses = append(pkg.Licenses, v)
					break
				}
			}
		}
		s.Packages = append(s.Packages, pkg)
		if len(c.Components) > 0 {
			stack = append(stack, c.Components)
		}
	}
	return s, nil
}

// Summary returns what the report says of s.
func (s *SBOM) Summary() *SBOMSummary {
	return &SBOMSummary{Format: s.Format, Packages: len(s.Packages), Generator: s.Generator}
}
