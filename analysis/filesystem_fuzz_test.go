package analysis_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/imagebadger/imagebadger/analysis"
)

// FuzzReadLayer: any bytes either read as a tar's entries or fail as an
// invalid or too large layer; never a panic, never more entries than the limit.
func FuzzReadLayer(f *testing.F) {
	f.Add(layerTar(f, base...))
	f.Add(layerTar(f, cleanup...))
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0}, 1024))
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := analysis.ReadLayer(bytes.NewReader(b), analysis.ReadLayerOptions{MaxEntries: 64})
		if err != nil {
			if !errors.Is(err, analysis.ErrInvalidLayer) && !errors.Is(err, analysis.ErrTooLarge) {
				t.Fatalf("error %v is neither ErrInvalidLayer nor ErrTooLarge", err)
			}
			return
		}
		if len(entries) > 64 {
			t.Fatalf("%d entries past the limit of 64", len(entries))
		}
	})
}

// FuzzApply: any second layer applied over the fixture's base either fails
// as ErrInvalidLayer or leaves a filesystem whose paths are clean and
// absolute, whose every path sits in a directory, and whose sizes add up.
func FuzzApply(f *testing.F) {
	f.Add(layerTar(f, cleanup...))
	f.Add(layerTar(f, readd...))
	f.Add(layerTar(f, whiteout("etc/.wh.hosts"), file("etc/hosts", 1, 'x'), hard("x", "lib/libc.so.6")))
	f.Add(layerTar(f, file("bin/evil", 1, 'e'), whiteout("bin/.wh..wh..opq"), sym("usr", "/")))
	baseEntries, err := analysis.ReadLayer(bytes.NewReader(layerTar(f, base...)), analysis.ReadLayerOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := analysis.ReadLayer(bytes.NewReader(b), analysis.ReadLayerOptions{MaxEntries: 64})
		if err != nil {
			return
		}
		fs := analysis.NewFilesystem()
		if _, err := fs.Apply(baseEntries); err != nil {
			t.Fatal(err)
		}
		changes, err := fs.Apply(entries)
		if err != nil {
			if !errors.Is(err, analysis.ErrInvalidLayer) {
				t.Fatalf("error %v is not ErrInvalidLayer", err)
			}
			return
		}
		if changes.Added+changes.Modified+changes.Removed != len(changes.Changes) {
			t.Fatalf("counts %+v do not match %d changes", changes, len(changes.Changes))
		}
		fs.Walk(func(p string, n analysis.Node) {
			clean, err := analysis.CleanLayerPath(p)
			if err != nil || clean != p || p == "/" {
				t.Fatalf("path %q is not clean and absolute", p)
			}
			dir := p[:strings.LastIndexByte(p, '/')]
			if dir == "" {
				return
			}
			if d, ok := fs.Node(dir); !ok || d.Type != analysis.TypeDir {
				t.Fatalf("%s is in %s, which is not a directory", p, dir)
			}
		})
		s := fs.Summary()
		if s.WastedSize < 0 || s.WastedSize != s.LayerFilesSize-s.TotalSize || s.Efficiency < 0 || s.Efficiency > 1 {
			t.Fatalf("summary does not add up: %+v", s)
		}
		var listed int64
		for _, w := range s.Wasted {
			listed += w.Size
		}
		if len(s.Wasted) < analysis.ContentsListLimit && listed != s.WastedSize {
			t.Fatalf("wasted paths add up to %d, wastedSize is %d", listed, s.WastedSize)
		}
	})
}
