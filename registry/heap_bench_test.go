package registry

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// BenchmarkLayerPeakHeap reads a 1 GiB gzip layer made on the fly (never
// held in memory) of 200,000 files, and of 10 files, and a zstd layer of
// 10 files (klauspost's default window of 8 MiB), and reports the
// largest heap in use seen while it was read: what a layer's analysis
// costs grows with its entries, not its bytes.
func BenchmarkLayerPeakHeap(b *testing.B) {
	for _, tc := range []struct {
		name  string
		files int
		zstd  bool
	}{{"200000files", 200_000, false}, {"10files", 10, false}, {"10files/zstd", 10, true}} {
		b.Run(tc.name, func(b *testing.B) {
			const total = 1 << 30
			// The zstd layer is made beforehand: klauspost's encoder
			// holds more than the decoder does, and would be counted.
			// Its files repeat, so the blob is small.
			var zblob []byte
			if tc.zstd {
				var buf bytes.Buffer
				zw, err := zstd.NewWriter(&buf)
				if err != nil {
					b.Fatal(err)
				}
				if err := writeHeapTar(zw, tc.files, total); err != nil {
					b.Fatal(err)
				}
				if err := zw.Close(); err != nil {
					b.Fatal(err)
				}
				zblob = buf.Bytes()
			}
			var peak uint64
			for b.Loop() {
				runtime.GC()
				var src io.Reader
				if tc.zstd {
					src = bytes.NewReader(zblob)
				} else {
					pr, pw := io.Pipe()
					go func() {
						zw, _ := gzip.NewWriterLevel(pw, gzip.BestSpeed)
						err := writeHeapTar(zw, tc.files, total)
						if err == nil {
							err = zw.Close()
						}
						pw.CloseWithError(err)
					}()
					src = pr
				}
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
				got, err := readLayerStream(src, nil, LayerBlob{}, LayerOptions{}.withDefaults())
				close(stop)
				<-done
				if err != nil || len(got.Entries) != tc.files {
					b.Fatalf("%d entries, %v", len(got.Entries), err)
				}
				peak = highest.Load()
			}
			b.ReportMetric(float64(peak)/(1<<20), "peakHeapMiB")
		})
	}
}

// writeHeapTar writes a tar of files of total bytes in all to w.
func writeHeapTar(w io.Writer, files int, total int64) error {
	tw := tar.NewWriter(w)
	size := total / int64(files)
	chunk := make([]byte, 256<<10)
	for i := range chunk {
		chunk[i] = byte(i * 7)
	}
	for i := 0; i < files; i++ {
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("usr/share/d%03d/file-%06d", i%1000, i), Typeflag: tar.TypeReg, Mode: 0o644, Size: size}); err != nil {
			return err
		}
		for left := size; left > 0; {
			n := min(left, int64(len(chunk)))
			if _, err := tw.Write(chunk[:n]); err != nil {
				return err
			}
			left -= n
		}
	}
	return tw.Close()
}
