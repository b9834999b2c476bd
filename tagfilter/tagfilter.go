// Package tagfilter decides which tags a repository-wide subscription
// follows (docs/API.md, "Webhook subscriptions": tags.include, tags.exclude,
// tags.semver) and which new tag is a release (version.released). It is pure
// and shared by notify, whose fan-out judges every subscription by it and
// whose watcher polls only followed tags, and by the subscription API, which
// validates filters with the errors the contract names.
package tagfilter

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// Spec is a filter as a subscription stores it: RE2 expressions (matched
// anywhere in the tag, as RE2 matches; anchor with ^…$) and a semver
// constraint ("~1.4", ">=3.19, <4"); an empty field does not filter.
type Spec struct {
	Include string
	Exclude string
	Semver  string
}

// IsZero reports whether s follows every tag.
func (s Spec) IsZero() bool { return s == Spec{} }

// MaxLength bounds each field of a Spec: real filters are short, and a
// bounded expression bounds the time a match takes (RE2 is linear in both).
const MaxLength = 512

// FieldError names the field of a Spec that does not parse.
type FieldError struct {
	// Field is as the API names it: tags.include, tags.exclude or tags.semver.
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns the parse error.
func (e *FieldError) Unwrap() error { return e.Err }

// Filter is a parsed Spec.
type Filter struct {
	spec             Spec
	include, exclude *regexp.Regexp
	constraint       *semver.Constraints
}

// Parse checks and compiles s. A field that does not parse gives a
// *FieldError naming it.
func Parse(s Spec) (*Filter, error) {
	f := &Filter{spec: s}
	for _, p := range []struct {
		field, expr string
		into        **regexp.Regexp
	}{{"tags.include", s.Include, &f.include}, {"tags.exclude", s.Exclude, &f.exclude}} {
		if p.expr == "" {
			continue
		}
		if len(p.expr) > MaxLength {
			return nil, &FieldError{p.field, fmt.Errorf("longer than %d characters", MaxLength)}
		}
		re, err := regexp.Compile(p.expr)
		if err != nil {
			var se *syntax.Error
			if errors.As(err, &se) {
				err = fmt.Errorf("not an RE2 regular expression: %s in %q", se.Code, se.Expr)
			}
			return nil, &FieldError{p.field, err}
		}
		*p.into = re
	}
	if s.Semver != "" {
		if len(s.Semver) > MaxLength {
			return nil, &FieldError{"tags.semver", fmt.Errorf("longer than %d characters", MaxLength)}
		}
		c, err := semver.NewConstraint(s.Semver)
		if err != nil {
			return nil, &FieldError{"tags.semver", fmt.Errorf("not a version constraint (e.g. \"~1.4\" or \">=3.19, <4\"): %v", err)}
		}
		f.constraint = c
	}
	return f, nil
}

// Spec returns what f was parsed from.
func (f *Filter) Spec() Spec { return f.spec }

// Follows reports whether tag passes the filter: it matches include (when
// given), does not match exclude (when given) and, with a semver
// constraint, parses as a version (a "v" prefix and missing minor or
// patch numbers allowed, as in "3.20") that the constraint admits; a
// pre-release only when the constraint names one, as semver ranges do.
func (f *Filter) Follows(tag string) bool {
	if f == nil {
		return true
	}
	if f.include != nil && !f.include.MatchString(tag) {
		return false
	}
	if f.exclude != nil && f.exclude.MatchString(tag) {
		return false
	}
	if f.constraint != nil {
		v, err := semver.NewVersion(tag)
		if err != nil || !f.constraint.Check(v) {
			return false
		}
	}
	return true
}

// version is a tag read as a release version, with how many numbers it
// wrote ("2.1" is two, "2.1.0" three): of two tags naming one version the
// one written in full is the release.
type version struct {
	v     *semver.Version
	parts int
}

// releaseVersion reads tag as a version that may count as a release under
// f: a version f follows, and without a semver constraint not a
// pre-release (a constraint that admits one lets it count).
func (f *Filter) releaseVersion(tag string) (version, bool) {
	if !f.Follows(tag) {
		return version{}, false
	}
	v, err := semver.NewVersion(tag)
	if err != nil {
		return version{}, false
	}
	if v.Prerelease() != "" && (f == nil || f.constraint == nil) {
		return version{}, false
	}
	core := strings.TrimPrefix(strings.TrimPrefix(tag, "v"), "V")
	if i := strings.IndexAny(core, "-+"); i >= 0 {
		core = core[:i]
	}
	return version{v: v, parts: strings.Count(core, ".") + 1}, true
}

func (a version) greater(b version) bool {
	if c := a.v.Compare(b.v); c != 0 {
		return c > 0
	}
	return a.parts > b.parts
}

// Releases reports whether tag, seen for the first time, is a release for
// a subscription filtered by f: it parses as a version higher than every
// version among others (the repository's other tags, ever), each counted
// only if f follows it and, like tag, it is not a pre-release unless the
// constraint admits one. A tag naming the same version as another with
// fewer numbers written ("2.1.0" after "2.1") is the release; one with the
// same or fewer ("2.1" after "2.1.0", "v2.1.0" after "2.1.0") is not.
func (f *Filter) Releases(tag string, others []string) bool {
	v, ok := f.releaseVersion(tag)
	if !ok {
		return false
	}
	for _, o := range others {
		if o == tag {
			continue
		}
		if ov, ok := f.releaseVersion(o); ok && !v.greater(ov) {
			return false
		}
	}
	return true
}

// IsVersion reports whether tag could be a release for some subscription:
// it parses as a version.
func IsVersion(tag string) bool {
	_, err := semver.NewVersion(tag)
	return err == nil
}
