package images

import (
	"unsafe"

	"github.com/imagebadger/imagebadger/analysis"
)

// Sizes the cost estimate counts for what it does not measure: a map
// entry's buckets and hash beyond its key and value, and a supply-chain
// finding (a few short strings and a digest).
const (
	mapEntryOverhead = 48
	findingCost      = 256
)

// reportCost estimates the bytes rep keeps alive: its structs and the
// bytes of every string it holds (layers with their commands, labels,
// annotations, tags, parents). It is what the report and answer caches
// are bounded by. It is cheap enough to take once per kept entry (one
// pass, no allocation). Strings shared with another report (an answer
// shares its layers with the digest's report) are counted by each, so the
// sum of costs overstates the heap rather than understating it;
// BenchmarkCachedReportsHeap compares it with the heap measured.
func reportCost(rep *analysis.Report) int64 {
	if rep == nil {
		return 0
	}
	n := int64(unsafe.Sizeof(*rep)) + strs(rep.Reference, rep.Registry, rep.Repository, rep.Tag, rep.Digest, rep.MediaType)
	for _, t := range rep.Tags {
		n += int64(unsafe.Sizeof(t)) + int64(len(t))
	}
	if ri := rep.RepositoryInfo; ri != nil {
		n += int64(unsafe.Sizeof(*ri)) + strs(ri.Source, ri.Description)
	}
	for i := range rep.Platforms {
		n += platformCost(&rep.Platforms[i])
	}
	return n
}

func platformCost(p *analysis.Platform) int64 {
	n := int64(unsafe.Sizeof(*p)) + strs(p.Platform, p.OS, p.Architecture, p.Variant, p.Digest, p.MediaType, p.ConfigDigest, p.Author)
	for i := range p.Layers {
		l := &p.Layers[i]
		n += int64(unsafe.Sizeof(*l)) + strs(l.Digest, l.DiffID, l.MediaType, l.CreatedBy)
		if l.Created != nil {
			n += int64(unsafe.Sizeof(*l.Created))
		}
	}
	for _, d := range p.DiffIDs {
		n += int64(unsafe.Sizeof(d)) + int64(len(d))
	}
	n += mapCost(p.Labels) + mapCost(p.Annotations)
	m := &p.Metadata
	n += strs(m.Version, m.Revision, m.Source, m.Licenses, m.Title, m.Description, m.URL, m.Vendor, m.Created, m.Documentation)
	if pa := p.Parent; pa != nil {
		n += int64(unsafe.Sizeof(*pa)) + strs(pa.Registry, pa.Repository, pa.Digest, pa.Method, pa.CurrentDigest)
		for _, t := range pa.Tags {
			n += int64(unsafe.Sizeof(t)) + int64(len(t))
		}
	}
	if sc := p.SupplyChain; sc != nil {
		n += int64(unsafe.Sizeof(*sc)) + int64(len(sc.Signatures)+len(sc.Attestations)+2)*findingCost
	}
	return n
}

func mapCost(m map[string]string) int64 {
	var n int64
	for k, v := range m {
		n += mapEntryOverhead + 2*int64(unsafe.Sizeof(k)) + int64(len(k)+len(v))
	}
	return n
}

func strs(ss ...string) int64 {
	var n int64
	for _, s := range ss {
		n += int64(len(s))
	}
	return n
}
