package tagfilter_test

import (
	"errors"
	"testing"

	"github.com/imagebadger/imagebadger/tagfilter"
)

// TestFollows checks the filters against docs/API.md's examples: ~1.4
// follows 1.4.x and nothing else, exclude drops the release candidates,
// pre-releases only when the constraint names one.
func TestFollows(t *testing.T) {
	cases := []struct {
		spec tagfilter.Spec
		tag  string
		want bool
	}{
		{tagfilter.Spec{}, "latest", true},
		{tagfilter.Spec{Semver: "~1.4"}, "1.4.3", true},
		{tagfilter.Spec{Semver: "~1.4"}, "v1.4.3", true},
		{tagfilter.Spec{Semver: "~1.4"}, "1.5.0", false},
		{tagfilter.Spec{Semver: "~1.4"}, "2.0.0", false},
		{tagfilter.Spec{Semver: "~1.4"}, "1.4.4-rc1", false},
		{tagfilter.Spec{Semver: "~1.4"}, "latest", false},
		{tagfilter.Spec{Semver: ">=1.4.0-0"}, "1.4.4-rc1", true},
		{tagfilter.Spec{Semver: ">=1.4.0-0", Exclude: "-rc"}, "1.4.4-rc1", false},
		{tagfilter.Spec{Semver: ">=3.19, <4"}, "3.20", true},
		{tagfilter.Spec{Semver: ">=3.19, <4"}, "3.18", false},
		{tagfilter.Spec{Include: `^3\.`}, "3.20-slim", true},
		{tagfilter.Spec{Include: `^3\.`}, "13.1", false},
		{tagfilter.Spec{Exclude: "-rc"}, "1.4.4-rc1", false},
		{tagfilter.Spec{Exclude: "-rc"}, "1.4.4", true},
	}
	for _, c := range cases {
		f, err := tagfilter.Parse(c.spec)
		if err != nil {
			t.Fatalf("%+v: %v", c.spec, err)
		}
		if got := f.Follows(c.tag); got != c.want {
			t.Errorf("%+v follows %q = %v, want %v", c.spec, c.tag, got, c.want)
		}
	}
}

func TestParseNamesTheField(t *testing.T) {
	for field, spec := range map[string]tagfilter.Spec{
		"tags.include": {Include: "("},
		"tags.exclude": {Exclude: "a[z-a]"},
		"tags.semver":  {Semver: "~banana"},
	} {
		_, err := tagfilter.Parse(spec)
		var fe *tagfilter.FieldError
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%+v: err = %v, want a FieldError naming %s", spec, err, field)
		}
	}
}

// TestReleases checks version.released's rule: a new tag higher than every
// version tag the repository had, within the constraint.
func TestReleases(t *testing.T) {
	all := mustParse(t, tagfilter.Spec{})
	minor := mustParse(t, tagfilter.Spec{Semver: "~1.4"})
	pre := mustParse(t, tagfilter.Spec{Semver: ">=2.0.0-0"})
	cases := []struct {
		name   string
		f      *tagfilter.Filter
		tag    string
		others []string
		want   bool
	}{
		{"higher", all, "2.1.0", []string{"2.0.0", "latest", "1.9.0"}, true},
		{"lower pushed later", all, "1.9.9", []string{"2.0.0", "2.1.0"}, false},
		{"first version", all, "1.0.0", []string{"latest"}, true},
		{"not a version", all, "latest", []string{"1.0.0"}, false},
		{"v prefix", all, "v2.2.0", []string{"v2.1.0"}, true},
		{"same version again", all, "v2.1.0", []string{"2.1.0"}, false},
		{"the full name of a short one", all, "2.1.0", []string{"2.1", "2.0.0"}, true},
		{"the short name of a full one", all, "2.1", []string{"2.1.0", "2.0.0"}, false},
		{"pre-release without constraint", all, "3.0.0-rc1", []string{"2.1.0"}, false},
		{"pre-releases do not count against", all, "2.2.0", []string{"2.1.0", "3.0.0-rc1"}, true},
		{"within the constraint", minor, "1.4.5", []string{"1.4.4", "2.0.0", "1.5.0"}, true},
		{"outside the constraint", minor, "1.5.1", []string{"1.4.4"}, false},
		{"pre-release admitted", pre, "3.0.0-rc1", []string{"2.1.0"}, true},
	}
	for _, c := range cases {
		if got := c.f.Releases(c.tag, c.others); got != c.want {
			t.Errorf("%s: Releases(%q, %v) = %v, want %v", c.name, c.tag, c.others, got, c.want)
		}
	}
}

func mustParse(t *testing.T, s tagfilter.Spec) *tagfilter.Filter {
	t.Helper()
	f, err := tagfilter.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
