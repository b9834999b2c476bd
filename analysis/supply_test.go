package analysis_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imagebadger/imagebadger/analysis"
)

// The fixtures below are shaped as BuildKit, Syft, Trivy and cosign write
// them (field names from BuildKit's docs/attestations/slsa-definitions.md,
// SPDX 2.3 and CycloneDX 1.5); the expectations are written by hand.

const (
	alpineDigest  = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	golangDigest  = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	frontDigest   = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
	gitRevision   = "0f3c0f3c0f3c0f3c0f3c0f3c0f3c0f3c0f3c0f3c"
	subjectDigest = "4444444444444444444444444444444444444444444444444444444444444444"
)

// provenanceV02 is a BuildKit v0.2 provenance of a multi-stage build: the
// golang builder stage, the Dockerfile frontend and the alpine runtime base,
// from a local context whose vcs hints name the repository.
const provenanceV02 = `{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://slsa.dev/provenance/v0.2",
"subject":[{"name":"pkg:docker/acme/app@1.0?platform=linux%2Famd64","digest":{"sha256":"` + subjectDigest + `"}}],
"predicate":{"builder":{"id":"https://github.com/acme/app/actions/runs/1"},"buildType":"https://mobyproject.org/buildkit@v1",
"materials":[
 {"uri":"pkg:docker/docker/dockerfile@1.7","digest":{"sha256":"3333333333333333333333333333333333333333333333333333333333333333"}},
 {"uri":"pkg:docker/golang@1.23?platform=linux%2Famd64","digest":{"sha256":"2222222222222222222222222222222222222222222222222222222222222222"}},
 {"uri":"pkg:docker/alpine@3.20?platform=linux%2Famd64","digest":{"sha256":"1111111111111111111111111111111111111111111111111111111111111111"}}],
"invocation":{"configSource":{"entryPoint":"Dockerfile"},"parameters":{"frontend":"gateway.v0"}},
"metadata":{"buildInvocationID":"x","https://mobyproject.org/buildkit@v1#metadata":{"vcs":{"source":"https://github.com/acme/app.git","revision":"` + gitRevision + `"}}}}}`

// provenanceV1 is a BuildKit v1 provenance of a build from a Git context.
const provenanceV1 = `{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://slsa.dev/provenance/v1",
"subject":[{"name":"pkg:docker/ghcr.io/acme/app@1.0?platform=linux%2Farm64","digest":{"sha256":"` + subjectDigest + `"}}],
"predicate":{"buildDefinition":{"buildType":"https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md",
 "externalParameters":{"configSource":{"uri":"https://github.com/acme/app.git#refs/tags/v1.0","digest":{"sha1":"` + gitRevision + `"},"path":"Dockerfile"},
  "request":{"frontend":"dockerfile.v0"}},
 "resolvedDependencies":[
  {"uri":"pkg:docker/ghcr.io/acme/base@3.20?platform=linux%2Farm64","digest":{"sha256":"1111111111111111111111111111111111111111111111111111111111111111"}},
  {"uri":"https://github.com/acme/app.git#refs/tags/v1.0","digest":{"sha1":"` + gitRevision + `"}}]},
"runDetails":{"builder":{"id":""},"metadata":{"invocationID":"y","buildkit_metadata":{"vcs":{"source":"https://example.invalid/other","revision":"ignored"}}}}}}`

const spdxSBOM = `{"spdxVersion":"SPDX-2.3","dataLicense":"CC0-1.0","SPDXID":"SPDXRef-DOCUMENT","name":"sbom",
"creationInfo":{"created":"2026-11-20T10:00:00Z","creators":["Organization: Anchore, Inc","Tool: syft-v1.18.1"]},
"packages":[
 {"SPDXID":"SPDXRef-a","name":"musl","versionInfo":"1.2.5-r0","licenseConcluded":"NOASSERTION","licenseDeclared":"MIT",
  "externalRefs":[{"referenceCategory":"SECURITY","referenceType":"cpe23Type","referenceLocator":"cpe:2.3:a:musl:musl:1.2.5"},
   {"referenceCategory":"PACKAGE-MANAGER","referenceType":"purl","referenceLocator":"pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64"}]},
 {"SPDXID":"SPDXRef-b","name":"github.com/google/go-cmp","versionInfo":"v0.7.0","licenseConcluded":"BSD-3-Clause","licenseDeclared":"BSD-3-Clause",
  "externalRefs":[{"referenceCategory":"PACKAGE-MANAGER","referenceType":"purl","referenceLocator":"pkg:golang/github.com/google/go-cmp@v0.7.0"}]}]}`

