package registry_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/containerd/stargz-snapshotter/estargz/zstdchunked"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"

	"github.com/imagebadger/imagebadger/analysis"
	ibregistry "github.com/imagebadger/imagebadger/registry"
)

// countingRegistry is go-containerregistry's registry behind a handler that
// counts the requests and the bytes it sends, and can ignore Range headers
// as some registries do.
type countingRegistry struct {
	*httptest.Server
	host         string
	ignoreRanges atomic.Bool
	inflight     sync.WaitGroup
	mu           sync.Mutex
	requests     []string
	sent         int64
}

func newCountingRegistry(t testing.TB) *countingRegistry {
	r := &countingRegistry{}
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.inflight.Add(1)
		defer r.inflight.Done()
		if r.ignoreRanges.Load() {
			req.Header.Del("Range")
		}
		cw := &countingWriter{ResponseWriter: w}
		inner.ServeHTTP(cw, req)
		r.mu.Lock()
		r.requests = append(r.requests, req.Method+" "+req.URL.Path+" "+req.Header.Get("Range"))
		r.sent += cw.n
		r.mu.Unlock()
	}))
	t.Cleanup(r.Close)
	r.host = strings.TrimPrefix(r.URL, "http://")
	return r
}

// take returns and forgets the requests and bytes so far, once the
// handlers of requests already answered have finished counting.
func (r *countingRegistry) take() ([]string, int64) {
	r.inflight.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	reqs, sent := r.requests, r.sent
	r.requests, r.sent = nil, 0
	return reqs, sent
}

type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (w *countingWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

// zstdCompression is the zstd:chunked format as estargz.Build takes it.
type zstdCompression struct {
	*zstdchunked.Compressor
	*zstdchunked.Decompressor
}

// tocLayer is an eStargz or zstd:chunked layer with its descriptor's
// annotations, built with stargz-snapshotter's estargz package.
type tocLayer struct {
	name        string
	layer       v1.Layer
	annotations map[string]string
	source      string
}

func buildTOCLayers(t testing.TB, tarBytes []byte) []tocLayer {
	t.Helper()
	sr := io.NewSectionReader(bytes.NewReader(tarBytes), 0, int64(len(tarBytes)))
	gz, err := estargz.Build(sr)
	if err != nil {
		t.Fatal(err)
	}
	gzBytes, err := io.ReadAll(gz)
	gz.Close()
	if err != nil {
		t.Fatal(err)
	}
	md := map[string]string{}
	zs, err := estargz.Build(sr, estargz.WithCompression(zstdCompression{&zstdchunked.Compressor{Metadata: md, CompressionLevel: zstd.SpeedDefault}, &zstdchunked.Decompressor{}}))
	if err != nil {
		t.Fatal(err)
	}
	zsBytes, err := io.ReadAll(zs)
	zs.Close()
	if err != nil {
		t.Fatal(err)
	}
	// The same blob with containers/storage's longer footer: the tar-split's
	// place (none here) before the magic.
	footer := zsBytes[len(zsBytes)-40:]
	long := make([]byte, 0, 72)
	long = append(long, 0x50, 0x2a, 0x4d, 0x18)
	long = binary.LittleEndian.AppendUint32(long, 64)
	long = append(long, footer[:32]...)
	long = append(long, make([]byte, 24)...)
	long = append(long, footer[32:]...)
	zsLong := append(bytes.Clone(zsBytes[:len(zsBytes)-48]), long...)
	checksumOnly := map[string]string{"io.github.containers.zstd-chunked.manifest-checksum": md["io.containers.zstd-chunked.manifest-checksum"]}
	return []tocLayer{
		{"estargz", static.NewLayer(gzBytes, types.OCILayer), map[string]string{"containerd.io/snapshot/stargz/toc.digest": gz.TOCDigest().String()}, ibregistry.SourceEstargz},
		{"zstd:chunked by its annotations", static.NewLayer(zsBytes, types.OCILayerZStd), md, ibregistry.SourceZstdChunked},
		{"zstd:chunked by its short footer", static.NewLayer(zsBytes, types.OCILayerZStd), checksumOnly, ibregistry.SourceZstdChunked},
		{"zstd:chunked by its long footer", static.NewLayer(zsLong, types.OCILayerZStd), checksumOnly, ibregistry.SourceZstdChunked},
	}
}

func TestLayerContentsFromTablesOfContents(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 4<<20)
	for i := range random {
		random[i] = byte(rnd.Uint32())
	}
	tarBytes, want := contentsTar(t, random)
	layers := buildTOCLayers(t, tarBytes)
	reg := newCountingRegistry(t)
	img := empty.Image
	for _, l := range layers {
		var err error
		img, err = mutate.Append(img, mutate.Addendum{Layer: l.layer, Annotations: l.annotations})
		if err != nil {
			t.Fatal(err)
		}
	}
	push(t, reg.host+"/acme/lazy:1", img)
	repo := must(analysis.ParseReference(reg.host + "/acme/lazy:1")).Repository
	c, _ := newInspector(t, ibregistry.Options{})

	for _, l := range layers {
		t.Run(l.name, func(t *testing.T) {
			blob := blobOf(t, l.layer)
			blob.Annotations = l.annotations
			reg.ignoreRanges.Store(false)
			reg.take()
			toc, err := c.LayerContents(context.Background(), repo, blob, ibregistry.LayerOptions{})
			if err != nil {
				t.Fatal(err)
			}
			reqs, sent := reg.take()
			if toc.Source != l.source {
				t.Errorf("source = %s, want %s", toc.Source, l.source)
			}
			if len(reqs) > 3 {
				t.Errorf("%d requests, want at most 3: %v", len(reqs), reqs)
			}
			if sent*100 >= blob.Size {
				t.Errorf("%d bytes sent of a %d-byte blob, want under 1%%", sent, blob.Size)
			}

			reg.ignoreRanges.Store(true)
			stream, err := c.LayerContents(context.Background(), repo, blob, ibregistry.LayerOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if stream.Source != ibregistry.SourceStream || stream.BytesRead != blob.Size {
				t.Errorf("with ranges ignored: source %s, %d bytes read, want the stream's %d", stream.Source, stream.BytesRead, blob.Size)
			}
			if diff := cmp.Diff(stream.Entries, toc.Entries); diff != "" {
				t.Errorf("the table of contents lists other entries than the stream (-stream +toc):\n%s", diff)
			}
			if diff := cmp.Diff(want, toc.Entries); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
		})
	}
}
