package analysis_test

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/imagebadger/imagebadger/analysis"
)

// ent is one tar entry a test writes into a layer.
type ent struct {
	name string
	typ  byte
	body string
	link string
	mode int64
}

func file(name string, size int, fill byte) ent {
	return ent{name: name, typ: tar.TypeReg, body: strings.Repeat(string(fill), size), mode: 0o644}
}
func dir(name string) ent      { return ent{name: name, typ: tar.TypeDir, mode: 0o755} }
func sym(name, to string) ent  { return ent{name: name, typ: tar.TypeSymlink, link: to, mode: 0o777} }
func hard(name, to string) ent { return ent{name: name, typ: tar.TypeLink, link: to, mode: 0o644} }
func whiteout(name string) ent { return ent{name: name, typ: tar.TypeReg, mode: 0o644} }
func layerTar(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, Size: int64(len(e.body)), Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func layerOf(t testing.TB, ents ...ent) v1.Layer {
	t.Helper()
	b := layerTar(t, ents...)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func imageOf(t testing.TB, layers ...[]ent) v1.Image {
	t.Helper()
	img := empty.Image
	for _, ents := range layers {
		var err error
		img, err = mutate.AppendLayers(img, layerOf(t, ents...))
		if err != nil {
			t.Fatal(err)
		}
	}
	return img
}

// applyImage runs the model over an image's layers as go-containerregistry
// serves them (compressed, then decompressed), returning each layer's changes.
func applyImage(t testing.TB, img v1.Image) (*analysis.Filesystem, []analysis.LayerChanges) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	fs := analysis.NewFilesystem()
	var changes []analysis.LayerChanges
	for i, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		entries, err := analysis.ReadLayer(rc, analysis.ReadLayerOptions{})
		rc.Close()
		if err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
		ch, err := fs.Apply(entries)
		if err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
		changes = append(changes, ch)
	}
	return fs, changes
}

// view is what a test compares of a path: for a hardlink only its target,
// since a tar gives a hardlink no bytes of its own.
type view struct {
	Type, Digest, Link string
	Size               int64
	Mode               uint32
}

func sha(s string) string { return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(s))) }

func modelView(fs *analysis.Filesystem) map[string]view {
	m := map[string]view{}
	fs.Walk(func(p string, n analysis.Node) {
		v := view{Type: n.Type.String(), Mode: n.Mode, Link: n.LinkTarget}
		if n.Type == analysis.TypeFile {
			v.Size, v.Digest = n.Size, n.Digest
		}
		m[p] = v
	})
	return m
}

// extractView is the final filesystem as go-containerregistry's
// mutate.Extract flattens the image.
func extractView(t testing.TB, img v1.Image) map[string]view {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	m := map[string]view{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return m
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		p := "/" + strings.TrimPrefix(path.Clean(hdr.Name), "/")
		v := view{Mode: uint32(hdr.Mode) & 0o7777}
		switch hdr.Typeflag {
		case tar.TypeReg:
			v.Type, v.Size, v.Digest = "file", int64(len(body)), sha(string(body))
		case tar.TypeDir:
			v.Type = "dir"
		case tar.TypeSymlink:
			v.Type, v.Link = "symlink", hdr.Linkname
		case tar.TypeLink:
			v.Type, v.Link = "hardlink", "/"+strings.TrimPrefix(path.Clean(hdr.Linkname), "/")
		}
		m[p] = v
	}
}

// The fixture of most changeset rules: a base, a layer of whiteouts (one on
// a hardlink's target), an opaque directory and a file replacing a
// directory, an empty layer, and a layer that re-adds a deleted file,
// re-creates a file it also whites out, and adds a symlink.
var (
	base = []ent{
		dir("etc/"), file("etc/passwd", 5, 'p'), file("etc/hosts", 10, 'h'),
		dir("var/"), dir("var/cache/"), file("var/cache/pkg.bin", 1000, 'c'),
		dir("opt/"), dir("opt/app/"), file("opt/app/old1", 100, '1'), file("opt/app/old2", 200, '2'),
		dir("data/"), file("data/x", 50, 'x'),
		dir("usr/"), dir("usr/bin/"), file("usr/bin/busybox", 300, 'b'), sym("bin", "usr/bin"),
		dir("lib/"), file("lib/libc.so", 400, 'l'), hard("lib/libc.so.6", "lib/libc.so"),
	}
	cleanup = []ent{
		whiteout("var/cache/.wh.pkg.bin"),
		dir("opt/app/"), whiteout("opt/app/.wh..wh..opq"), file("opt/app/new", 150, 'n'),
		file("data", 60, 'd'),
		whiteout("lib/.wh.libc.so"),
		file("etc/hosts", 12, 'H'),
	}
	emptyLayer = []ent{}
	readd      = []ent{
		file("./var/cache/pkg.bin", 800, 'C'),
		file("etc/hosts", 20, 'Z'), whiteout("etc/.wh.hosts"),
		sym("usr/bin/sh", "busybox"),
	}
)

