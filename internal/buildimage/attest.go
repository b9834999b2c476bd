package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"runtime/debug"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The attestation formats, as BuildKit's attestation storage and the
// in-toto, SPDX and SLSA specifications name them.
const (
	inTotoStatementType = "https://in-toto.io/Statement/v1"
	inTotoMediaType     = "application/vnd.in-toto+json"
	// predicateTypeSPDX is the predicate type BuildKit gives its SPDX SBOMs,
	// so tools that look for BuildKit's SBOMs find this one.
	predicateTypeSPDX       = "https://spdx.dev/Document"
	predicateTypeProvenance = "https://slsa.dev/provenance/v1"
	annotationPredicateType = "in-toto.io/predicate-type"
	annotationRefType       = "vnd.docker.reference.type"
	annotationRefDigest     = "vnd.docker.reference.digest"
	refTypeAttestation      = "attestation-manifest"
)

// statement is an in-toto statement (v1) about one platform image.
type statement struct {
	Type          string    `json:"_type"`
	Subject       []subject `json:"subject"`
	PredicateType string    `json:"predicateType"`
	Predicate     any       `json:"predicate"`
}

type subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// newStatement returns a statement about the platform manifest m, which the
// subject names by a package URL of type oci and by its digest.
func newStatement(m v1.Hash, p platform, predicateType string, predicate any) statement {
	name := fmt.Sprintf("pkg:oci/%s@%s%%3A%s?arch=%s", title, m.Algorithm, m.Hex, url.QueryEscape(p.arch))
	return statement{
		Type:          inTotoStatementType,
		Subject:       []subject{{Name: name, Digest: map[string]string{m.Algorithm: m.Hex}}},
		PredicateType: predicateType,
		Predicate:     predicate,
	}
}

// The parts of an SPDX 2.3 document (JSON) this SBOM uses.
type spdxDocument struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreationInfo   `json:"creationInfo"`
	Packages          []spdxPackage      `json:"packages"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	Name                  string            `json:"name"`
	SPDXID                string            `json:"SPDXID"`
	VersionInfo           string            `json:"versionInfo,omitempty"`
	DownloadLocation      string            `json:"downloadLocation"`
	FilesAnalyzed         bool              `json:"filesAnalyzed"`
	LicenseConcluded      string            `json:"licenseConcluded,omitempty"`
	LicenseDeclared       string            `json:"licenseDeclared,omitempty"`
	CopyrightText         string            `json:"copyrightText,omitempty"`
	PrimaryPackagePurpose string            `json:"primaryPackagePurpose,omitempty"`
	Checksums             []spdxChecksum    `json:"checksums,omitempty"`
	ExternalRefs          []spdxExternalRef `json:"externalRefs,omitempty"`
}

type spdxChecksum struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"checksumValue"`
}

type spdxExternalRef struct {
	Category string `json:"referenceCategory"`
	Type     string `json:"referenceType"`
	Locator  string `json:"referenceLocator"`
}

type spdxRelationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

const spdxNoAssertion = "NOASSERTION"

// sbom returns the SPDX 2.3 document of the Go modules linked into binary,
// from bi, the build information the go command wrote into it: the main module (with the stamped version, which the binary
// records as "(devel)"), the standard library, and every dependency as it
// was resolved (replacements applied).
func sbom(bi *debug.BuildInfo, binary []byte, p platform, src source) (spdxDocument, error) {
	if bi.Main.Path != modulePath {
		return spdxDocument{}, fmt.Errorf("sbom: the binary was built from %q, not %s", bi.Main.Path, modulePath)
	}
	sum := sha256.Sum256(binary)
	doc := spdxDocument{
		SPDXVersion:       "SPDX-2.3",
		DataLicense:       "CC0-1.0",
		SPDXID:            "SPDXRef-DOCUMENT",
		Name:              fmt.Sprintf("%s %s %s", title, src.version, p),
		DocumentNamespace: fmt.Sprintf("%s/spdx/%s", sourceURL, hex.EncodeToString(sum[:])),
		CreationInfo: spdxCreationInfo{
			Created:  src.epoch.Format(time.RFC3339),
			Creators: []string{"Tool: " + builderID},
		},
	}
	ids := map[string]bool{}
	main := spdxPackage{
		Name:                  modulePath,
		SPDXID:                spdxID(ids, "main"),
		VersionInfo:           src.version,
		DownloadLocation:      "git+" + sourceURL + "@" + src.commit,
		LicenseConcluded:      license,
		LicenseDeclared:       license,
		PrimaryPackagePurpose: "APPLICATION",
		Checksums:             []spdxChecksum{{Algorithm: "SHA256", Value: hex.EncodeToString(sum[:])}},
		ExternalRefs:          []spdxExternalRef{purlRef(modulePath, src.version)},
	}
	goVersion := strings.TrimPrefix(bi.GoVersion, "go")
	std := spdxPackage{
		Name:             "stdlib",
		SPDXID:           spdxID(ids, "go-stdlib"),
		VersionInfo:      bi.GoVersion,
		DownloadLocation: spdxNoAssertion,
		LicenseDeclared:  "BSD-3-Clause",
		ExternalRefs:     []spdxExternalRef{purlRef("stdlib", goVersion)},
	}
	doc.Packages = append(doc.Packages, main, std)
	doc.Relationships = append(doc.Relationships,
		spdxRelationship{Element: doc.SPDXID, Type: "DESCRIBES", Related: main.SPDXID},
		spdxRelationship{Element: main.SPDXID, Type: "DEPENDS_ON", Related: std.SPDXID})
	for _, d := range bi.Deps {
		m := resolved(d)
		pkg := spdxPackage{
			Name:             m.Path,
			SPDXID:           spdxID(ids, "go-module-"+m.Path),
			VersionInfo:      m.Version,
			DownloadLocation: spdxNoAssertion,
			ExternalRefs:     []spdxExternalRef{purlRef(m.Path, m.Version)},
		}
		doc.Packages = append(doc.Packages, pkg)
		doc.Relationships = append(doc.Relationships,
			spdxRelationship{Element: main.SPDXID, Type: "DEPENDS_ON", Related: pkg.SPDXID})
	}
	return doc, nil
}

