package analysis

import (
	"strings"
)

// Annotation keys by which an image names the base it was built on (the OCI
// image spec's annotations.md): base.name is a reference with a tag, and
// base.digest the digest that tag pointed at when the image was built.
const (
	AnnotationBaseName   = "org.opencontainers.image.base.name"
	AnnotationBaseDigest = "org.opencontainers.image.base.digest"
)

// Where a base was named, in BaseCheck's JSON.
const (
	// BaseFromFlag: the person asking named it (check-base --base).
	BaseFromFlag = "flag"
	// BaseFromAnnotation: the image names it in its annotations.
	BaseFromAnnotation = "annotation"
)

// Base is the image another was built on, as named by the image or by the
// person asking: a tag to follow, and the digest it pointed at when the
// image was built, when that is known.
type Base struct {
	Ref Reference
	// BuiltOn is the digest the image was built on ("" when not named).
	BuiltOn string
	// Source says who named the base (BaseFromFlag, BaseFromAnnotation).
	Source string
}

// NewBase returns the base ref names, by source, built on builtOn (""
// when not known). A reference with both a tag and a digest
// (alpine:3.20@sha256:…) follows the tag and was built on the digest,
// unless builtOn says otherwise.
func NewBase(ref Reference, builtOn, source string) Base {
	if ref.Tag != "" && ref.Digest != "" {
		if builtOn == "" {
			builtOn = ref.Digest
		}
		ref.Digest = ""
	}
	return Base{Ref: ref, BuiltOn: builtOn, Source: source}
}

// BaseFromAnnotations reads the base named by annotations, given nearest
// first: a platform manifest's own, then those its index gives its
// descriptor, then the index's own; the nearest that names base.name wins,
// with the base.digest of the same annotations. ok is false when none
// names one; err is set when the name is not an image reference.
func BaseFromAnnotations(nearestFirst ...map[string]string) (b Base, ok bool, err error) {
	for _, a := range nearestFirst {
		name := strings.TrimSpace(a[AnnotationBaseName])
		if name == "" {
			continue
		}
		ref, err := ParseReference(name)
		if err != nil {
			msg, _ := PublicMessage(err)
			return Base{}, false, Errorf(ErrInvalidReference, err, "the image names its base in the annotation %s, but %s", AnnotationBaseName, msg)
		}
		return NewBase(ref, strings.TrimSpace(a[AnnotationBaseDigest]), BaseFromAnnotation), true, nil
	}
	return Base{}, false, nil
}

// The statuses of a base check, for one platform and for the image.
const (
	// BaseCurrent: the image contains its base as the base's tag has it now.
	BaseCurrent = "current"
	// BaseMoved: the base's tag has moved to an image whose layers the
	// image does not start with: it is due a rebuild.
	BaseMoved = "moved"
	// BaseUnknown: no base is named, or it cannot be judged.
	BaseUnknown = "unknown"
)

// BaseCheck is the answer of `imagebadger check-base`: whether each
// platform image still contains its base as the base's tag has it now.
type BaseCheck struct {
	// Image is the reference checked, and Digest what it resolved to.
	Image  string `json:"image"`
	Digest string `json:"digest"`
	// Base is the base's reference when one base serves every platform
	// checked (the usual case), else nil.
	Base *string `json:"base"`
	// Status is BaseMoved when a platform's base moved, BaseCurrent when
	// every platform's is current, else BaseUnknown.
	Status    string              `json:"status"`
	Platforms []PlatformBaseCheck `json:"platforms"`
}

// PlatformBaseCheck is the check of one platform image against its base.
type PlatformBaseCheck struct {
	Platform string `json:"platform"`
	// Base is the base's reference (nil when none is named) and Source who
	// named it.
	Base   *string `json:"base"`
	Source string  `json:"source,omitempty"`
	// BuiltOn is the digest the image was built on, when named.
	BuiltOn *string `json:"builtOn"`
	// Current is the digest the base's tag points at now, and
	// CurrentPlatform the platform image in it compared (nil when it has
	// none for this platform).
	Current         *string `json:"current"`
	CurrentPlatform *string `json:"currentPlatform"`
	Moved           bool    `json:"moved"`
	Status          string  `json:"status"`
	// Reason says why, in words a person reads.
	Reason string `json:"reason"`
}

