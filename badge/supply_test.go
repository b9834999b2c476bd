package badge

import (
	"testing"

	"github.com/imagebadger/imagebadger/analysis"
)

// TestSupplyChainBadges: docs/API.md's rules for the signed, sbom and
// provenance badges.
func TestSupplyChainBadges(t *testing.T) {
	yes, no := true, false
	sc := func(mut func(*analysis.SupplyChain)) func(*analysis.Platform) {
		return func(p *analysis.Platform) {
			p.SupplyChain = &analysis.SupplyChain{Signatures: []analysis.Signature{}, Attestations: []analysis.Attestation{}}
			mut(p.SupplyChain)
		}
	}
	for _, tc := range []struct {
		name string
		kind Kind
		rep  *analysis.Report
		want Badge
	}{
		{"never looked at", Signed, platform(nil), Badge{"signed", "unsigned", ColorMissing}},
		{"no signature", Signed, platform(sc(func(*analysis.SupplyChain) {})), Badge{"signed", "unsigned", ColorMissing}},
		{"signed, no rule", Signed, platform(sc(func(s *analysis.SupplyChain) {
			s.Signatures = []analysis.Signature{{Format: "cosign"}}
		})), Badge{"signed", "signed", ColorValue}},
		{"signed, does not verify", Signed, platform(sc(func(s *analysis.SupplyChain) {
			s.Signatures = []analysis.Signature{{Format: "cosign", Verified: &no}}
		})), Badge{"signed", "signed", ColorValue}},
		{"one of two verifies", Signed, platform(sc(func(s *analysis.SupplyChain) {
			s.Signatures = []analysis.Signature{{Format: "cosign", Verified: &no}, {Format: "sigstore-bundle", Verified: &yes}}
		})), Badge{"signed", "verified", ColorCurrent}},
		{"no SBOM", SBOM, platform(sc(func(*analysis.SupplyChain) {})), Badge{"sbom", "none", ColorMissing}},
		{"SBOM never looked at", SBOM, platform(nil), Badge{"sbom", "none", ColorMissing}},
		{"SBOM", SBOM, platform(sc(func(s *analysis.SupplyChain) { s.SBOM = &analysis.SBOMSummary{Format: "spdx", Packages: 212} })), Badge{"sbom", "212 packages", ColorValue}},
		{"SBOM of one", SBOM, platform(sc(func(s *analysis.SupplyChain) { s.SBOM = &analysis.SBOMSummary{Format: "spdx", Packages: 1} })), Badge{"sbom", "1 package", ColorValue}},
		{"no provenance", Provenance, platform(sc(func(*analysis.SupplyChain) {})), Badge{"provenance", "none", ColorMissing}},
		{"SLSA v1", Provenance, platform(sc(func(s *analysis.SupplyChain) {
			s.Provenance = &analysis.Provenance{PredicateType: "https://slsa.dev/provenance/v1"}
		})), Badge{"provenance", "SLSA v1", ColorValue}},
		{"SLSA v0.2", Provenance, platform(sc(func(s *analysis.SupplyChain) {
			s.Provenance = &analysis.Provenance{PredicateType: "https://slsa.dev/provenance/v0.2"}
		})), Badge{"provenance", "SLSA v0.2", ColorValue}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := tc.rep.Select("")
			if got := For(tc.kind, tc.rep, p); got != tc.want {
				t.Errorf("For(%s) = %+v, want %+v", tc.kind, got, tc.want)
			}
		})
	}
	for _, k := range []string{"signed", "sbom", "provenance"} {
		if _, ok := ParseKind(k); !ok {
			t.Errorf("ParseKind(%q) refused", k)
		}
	}
}
