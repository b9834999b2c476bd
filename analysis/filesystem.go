package analysis

import (
	"cmp"
	"slices"
	"strings"
)

// The OCI image spec's whiteout names: a file named whiteoutPrefix+NAME in a
// layer removes NAME from the layers below; opaqueWhiteout in a directory
// hides everything the layers below had in it.
const (
	whiteoutPrefix     = ".wh."
	whiteoutMetaPrefix = ".wh..wh."
	opaqueWhiteout     = ".wh..wh..opq"
)

// maxSymlinkHops bounds the symbolic links followed when resolving the
// directories above an entry, as the kernel's own limit does.
const maxSymlinkHops = 40

// ContentsListLimit is how many paths the wasted and largest lists hold.
const ContentsListLimit = 100

// Node is one path of a filesystem built from layers: what the last layer to
// write it said, and which layer that was. A hardlink's Size and Digest are
// its target's, since they share the content.
type Node struct {
	Type       EntryType
	Size       int64
	Mode       uint32
	UID, GID   int
	LinkTarget string
	Digest     string
	// Layer is the index of the layer that last wrote the path (0 = base).
	Layer int
	// content identifies the bytes a regular file or hardlink holds, so
	// that content kept alive by a hardlink is counted once, and only once.
	content int32
}

// ChangeKind is how a layer changed a path relative to the filesystem below.
type ChangeKind uint8

// The changes of the contents API.
const (
	ChangeNone ChangeKind = iota
	ChangeAdded
	ChangeModified
	ChangeRemoved
)

// String is the change's name in the contents API ("" for none).
func (c ChangeKind) String() string {
	switch c {
	case ChangeAdded:
		return "added"
	case ChangeModified:
		return "modified"
	case ChangeRemoved:
		return "removed"
	}
	return ""
}

// Change is one path a layer added, modified or removed. Node is what the
// path holds after the layer (for a removal, what it held before).
type Change struct {
	Path string
	Kind ChangeKind
	Node Node
}

// LayerChanges is what one layer did to the filesystem below it. Sizes are
// regular-file bytes (hardlinks count 0): AddedSize and ModifiedSize what the
// layer wrote, RemovedSize what it hid of the layers below.
type LayerChanges struct {
	Added, Modified, Removed             int
	AddedSize, ModifiedSize, RemovedSize int64
	// Changes are sorted by path.
	Changes []Change
}

// Filesystem is the filesystem an image's layers build, applied one layer at
// a time with Apply, as the OCI image spec's changeset rules say. It keeps
// what the image summary needs: every path's node, and every version of
// every path any layer wrote, so bytes that a later layer hid are found.
// Its memory grows with the number of entries, never with their bytes.
type Filesystem struct {
	nodes map[string]*Node
	// contents holds each content's size, indexed by Node.content.
	contents []int64
	// history lists, per path, the contents layers wrote to it.
	history map[string][]version
	layers  int
	// partial marks a filesystem built from some directories of each
	// layer only (see NewPartialFilesystem).
	partial bool
}

type version struct {
	layer   int
	content int32 // -1 for an entry that holds no bytes
}

// NewFilesystem returns the empty filesystem below an image's base layer.
func NewFilesystem() *Filesystem {
	return &Filesystem{nodes: map[string]*Node{}, history: map[string][]version{}}
}

// NewPartialFilesystem returns an empty filesystem for replaying some
// directories of each layer, enough to list one directory: what a listing
// needs is in that directory's entries and its ancestors'. A hardlink whose
// target lies outside them is kept, holding no bytes, rather than failing.
func NewPartialFilesystem() *Filesystem {
	f := NewFilesystem()
	f.partial = true
	return f
}

// Node returns the node at a cleaned absolute path, if there is one.
func (f *Filesystem) Node(p string) (Node, bool) {
	n, ok := f.nodes[p]
	if !ok {
		return Node{}, false
	}
	return *n, true
}

// Len is the number of paths of the filesystem.
func (f *Filesystem) Len() int { return len(f.nodes) }

