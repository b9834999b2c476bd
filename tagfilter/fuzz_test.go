package tagfilter_test

import (
	"testing"

	"github.com/imagebadger/imagebadger/tagfilter"
)

// FuzzFilter: any spec either parses or is refused naming a field, and a
// parsed one judges any tag without failing; a tag a filter follows is
// never a release for it unless it parses as a version.
func FuzzFilter(f *testing.F) {
	f.Add(`^1\.`, "-rc", "~1.4", "1.4.3")
	f.Add("(", "", "", "latest")
	f.Add("", "", ">=3.19, <4", "3.20")
	f.Add("", "", ">=1.0.0-0", "v1.0.0-rc.1+build")
	f.Fuzz(func(t *testing.T, include, exclude, semver, tag string) {
		flt, err := tagfilter.Parse(tagfilter.Spec{Include: include, Exclude: exclude, Semver: semver})
		if err != nil {
			return
		}
		flt.Follows(tag)
		if flt.Releases(tag, []string{"1.0.0", tag, "latest"}) && !tagfilter.IsVersion(tag) {
			t.Fatalf("%q is a release but not a version", tag)
		}
	})
}