// CheckPlatformBase judges one platform image p against base, whose tag
// now points at current (its report). The image is current when the tag
// still points at the image it was built on, or when the tag's image for
// p's platform has layers (by diffID) that are a prefix of p's: the image
// contains the base as it is now. It has moved when neither holds. As for
// the image report's outdated, a tag now pointing at an image without this
// platform leaves an image with a known BuiltOn current (there is nothing
// newer to rebuild it on); without BuiltOn that cannot be judged.
func CheckPlatformBase(p *Platform, base Base, current *Report) PlatformBaseCheck {
	ref := base.Ref.String()
	c := PlatformBaseCheck{Platform: p.Platform, Base: &ref, Source: base.Source, Status: BaseUnknown}
	if base.BuiltOn != "" {
		c.BuiltOn = &base.BuiltOn
	}
	if base.Ref.Tag == "" {
		c.Reason = "the base is named by digest alone, which never moves: name its tag (--base REPOSITORY:TAG)"
		return c
	}
	// Copies: current is a report shared by every read of it.
	now := current.Digest
	c.Current = &now
	cp := current.basePlatform(p.Platform)
	if cp != nil {
		d := cp.Digest
		c.CurrentPlatform = &d
	}
	switch {
	case base.BuiltOn != "" && (base.BuiltOn == current.Digest || cp != nil && base.BuiltOn == cp.Digest):
		c.Status, c.Reason = BaseCurrent, "the base's tag still points at the image it was built on"
	case cp == nil && base.BuiltOn != "":
		c.Status, c.Reason = BaseCurrent, "the base's tag moved to an image without "+p.Platform+": there is nothing newer to rebuild it on"
	case cp == nil:
		c.Reason = "the base's tag points at an image without " + p.Platform
	case len(cp.DiffIDs) == 0 || len(p.DiffIDs) == 0:
		c.Reason = "the layers of the image or of its base are not known (a config without diff_ids)"
	case isLayerPrefix(cp.DiffIDs, p.DiffIDs):
		c.Status, c.Reason = BaseCurrent, "the image starts with the layers of the base's current image"
	default:
		c.Status, c.Moved = BaseMoved, true
		c.Reason = "the base's tag points at an image whose layers the image does not start with: rebuild it on the base as it is now"
	}
	return c
}

// NoBase is the check of a platform image for which no base is named.
func NoBase(p *Platform) PlatformBaseCheck {
	return PlatformBaseCheck{Platform: p.Platform, Status: BaseUnknown,
		Reason: "the image has no " + AnnotationBaseName + " annotation; name its base with --base"}
}

// NewBaseCheck gathers the platform checks of the image rep.
func NewBaseCheck(rep *Report, checks []PlatformBaseCheck) BaseCheck {
	out := BaseCheck{Image: rep.Reference, Digest: rep.Digest, Status: BaseCurrent, Platforms: checks}
	if len(checks) == 0 {
		out.Status = BaseUnknown
	}
	for i, c := range checks {
		switch {
		case c.Status == BaseMoved:
			out.Status = BaseMoved
		case c.Status == BaseUnknown && out.Status != BaseMoved:
			out.Status = BaseUnknown
		}
		if i == 0 {
			out.Base = c.Base
		} else if c.Base == nil || out.Base == nil || *c.Base != *out.Base {
			out.Base = nil
		}
	}
	return out
}

// basePlatform is the platform image of a base that an image for platform
// is built on: the one for the same platform (linux/arm64 and
// linux/arm64/v8 agree, as docker has it), or a single-platform base's only
// one, which docker pulls on any platform.
func (r *Report) basePlatform(platform string) *Platform {
	if !IsIndex(r.MediaType) && len(r.Platforms) == 1 {
		return &r.Platforms[0]
	}
	for i := range r.Platforms {
		if r.Platforms[i].Platform == platform {
			return &r.Platforms[i]
		}
	}
	for i := range r.Platforms {
		a, b := r.Platforms[i].Platform, platform
		if strings.HasPrefix(a, b+"/") || strings.HasPrefix(b, a+"/") {
			return &r.Platforms[i]
		}
	}
	return nil
}

// isLayerPrefix reports whether base is a prefix of layers (equal
// included).
func isLayerPrefix(base, layers []string) bool {
	if len(base) > len(layers) {
		return false
	}
	for i := range base {
		if base[i] != layers[i] {
			return false
		}
	}
	return true
}