func TestFilesystemFollowsTheChangesetRules(t *testing.T) {
	img := imageOf(t, base, cleanup, emptyLayer, readd)
	fs, changes := applyImage(t, img)

	// Every case of this fixture is one go-containerregistry's Extract
	// flattens as the spec says, so it is the expectation of the final
	// filesystem.
	if diff := cmp.Diff(extractView(t, img), modelView(fs)); diff != "" {
		t.Errorf("final filesystem differs from mutate.Extract (-extract +model):\n%s", diff)
	}

	// And written by hand from the fixture.
	want := map[string]view{
		"/etc": {Type: "dir", Mode: 0o755}, "/etc/passwd": {Type: "file", Size: 5, Digest: sha("ppppp"), Mode: 0o644},
		"/etc/hosts": {Type: "file", Size: 20, Digest: sha(strings.Repeat("Z", 20)), Mode: 0o644},
		"/var":       {Type: "dir", Mode: 0o755}, "/var/cache": {Type: "dir", Mode: 0o755},
		"/var/cache/pkg.bin": {Type: "file", Size: 800, Digest: sha(strings.Repeat("C", 800)), Mode: 0o644},
		"/opt":               {Type: "dir", Mode: 0o755}, "/opt/app": {Type: "dir", Mode: 0o755},
		"/opt/app/new": {Type: "file", Size: 150, Digest: sha(strings.Repeat("n", 150)), Mode: 0o644},
		"/data":        {Type: "file", Size: 60, Digest: sha(strings.Repeat("d", 60)), Mode: 0o644},
		"/usr":         {Type: "dir", Mode: 0o755}, "/usr/bin": {Type: "dir", Mode: 0o755},
		"/usr/bin/busybox": {Type: "file", Size: 300, Digest: sha(strings.Repeat("b", 300)), Mode: 0o644},
		"/usr/bin/sh":      {Type: "symlink", Link: "busybox", Mode: 0o777},
		"/bin":             {Type: "symlink", Link: "usr/bin", Mode: 0o777},
		"/lib":             {Type: "dir", Mode: 0o755},
		"/lib/libc.so.6":   {Type: "hardlink", Link: "/lib/libc.so", Mode: 0o644},
	}
	if diff := cmp.Diff(want, modelView(fs)); diff != "" {
		t.Errorf("final filesystem (-want +got):\n%s", diff)
	}
	if n, _ := fs.Node("/lib/libc.so.6"); n.Size != 400 || n.Digest != sha(strings.Repeat("l", 400)) {
		t.Errorf("the hardlink whose target was removed holds %d bytes %s, want the target's 400", n.Size, n.Digest)
	}

	type counts struct {
		Added, Modified, Removed             int
		AddedSize, ModifiedSize, RemovedSize int64
		Paths                                map[string]string
	}
	got := make([]counts, len(changes))
	for i, c := range changes {
		got[i] = counts{c.Added, c.Modified, c.Removed, c.AddedSize, c.ModifiedSize, c.RemovedSize, map[string]string{}}
		for _, ch := range c.Changes {
			got[i].Paths[ch.Path] = ch.Kind.String()
		}
	}
	wantChanges := []counts{
		{Added: 19, AddedSize: 5 + 10 + 1000 + 100 + 200 + 50 + 300 + 400, Paths: map[string]string{
			"/etc": "added", "/etc/passwd": "added", "/etc/hosts": "added", "/var": "added", "/var/cache": "added",
			"/var/cache/pkg.bin": "added", "/opt": "added", "/opt/app": "added", "/opt/app/old1": "added",
			"/opt/app/old2": "added", "/data": "added", "/data/x": "added", "/usr": "added", "/usr/bin": "added",
			"/usr/bin/busybox": "added", "/bin": "added", "/lib": "added", "/lib/libc.so": "added", "/lib/libc.so.6": "added",
		}},
		{Added: 1, AddedSize: 150, Modified: 3, ModifiedSize: 60 + 12, Removed: 5, RemovedSize: 1000 + 100 + 200 + 50 + 400, Paths: map[string]string{
			"/var/cache/pkg.bin": "removed", "/opt/app": "modified", "/opt/app/old1": "removed", "/opt/app/old2": "removed",
			"/opt/app/new": "added", "/data": "modified", "/data/x": "removed", "/lib/libc.so": "removed", "/etc/hosts": "modified",
		}},
		{Paths: map[string]string{}},
		{Added: 2, AddedSize: 800, Modified: 1, ModifiedSize: 20, Paths: map[string]string{
			"/var/cache/pkg.bin": "added", "/etc/hosts": "modified", "/usr/bin/sh": "added",
		}},
	}
	if diff := cmp.Diff(wantChanges, got); diff != "" {
		t.Errorf("per-layer changes (-want +got):\n%s", diff)
	}

	s := fs.Summary()
	layerFiles := int64(5 + 10 + 1000 + 100 + 200 + 50 + 300 + 400 + 150 + 60 + 12 + 800 + 20)
	total := int64(5 + 20 + 800 + 150 + 60 + 300 + 400)
	if s.LayerFilesSize != layerFiles || s.TotalSize != total || s.WastedSize != layerFiles-total || s.FileCount != len(want) {
		t.Errorf("summary sizes = files %d total %d wasted %d count %d, want %d %d %d %d",
			s.LayerFilesSize, s.TotalSize, s.WastedSize, s.FileCount, layerFiles, total, layerFiles-total, len(want))
	}
	if s.WastedSize != 1372 {
		t.Errorf("wastedSize = %d, want 1372: the first pkg.bin, old1, old2, data/x and both older hosts", s.WastedSize)
	}
	if want := float64(total) / float64(layerFiles); s.Efficiency != want {
		t.Errorf("efficiency = %v, want %v", s.Efficiency, want)
	}
	wantWasted := []analysis.WastedPath{
		{Path: "/var/cache/pkg.bin", Size: 1000, Copies: 2, Layers: []int{0, 3}},
		{Path: "/opt/app/old2", Size: 200, Copies: 1, Layers: []int{0}},
		{Path: "/opt/app/old1", Size: 100, Copies: 1, Layers: []int{0}},
		{Path: "/data/x", Size: 50, Copies: 1, Layers: []int{0}},
		{Path: "/etc/hosts", Size: 22, Copies: 3, Layers: []int{0, 1, 3}},
	}
	if diff := cmp.Diff(wantWasted, s.Wasted); diff != "" {
		t.Errorf("wasted (-want +got):\n%s", diff)
	}
	wantLargest := []analysis.LargeFile{
		{Path: "/var/cache/pkg.bin", Size: 800, Layer: 3}, {Path: "/usr/bin/busybox", Size: 300, Layer: 0},
		{Path: "/opt/app/new", Size: 150, Layer: 1}, {Path: "/data", Size: 60, Layer: 1},
		{Path: "/etc/hosts", Size: 20, Layer: 3}, {Path: "/etc/passwd", Size: 5, Layer: 0},
	}
	if diff := cmp.Diff(wantLargest, s.Largest); diff != "" {
		t.Errorf("largest (-want +got):\n%s", diff)
	}
}

