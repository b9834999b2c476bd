package analysis_test

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"runtime"
	"testing"

	"github.com/imagebadger/imagebadger/analysis"
)

// syntheticDigest makes a distinct, valid sha256 digest from a number.
func syntheticDigest(kind string, i int) string {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(i))
	return fmt.Sprintf("sha256:%x", sha256.Sum256(append([]byte(kind), b[:]...)))
}

// BenchmarkParentLookup indexes 1,000,000 synthetic platform images (in
// families: every 10th is a base whose children extend it) and measures one
// parent lookup for a 12-layer image, plus the index's memory per image.
func BenchmarkParentLookup(b *testing.B) {
	const n = 1_000_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	x := analysis.NewParentIndex()
	var probes [][]string
	for f := 0; f < n/10; f++ {
		base := []string{syntheticDigest("layer", f*100), syntheticDigest("layer", f*100+1)}
		baseChain := analysis.ChainIDs(base)
		repo := analysis.Repository{Registry: "registry.example", Name: fmt.Sprintf("base%d", f%5000)}
		x.Add(repo, syntheticDigest("manifest", f*10), baseChain[len(baseChain)-1], len(base), int64(f))
		for c := 1; c < 10; c++ {
			layers := append(append([]string{}, base...), syntheticDigest("layer", f*100+10+c))
			chain := analysis.ChainIDs(layers)
			child := analysis.Repository{Registry: "registry.example", Name: fmt.Sprintf("app%d", (f*10+c)%50000)}
			x.Add(child, syntheticDigest("manifest", f*10+c), chain[len(chain)-1], len(layers), int64(f*10+c))
		}
		if f%1000 == 0 {
			probe := append(append([]string{}, base...), syntheticDigest("layer", f*100+11))
			for i := len(probe); i < 12; i++ {
				probe = append(probe, syntheticDigest("new", f*100+i))
			}
			probes = append(probes, probe)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if x.Len() != n {
		b.Fatalf("indexed %d images, want %d", x.Len(), n)
	}
	perImage := float64(after.HeapAlloc-before.HeapAlloc) / n
	self := analysis.Repository{Registry: "registry.example", Name: "someone/else"}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		probe := probes[i%len(probes)]
		got := x.Lookup(self, analysis.ChainIDs(probe))
		if len(got) == 0 || got[0].Layers != 3 {
			b.Fatalf("lookup found %+v, want the 3-layer child", got)
		}
	}
	b.ReportMetric(perImage, "index-bytes/image")
	runtime.KeepAlive(x)
}
