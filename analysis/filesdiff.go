package analysis

// FilesDiffLimit is how many paths each list of a file-level diff holds;
// the counts say how many there are in all.
const FilesDiffLimit = 1000

// FileDiffEntry is one path of a file-level diff with its size (in the
// newer image, or in the older for a removal).
type FileDiffEntry struct {
	Path string
	Size int64
}

// FilesDiff is what differs between two images' final filesystems: paths
// only the newer has, paths only the older has, and paths both have with
// another type, content digest, mode or link target. Each list is sorted
// by path and holds at most FilesDiffLimit entries.
type FilesDiff struct {
	Added, Removed, Changed                []FileDiffEntry
	AddedCount, RemovedCount, ChangedCount int
}

// DiffFilesystems compares the final filesystems of two images, from the
// older to the newer. Ownership and the layer a path came from are not
// differences: rebuilding an image on a new base moves every path to other
// layers without changing what the container sees.
func DiffFilesystems(from, to *Filesystem) FilesDiff {
	var d FilesDiff
	add := func(list *[]FileDiffEntry, count *int, p string, n Node) {
		*count++
		if len(*list) < FilesDiffLimit {
			*list = append(*list, FileDiffEntry{Path: p, Size: n.fileBytes()})
		}
	}
	to.Walk(func(p string, n Node) {
		old, ok := from.nodes[p]
		switch {
		case !ok:
			add(&d.Added, &d.AddedCount, p, n)
		case old.Type != n.Type || old.Digest != n.Digest || old.Mode != n.Mode ||
			old.LinkTarget != n.LinkTarget:
			add(&d.Changed, &d.ChangedCount, p, n)
		}
	})
	from.Walk(func(p string, n Node) {
		if _, ok := to.nodes[p]; !ok {
			add(&d.Removed, &d.RemovedCount, p, n)
		}
	})
	return d
}