// Cases where go-containerregistry's Extract does not follow the spec, so
// the expectation is written from the spec.
func TestFilesystemWhereExtractDiffers(t *testing.T) {
	t.Run("whiteout before the re-created name in one layer", func(t *testing.T) {
		// Extract walks layers top-down and skips a name already
		// tombstoned, so it drops the file this layer re-creates after its
		// own whiteout; the spec says a whiteout hides only the layers
		// below, so the new file stays.
		img := imageOf(t,
			[]ent{dir("etc/"), file("etc/conf", 3, 'a')},
			[]ent{whiteout("etc/.wh.conf"), file("etc/conf", 4, 'b')},
		)
		fs, changes := applyImage(t, img)
		want := map[string]view{
			"/etc":      {Type: "dir", Mode: 0o755},
			"/etc/conf": {Type: "file", Size: 4, Digest: sha("bbbb"), Mode: 0o644},
		}
		if diff := cmp.Diff(want, modelView(fs)); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		if _, ok := extractView(t, img)["/etc/conf"]; ok {
			t.Log("mutate.Extract now keeps the re-created file; this case could compare with it")
		}
		if c := changes[1]; c.Modified != 1 || c.Added != 0 || c.Removed != 0 {
			t.Errorf("layer 1 changes = %+v, want one modification", c)
		}
		if s := fs.Summary(); s.WastedSize != 3 {
			t.Errorf("wastedSize = %d, want 3", s.WastedSize)
		}
	})
	t.Run("a path through a symlinked directory", func(t *testing.T) {
		// Extract copies the entry's name as is, leaving lib/foo.so beside a
		// lib symlink; an extraction scoped to the root follows the link,
		// so the file lands in usr/lib.
		img := imageOf(t,
			[]ent{dir("usr/"), dir("usr/lib/"), sym("lib", "usr/lib")},
			[]ent{file("lib/foo.so", 7, 'f')},
		)
		fs, _ := applyImage(t, img)
		want := map[string]view{
			"/usr": {Type: "dir", Mode: 0o755}, "/usr/lib": {Type: "dir", Mode: 0o755},
			"/lib":            {Type: "symlink", Link: "usr/lib", Mode: 0o777},
			"/usr/lib/foo.so": {Type: "file", Size: 7, Digest: sha("fffffff"), Mode: 0o644},
		}
		if diff := cmp.Diff(want, modelView(fs)); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("directories the tar never names", func(t *testing.T) {
		// Extract writes only what the tars hold; an extraction creates the
		// directories a file needs, and so does the model.
		img := imageOf(t, []ent{file("a/b/c", 2, 'c')})
		fs, changes := applyImage(t, img)
		want := map[string]view{
			"/a": {Type: "dir", Mode: 0o755}, "/a/b": {Type: "dir", Mode: 0o755},
			"/a/b/c": {Type: "file", Size: 2, Digest: sha("cc"), Mode: 0o644},
		}
		if diff := cmp.Diff(want, modelView(fs)); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		if changes[0].Added != 3 {
			t.Errorf("added = %d, want 3", changes[0].Added)
		}
	})
}

func TestFilesystemMoreRules(t *testing.T) {
	t.Run("a directory replaces a file", func(t *testing.T) {
		img := imageOf(t,
			[]ent{file("x", 9, 'x')},
			[]ent{dir("x/"), file("x/y", 1, 'y')},
		)
		fs, changes := applyImage(t, img)
		if diff := cmp.Diff(extractView(t, img), modelView(fs)); diff != "" {
			t.Errorf("(-extract +model):\n%s", diff)
		}
		if c := changes[1]; c.Modified != 1 || c.Added != 1 || c.ModifiedSize != 0 {
			t.Errorf("layer 1 = %+v, want x modified (a directory, 0 bytes) and x/y added", c)
		}
		if s := fs.Summary(); s.WastedSize != 9 || s.TotalSize != 1 {
			t.Errorf("summary = %+v, want 9 wasted, 1 kept", s)
		}
	})
	t.Run("an opaque marker after the directory's new entries", func(t *testing.T) {
		img := imageOf(t,
			[]ent{dir("d/"), file("d/old", 5, 'o')},
			[]ent{dir("d/"), file("d/new", 3, 'n'), whiteout("d/.wh..wh..opq")},
		)
		fs, _ := applyImage(t, img)
		if diff := cmp.Diff(extractView(t, img), modelView(fs)); diff != "" {
			t.Errorf("(-extract +model):\n%s", diff)
		}
		if _, ok := fs.Node("/d/new"); !ok {
			t.Error("the opaque marker hid the layer's own file")
		}
	})
	t.Run("a whiteout of a whole directory", func(t *testing.T) {
		img := imageOf(t,
			[]ent{dir("d/"), dir("d/e/"), file("d/e/f", 5, 'f')},
			[]ent{whiteout(".wh.d")},
		)
		fs, changes := applyImage(t, img)
		if fs.Len() != 0 {
			t.Errorf("%d paths left, want none", fs.Len())
		}
		if c := changes[1]; c.Removed != 3 || c.RemovedSize != 5 {
			t.Errorf("layer 1 = %+v, want 3 removed, 5 bytes", c)
		}
	})
	t.Run("hardlinks count their content once", func(t *testing.T) {
		img := imageOf(t, []ent{file("a", 10, 'a'), hard("b", "a"), hard("c", "./a")})
		fs, _ := applyImage(t, img)
		if s := fs.Summary(); s.TotalSize != 10 || s.LayerFilesSize != 10 || s.FileCount != 3 || s.Efficiency != 1 {
			t.Errorf("summary = %+v, want 10 bytes in 3 entries", s)
		}
	})
	t.Run("no files", func(t *testing.T) {
		fs, _ := applyImage(t, imageOf(t, emptyLayer))
		if s := fs.Summary(); s.Efficiency != 1 || s.FileCount != 0 {
			t.Errorf("summary = %+v, want efficiency 1", s)
		}
	})
}

func TestFilesystemRejectsBadLayers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		layers [][]ent
	}{
		{"a name above the root", [][]ent{{file("../etc/passwd", 1, 'x')}}},
		{"a name climbing out midway", [][]ent{{file("a/../../x", 1, 'x')}}},
		{"a whiteout above the root", [][]ent{{whiteout("../.wh.x")}}},
		{"a hardlink to nothing", [][]ent{{hard("b", "missing")}}},
		{"a hardlink out of the root", [][]ent{{file("a", 1, 'a'), hard("b", "../a")}}},
		{"a hardlink to a directory", [][]ent{{dir("d/"), hard("b", "d")}}},
		{"a file below a file", [][]ent{{file("f", 1, 'f')}, {file("f/g", 1, 'g')}}},
		{"a symlink loop above an entry", [][]ent{{sym("a", "b"), sym("b", "a")}, {file("a/x", 1, 'x')}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := analysis.NewFilesystem()
			var err error
			for _, l := range tc.layers {
				var entries []analysis.LayerEntry
				entries, err = analysis.ReadLayer(bytes.NewReader(layerTar(t, l...)), analysis.ReadLayerOptions{})
				if err != nil {
					break
				}
				if _, err = fs.Apply(entries); err != nil {
					break
				}
			}
			if !errors.Is(err, analysis.ErrInvalidLayer) {
				t.Fatalf("err = %v, want ErrInvalidLayer", err)
			}
			if msg, ok := analysis.PublicMessage(err); !ok || msg == "" {
				t.Errorf("no reason for a person: %v", err)
			}
		})
	}
}

