package registry_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/registry"
)

// contentsTar is a layer's tar written by the test, with the entries it
// must read back (written by hand, with sha256 of the bodies).
func contentsTar(t testing.TB, extra ...[]byte) ([]byte, []analysis.LayerEntry) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	write := func(h *tar.Header, body string) {
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, body); err != nil {
			t.Fatal(err)
		}
	}
	big := strings.Repeat("0123456789abcdef", 1<<14) // 256 KiB, across many reads
	write(&tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	write(&tar.Header{Name: "etc/motd", Typeflag: tar.TypeReg, Mode: 0o644, Uid: 1, Gid: 2}, "hello\n")
	write(&tar.Header{Name: "usr/lib/big.so", Typeflag: tar.TypeReg, Mode: 0o755}, big)
	write(&tar.Header{Name: "etc/.wh.old", Typeflag: tar.TypeReg, Mode: 0o644}, "")
	write(&tar.Header{Name: "lib", Typeflag: tar.TypeSymlink, Linkname: "usr/lib", Mode: 0o777}, "")
	for i, b := range extra {
		write(&tar.Header{Name: fmt.Sprintf("opt/extra%d.bin", i), Typeflag: tar.TypeReg, Mode: 0o600}, string(b))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	sum := func(s string) string { return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(s))) }
	want := []analysis.LayerEntry{
		{Path: "etc/", Type: analysis.TypeDir, Mode: 0o755},
		{Path: "etc/motd", Type: analysis.TypeFile, Size: 6, Mode: 0o644, UID: 1, GID: 2, Digest: sum("hello\n")},
		{Path: "usr/lib/big.so", Type: analysis.TypeFile, Size: int64(len(big)), Mode: 0o755, Digest: sum(big)},
		{Path: "etc/.wh.old", Type: analysis.TypeFile, Mode: 0o644, Digest: sum("")},
		{Path: "lib", Type: analysis.TypeSymlink, Mode: 0o777, LinkTarget: "usr/lib"},
	}
	for i, b := range extra {
		want = append(want, analysis.LayerEntry{Path: fmt.Sprintf("opt/extra%d.bin", i), Type: analysis.TypeFile, Size: int64(len(b)), Mode: 0o600, Digest: sum(string(b))})
	}
	return buf.Bytes(), want
}

func blobOf(t testing.TB, l v1.Layer) registry.LayerBlob {
	t.Helper()
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	size, err := l.Size()
	if err != nil {
		t.Fatal(err)
	}
	mt, err := l.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	return registry.LayerBlob{Digest: d.String(), Size: size, MediaType: string(mt)}
}

func TestLayerContentsStreams(t *testing.T) {
	reg := newTestRegistry(t)
	body, want := contentsTar(t)
	opener := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	gz, err := tarball.LayerFromOpener(opener)
	if err != nil {
		t.Fatal(err)
	}
	zs, err := tarball.LayerFromOpener(opener, tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd))
	if err != nil {
		t.Fatal(err)
	}
	plain := static.NewLayer(body, types.OCIUncompressedLayer)
	// Bytes after the tar's end are read too: only the digest can tell
	// that they changed.
	trailing := static.NewLayer(append(bytes.Clone(body), "trailing }"...), types.OCIUncompressedLayer)
	img, err := mutate.AppendLayers(empty.Image, gz, zs, plain, trailing)
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.ref(t, "acme/contents:1")
	push(t, ref.String(), img)
	c, _ := newInspector(t, registry.Options{})

	for _, tc := range []struct {
		name, compression string
		layer             v1.Layer
	}{{"gzip", "gzip", gz}, {"zstd", "zstd", zs}, {"uncompressed", "none", plain}} {
		t.Run(tc.name, func(t *testing.T) {
			blob := blobOf(t, tc.layer)
			reg.Requests()
			var progress []int64
			got, err := c.LayerContents(context.Background(), ref.Repository, blob, registry.LayerOptions{Progress: func(n int64) { progress = append(progress, n) }})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got.Entries); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
			if got.Source != registry.SourceStream || got.Compression != tc.compression || got.BytesRead != blob.Size {
				t.Errorf("read %s %s %d bytes, want stream %s %d", got.Source, got.Compression, got.BytesRead, tc.compression, blob.Size)
			}
			if len(progress) == 0 || progress[len(progress)-1] != blob.Size {
				t.Errorf("progress %v does not end at the blob's %d bytes", progress, blob.Size)
			}
			if reqs := reg.Requests("/blobs/"); len(reqs) != 1 {
				t.Errorf("blob requests = %v, want the blob read once", reqs)
			}
		})
	}

	t.Run("a blob that does not match its digest", func(t *testing.T) {
		blob := blobOf(t, trailing)
		if _, err := c.LayerContents(context.Background(), ref.Repository, blob, registry.LayerOptions{}); err != nil {
			t.Fatalf("the layer as pushed: %v", err)
		}
		reg.Add(faultreg.Rule{PathContains: "/blobs/" + blob.Digest, Fault: faultreg.WrongDigest, Times: 1})
		_, err := c.LayerContents(context.Background(), ref.Repository, blob, registry.LayerOptions{})
		if msg, _ := analysis.PublicMessage(err); !errors.Is(err, analysis.ErrUpstream) || !strings.Contains(msg, "does not match its digest") {
			t.Fatalf("err = %v, want ErrUpstream saying the digest does not match", err)
		}
	})
	t.Run("a blob cut short", func(t *testing.T) {
		blob := blobOf(t, plain)
		reg.Add(faultreg.Rule{PathContains: "/blobs/" + blob.Digest, Fault: faultreg.Truncate, Times: 1})
		if _, err := c.LayerContents(context.Background(), ref.Repository, blob, registry.LayerOptions{}); err == nil {
			t.Fatal("a truncated blob was read without error")
		}
	})
	t.Run("a size other than declared", func(t *testing.T) {
		blob := blobOf(t, plain)
		blob.Size--
		if _, err := c.LayerContents(context.Background(), ref.Repository, blob, registry.LayerOptions{}); !errors.Is(err, analysis.ErrUpstream) {
			t.Fatalf("err = %v, want ErrUpstream", err)
		}
	})
	t.Run("more entries than allowed, told while the blob still arrives", func(t *testing.T) {
		// The blob arrives a byte a millisecond: the tar's third entry
		// says that it is too large long before the blob ends, and the
		// read in flight is stopped rather than reported as the
		// registry's failure.
		slow := static.NewLayer(append(bytes.Clone(body), make([]byte, 1<<20)...), types.OCIUncompressedLayer)
		slowRef := reg.ref(t, "acme/slow:1")
		push(t, slowRef.String(), must(mutate.AppendLayers(empty.Image, slow)))
		blob := blobOf(t, slow)
		reg.Add(faultreg.Rule{PathContains: "/blobs/" + blob.Digest, Method: "GET", Fault: faultreg.Trickle, Delay: time.Millisecond, Times: 1})
		_, err := c.LayerContents(context.Background(), slowRef.Repository, blob, registry.LayerOptions{MaxEntries: 2})
		if !errors.Is(err, analysis.ErrTooLarge) {
			t.Fatalf("err = %v, want ErrTooLarge", err)
		}
	})
	t.Run("more entries than allowed", func(t *testing.T) {
		_, err := c.LayerContents(context.Background(), ref.Repository, blobOf(t, zs), registry.LayerOptions{MaxEntries: 3})
		if !errors.Is(err, analysis.ErrTooLarge) {
			t.Fatalf("err = %v, want ErrTooLarge", err)
		}
	})
}
