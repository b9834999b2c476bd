package registry

import "github.com/imagebadger/imagebadger/analysis"

// estargzTOCDigest is the annotation an eStargz layer's descriptor carries:
// the digest of its table of contents.
const estargzTOCDigest = "containerd.io/snapshot/stargz/toc.digest"

// estargzMetadata are the entries the eStargz format adds to a layer's tar
// for its own use (the table of contents and the prefetch landmarks); they
// are not files of the image, and the table of contents does not list them.
var estargzMetadata = map[string]bool{
	"stargz.index.json":     true,
	".prefetch.landmark":    true,
	".no.prefetch.landmark": true,
}

// isEstargz says whether a layer's descriptor marks it as eStargz.
func isEstargz(blob LayerBlob) bool {
	_, ok := blob.Annotations[estargzTOCDigest]
	return ok
}

// withoutEstargzMetadata drops the eStargz format's own entries, so a layer
// read as a stream lists what its table of contents lists.
func withoutEstargzMetadata(entries []analysis.LayerEntry) []analysis.LayerEntry {
	out := entries[:0]
	for _, e := range entries {
		if p, err := analysis.CleanLayerPath(e.Path); err == nil && estargzMetadata[p[1:]] {
			continue
		}
		out = append(out, e)
	}
	return out
}
