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
	// zstdFastWindow is the largest zstd window decoded with a history of
	// twice the window rather than the least memory; see zstdLowMem.
	zstdFastWindow = 8 << 20
	// progressEvery is how many compressed bytes pass between two calls of
	// LayerOptions.Progress.
	progressEvery = 1 << 20
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
	// The blob's own context, so that an analysis that ends before the
	// blob does can stop its read without cancelling what follows.
	blobCtx, stopBlob := context.WithCancel(ctx)
	defer stopBlob()
	layer, err := c.puller.Layer(blobCtx, n.(name.Digest))
	if err != nil {
		return LayerContents{}, c.classify(ctx, err, n, repo.Registry, what)
	}
	rc, err := layer.Compressed()
	if err != nil {
		return LayerContents{}, c.classify(ctx, err, n, repo.Registry, what)
	}
	defer rc.Close()
	counted := &countingReader{r: rc, progress: opts.Progress}
	got, err := readLayerStream(counted, stopBlob, blob, opts)
	if fe := (*fetchError)(nil); errors.As(err, &fe) {
		// The registry or the connection failed, not the layer.
		if errors.Is(fe.err, context.DeadlineExceeded) {
			return LayerContents{}, analysis.Errorf(analysis.ErrTimeout, fe.err, "%s arrived slower than %d KiB/s", what, opts.MinRate>>10)
		}
		if isDigestMismatch(fe.err) {
			return LayerContents{}, analysis.Errorf(analysis.ErrUpstream, fe.err, "%s does not match its digest", what)
		}
		return LayerContents{}, c.classify(ctx, fe.err, n, repo.Registry, what)
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

// The stages of a layer's stream hand their bytes on in chunks of these
// sizes, a few of each in flight: what a stream costs in memory beside the
// decoder's own window is at most their products, 3 MiB.
const (
	fetchChunks, fetchChunk   = 4, 256 << 10
	decodeChunks, decodeChunk = 4, 512 << 10
)

// fetchError is the failure of the blob's own stream (the registry, the
// connection, the digest's verification), told apart from what the
// decoders and the tar reader say about its bytes.
type fetchError struct{ err error }

func (e *fetchError) Error() string { return e.err.Error() }
func (e *fetchError) Unwrap() error { return e.err }

// readLayerStream decompresses r, reads its tar and then drains both the
// decompressed and the compressed stream, so that the compression's own
// checksums and the blob's digest are checked to the last byte.
//
// Three goroutines share the work, so that on two cores the decoder's has
// nothing but decoding to do: one reads the blob (the network, the
// digest's hashing of the compressed bytes) into chunks, one decodes them
// into chunks of its output, and the caller's reads the tar and hashes every
// file. A failure of r comes back as a *fetchError, whatever else failed
// after it; stop must make a Read of r that is waiting return, and is
// called when the analysis ends before r does.
func readLayerStream(r io.Reader, stop func(), blob LayerBlob, opts LayerOptions) (_ LayerContents, err error) {
	fetched := newChunkPipe(fetchChunks, fetchChunk)
	fetchDone := make(chan error, 1)
	go func() {
		_, err := fetched.ReadFrom(r)
		if err == errPipeStopped || fetched.stopped() {
			// The analysis ended first and said why.
			err = nil
		}
		fetched.CloseWrite(err)
		fetchDone <- err
	}()
	defer func() {
		if err != nil {
			fetched.Stop()
			if stop != nil {
				stop()
			}
		}
		if ferr := <-fetchDone; ferr != nil {
			err = &fetchError{ferr}
		}
	}()
	br := bufio.NewReaderSize(fetched, 64<<10)
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
		// One goroutine decodes: the other core is the tar reader's and
		// the fetch's.
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(DefaultMaxZstdWindow), zstd.WithDecoderLowmem(zstdLowMem(br)))
		if err != nil {
			return LayerContents{}, analysis.Errorf(analysis.ErrInvalidLayer, err, "the layer is not valid zstd")
		}
		closeFn = zr.Close
		tr, compression = zr, "zstd"
	default:
		tr, compression = br, "none"
	}
	defer closeFn()
	if compression == "none" {
		// Nothing to decode: the tar is read as it arrives.
		entries, err := analysis.ReadLayer(br, analysis.ReadLayerOptions{MaxEntries: opts.MaxEntries})
		if err != nil {
			return LayerContents{}, err
		}
		return finishLayerStream(br, blob, entries, compression)
	}
	decoded := newChunkPipe(decodeChunks, decodeChunk)
	decodeDone := make(chan error, 1)
	go func() {
		_, err := io.Copy(decoded, tr)
		decoded.CloseWrite(err)
		decodeDone <- err
	}()
	entries, err := analysis.ReadLayer(decoded, analysis.ReadLayerOptions{MaxEntries: opts.MaxEntries})
	if err != nil {
		// The decoder may wait on the blob, and the blob on the network.
		decoded.Stop()
		fetched.Stop()
		if stop != nil {
			stop()
		}
		<-decodeDone
		return LayerContents{}, err
	}
	if _, err := io.Copy(io.Discard, decoded); err != nil {
		<-decodeDone
		return LayerContents{}, analysis.Errorf(analysis.ErrInvalidLayer, err, "the layer's %s stream is corrupt after its tar", compression)
	}
	if err := <-decodeDone; err != nil {
		return LayerContents{}, analysis.Errorf(analysis.ErrInvalidLayer, err, "the layer's %s stream is corrupt after its tar", compression)
	}
	return finishLayerStream(br, blob, entries, compression)
}

// zstdLowMem tells whether to decode a zstd stream with the decoder's low
// memory option, from its first frame's window. Without it the decoder
// keeps twice the window, and copies the window down once per window of
// output; with it, the window and half a block, and copies the window down
// whenever less than a block's room is left, about every block: the whole
// decoding takes two to three times as long for a window of 8 MiB (what
// klauspost's encoder writes by default). Windows up to zstdFastWindow are
// decoded fast, larger ones, which layers seldom have, in the least memory.
func zstdLowMem(br *bufio.Reader) bool {
	head, _ := br.Peek(zstd.HeaderMaxSize)
	var h zstd.Header
	if h.Decode(head) != nil {
		return true
	}
	window := h.WindowSize
	if h.SingleSegment {
		window = h.FrameContentSize
	}
	return window > zstdFastWindow
}

// finishLayerStream drains what is left of the blob after the tar and its
// compression's end, so that the digest is checked to the last byte.
func finishLayerStream(br *bufio.Reader, blob LayerBlob, entries []analysis.LayerEntry, compression string) (LayerContents, error) {
	if _, err := io.Copy(io.Discard, br); err != nil {
		return LayerContents{}, err
	}
	if tocFormat(blob) != "" {
		entries = withoutFormatMetadata(entries)
	}
	return LayerContents{Entries: entries, Source: SourceStream, Compression: compression}, nil
}

// countingReader counts the blob's bytes and reports progress.
type countingReader struct {
	r        io.Reader
	n, last  int64
	progress func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n-c.last >= progressEvery {
		c.last = c.n
		c.progress(c.n)
	}
	return n, err
}