const cycloneDXSBOM = `{"bomFormat":"CycloneDX","specVersion":"1.5","version":1,
"metadata":{"tools":{"components":[{"type":"application","author":"aquasecurity","name":"trivy","version":"0.58.0"}]}},
"components":[
 {"type":"library","name":"openssl","version":"3.3.2-r1","purl":"pkg:apk/alpine/openssl@3.3.2-r1","licenses":[{"license":{"id":"Apache-2.0"}}],
  "components":[{"type":"library","group":"org.example","name":"inner","version":"1","licenses":[{"expression":"MIT OR Apache-2.0"}]}]},
 {"type":"library","name":"zlib","version":"1.3.1-r1","purl":"pkg:apk/alpine/zlib@1.3.1-r1","licenses":[{"license":{"name":"Zlib license"}}]}]}`

func TestParseProvenance(t *testing.T) {
	tests := []struct {
		name, body string
		want       *analysis.Provenance
	}{
		{"v0.2 from a local context with vcs hints", provenanceV02, &analysis.Provenance{
			PredicateType: analysis.PredicateSLSAv02,
			Builder:       "https://github.com/acme/app/actions/runs/1",
			Source:        "https://github.com/acme/app",
			Revision:      gitRevision,
			Materials: []analysis.Material{
				{URI: "pkg:docker/docker/dockerfile@1.7", Digest: frontDigest},
				{URI: "pkg:docker/golang@1.23?platform=linux%2Famd64", Digest: golangDigest},
				{URI: "pkg:docker/alpine@3.20?platform=linux%2Famd64", Digest: alpineDigest},
			},
		}},
		{"v1 from a Git context", provenanceV1, &analysis.Provenance{
			PredicateType: analysis.PredicateSLSAv1,
			Source:        "https://github.com/acme/app",
			Revision:      gitRevision,
			Materials: []analysis.Material{
				{URI: "pkg:docker/ghcr.io/acme/base@3.20?platform=linux%2Farm64", Digest: alpineDigest},
				{URI: "https://github.com/acme/app.git#refs/tags/v1.0", Digest: "sha1:" + gitRevision},
			},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := analysis.ParseStatement([]byte(tt.body), "attestation")
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Subject) != 1 || st.Subject[0].Digest["sha256"] != subjectDigest {
				t.Errorf("subject = %+v", st.Subject)
			}
			got, err := analysis.ParseProvenance(st.PredicateType, st.Predicate, "provenance")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("provenance (-want +got):\n%s", diff)
			}
			if k := analysis.AttestationKind(st.PredicateType); k != analysis.KindProvenance {
				t.Errorf("kind = %q", k)
			}
		})
	}
}

// TestParseProvenanceSourceFromMaterials: a provenance without a config
// source (as imagebadger's own image build writes it) names its repository
// among the resolved dependencies.
func TestParseProvenanceSourceFromMaterials(t *testing.T) {
	body := `{"buildDefinition":{"externalParameters":{"platform":"linux/amd64"},"resolvedDependencies":[
 {"uri":"pkg:golang/stdlib@go1.26.8","digest":{"sha256":"00"}},
 {"uri":"git+https://github.com/imagebadger/imagebadger","digest":{"gitCommit":"` + gitRevision + `"}}]},
"runDetails":{"builder":{"id":"https://github.com/imagebadger/imagebadger/internal/buildimage"}}}`
	p, err := analysis.ParseProvenance(analysis.PredicateSLSAv1, []byte(body), "p")
	if err != nil {
		t.Fatal(err)
	}
	if p.Source != "https://github.com/imagebadger/imagebadger" || p.Revision != gitRevision {
		t.Errorf("source %q revision %q", p.Source, p.Revision)
	}
}

// TestParseProvenanceBuildKitKeys: the vcs hints are read under either
// generation's key, in either predicate version.
func TestParseProvenanceBuildKitKeys(t *testing.T) {
	for _, key := range []string{"https://mobyproject.org/buildkit@v1#metadata", "buildkit_metadata"} {
		v02 := `{"builder":{"id":"b"},"metadata":{"` + key + `":{"vcs":{"source":"https://git.example/x","revision":"r1"}}}}`
		v1 := `{"runDetails":{"builder":{"id":"b"},"metadata":{"` + key + `":{"vcs":{"source":"https://git.example/x","revision":"r1"}}}}}`
		for pt, body := range map[string]string{analysis.PredicateSLSAv02: v02, analysis.PredicateSLSAv1: v1} {
			p, err := analysis.ParseProvenance(pt, []byte(body), "p")
			if err != nil {
				t.Fatal(err)
			}
			if p.Source != "https://git.example/x" || p.Revision != "r1" || p.Builder != "b" {
				t.Errorf("%s under %s: %+v", pt, key, p)
			}
		}
	}
}

