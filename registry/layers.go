package registry

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/imagebadger/imagebadger/analysis"
)

// The sources of a layer's entries, in the contents API's words.
const (
	SourceStream      = "stream"
	SourceEstargz     = "estargz"
	SourceZstdChunked = "zstd:chunked"
)

// Defaults of LayerOptions.
const (
	// DefaultMinLayerRate is the slowest a layer blob may arrive, in bytes
	// a second, before its read times out: a blob's deadline is the
	// request timeout plus its size at this rate, so a stalled registry
	// cannot hold a job for ever and a large layer still has the time it
	// needs.
	DefaultMinLayerRate = 1 << 20
	// DefaultMaxZstdWindow bounds the memory a zstd frame may ask the
	// decoder for; layers are compressed with windows of a few MiB.
	DefaultMaxZstdWindow = 32 << 20
	// progressEvery is how many compressed bytes pass between two calls of
	// LayerOptions.Progress.
	progressEvery = 1 << 20
	// decodeBuffer is how much decompressed data is handed to the tar
	// reader at once.
	decodeBuffer = 256 << 10
)

// LayerBlob names the layer blob to read, as its manifest describes it.
type LayerBlob struct {
	Digest    string
	MediaType string
	Size      int64
	// Annotations are the layer descriptor's: where eStargz and
	// zstd:chunked layers say where their tables of contents are.
	Annotations map[string]string
}

// LayerOptions bounds one layer read.
type LayerOptions struct {
	// MaxEntries is the most tar entries the layer may hold (default
	// analysis.DefaultMaxLayerEntries).
	MaxEntries int
	// MinRate sets the read's deadline (default DefaultMinLayerRate).
	MinRate int64
	// Progress, when set, is called now and then with the blob bytes read
	// so far, from the reading goroutine.
	Progress func(bytesRead int64)
}

func (o LayerOptions) withDefaults() LayerOptions {
	if o.MaxEntries <= 0 {
		o.MaxEntries = analysis.DefaultMaxLayerEntries
	}
	if o.MinRate <= 0 {
		o.MinRate = DefaultMinLayerRate
	}
	if o.Progress == nil {
		o.Progress = func(int64) {}
	}
	return o
}

// LayerContents is what a layer holds: its tar entries in order, each
// regular file with the sha256 of its content, and how they were read.
type LayerContents struct {
	Entries []analysis.LayerEntry
	// Source is SourceStream, SourceEstargz or SourceZstdChunked.
	Source string
	// Compression is the stream's: gzip, zstd or none.
	Compression string
	// BytesRead is how many bytes of the blob were fetched.
	BytesRead int64
}

// LayerContents reads a layer's entries. An eStargz or zstd:chunked layer
// is listed from its table of contents alone, read by range requests (the
// footer, then the table; or the table where the annotations say), whose
// digests are the files'; when the registry ignores ranges or the table
// cannot be used, and for every other layer, the blob is fetched once, decompressed
// on the fly (gzip, zstd or none, told by its first bytes rather than by a
// media type that registries and tools get wrong), its digest verified, and
// every regular file hashed on the way; nothing is written to disk and
// memory grows with the number of entries only. The request goes through
// the per-host limits and rate-limit budgets like every other.
func (c *Client) LayerContents(ctx context.Context, repo analysis.Repository, blob LayerBlob, opts LayerOptions) (LayerContents, error) {
	opts = opts.withDefaults()
	what := "layer " + repo.Name + "@" + analysis.ShortDigest(blob.Digest)
	if blob.Size < 0 {
		return LayerContents{}, analysis.Errorf(analysis.ErrUpstream, nil, "%s declares a negative size", what)
	}
	h, err := v1.NewHash(blob.Digest)
	if err != nil {
		return LayerContents{}, analysis.Errorf(analysis.ErrUpstream, err, "%s has an invalid digest", what)
	}
	n, err := c.name(repo.WithDigest(h.String()))
	if err != nil {
		return LayerContents{}, analysis.Errorf(analysis.ErrInvalidReference, err, "%s is not a valid reference", repo)
	}
	timeout := c.timeout + time.Duration(blob.Size/opts.MinRate)*time.Second
	ctx, cancel := context.WithTimeout(withRequest(ctx, requestInfo{registry: repo.Registry, host: n.Context().RegistryStr(), poll: c.poll, maxBody: max(blob.Size, 1)}), timeout)
	defer cancel()
	if format := tocFormat(blob); format != "" {
		got, err := c.readTOC(ctx, n.(name.Digest), blob, format, opts)
		switch {
		case err == nil:
			opts.Progress(blob.Size)
			return got, nil
		case errors.Is(err, errRangesIgnored), errors.Is(err, errBadTOC):
			// Read the stream, which holds every entry all the same.
		case errors.Is(err, analysis.ErrTooLarge), errors.Is(err, analysis.ErrInvalidLayer):
			return LayerContents{}, fmt.Errorf("registry: %s: %w", what, err)
		default:
			return LayerContents{}, c.classify(ctx, err, n, repo.Registry, what)
		}
	}
	layer, err := c.puller.Layer(ctx, n.(name.Digest))
	if err != nil {
		return LayerContents{}, c.classify(ctx, err, n, repo.Registry, what)
	}
	rc, err := layer.Compressed()
	if err != nil {
		return LayerContents{}, c.classify(ctx, err, n, repo.Registry, what)
	}
	defer rc.Close()
	counted := &countingReader{r: rc, progress: opts.Progress}
	got, err := readLayerStream(counted, blob, opts)
	if counted.err != nil {
		// The registry or the connection failed, not the layer.
		if errors.Is(counted.err, context.DeadlineExceeded) {
			return LayerContents{}, analysis.Errorf(analysis.ErrTimeout, counted.err, "%s arrived slower than %d KiB/s", what, opts.MinRate>>10)
		}
		if isDigestMismatch(counted.err) {
			return LayerContents{}, analysis.Errorf(analysis.ErrUpstream, counted.err, "%s does not match its digest", what)
		}
		return LayerContents{}, c.classify(ctx, counted.err, n, repo.Registry, what)
	}
	if err != nil {
		return LayerContents{}, fmt.Errorf("registry: %s: %w", what, err)
	}
	if counted.n != blob.Size {
		return LayerContents{}, analysis.Errorf(analysis.ErrUpstream, nil, "%s is %d bytes but its manifest declares %d", what, counted.n, blob.Size)
	}
	got.BytesRead = counted.n
	opts.Progress(counted.n)
	return got, nil
}