func TestReadLayer(t *testing.T) {
	b := layerTar(t, dir("d/"), file("d/f", 3, 'a'), sym("s", "d/f"), hard("h", "d/f"),
		ent{name: "dev", typ: tar.TypeChar, mode: 0o600})
	got, err := analysis.ReadLayer(bytes.NewReader(b), analysis.ReadLayerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []analysis.LayerEntry{
		{Path: "d/", Type: analysis.TypeDir, Mode: 0o755},
		{Path: "d/f", Type: analysis.TypeFile, Size: 3, Mode: 0o644, Digest: sha("aaa")},
		{Path: "s", Type: analysis.TypeSymlink, Mode: 0o777, LinkTarget: "d/f"},
		{Path: "h", Type: analysis.TypeHardlink, Mode: 0o644, LinkTarget: "d/f"},
		{Path: "dev", Type: analysis.TypeOther, Mode: 0o600},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := analysis.ReadLayer(bytes.NewReader(b), analysis.ReadLayerOptions{MaxEntries: 4}); !errors.Is(err, analysis.ErrTooLarge) {
		t.Errorf("over the entry limit: err = %v, want ErrTooLarge", err)
	}
	if _, err := analysis.ReadLayer(bytes.NewReader(b[:1600]), analysis.ReadLayerOptions{}); !errors.Is(err, analysis.ErrInvalidLayer) {
		t.Errorf("truncated: err = %v, want ErrInvalidLayer", err)
	}
	if _, err := analysis.ReadLayer(strings.NewReader(strings.Repeat("not a tar ", 100)), analysis.ReadLayerOptions{}); !errors.Is(err, analysis.ErrInvalidLayer) {
		t.Errorf("garbage: err = %v, want ErrInvalidLayer", err)
	}
}

func TestDiffFilesystems(t *testing.T) {
	from, _ := applyImage(t, imageOf(t, []ent{dir("etc/"), file("etc/a", 3, 'a'), file("etc/b", 4, 'b'), sym("l", "etc/a"), file("gone", 8, 'g')}))
	to, _ := applyImage(t, imageOf(t,
		[]ent{dir("etc/"), file("etc/a", 3, 'a'), file("etc/b", 4, 'B'), sym("l", "etc/b")},
		[]ent{file("new", 5, 'n'), ent{name: "etc/a", typ: tar.TypeReg, body: "aaa", mode: 0o600}}))
	got := analysis.DiffFilesystems(from, to)
	want := analysis.FilesDiff{
		Added:      []analysis.FileDiffEntry{{Path: "/new", Size: 5}},
		Removed:    []analysis.FileDiffEntry{{Path: "/gone", Size: 8}},
		Changed:    []analysis.FileDiffEntry{{Path: "/etc/a", Size: 3}, {Path: "/etc/b", Size: 4}, {Path: "/l"}},
		AddedCount: 1, RemovedCount: 1, ChangedCount: 3,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
