package main

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"regexp"
	"runtime/debug"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestLayerIsCanonical reads a layer back with archive/tar and
// compress/gzip: entries sorted, every time the epoch, owners and modes as
// given, and a gzip header with no name and no time, whatever order the
// entries came in.
func TestLayerIsCanonical(t *testing.T) {
	epoch := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	es := []entry{
		file("etc/passwd", 0o644, []byte("root:x:0:0::/:/sbin/nologin\n")),
		{name: "data", typ: tar.TypeDir, mode: 0o755, uid: nonrootID, gid: nonrootID},
		dir("tmp", 0o1777),
		dir("etc", 0o755),
		{name: "usr/share/zoneinfo/UTC", typ: tar.TypeSymlink, mode: 0o777, linkname: "Etc/UTC"},
	}
	l, err := layer(es, epoch)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		t.Fatal(err)
	}
	if !zr.ModTime.IsZero() || zr.Name != "" || zr.Comment != "" {
		t.Errorf("gzip header: time %v name %q comment %q, want none", zr.ModTime, zr.Name, zr.Comment)
	}
	type hdr struct {
		Name     string
		Type     byte
		Mode     int64
		UID, GID int
		Link     string
	}
	var got []hdr
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.Equal(epoch) {
			t.Errorf("%s: mtime %v, want %v", h.Name, h.ModTime, epoch)
		}
		got = append(got, hdr{h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid, h.Linkname})
	}
	want := []hdr{
		{"data/", tar.TypeDir, 0o755, 65532, 65532, ""},
		{"etc/", tar.TypeDir, 0o755, 0, 0, ""},
		{"etc/passwd", tar.TypeReg, 0o644, 0, 0, ""},
		{"tmp/", tar.TypeDir, 0o1777, 0, 0, ""},
		{"usr/share/zoneinfo/UTC", tar.TypeSymlink, 0o777, 0, 0, "Etc/UTC"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tar entries (-want +got):\n%s", diff)
	}

	// The same entries in another order give the same bytes.
	again, err := layer([]entry{es[4], es[3], es[2], es[1], es[0]}, epoch)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := l.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("digest %s, then %s for the same entries in another order", d1, d2)
	}
	if _, err := layer([]entry{es[0], es[0]}, epoch); err == nil {
		t.Error("a layer with one name twice was written")
	}
}

// TestPurl checks package URLs against the purl specification's golang
// type: the module path's segments as they are, the version after '@', and
// '+' percent-encoded.
func TestPurl(t *testing.T) {
	for path, tc := range map[string]struct{ version, want string }{
		"github.com/Masterminds/semver/v3": {"v3.5.0", "pkg:golang/github.com/Masterminds/semver/v3@v3.5.0"},
		"github.com/docker/cli":            {"v29.7.2+incompatible", "pkg:golang/github.com/docker/cli@v29.7.2%2Bincompatible"},
		"code.dny.dev/ssrf":                {"v0.3.0", "pkg:golang/code.dny.dev/ssrf@v0.3.0"},
		"stdlib":                           {"1.26.10", "pkg:golang/stdlib@1.26.10"},
	} {
		if got := purlRef(path, tc.version).Locator; got != tc.want {
			t.Errorf("purl of %s %s = %s, want %s", path, tc.version, got, tc.want)
		}
	}
}

// TestSBOMIdentifiers checks SPDX 2.3's rules on element identifiers hold
// for module paths that differ only in characters an identifier cannot
// hold, and that a replaced module is listed as its replacement.
func TestSBOMIdentifiers(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.10",
		Main:      debug.Module{Path: modulePath, Version: "(devel)"},
		Deps: []*debug.Module{
			{Path: "example.com/a_b", Version: "v1.0.0"},
			{Path: "example.com/a-b", Version: "v1.0.0"},
			{Path: "example.com/old", Version: "v1.0.0", Replace: &debug.Module{Path: "example.com/new", Version: "v2.0.0"}},
		},
	}
	src := source{version: "v1.2.3", commit: "0123456789abcdef0123456789abcdef01234567", epoch: time.Unix(1700000000, 0).UTC()}
	doc, err := sbom(bi, []byte("binary"), knownPlatforms[0], src)
	if err != nil {
		t.Fatal(err)
	}
	idPattern := regexp.MustCompile(`^SPDXRef-[A-Za-z0-9.-]+$`)
	seen := map[string]bool{}
	var names []string
	for _, p := range doc.Packages {
		if !idPattern.MatchString(p.SPDXID) || seen[p.SPDXID] {
			t.Errorf("SPDXID %q: malformed or repeated", p.SPDXID)
		}
		seen[p.SPDXID] = true
		names = append(names, p.Name+" "+p.VersionInfo)
	}
	want := []string{modulePath + " v1.2.3", "stdlib go1.26.10", "example.com/a_b v1.0.0", "example.com/a-b v1.0.0", "example.com/new v2.0.0"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("packages (-want +got):\n%s", diff)
	}
	if doc.CreationInfo.Created != "2023-11-14T22:13:20Z" {
		t.Errorf("created %s, want the source's epoch", doc.CreationInfo.Created)
	}
	if doc.DocumentNamespace == "" {
		t.Error("no documentNamespace")
	}
}
