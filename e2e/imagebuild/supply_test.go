package imagebuild_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/imagebadger/imagebadger/internal/testing/testenv"
)

// checkSupplyChain: imagebadger serving in front of the registry reads its
// own image's supply chain as BuildKit's tools would: for each platform an
// SPDX SBOM whose packages are the modules `go version -m` reads from that
// platform's binary, and a SLSA v1 provenance naming the repository and
// the commit.
func checkSupplyChain(t *testing.T, p pushedImage) {
	srv := testenv.ServeProcess(t, testenv.Binary(t), testenv.ServeOptions{Args: []string{"--dockerhub-api", ""}})
	var rep struct {
		Platforms []struct {
			Platform    string `json:"platform"`
			SupplyChain *struct {
				SBOM *struct {
					Format   string `json:"format"`
					Packages int    `json:"packages"`
				} `json:"sbom"`
				Provenance *struct {
					PredicateType string `json:"predicateType"`
					Source        string `json:"source"`
					Revision      string `json:"revision"`
				} `json:"provenance"`
			} `json:"supplyChain"`
		} `json:"platforms"`
	}
	getJSON(t, srv.URL+"/api/v1/images/"+p.ref, &rep)
	if len(rep.Platforms) != 2 {
		t.Fatalf("%d platforms", len(rep.Platforms))
	}
	for _, pl := range rep.Platforms {
		sc := pl.SupplyChain
		if sc == nil || sc.SBOM == nil || sc.Provenance == nil {
			t.Errorf("%s: supply chain %+v, want an SBOM and a provenance", pl.Platform, sc)
			continue
		}
		if sc.SBOM.Format != "spdx" || sc.Provenance.PredicateType != "https://slsa.dev/provenance/v1" ||
			sc.Provenance.Source != "https://github.com/imagebadger/imagebadger" || sc.Provenance.Revision != p.git.commit {
			t.Errorf("%s: sbom %+v provenance %+v, want SPDX and SLSA v1 of the repository at %s", pl.Platform, *sc.SBOM, *sc.Provenance, p.git.commit)
		}
		// Every page of the SBOM's packages, by purl.
		purls := map[string]bool{}
		next := ""
		for range 20 {
			var page struct {
				Packages []struct {
					Purl string `json:"purl"`
				} `json:"packages"`
				Next string `json:"next"`
			}
			u := srv.URL + "/api/v1/images/" + p.ref + "/sbom?platform=" + url.QueryEscape(pl.Platform) + "&cursor=" + url.QueryEscape(next)
			getJSON(t, u, &page)
			for _, pk := range page.Packages {
				purls[pk.Purl] = true
			}
			if next = page.Next; next == "" {
				break
			}
		}
		if len(purls) != sc.SBOM.Packages {
			t.Errorf("%s: %d distinct purls served, the report counts %d packages", pl.Platform, len(purls), sc.SBOM.Packages)
		}
		mods := readGoVersionM(t, extractBinary(t, p.byDigest(p.platforms[pl.Platform].Digest)))
		for path, version := range mods.deps {
			// The purl specification percent-encodes '+'.
			if want := "pkg:golang/" + path + "@" + strings.ReplaceAll(version, "+", "%2B"); !purls[want] {
				t.Errorf("%s: module %s %s is not among the SBOM's packages", pl.Platform, path, version)
			}
		}
	}
}
