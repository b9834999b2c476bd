package server_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/internal/testing/supplyfix"
	"github.com/imagebadger/imagebadger/server"
)

// TestSupplyChainReportAndSBOM: a BuildKit-shaped image's report carries
// each platform's supply chain, and its SBOM's packages are served 500 a
// page, searchable; both answers are checked against docs/openapi.yaml.
func TestSupplyChainReportAndSBOM(t *testing.T) {
	stack.EachEngine(t, func(t *testing.T, engine string) { testSupplyChainReportAndSBOM(t, engine) })
}

func testSupplyChainReportAndSBOM(t *testing.T, engine string) {
	reg := faultreg.StartWith(t, faultreg.Options{Referrers: true})
	s := stack.New(t, stack.Options{Engine: engine, Timeout: 5 * time.Second, Server: &server.Options{}})
	const packages = 1203
	pushed := supplyfix.Push(t, reg.Host+"/acme/app:1", supplyfix.Options{
		Platforms: []supplyfix.Platform{
			{OS: "linux", Architecture: "amd64", Materials: []supplyfix.Material{{URI: "pkg:docker/alpine@3.20?platform=linux%2Famd64", Digest: "sha256:" + strings.Repeat("1", 64)}}},
			{OS: "linux", Architecture: "arm64"},
		},
		SBOMPackages: packages,
		ProvenanceV1: true,
		Source:       "https://github.com/acme/app",
		Revision:     "0f3c",
	})
	base := s.URL + "/api/v1/images/" + reg.Host + "/acme/app:1"

	var rep analysis.Report
	if code := getJSON(t, base, &rep); code != 200 {
		t.Fatalf("status %d", code)
	}
	if len(rep.Platforms) != 2 {
		t.Fatalf("%d platforms", len(rep.Platforms))
	}
	for _, p := range rep.Platforms {
		sc := p.SupplyChain
		if sc == nil {
			t.Fatalf("%s: no supplyChain", p.Platform)
		}
		want := &analysis.SBOMSummary{Format: "spdx", Packages: packages, Generator: "buildkit-syft-scanner-1.4.0"}
		if diff := cmp.Diff(want, sc.SBOM); diff != "" {
			t.Errorf("%s sbom (-want +got):\n%s", p.Platform, diff)
		}
		if sc.Provenance == nil || sc.Provenance.PredicateType != "https://slsa.dev/provenance/v1" || sc.Provenance.Source != "https://github.com/acme/app" ||
			sc.Provenance.Revision != "0f3c" || sc.Provenance.Builder != "https://ci.example/run/1" {
			t.Errorf("%s provenance = %+v", p.Platform, sc.Provenance)
		}
		if len(sc.Attestations) != 2 || len(sc.Signatures) != 0 {
			t.Errorf("%s: %d attestations, %d signatures; want 2 and 0", p.Platform, len(sc.Attestations), len(sc.Signatures))
		}
		if p.Digest != pushed.Platforms[p.Platform] {
			t.Errorf("%s digest %s, pushed %s", p.Platform, p.Digest, pushed.Platforms[p.Platform])
		}
	}

	// Paging: 500, 500, 203, following next.
	var names []string
	next, pages := "", 0
	for {
		var page struct {
			Format   string             `json:"format"`
			Packages []analysis.Package `json:"packages"`
			Next     string             `json:"next"`
		}
		u := base + "/sbom?platform=linux/arm64"
		if next != "" {
			u += "&cursor=" + url.QueryEscape(next)
		}
		if code := getJSON(t, u, &page); code != 200 {
			t.Fatalf("GET %s: status %d", u, code)
		}
		pages++
		if page.Format != "spdx" {
			t.Errorf("format %q", page.Format)
		}
		for _, p := range page.Packages {
			names = append(names, p.Name)
		}
		if page.Next == "" || pages > 5 {
			break
		}
		next = page.Next
	}
	if pages != 3 || len(names) != packages || names[0] != "pkg-0" || names[packages-1] != fmt.Sprintf("pkg-%d", packages-1) {
		t.Errorf("%d pages, %d packages (%v … %v)", pages, len(names), names[:1], names[len(names)-1:])
	}

	// Search by name or purl, ignoring case.
	var found struct {
		Packages []analysis.Package `json:"packages"`
		Next     string             `json:"next"`
	}
	if code := getJSON(t, base+"/sbom?q=PKG-120", &found); code != 200 {
		t.Fatalf("search: status %d", code)
	}
	want := []analysis.Package{
		{Name: "pkg-120", Version: "1.120", Purl: "pkg:generic/pkg-120@1.120", Licenses: []string{"MIT"}},
		{Name: "pkg-1200", Version: "1.1200", Purl: "pkg:generic/pkg-1200@1.1200", Licenses: []string{"MIT"}},
		{Name: "pkg-1201", Version: "1.1201", Purl: "pkg:generic/pkg-1201@1.1201", Licenses: []string{"MIT"}},
		{Name: "pkg-1202", Version: "1.1202", Purl: "pkg:generic/pkg-1202@1.1202", Licenses: []string{"MIT"}},
	}
	if diff := cmp.Diff(want, found.Packages); diff != "" || found.Next != "" {
		t.Errorf("search (-want +got):\n%s next %q", diff, found.Next)
	}

	// An image without an SBOM, an unknown platform and a bad cursor.
	var e errorBody
	pushRandom(t, reg.Host+"/acme/plain:1")
	if code := getJSON(t, s.URL+"/api/v1/images/"+reg.Host+"/acme/plain:1/sbom", &e); code != 404 || e.Error.Code != "not_found" {
		t.Errorf("no SBOM: %d %+v", code, e)
	}
	if code := getJSON(t, base+"/sbom?platform=linux/s390x", &e); code != 404 {
		t.Errorf("unknown platform: %d %+v", code, e)
	}
	if code := getJSON(t, base+"/sbom?cursor=x", &e); code != 400 {
		t.Errorf("bad cursor: %d %+v", code, e)
	}
}

// TestSupplyChainBadgeRoutes: the three badges through the badge route, for
// an image with a provenance and an SBOM of 3 packages and no signature.
func TestSupplyChainBadgeRoutes(t *testing.T) {
	reg := faultreg.StartWith(t, faultreg.Options{Referrers: true})
	s := stack.New(t, stack.Options{Timeout: 5 * time.Second, Server: &server.Options{}})
	supplyfix.Push(t, reg.Host+"/acme/app:1", supplyfix.Options{
		Platforms:    []supplyfix.Platform{{OS: "linux", Architecture: "amd64"}},
		SBOMPackages: 3,
	})
	for kind, want := range map[string]string{"sbom": "3 packages", "provenance": "SLSA v0.2", "signed": "unsigned"} {
		code, body := get(t, s.URL+"/badges/"+kind+"/"+reg.Host+"/acme/app:1.svg")
		if code != 200 || !strings.Contains(body, ">"+want+"<") {
			t.Errorf("%s badge: %d, want %q in\n%s", kind, code, want, body)
		}
	}
}