// isDigestMismatch tells go-containerregistry's verification failure, which
// it reports in words only.
func isDigestMismatch(err error) bool {
	return err != nil && bytes.Contains([]byte(err.Error()), []byte("error verifying"))
}

// readLayerStream decompresses r, reads its tar and then drains both the
// decompressed and the compressed stream, so that the compression's own
// checksums and the blob's digest are checked to the last byte.
func readLayerStream(r io.Reader, blob LayerBlob, opts LayerOptions) (LayerContents, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(4)
	var (
		tr          io.Reader
		compression string
		closeFn     = func() {}
	)
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return LayerContents{}, analysis.Errorf(analysis.ErrInvalidLayer, err, "the layer is not valid gzip")
		}
		defer zr.Close()
		tr, compression = zr, "gzip"
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(DefaultMaxZstdWindow), zstd.WithDecoderLowmem(true))
		if err != nil {
			return LayerContents{}, analysis.Errorf(analysis.ErrInvalidLayer, err, "the layer is not valid zstd")
		}
		closeFn = zr.Close
		tr, compression = zr, "zstd"
	default:
		tr, compression = br, "none"
	}
	defer closeFn()
	// Decompression runs beside the tar reading and hashing, on another
	// core: each is about half the work.
	pr, pw := io.Pipe()
	decoded := make(chan error, 1)
	go func() {
		bw := bufio.NewWriterSize(pw, decodeBuffer)
		_, err := io.Copy(bw, tr)
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err)
		decoded <- err
	}()
	entries, err := analysis.ReadLayer(pr, analysis.ReadLayerOptions{MaxEntries: opts.MaxEntries})
	if err != nil {
		pr.CloseWithError(err)
		<-decoded
		return LayerContents{}, err
	}
	if _, err := io.Copy(io.Discard, pr); err != nil {
		<-decoded
		return LayerContents{}, analysis.Errorf(analysis.ErrInvalidLayer, err, "the layer's %s stream is corrupt after its tar", compression)
	}
	if err := <-decoded; err != nil {
		return LayerContents{}, analysis.Errorf(analysis.ErrInvalidLayer, err, "the layer's %s stream is corrupt after its tar", compression)
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		return LayerContents{}, err
	}
	if tocFormat(blob) != "" {
		entries = withoutFormatMetadata(entries)
	}
	return LayerContents{Entries: entries, Source: SourceStream, Compression: compression}, nil
}

// countingReader counts the blob's bytes, reports progress, and keeps the
// first error of the blob's own stream apart from what the decoders say.
type countingReader struct {
	r        io.Reader
	n, last  int64
	err      error
	progress func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n-c.last >= progressEvery {
		c.last = c.n
		c.progress(c.n)
	}
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}