// resolved is the module a dependency was built from: its replacement, if any.
func resolved(d *debug.Module) *debug.Module {
	if d.Replace != nil {
		return d.Replace
	}
	return d
}

var spdxIDUnsafe = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

// spdxID returns a new SPDX identifier made from name, unique among ids
// (identifiers allow only letters, digits, '.' and '-').
func spdxID(ids map[string]bool, name string) string {
	base := "SPDXRef-Package-" + strings.Trim(spdxIDUnsafe.ReplaceAllString(name, "-"), "-")
	id := base
	for n := 2; ids[id]; n++ {
		id = fmt.Sprintf("%s-%d", base, n)
	}
	ids[id] = true
	return id
}

// purlRef is the package URL of a Go module: pkg:golang/PATH@VERSION, each
// path segment and the version percent-encoded. The module path keeps its
// case, as Go's tools (govulncheck among them) write it, because module
// paths are case-sensitive.
func purlRef(modPath, version string) spdxExternalRef {
	segs := strings.Split(modPath, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	loc := "pkg:golang/" + strings.Join(segs, "/")
	if version != "" {
		loc += "@" + url.PathEscape(version)
	}
	loc = strings.ReplaceAll(loc, "+", "%2B") // '+' is not left as is in a purl's version
	return spdxExternalRef{Category: "PACKAGE-MANAGER", Type: "purl", Locator: loc}
}

// The parts of a SLSA v1 provenance predicate this build fills in.
type provenance struct {
	BuildDefinition buildDefinition `json:"buildDefinition"`
	RunDetails      runDetails      `json:"runDetails"`
}

type buildDefinition struct {
	BuildType            string               `json:"buildType"`
	ExternalParameters   externalParameters   `json:"externalParameters"`
	InternalParameters   internalParameters   `json:"internalParameters"`
	ResolvedDependencies []resourceDescriptor `json:"resolvedDependencies"`
}

type externalParameters struct {
	Source   resourceDescriptor `json:"source"`
	Version  string             `json:"version"`
	Platform string             `json:"platform"`
}

type internalParameters struct {
	GoVersion       string   `json:"goVersion"`
	GoBuildArgs     []string `json:"goBuildArgs"`
	GoBuildEnv      []string `json:"goBuildEnv"`
	SourceDateEpoch int64    `json:"sourceDateEpoch"`
	// Dirty reports a work tree with uncommitted changes to tracked files.
	Dirty bool `json:"dirty"`
}

type resourceDescriptor struct {
	Name   string            `json:"name,omitempty"`
	URI    string            `json:"uri,omitempty"`
	Digest map[string]string `json:"digest,omitempty"`
}

type runDetails struct {
	Builder builder `json:"builder"`
}

type builder struct {
	ID string `json:"id"`
}

// baseInputs are the build machine's files copied into the base, named in
// the provenance by their digests.
type baseInputs struct {
	caCerts  []byte
	tzdataZi []byte
}

// slsaProvenance returns the provenance of the platform image built by b
// from src with the Go release goVersion.
func slsaProvenance(p platform, src source, b goBuild, goVersion string, base baseInputs) provenance {
	repo := resourceDescriptor{URI: "git+" + sourceURL, Digest: map[string]string{"gitCommit": src.commit}}
	deps := []resourceDescriptor{repo,
		{Name: "ca-certificates", URI: "file://" + caCertsPath, Digest: sha256Digest(base.caCerts)}}
	if base.tzdataZi != nil {
		deps = append(deps, resourceDescriptor{Name: "tzdata", URI: "file://" + zoneinfoDir + "/tzdata.zi", Digest: sha256Digest(base.tzdataZi)})
	}
	return provenance{
		BuildDefinition: buildDefinition{
			BuildType:          buildType,
			ExternalParameters: externalParameters{Source: repo, Version: src.version, Platform: p.String()},
			InternalParameters: internalParameters{
				GoVersion:       goVersion,
				GoBuildArgs:     b.args,
				GoBuildEnv:      b.env,
				SourceDateEpoch: src.epoch.Unix(),
				Dirty:           src.dirty,
			},
			ResolvedDependencies: deps,
		},
		RunDetails: runDetails{Builder: builder{ID: builderID}},
	}
}

func sha256Digest(b []byte) map[string]string {
	sum := sha256.Sum256(b)
	return map[string]string{"sha256": hex.EncodeToString(sum[:])}
}

// marshalStatement encodes a statement as the attestation blob.
func marshalStatement(s statement) ([]byte, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode %s statement: %w", s.PredicateType, err)
	}
	return b, nil
}
