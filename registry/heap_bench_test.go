package registry

import (
	"archive/tar"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
)

// BenchmarkLayerPeakHeap reads a 1 GiB gzip layer made on the fly (never
// held in memory) of 200,000 files, and of 10 files, and reports the
// largest heap in use seen while it was read: what a layer's analysis
// costs grows with its entries, not its bytes.
func BenchmarkLayerPeakHeap(b *testing.B) {
	for _, files := range []int{200_000, 10} {
		b.Run(fmt.Sprintf("%dfiles", files), func(b *testing.B) {
			const total = 1 << 30
			var peak uint64
			for b.Loop() {
				runtime.GC()
				pr, pw := io.Pipe()
				go func() {
					zw, _ := gzip.NewWriterLevel(pw, gzip.BestSpeed)
					tw := tar.NewWriter(zw)
					size := int64(total / files)
					chunk := make([]byte, 256<<10)
					for i := range chunk {
						chunk[i] = byte(i * 7)
					}
					var err error
					for i := 0; i < files && err == nil; i++ {
						if err = tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("usr/share/d%03d/file-%06d", i%1000, i), Typeflag: tar.TypeReg, Mode: 0o644, Size: size}); err != nil {
							break
						}
						for left := size; left > 0 && err == nil; {
							n := min(left, int64(len(chunk)))
							_, err = tw.Write(chunk[:n])
							left -= n
						}
					}
					if err == nil {
						err = tw.Close()
					}
					if err == nil {
						err = zw.Close()
					}
					pw.CloseWithError(err)
				}()
				var highest atomic.Uint64
				stop := make(chan struct{})
				done := make(chan struct{})
				go func() {
					defer close(done)
					var ms runtime.MemStats
					for {
						runtime.ReadMemStats(&ms)
						if ms.HeapInuse > highest.Load() {
							highest.Store(ms.HeapInuse)
						}
						select {
						case <-stop:
							return
						case <-time.After(20 * time.Millisecond):
						}
					}
				}()
				got, err := readLayerStream(pr, nil, LayerBlob{}, LayerOptions{}.withDefaults())
				close(stop)
				<-done
				if err != nil || len(got.Entries) != files {
					b.Fatalf("%d entries, %v", len(got.Entries), err)
				}
				peak = highest.Load()
			}
			b.ReportMetric(float64(peak)/(1<<20), "peakHeapMiB")
		})
	}
}