func TestParseStatementEnvelope(t *testing.T) {
	env := `{"payloadType":"application/vnd.in-toto+json","payload":"` + base64.StdEncoding.EncodeToString([]byte(provenanceV1)) + `","signatures":[{"keyid":"","sig":"MEUC"}]}`
	st, err := analysis.ParseStatement([]byte(env), "envelope")
	if err != nil {
		t.Fatal(err)
	}
	if st.PredicateType != analysis.PredicateSLSAv1 {
		t.Errorf("predicateType = %q", st.PredicateType)
	}
	for _, bad := range []string{
		`{"payloadType":"text/plain","payload":"eA=="}`,
		`{"payloadType":"application/vnd.in-toto+json","payload":"!!"}`,
		`{"_type":"https://example.com/Statement","predicateType":"x"}`,
		`{"_type":"https://in-toto.io/Statement/v1"}`,
		`[`,
	} {
		if _, err := analysis.ParseStatement([]byte(bad), "bad"); !errors.Is(err, analysis.ErrUpstream) {
			t.Errorf("ParseStatement(%s) = %v, want ErrUpstream", bad, err)
		}
	}
	big := []byte(`{"_type":"https://in-toto.io/Statement/v1","predicateType":"x","predicate":"` + strings.Repeat("a", analysis.MaxAttestationBytes) + `"}`)
	if _, err := analysis.ParseStatement(big, "big"); !errors.Is(err, analysis.ErrUpstream) {
		t.Errorf("oversized statement: %v", err)
	}
}

func TestParseSBOM(t *testing.T) {
	tests := []struct {
		name, body string
		want       *analysis.SBOM
	}{
		{"SPDX 2.3 by syft", spdxSBOM, &analysis.SBOM{Format: "spdx", Generator: "syft-v1.18.1", Packages: []analysis.Package{
			{Name: "musl", Version: "1.2.5-r0", Purl: "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64", Licenses: []string{"MIT"}},
			{Name: "github.com/google/go-cmp", Version: "v0.7.0", Purl: "pkg:golang/github.com/google/go-cmp@v0.7.0", Licenses: []string{"BSD-3-Clause"}},
		}}},
		{"CycloneDX 1.5 by trivy, nested", cycloneDXSBOM, &analysis.SBOM{Format: "cyclonedx", Generator: "trivy 0.58.0", Packages: []analysis.Package{
			{Name: "openssl", Version: "3.3.2-r1", Purl: "pkg:apk/alpine/openssl@3.3.2-r1", Licenses: []string{"Apache-2.0"}},
			{Name: "org.example/inner", Version: "1", Licenses: []string{"MIT OR Apache-2.0"}},
			{Name: "zlib", Version: "1.3.1-r1", Purl: "pkg:apk/alpine/zlib@1.3.1-r1", Licenses: []string{"Zlib license"}},
		}}},
		{"CycloneDX 1.4 tools list", `{"bomFormat":"CycloneDX","metadata":{"tools":[{"vendor":"anchore","name":"syft","version":"0.90.0"}]},"components":[]}`,
			&analysis.SBOM{Format: "cyclonedx", Generator: "syft 0.90.0", Packages: []analysis.Package{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := analysis.ParseSBOM([]byte(tt.body), "sbom")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("SBOM (-want +got):\n%s", diff)
			}
		})
	}
	for _, bad := range []string{`{}`, `{"spdxVersion":"SPDX-3.0"}`, `{"spdxVersion":"SPDX-2.3","packages":{}}`, `nope`} {
		if _, err := analysis.ParseSBOM([]byte(bad), "bad"); !errors.Is(err, analysis.ErrUpstream) {
			t.Errorf("ParseSBOM(%s) = %v, want ErrUpstream", bad, err)
		}
	}
}

