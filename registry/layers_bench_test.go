package registry_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/internal/testing/distreg"
	"github.com/imagebadger/imagebadger/registry"
)

// benchLayerMB is the uncompressed size of the benchmarks' layers:
// IMAGEBADGER_BENCH_LAYER_MB, 128 by default so that make bench stays
// short on two shared cores (the figure is for 512).
func benchLayerMB() int {
	if n, err := strconv.Atoi(os.Getenv("IMAGEBADGER_BENCH_LAYER_MB")); err == nil && n > 0 {
		return n
	}
	return 128
}

// benchTar is a layer tar of files of 64 KiB, half random and half
// repeated text, so it compresses about as a binary-heavy image does.
func benchTar(b *testing.B, mb int) []byte {
	b.Helper()
	rnd := rand.New(rand.NewPCG(7, 8))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := make([]byte, 64<<10)
	for i := 0; buf.Len() < mb<<20; i++ {
		for j := 0; j < len(body)/2; j++ {
			body[j] = byte(rnd.Uint32())
		}
		copy(body[len(body)/2:], bytes.Repeat([]byte("libfoo.so.1 symbol table "), len(body)/50))
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("usr/lib/f%06d.so", i), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))}); err != nil {
			b.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			b.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

var benchBlobs struct {
	once       sync.Once
	tar        []byte
	gzip, zstd []byte
}

func blobsForBench(b *testing.B) ([]byte, []byte, []byte) {
	benchBlobs.once.Do(func() {
		benchBlobs.tar = benchTar(b, benchLayerMB())
		var gz, zs bytes.Buffer
		w := gzip.NewWriter(&gz)
		w.Write(benchBlobs.tar)
		w.Close()
		zw, _ := zstd.NewWriter(&zs)
		zw.Write(benchBlobs.tar)
		zw.Close()
		benchBlobs.gzip, benchBlobs.zstd = gz.Bytes(), zs.Bytes()
	})
	return benchBlobs.tar, benchBlobs.gzip, benchBlobs.zstd
}

// BenchmarkLayerContents reads a layer through go-containerregistry's
// in-process registry and lists it (decompression, a sha256 per file, the
// digest check); its DecodeOnly twin is klauspost's decoder alone on the
// same bytes. MB/s are of uncompressed bytes; their ratio is the analysis's
// share of the decoder's throughput. The registry's serving shares the
// process and its two cores.
func BenchmarkLayerContents(b *testing.B) {
	reg := newCountingRegistry(b)
	benchLayerContents(b, reg.host)
}

// BenchmarkLayerContentsDistribution is BenchmarkLayerContents through the
// real distribution registry (Debian's docker-registry), a process of its
// own serving the blob from its filesystem storage on loopback.
func BenchmarkLayerContentsDistribution(b *testing.B) {
	d, err := distreg.Start(context.Background(), distreg.Options{Dir: b.TempDir()})
	if errors.Is(err, distreg.ErrNotInstalled) {
		b.Skip("the distribution registry is not installed (Debian package docker-registry; make deps installs it)")
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(d.Stop)
	benchLayerContents(b, d.Addr)
}

// benchLayerContents pushes the benchmarks' gzip and zstd layers to the
// registry at host and reads each, beside the decoder alone on its bytes.
func benchLayerContents(b *testing.B, host string) {
	tarBytes, gzBytes, zsBytes := blobsForBench(b)
	c, err := registry.New(registry.Options{})
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		blob []byte
		mt   types.MediaType
	}{{"gzip", gzBytes, types.OCILayer}, {"zstd", zsBytes, types.OCILayerZStd}} {
		l := static.NewLayer(tc.blob, tc.mt)
		img, err := mutate.AppendLayers(empty.Image, l)
		if err != nil {
			b.Fatal(err)
		}
		push(b, host+"/bench/"+tc.name+":1", img)
		repo := must(analysis.ParseReference(host + "/bench/" + tc.name + ":1")).Repository
		blob := registry.LayerBlob{Digest: must(l.Digest()).String(), Size: int64(len(tc.blob)), MediaType: string(tc.mt)}
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tarBytes)))
			defer reportCPU(b, processCPU())
			for b.Loop() {
				if _, err := c.LayerContents(context.Background(), repo, blob, registry.LayerOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tc.name+"/DecodeOnly", func(b *testing.B) {
			b.SetBytes(int64(len(tarBytes)))
			defer reportCPU(b, processCPU())
			for b.Loop() {
				var r io.Reader
				if tc.name == "gzip" {
					zr, err := gzip.NewReader(bytes.NewReader(tc.blob))
					if err != nil {
						b.Fatal(err)
					}
					r = zr
				} else {
					zr, err := zstd.NewReader(bytes.NewReader(tc.blob), zstd.WithDecoderConcurrency(1))
					if err != nil {
						b.Fatal(err)
					}
					defer zr.Close()
					r = zr
				}
				if _, err := io.Copy(io.Discard, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// reportCPU reports the process's CPU time since start per operation, on
// all cores together: the work an analysis costs, which the machine's other
// load does not change as it changes the time it takes. In-process, it
// includes the registry's serving.
func reportCPU(b *testing.B, start time.Duration) {
	if used := processCPU() - start; used > 0 && b.N > 0 {
		b.ReportMetric(float64(used.Milliseconds())/float64(b.N), "cpu-ms/op")
	}
}

// BenchmarkEstargzTOC lists a 256 MB eStargz layer from its table of
// contents: the requests it takes and the share of the blob's bytes read
// are reported beside the time.
func BenchmarkEstargzTOC(b *testing.B) {
	mb := 256
	if n := benchLayerMB(); n < mb {
		mb = n * 2
	}
	tarBytes := benchTar(b, mb)
	esgz, err := estargz.Build(io.NewSectionReader(bytes.NewReader(tarBytes), 0, int64(len(tarBytes))))
	if err != nil {
		b.Fatal(err)
	}
	blobBytes, err := io.ReadAll(esgz)
	esgz.Close()
	if err != nil {
		b.Fatal(err)
	}
	l := static.NewLayer(blobBytes, types.OCILayer)
	ann := map[string]string{"containerd.io/snapshot/stargz/toc.digest": esgz.TOCDigest().String()}
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: l, Annotations: ann})
	if err != nil {
		b.Fatal(err)
	}
	reg := newCountingRegistry(b)
	push(b, reg.host+"/bench/lazy:1", img)
	repo := must(analysis.ParseReference(reg.host + "/bench/lazy:1")).Repository
	c, err := registry.New(registry.Options{})
	if err != nil {
		b.Fatal(err)
	}
	blob := registry.LayerBlob{Digest: must(l.Digest()).String(), Size: int64(len(blobBytes)), Annotations: ann}
	reg.take()
	var reqs int
	var sent int64
	for b.Loop() {
		got, err := c.LayerContents(context.Background(), repo, blob, registry.LayerOptions{})
		if err != nil || got.Source != registry.SourceEstargz {
			b.Fatalf("%v %s", err, got.Source)
		}
		r, s := reg.take()
		reqs, sent = reqs+len(r), sent+s
	}
	b.ReportMetric(float64(reqs)/float64(b.N), "requests/op")
	b.ReportMetric(float64(sent)/float64(b.N)/float64(len(blobBytes))*100, "%blob/op")
	b.ReportMetric(float64(len(blobBytes))/1e6, "blobMB")
}
