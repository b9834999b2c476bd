// Package badge turns image reports into the SVG badges that README files
// embed: the text rules of docs/API.md's badge table, rendering in the flat style
// of github.com/narqo/go-badge, and a bounded cache of rendered SVGs. It does
// no I/O; the server decides which report a badge describes.
package badge

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/imagebadger/imagebadger/analysis"
)

// Kind names what a badge shows; it is the {kind} of /badges/{kind}/{reference}.svg.
type Kind string

// The kinds of docs/API.md, with MicroBadger's names so that old README links work.
const (
	Image   Kind = "image"
	Version Kind = "version"
	Commit  Kind = "commit"
	License Kind = "license"
	Base    Kind = "base"
	// Efficiency is the layer contents' efficiency, known once someone
	// asked for the image's contents (see EfficiencyBadge).
	Efficiency Kind = "efficiency"
	// Signed, SBOM and Provenance tell the supply chain: whether a
	// signature verifies, how many packages the SBOM lists, which SLSA
	// provenance the build left.
	Signed     Kind = "signed"
	SBOM       Kind = "sbom"
	Provenance Kind = "provenance"
)

// Kinds returns every kind, in the order of docs/API.md.
func Kinds() []Kind {
	return []Kind{Image, Version, Commit, License, Base, Efficiency, Signed, SBOM, Provenance}
}

// ParseKind accepts exactly the names of Kinds; anything else is an unknown
// kind, which the server answers with 404.
func ParseKind(s string) (Kind, bool) {
	if k := Kind(s); slices.Contains(Kinds(), k) {
		return k, true
	}
	return "", false
}