func TestParseImageMaterial(t *testing.T) {
	tests := []struct {
		uri, digest string
		want        string // reference; empty: not an image
		platform    string
		frontend    bool
	}{
		{"pkg:docker/alpine@3.20?platform=linux%2Famd64", alpineDigest, "docker.io/library/alpine:3.20@" + alpineDigest, "linux/amd64", false},
		{"pkg:docker/docker/dockerfile@1.7", frontDigest, "docker.io/docker/dockerfile:1.7@" + frontDigest, "", true},
		{"pkg:docker/ghcr.io/acme/base@3.20?platform=linux%2Farm64", alpineDigest, "ghcr.io/acme/base:3.20@" + alpineDigest, "linux/arm64", false},
		{"pkg:docker/base@sha256%3A" + strings.Repeat("1", 64) + "?repository_url=registry.example:5000/team/base", alpineDigest, "registry.example:5000/team/base@" + alpineDigest, "", false},
		{"https://github.com/acme/app.git#main", "sha1:" + gitRevision, "", "", false},
		{"pkg:docker/alpine@3.20", "sha1:abc", "", "", false},
		{"pkg:docker/UPPER@1", alpineDigest, "", "", false},
		// A version outside the tag grammar names no tag; the digest stays.
		{"pkg:docker/alpine@bad%0D%0AX-Injected:%201", alpineDigest, "docker.io/library/alpine@" + alpineDigest, "", false},
		{"pkg:docker/alpine@..%2F..%2Fetc", alpineDigest, "docker.io/library/alpine@" + alpineDigest, "", false},
		{"pkg:docker/alpine@" + strings.Repeat("9", 129), alpineDigest, "docker.io/library/alpine@" + alpineDigest, "", false},
	}
	for _, tt := range tests {
		got, ok := analysis.ParseImageMaterial(analysis.Material{URI: tt.uri, Digest: tt.digest})
		if ok != (tt.want != "") {
			t.Errorf("ParseImageMaterial(%s) ok = %v", tt.uri, ok)
			continue
		}
		if !ok {
			continue
		}
		if got.Ref.String() != tt.want || got.Platform != tt.platform || analysis.IsFrontend(got.Ref.Repository) != tt.frontend {
			t.Errorf("ParseImageMaterial(%s) = %s %q frontend %v, want %s %q %v", tt.uri, got.Ref, got.Platform, analysis.IsFrontend(got.Ref.Repository), tt.want, tt.platform, tt.frontend)
		}
	}
}

func TestAttestationManifests(t *testing.T) {
	amd := "sha256:" + strings.Repeat("a", 64)
	index := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
 {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + amd + `","size":1,"platform":{"os":"linux","architecture":"amd64"}},
 {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + strings.Repeat("b", 64) + `","size":1,
  "annotations":{"vnd.docker.reference.digest":"` + amd + `","vnd.docker.reference.type":"attestation-manifest"},"platform":{"os":"unknown","architecture":"unknown"}},
 {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + strings.Repeat("c", 64) + `","size":1,
  "annotations":{"vnd.docker.reference.digest":"not a digest","vnd.docker.reference.type":"attestation-manifest"}}]}`
	got := analysis.AttestationManifests([]byte(index))
	if len(got) != 1 || len(got[amd]) != 1 || got[amd][0].Digest.Hex != strings.Repeat("b", 64) {
		t.Errorf("AttestationManifests = %+v", got)
	}
}

func TestClassification(t *testing.T) {
	kinds := map[string]string{
		analysis.PredicateSLSAv02: "provenance", analysis.PredicateSLSAv1: "provenance", analysis.PredicateSPDX: "sbom",
		analysis.PredicateCycloneDX: "sbom", "https://openvex.dev/ns/v0.2.0": "vex", "https://cosign.sigstore.dev/attestation/v1": "other",
	}
	for pt, want := range kinds {
		if got := analysis.AttestationKind(pt); got != want {
			t.Errorf("AttestationKind(%s) = %s, want %s", pt, got, want)
		}
	}
	formats := map[string]string{
		"application/vnd.dev.sigstore.bundle.v0.3+json": "sigstore-bundle", "application/vnd.dev.sigstore.bundle+json;version=0.3": "sigstore-bundle",
		"application/vnd.cncf.notary.signature": "notation", "application/vnd.dev.cosign.artifact.sig.v1+json": "cosign", "application/spdx+json": "",
	}
	for at, want := range formats {
		if got, ok := analysis.SignatureFormat(at); got != want || ok != (want != "") {
			t.Errorf("SignatureFormat(%s) = %s, %v", at, got, ok)
		}
	}
}