// Walk calls fn for every path in lexical order, so that a directory comes
// before its entries.
func (f *Filesystem) Walk(fn func(path string, n Node)) {
	paths := make([]string, 0, len(f.nodes))
	for p := range f.nodes {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		fn(p, *f.nodes[p])
	}
}

// List calls fn for every entry directly in directory dir, in no order:
// a listing needs one directory, not the whole filesystem sorted.
func (f *Filesystem) List(dir string, fn func(path string, n Node)) {
	prefix := dir + "/"
	if dir == "/" {
		prefix = "/"
	}
	for p, n := range f.nodes {
		if len(p) > len(prefix) && strings.HasPrefix(p, prefix) && strings.IndexByte(p[len(prefix):], '/') < 0 {
			fn(p, *n)
		}
	}
}

// CleanLayerPath turns a tar entry's name into the cleaned absolute path
// it writes ("/" for the root itself). A name that climbs above the root,
// or an empty one, is ErrInvalidLayer.
func CleanLayerPath(name string) (string, error) {
	if name == "" {
		return "", Errorf(ErrInvalidLayer, nil, "an entry has an empty name")
	}
	parts := make([]string, 0, strings.Count(name, "/")+1)
	for part := range strings.SplitSeq(name, "/") {
		switch part {
		case "", ".":
		case "..":
			if len(parts) == 0 {
				return "", Errorf(ErrInvalidLayer, nil, "entry %q escapes the root", name)
			}
			parts = parts[:len(parts)-1]
		default:
			parts = append(parts, part)
		}
	}
	return "/" + strings.Join(parts, "/"), nil
}

