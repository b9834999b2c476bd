package contents

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/store"
)

// TreePageSize is how many entries one page of a directory listing holds.
const TreePageSize = 1000

// TreeOptions says which directory to list and how.
type TreeOptions struct {
	// Path is the directory, absolute ("/" by default).
	Path string
	// Layer is the layer after which the filesystem is shown; -1 means the
	// last one, the image's final filesystem.
	Layer int
	// Changes lists only what Layer changed in the directory, its removals
	// included.
	Changes bool
	// Cursor is the name after which the page starts (the last page's Next).
	Cursor string
}

// Tree is one page of a directory's entries.
type Tree struct {
	Path    string      `json:"path"`
	Entries []TreeEntry `json:"entries"`
	Next    *string     `json:"next"`
}

// TreeEntry is one entry of a directory listing, as docs/API.md shows it.
type TreeEntry struct {
	Name       string  `json:"name"`
	Type       string  `json:"type"`
	Size       int64   `json:"size"`
	Mode       uint32  `json:"mode"`
	UID        int     `json:"uid"`
	GID        int     `json:"gid"`
	LinkTarget string  `json:"linkTarget"`
	Digest     string  `json:"digest"`
	Layer      int     `json:"layer"`
	Change     *string `json:"change"`
}

// Tree lists one directory of a platform image whose analysis is done,
// reading from the store only that directory's and its ancestors' entries
// of each layer up to the one asked for, never whole layers.
func (s *Service) Tree(ctx context.Context, p *analysis.Platform, o TreeOptions) (Tree, error) {
	if st, err := s.Status(ctx, p); err != nil {
		return Tree{}, err
	} else if st.State != store.ContentsDone {
		return Tree{}, fmt.Errorf("contents: tree of %s: %w", p.Digest, ErrNotAnalyzed)
	}
	dir, err := analysis.CleanLayerPathInRoot(o.Path)
	if err != nil {
		return Tree{}, err
	}
	last := len(p.Layers) - 1
	if o.Layer < 0 {
		o.Layer = last
	}
	if o.Layer > last {
		return Tree{}, analysis.Errorf(analysis.ErrInvalidRequest, nil, "the image has %d layers (0 to %d); there is no layer %d", len(p.Layers), last, o.Layer)
	}
	dirs := []string{dir}
	for d := dir; d != "/"; {
		d = d[:max(strings.LastIndexByte(d, '/'), 1)]
		dirs = append(dirs, d)
	}
	fs := analysis.NewPartialFilesystem()
	var changes analysis.LayerChanges
	for i := 0; i <= o.Layer; i++ {
		entries, err := s.opts.Store.LayerDirEntries(ctx, p.Layers[i].Digest, dirs)
		if err != nil {
			return Tree{}, err
		}
		ch, err := fs.Apply(entries)
		if err != nil {
			return Tree{}, fmt.Errorf("contents: tree of %s, layer %d: %w", p.Digest, i, err)
		}
		if i == o.Layer {
			changes = ch
		}
	}
	if n, ok := fs.Node(dir); dir != "/" && (!ok || n.Type != analysis.TypeDir) {
		return Tree{}, analysis.Errorf(analysis.ErrNotFound, nil, "%s is not a directory of this image after layer %d", dir, o.Layer)
	}
	kinds := map[string]string{}
	type listed struct {
		path   string
		node   analysis.Node
		change string
	}
	var all []listed
	for _, c := range changes.Changes {
		kinds[c.Path] = c.Kind.String()
		if o.Changes && inDir(dir, c.Path) {
			all = append(all, listed{c.Path, c.Node, c.Kind.String()})
		}
	}
	if !o.Changes {
		fs.List(dir, func(path string, n analysis.Node) {
			all = append(all, listed{path, n, kinds[path]})
		})
	}
	// Sorting the paths of one directory sorts their names.
	slices.SortFunc(all, func(a, b listed) int { return strings.Compare(a.path, b.path) })
	start := 0
	if o.Cursor != "" {
		after := strings.TrimSuffix(dir, "/") + "/" + o.Cursor
		start, _ = slices.BinarySearchFunc(all, after, func(e listed, c string) int { return strings.Compare(e.path, c) })
		for start < len(all) && all[start].path <= after {
			start++
		}
	}
	end := min(len(all), start+TreePageSize)
	t := Tree{Path: dir, Entries: make([]TreeEntry, 0, end-start)}
	for _, e := range all[start:end] {
		t.Entries = append(t.Entries, treeEntry(dir, e.path, e.node, e.change))
	}
	if end < len(all) {
		next := t.Entries[len(t.Entries)-1].Name
		t.Next = &next
	}
	if t.Entries == nil {
		t.Entries = []TreeEntry{}
	}
	return t, nil
}