// KindNames lists the kinds for a person: "image, version, commit, license
// and base".
func KindNames() string {
	ks := Kinds()
	names := make([]string, len(ks))
	for i, k := range ks {
		names[i] = string(k)
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// Color is a badge colour as an SVG fill ("#007ec6").
type Color string

// The colours of the right-hand side; the left is always dark grey.
const (
	// ColorValue is for a value read from the image.
	ColorValue Color = "#007ec6"
	// ColorCurrent is for a base image that is up to date.
	ColorCurrent Color = "#4c1"
	// ColorWarning is for a base image whose tag has moved on.
	ColorWarning Color = "#fe7d37"
	// ColorMissing is for the grey badges: no image, or no value.
	ColorMissing Color = "#9f9f9f"
)

// The right-hand texts of the grey badges of docs/API.md.
const (
	// TextNotFound: the registry does not have the image (or platform).
	TextNotFound = "not found"
	// TextNotFoundYet: the image was never seen and its first inspection is
	// still running.
	TextNotFoundYet = "not found yet"
	// TextTryAgain: the service is too busy to inspect the image now (its
	// registry's or its client's share of inspections is full); the badge
	// is not cached, and a later view shows the image.
	TextTryAgain = "try again"
	// TextNotGiven: the image is known but lacks the value (no revision
	// label, no parent).
	TextNotGiven = "not given"
	// TextTagRemoved: the tag was deleted from its registry, as this
	// service recorded it; a README badge of a removed tag says so rather
	// than "not found", which would suggest a typo.
	TextTagRemoved = "tag removed"
	// TextInvalid: the badge URL's reference or platform does not parse.
	TextInvalid = "invalid"
	// TextUnknown: the badge URL names no kind of badge.
	TextUnknown = "unknown badge"
	// TextUnauthorized: the registry wants credentials this service does
	// not have (or refused those it has).
	TextUnauthorized = "unauthorized"
	// TextNone: no SBOM, or no provenance, is known for the image.
	TextNone = "none"
	// TextUnsigned: no signature is known for the image.
	TextUnsigned = "unsigned"
)

// Length caps, in characters, so that a hostile label cannot make a badge
// wider than a page: versions, licences and repository names fit easily.
const (
	MaxLeft  = 32
	MaxRight = 64
)

// Badge is what a badge says, before rendering: the cache key's payload and
// the whole input of Render.
type Badge struct {
	Left, Right string
	// Color is the fill of the right-hand side.
	Color Color
}

// label is the left text of kind where it is fixed.
func label(kind Kind) string {
	if kind == Image {
		return "image"
	}
	return string(kind)
}

// Missing returns the grey badge of kind saying text (TextNotFound,
// TextNotFoundYet, TextNotGiven, TextTagRemoved, or a short reason).
func Missing(kind Kind, text string) Badge {
	return Badge{Left: label(kind), Right: Clean(text, MaxRight), Color: ColorMissing}
}

// Unknown is the grey badge answering a URL that names no kind of badge.
func Unknown() Badge {
	return Badge{Left: "badge", Right: TextUnknown, Color: ColorMissing}
}

// For returns the badge of kind for the platform image p of rep, as docs/API.md's
// badge table says. rep gives what is not per platform (the tags sharing the
// digest); p is normally rep.Select(platform).
func For(kind Kind, rep *analysis.Report, p *analysis.Platform) Badge {
	var right string
	switch kind {
	case Image:
		return Badge{
			Left:  analysis.HumanSize(p.DownloadSize),
			Right: layers(p.LayerCount),
			Color: ColorValue,
		}
	case Version:
		right = Clean(p.Metadata.Version, MaxRight)
		if right == "" {
			right = Clean(analysis.LatestVersion(rep.Tags), MaxRight)
		}
	case Commit:
		right = Clean(p.Metadata.Revision, MaxRight)
		if utf8.RuneCountInString(right) > 7 {
			right = string([]rune(right)[:7])
		}
	case License:
		right = Clean(p.Metadata.Licenses, MaxRight)
	case Base:
		return baseBadge(p.Parent)
	case Signed:
		return signedBadge(p.SupplyChain)
	case SBOM:
		if sc := p.SupplyChain; sc != nil && sc.SBOM != nil {
			n := sc.SBOM.Packages
			if n == 1 {
				return Badge{Left: label(kind), Right: "1 package", Color: ColorValue}
			}
			return Badge{Left: label(kind), Right: fmt.Sprintf("%d packages", n), Color: ColorValue}
		}
		return Missing(kind, TextNone)
	case Provenance:
		if sc := p.SupplyChain; sc != nil && sc.Provenance != nil {
			return Badge{Left: label(kind), Right: slsaName(sc.Provenance.PredicateType), Color: ColorValue}
		}
		return Missing(kind, TextNone)
	default:
		return Missing(kind, TextNotFound)
	}
	if right == "" {
		return Missing(kind, TextNotGiven)
	}
	return Badge{Left: label(kind), Right: right, Color: ColorValue}
}

// signedBadge is green "verified" when a signature verifies under the
// trust rules, blue "signed" when signatures exist but none verifies (or no
// rule applies), grey "unsigned" otherwise.
func signedBadge(sc *analysis.SupplyChain) Badge {
	if sc == nil || len(sc.Signatures) == 0 {
		return Missing(Signed, TextUnsigned)
	}
	for _, sig := range sc.Signatures {
		if sig.Verified != nil && *sig.Verified {
			return Badge{Left: label(Signed), Right: "verified", Color: ColorCurrent}
		}
	}
	return Badge{Left: label(Signed), Right: "signed", Color: ColorValue}
}

// slsaName is the provenance badge's text for a predicate type: "SLSA v1",
// "SLSA v0.2".
func slsaName(predicateType string) string {
	if v, ok := strings.CutPrefix(predicateType, "https://slsa.dev/provenance/"); ok && v != "" {
		return Clean("SLSA "+v, MaxRight)
	}
	return Clean(predicateType, MaxRight)
}

// layers is the image badge's right text: "1 layer", "3 layers".
func layers(n int) string {
	if n == 1 {
		return "1 layer"
	}
	return fmt.Sprintf("%d layers", n)
}

// outdatedSuffix marks a base whose tag has moved on; it survives the
// length cap, which shortens the name instead.
const outdatedSuffix = " (outdated)"

func baseBadge(parent *analysis.Parent) Badge {
	if parent == nil || parent.Repository == "" {
		return Missing(Base, TextNotGiven)
	}
	name := parent.Repository
	if parent.Registry == analysis.DockerHub {
		name = strings.TrimPrefix(name, "library/")
	}
	if tag := analysis.LongestTag(parent.Tags); tag != "" {
		name += ":" + tag
	} else if parent.Digest != "" {
		name += "@" + analysis.ShortDigest(parent.Digest)
	}
	if !parent.Outdated {
		return Badge{Left: label(Base), Right: Clean(name, MaxRight), Color: ColorCurrent}
	}
	return Badge{
		Left:  label(Base),
		Right: Clean(name, MaxRight-utf8.RuneCountInString(outdatedSuffix)) + outdatedSuffix,
		Color: ColorWarning,
	}
}