func parentOf(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

func joinPath(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// resolveDir returns where directory dir really is, following the symbolic
// links among it and its ancestors inside the root (an absolute target is
// taken from the image's root, never the host's; ".." never leaves the
// root), as an extraction that keeps to its root does. Components that do
// not exist yet are kept as they are; a regular file on the way is
// ErrInvalidLayer.
func (f *Filesystem) resolveDir(dir, entry string, hops *int) (string, error) {
	if dir == "/" {
		return "/", nil
	}
	cur := "/"
	rest := strings.TrimPrefix(dir, "/")
	for rest != "" {
		comp, tail, _ := strings.Cut(rest, "/")
		rest = tail
		next := joinPath(cur, comp)
		n, ok := f.nodes[next]
		switch {
		case !ok:
			if rest == "" {
				return next, nil
			}
			return next + "/" + rest, nil
		case n.Type == TypeDir:
			cur = next
		case n.Type == TypeSymlink:
			*hops++
			if *hops > maxSymlinkHops {
				return "", Errorf(ErrInvalidLayer, nil, "entry %q: too many symbolic links above it", entry)
			}
			target := n.LinkTarget
			if !strings.HasPrefix(target, "/") {
				target = cur + "/" + target
			}
			resolved, err := CleanLayerPathInRoot(target)
			if err != nil {
				return "", err
			}
			cur, err = f.resolveDir(resolved, entry, hops)
			if err != nil {
				return "", err
			}
		default:
			return "", Errorf(ErrInvalidLayer, nil, "entry %q: %s is not a directory", entry, next)
		}
	}
	return cur, nil
}

// CleanLayerPathInRoot cleans a path the way a lookup scoped to the image's
// root does: ".." at the root stays at the root.
func CleanLayerPathInRoot(p string) (string, error) {
	parts := []string{}
	for part := range strings.SplitSeq(p, "/") {
		switch part {
		case "", ".":
		case "..":
			if len(parts) > 0 {
				parts = parts[:len(parts)-1]
			}
		default:
			parts = append(parts, part)
		}
	}
	return "/" + strings.Join(parts, "/"), nil
}

// layerOp is one entry of a layer, cleaned and classified.
type layerOp struct {
	entry    LayerEntry
	dir      string // the cleaned parent directory as the tar names it
	name     string // the base name, without a whiteout prefix
	whiteout bool
	opaque   bool
}

// changeTracker records how one layer changes each path relative to the
// filesystem below it.
type changeTracker struct {
	layer   int
	changes map[string]*tracked
}

// tracked is a change with what the path held below the layer, so that a
// path modified and then removed within one layer reports the removal of
// what was below.
type tracked struct {
	Change
	below *Node
}

func (c *changeTracker) removed(p string, n *Node) {
	ch, ok := c.changes[p]
	switch {
	case !ok:
		c.changes[p] = &tracked{Change: Change{Path: p, Kind: ChangeRemoved, Node: *n}}
	case ch.Kind == ChangeAdded:
		delete(c.changes, p)
	case ch.Kind == ChangeModified:
		ch.Kind, ch.Node = ChangeRemoved, *ch.below
	}
}

// written records that the layer wrote p; below is what p held in the
// layers below, nil when p was absent or already written by this layer.
func (c *changeTracker) written(p string, below *Node, after *Node) {
	ch, ok := c.changes[p]
	switch {
	case ok && ch.Kind == ChangeRemoved:
		was := ch.Node
		ch.Kind, ch.Node, ch.below = ChangeModified, *after, &was
	case ok:
		ch.Node = *after
	case below != nil:
		was := *below
		c.changes[p] = &tracked{Change: Change{Path: p, Kind: ChangeModified, Node: *after}, below: &was}
	default:
		c.changes[p] = &tracked{Change: Change{Path: p, Kind: ChangeAdded, Node: *after}}
	}
}

// Apply applies one layer's entries, in tar order, to the filesystem below
// it, and says what the layer changed. The OCI image spec's rules hold:
// whiteouts and opaque markers hide what the layers below had, whatever their
// place in the tar (never what this layer itself writes); a non-directory
// replaces a directory with its whole subtree and a directory replaces a
// non-directory; a hardlink shares its target's content; a path is cleaned
// and made absolute, and directories it names but the tar does not hold are
// created. An entry escaping the root, a hardlink to nothing or a file
// standing where a directory must be is ErrInvalidLayer, and then the
// filesystem is left half-applied and must be discarded.
func (f *Filesystem) Apply(entries []LayerEntry) (LayerChanges, error) {
	layer := f.layers
	ops := make([]layerOp, 0, len(entries))
	for _, e := range entries {
		p, err := CleanLayerPath(e.Path)
		if err != nil {
			return LayerChanges{}, err
		}
		if p == "/" {
			continue // the root's own entry changes nothing a listing shows
		}
		op := layerOp{entry: e, dir: parentOf(p), name: p[len(parentOf(p)):]}
		op.name = strings.TrimPrefix(op.name, "/")
		switch {
		case op.name == opaqueWhiteout:
			op.opaque = true
		case strings.HasPrefix(op.name, whiteoutMetaPrefix):
			continue // other AUFS metadata: not part of the image's files
		case strings.HasPrefix(op.name, whiteoutPrefix):
			op.whiteout = true
			op.name = strings.TrimPrefix(op.name, whiteoutPrefix)
			if op.name == "" || op.name == "." || op.name == ".." {
				return LayerChanges{}, Errorf(ErrInvalidLayer, nil, "whiteout %q names nothing", e.Path)
			}
		}
		ops = append(ops, op)
	}
	tr := &changeTracker{layer: layer, changes: map[string]*tracked{}}

	// Whiteouts first: they apply to the layers below only.
	for _, op := range ops {
		if !op.whiteout && !op.opaque {
			continue
		}
		hops := 0
		dir, err := f.resolveDir(op.dir, op.entry.Path, &hops)
		if err != nil {
			return LayerChanges{}, err
		}
		if op.opaque {
			if n, ok := f.nodes[dir]; ok && n.Type == TypeDir {
				f.removeChildren(dir, tr)
			}
			continue
		}
		target := joinPath(dir, op.name)
		if _, ok := f.nodes[target]; ok {
			f.removeTree(target, tr)
		}
	}

	// Then every other entry, in tar order.
	for _, op := range ops {
		if op.whiteout || op.opaque {
			continue
		}
		hops := 0
		dir, err := f.resolveDir(op.dir, op.entry.Path, &hops)
		if err != nil {
			return LayerChanges{}, err
		}
		if err := f.makeDirs(dir, tr); err != nil {
			return LayerChanges{}, err
		}
		p := joinPath(dir, op.name)
		e := op.entry
		if e.Implicit {
			if _, ok := f.nodes[p]; !ok {
				if err := f.makeDirs(p, tr); err != nil {
					return LayerChanges{}, err
				}
			}
			continue
		}
		n := &Node{Type: e.Type, Mode: e.Mode, UID: e.UID, GID: e.GID, LinkTarget: e.LinkTarget, Layer: layer, content: -1}
		switch e.Type {
		case TypeFile:
			n.Size, n.Digest = e.Size, e.Digest
			n.content = int32(len(f.contents))
			f.contents = append(f.contents, e.Size)
		case TypeHardlink:
			tp, err := CleanLayerPath(e.LinkTarget)
			if err != nil {
				return LayerChanges{}, err
			}
			hops := 0
			tdir, err := f.resolveDir(parentOf(tp), e.Path, &hops)
			if err != nil {
				return LayerChanges{}, err
			}
			tp = joinPath(tdir, strings.TrimPrefix(tp[len(parentOf(tp)):], "/"))
			t, ok := f.nodes[tp]
			if !ok && f.partial {
				n.LinkTarget = tp
				break
			}
			if !ok || (t.Type != TypeFile && t.Type != TypeHardlink && t.Type != TypeOther && t.Type != TypeSymlink) {
				return LayerChanges{}, Errorf(ErrInvalidLayer, nil, "hardlink %q: its target %q is not a file of the layer or below", e.Path, e.LinkTarget)
			}
			n.Size, n.Digest, n.content = t.Size, t.Digest, t.content
			n.LinkTarget = tp
		case TypeSymlink:
		}
		old, exists := f.nodes[p]
		var below *Node
		if exists {
			if old.Type == TypeDir && e.Type != TypeDir {
				// A non-directory replaces a directory with its subtree; a
				// directory over a directory keeps what is in it.
				f.removeChildren(p, tr)
			}
			if old.Layer < layer {
				below = old
			}
		}
		f.nodes[p] = n
		tr.written(p, below, n)
		if !f.partial {
			f.history[p] = append(f.history[p], version{layer: layer, content: n.contentIfFile()})
		}
	}
	f.layers++
	return tr.result(), nil
}

// contentIfFile is the content a layer's entry itself wrote: a regular
// file's; a hardlink writes no bytes of its own.
func (n *Node) contentIfFile() int32 {
	if n.Type == TypeFile {
		return n.content
	}
	return -1
}

// makeDirs creates the directories of dir that do not exist yet, as an
// extraction does for a tar that names a file before (or without) its
// directory.
func (f *Filesystem) makeDirs(dir string, tr *changeTracker) error {
	if dir == "/" {
		return nil
	}
	if n, ok := f.nodes[dir]; ok {
		if n.Type != TypeDir {
			return Errorf(ErrInvalidLayer, nil, "%s is not a directory", dir)
		}
		return nil
	}
	if err := f.makeDirs(parentOf(dir), tr); err != nil {
		return err
	}
	n := &Node{Type: TypeDir, Mode: 0o755, Layer: tr.layer, content: -1}
	f.nodes[dir] = n
	tr.written(dir, nil, n)
	return nil
}

// removeTree removes p and, for a directory, everything in it.
func (f *Filesystem) removeTree(p string, tr *changeTracker) {
	n := f.nodes[p]
	if n.Type == TypeDir {
		f.removeChildren(p, tr)
	}
	delete(f.nodes, p)
	tr.removed(p, n)
}

// removeChildren removes everything below directory dir. It scans every
// path: whiteouts of directories are few, and a child index would cost
// memory on every path of every image.
func (f *Filesystem) removeChildren(dir string, tr *changeTracker) {
	prefix := dir + "/"
	if dir == "/" {
		prefix = "/"
	}
	for p, n := range f.nodes {
		if strings.HasPrefix(p, prefix) && p != dir {
			delete(f.nodes, p)
			tr.removed(p, n)
		}
	}
}

func (c *changeTracker) result() LayerChanges {
	var r LayerChanges
	r.Changes = make([]Change, 0, len(c.changes))
	for _, ch := range c.changes {
		r.Changes = append(r.Changes, ch.Change)
	}
	slices.SortFunc(r.Changes, func(a, b Change) int { return strings.Compare(a.Path, b.Path) })
	for _, ch := range r.Changes {
		size := ch.Node.fileBytes()
		switch ch.Kind {
		case ChangeAdded:
			r.Added++
			r.AddedSize += size
		case ChangeModified:
			r.Modified++
			r.ModifiedSize += size
		case ChangeRemoved:
			r.Removed++
			r.RemovedSize += size
		}
	}
	return r
}

// fileBytes is what a node counts in the regular-file sizes: a regular
// file's size; a hardlink shares bytes counted elsewhere.
func (n Node) fileBytes() int64 {
	if n.Type == TypeFile {
		return n.Size
	}
	return 0
}

// WastedPath is a path whose bytes a layer shipped and the final filesystem
// does not show: Size is every overwritten or removed version's bytes,
// Copies how many layers wrote the path, Layers their indexes.
type WastedPath struct {
	Path   string
	Size   int64
	Copies int
	Layers []int
}

// LargeFile is one of the largest regular files of the final filesystem.
type LargeFile struct {
	Path  string
	Size  int64
	Layer int
}

// ContentsSummary is what an image's layers ship and what survives of it.
// LayerFilesSize is the regular-file bytes of every layer's tar (hardlinks
// 0); TotalSize and FileCount those of the final filesystem, where content
// that several hardlinks share counts once; WastedSize their difference, the
// bytes of files a later layer overwrote or removed. Unlike dive, the copy
// that survives is not waste, and opaque directories hide what they hide.
type ContentsSummary struct {
	FileCount      int
	TotalSize      int64
	LayerFilesSize int64
	WastedSize     int64
	// Efficiency is TotalSize/LayerFilesSize, 1 for an image without files.
	Efficiency float64
	Wasted     []WastedPath
	Largest    []LargeFile
}

// Summary says how much of what the layers applied so far shipped survives,
// with the paths that waste most and the largest files.
func (f *Filesystem) Summary() ContentsSummary {
	var s ContentsSummary
	live := make([]bool, len(f.contents))
	for p, n := range f.nodes {
		s.FileCount++
		if n.content >= 0 && !live[n.content] {
			live[n.content] = true
			s.TotalSize += f.contents[n.content]
		}
		if n.Type == TypeFile {
			s.Largest = append(s.Largest, LargeFile{Path: p, Size: n.Size, Layer: n.Layer})
		}
	}
	for _, size := range f.contents {
		s.LayerFilesSize += size
	}
	s.WastedSize = s.LayerFilesSize - s.TotalSize
	s.Efficiency = 1
	if s.LayerFilesSize > 0 {
		s.Efficiency = float64(s.TotalSize) / float64(s.LayerFilesSize)
	}
	for p, versions := range f.history {
		var hidden int64
		for _, v := range versions {
			if v.content >= 0 && !live[v.content] {
				hidden += f.contents[v.content]
			}
		}
		if hidden == 0 {
			continue
		}
		w := WastedPath{Path: p, Size: hidden}
		for _, v := range versions {
			if !slices.Contains(w.Layers, v.layer) {
				w.Layers = append(w.Layers, v.layer)
			}
		}
		w.Copies = len(w.Layers)
		s.Wasted = append(s.Wasted, w)
	}
	slices.SortFunc(s.Wasted, func(a, b WastedPath) int {
		return cmp.Or(cmp.Compare(b.Size, a.Size), strings.Compare(a.Path, b.Path))
	})
	if len(s.Wasted) > ContentsListLimit {
		s.Wasted = s.Wasted[:ContentsListLimit]
	}
	slices.SortFunc(s.Largest, func(a, b LargeFile) int {
		return cmp.Or(cmp.Compare(b.Size, a.Size), strings.Compare(a.Path, b.Path))
	})
	if len(s.Largest) > ContentsListLimit {
		s.Largest = s.Largest[:ContentsListLimit]
	}
	return s
}
