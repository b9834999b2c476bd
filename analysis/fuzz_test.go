package analysis_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/imagebadger/imagebadger/analysis"
)

// FuzzParseReference: any text either parses to a reference whose canonical
// form parses back to itself, or fails with ErrInvalidReference; never a panic.
func FuzzParseReference(f *testing.F) {
	for _, s := range []string{
		"python", "library/python:3.12-slim", "ghcr.io/acme/app:1.2", "127.0.0.1:5000/acme/app@sha256:" + fmt.Sprintf("%064x", 1),
		"localhost:5000/a/b/c:tag@sha256:" + fmt.Sprintf("%064x", 2), "UPPER/case", "a:b:c", "", "@", "x/../y", "[::1]:5000/r:1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := analysis.ParseReference(s)
		if err != nil {
			if !errors.Is(err, analysis.ErrInvalidReference) {
				t.Fatalf("ParseReference(%q) error %v is not ErrInvalidReference", s, err)
			}
			return
		}
		again, err := analysis.ParseReference(ref.String())
		if err != nil || again != ref {
			t.Fatalf("ParseReference(%q) = %+v, but its String %q parses to %+v, %v", s, ref, ref.String(), again, err)
		}
	})
}

// kinded fails t unless err is nil or an ErrUpstream: whatever a registry
// sends as an attestation must be refused cleanly.
func kinded(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil && !errors.Is(err, analysis.ErrUpstream) {
		t.Fatalf("%s: error %v is not ErrUpstream", what, err)
	}
}

// FuzzParseStatement: any bytes are an in-toto statement (bare or in an
// envelope) or an ErrUpstream, never a panic; a provenance predicate is
// read the same way.
func FuzzParseStatement(f *testing.F) {
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://slsa.dev/provenance/v1","predicate":{"buildDefinition":{"resolvedDependencies":[{"uri":"pkg:docker/alpine@3","digest":{"sha256":"00"}}]}}}`))
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://slsa.dev/provenance/v0.2","predicate":{"materials":[{"uri":"x","digest":{}}],"metadata":{"buildkit_metadata":{"vcs":{"source":"s#r"}}}}}`))
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30="}`))
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://slsa.dev/provenance/v1","predicate":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		st, err := analysis.ParseStatement(body, "statement")
		kinded(t, "ParseStatement", err)
		if err != nil {
			return
		}
		if st.PredicateType == "" {
			t.Fatal("statement without a predicate type accepted")
		}
		if analysis.AttestationKind(st.PredicateType) == analysis.KindProvenance {
			p, err := analysis.ParseProvenance(st.PredicateType, st.Predicate, "provenance")
			kinded(t, "ParseProvenance", err)
			if err == nil {
				if len(p.Materials) > analysis.MaxMaterials {
					t.Fatalf("%d materials kept", len(p.Materials))
				}
				for _, m := range p.Materials {
					if im, ok := analysis.ParseImageMaterial(m); ok && im.Ref.Digest != m.Digest {
						t.Fatalf("material %+v read as %s", m, im.Ref)
					}
				}
			}
		}
	})
}

// FuzzParseSBOM: any bytes are an SBOM or an ErrUpstream; every package
// has a license list (possibly empty), never nil, since the API says [].
func FuzzParseSBOM(f *testing.F) {
	f.Add([]byte(`{"spdxVersion":"SPDX-2.3","creationInfo":{"creators":["Tool: x"]},"packages":[{"name":"a","licenseDeclared":"MIT","externalRefs":[{"referenceType":"purl","referenceLocator":"pkg:apk/a@1"}]}]}`))
	f.Add([]byte(`{"bomFormat":"CycloneDX","metadata":{"tools":[{"name":"t"}]},"components":[{"name":"a","components":[{"name":"b","licenses":[{"expression":"MIT"}]}]}]}`))
	f.Add([]byte(`{"bomFormat":"CycloneDX","metadata":{"tools":{"components":[{"name":"t"}]}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := analysis.ParseSBOM(body, "sbom")
		kinded(t, "ParseSBOM", err)
		if err != nil {
			return
		}
		if len(s.Packages) > analysis.MaxSBOMPackages || s.Packages == nil {
			t.Fatalf("%d packages (nil %v)", len(s.Packages), s.Packages == nil)
		}
		for _, p := range s.Packages {
			if p.Licenses == nil {
				t.Fatalf("package %q has nil licenses", p.Name)
			}
		}
	})
}