func inDir(dir, p string) bool {
	if dir == "/" {
		return p != "/" && strings.LastIndexByte(p, '/') == 0
	}
	return strings.HasPrefix(p, dir+"/") && !strings.Contains(p[len(dir)+1:], "/")
}

func treeEntry(dir, p string, n analysis.Node, change string) TreeEntry {
	e := TreeEntry{Name: p[strings.LastIndexByte(p, '/')+1:], Type: n.Type.String(), Mode: n.Mode, UID: n.UID, GID: n.GID,
		LinkTarget: n.LinkTarget, Digest: n.Digest, Layer: n.Layer}
	if n.Type == analysis.TypeFile {
		e.Size = n.Size
	}
	if change != "" {
		e.Change = &change
	}
	return e
}

// Filesystem rebuilds the final filesystem of a platform image whose
// analysis is done, from the stored entries of its layers.
func (s *Service) Filesystem(ctx context.Context, p *analysis.Platform) (*analysis.Filesystem, error) {
	if st, err := s.Status(ctx, p); err != nil {
		return nil, err
	} else if st.State != store.ContentsDone {
		return nil, fmt.Errorf("contents: filesystem of %s: %w", p.Digest, ErrNotAnalyzed)
	}
	fs := analysis.NewFilesystem()
	for i, l := range p.Layers {
		entries, err := s.opts.Store.LayerEntries(ctx, l.Digest)
		if err != nil {
			return nil, err
		}
		if _, err := fs.Apply(entries); err != nil {
			return nil, fmt.Errorf("contents: filesystem of %s, layer %d: %w", p.Digest, i, err)
		}
	}
	return fs, nil
}

// FilesDiff compares the final filesystems of two platform images, or
// answers nil when either is not analysed yet.
func (s *Service) FilesDiff(ctx context.Context, from, to *analysis.Platform) (*analysis.FilesDiff, error) {
	a, err := s.Filesystem(ctx, from)
	if err != nil {
		return nil, nilIfNotAnalyzed(err)
	}
	b, err := s.Filesystem(ctx, to)
	if err != nil {
		return nil, nilIfNotAnalyzed(err)
	}
	d := analysis.DiffFilesystems(a, b)
	return &d, nil
}

func nilIfNotAnalyzed(err error) error {
	if isNotAnalyzed(err) {
		return nil
	}
	return err
}

// LayerChanges returns what layer n of a platform image whose analysis is
// done changed relative to the layers below, sorted by path.
func (s *Service) LayerChanges(ctx context.Context, p *analysis.Platform, n int) ([]analysis.Change, error) {
	if n < 0 || n >= len(p.Layers) {
		return nil, analysis.Errorf(analysis.ErrInvalidRequest, nil, "the image has %d layers (0 to %d); there is no layer %d", len(p.Layers), len(p.Layers)-1, n)
	}
	if st, err := s.Status(ctx, p); err != nil {
		return nil, err
	} else if st.State != store.ContentsDone {
		return nil, fmt.Errorf("contents: changes of %s: %w", p.Digest, ErrNotAnalyzed)
	}
	fs := analysis.NewFilesystem()
	for i := 0; i <= n; i++ {
		entries, err := s.opts.Store.LayerEntries(ctx, p.Layers[i].Digest)
		if err != nil {
			return nil, err
		}
		ch, err := fs.Apply(entries)
		if err != nil {
			return nil, fmt.Errorf("contents: changes of %s, layer %d: %w", p.Digest, i, err)
		}
		if i == n {
			return ch.Changes, nil
		}
	}
	return nil, nil
}
