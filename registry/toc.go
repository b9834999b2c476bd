package registry

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/imagebadger/imagebadger/analysis"
)

// The annotations that mark a layer descriptor as eStargz or zstd:chunked
// and locate its table of contents. zstd:chunked has two spellings:
// containers/storage's and the one stargz-snapshotter writes.
const (
	estargzTOCDigest         = "containerd.io/snapshot/stargz/toc.digest"
	zstdChunkedChecksum      = "io.github.containers.zstd-chunked.manifest-checksum"
	zstdChunkedPosition      = "io.github.containers.zstd-chunked.manifest-position"
	zstdChunkedChecksumShort = "io.containers.zstd-chunked.manifest-checksum"
	zstdChunkedPositionShort = "io.containers.zstd-chunked.manifest-position"
)

// The footers that locate a table of contents at a blob's end.
const (
	// estargzFooterSize is an eStargz blob's last gzip member, whose extra
	// field holds the TOC's offset.
	estargzFooterSize = 51
	// zstd:chunked's footer is a zstd skippable frame (8 bytes of header)
	// holding the manifest's offset, compressed and raw lengths and type,
	// then a magic: 40 bytes in the first dialect; 64 in containers/storage's
	// later one, which adds the tar-split's offset and lengths before the
	// magic.
	zstdChunkedFooterShort = 8 + 40
	zstdChunkedFooterLong  = 8 + 64
	// maxTOCBytes bounds the compressed table of contents read by range.
	maxTOCBytes = 256 << 20
	// maxTOCJSONBytes bounds it decompressed.
	maxTOCJSONBytes = 1 << 30
)

var (
	skippableFrameMagic   = []byte{0x50, 0x2a, 0x4d, 0x18}
	zstdChunkedFrameMagic = []byte("GnUlInUx")
)

// errRangesIgnored is a registry answering a range request with the whole
// blob: the table of contents is then cheaper read as part of the stream.
var errRangesIgnored = errors.New("registry ignores range requests")

// estargzMetadata are the entries the eStargz format adds to a layer's tar
// for its own use (the table of contents and the prefetch landmarks, which
// stargz-snapshotter also writes in zstd:chunked layers); they are not
// files of the image.
var estargzMetadata = map[string]bool{
	"stargz.index.json":     true,
	".prefetch.landmark":    true,
	".no.prefetch.landmark": true,
}

// tocFormat says which table of contents a layer's descriptor announces:
// SourceEstargz, SourceZstdChunked or "".
func tocFormat(blob LayerBlob) string {
	a := blob.Annotations
	switch {
	case a[zstdChunkedPosition] != "" || a[zstdChunkedPositionShort] != "" ||
		a[zstdChunkedChecksum] != "" || a[zstdChunkedChecksumShort] != "":
		return SourceZstdChunked
	case a[estargzTOCDigest] != "":
		return SourceEstargz
	}
	return ""
}

// withoutFormatMetadata drops the eStargz format's own entries, so a layer
// read as a stream lists what its table of contents lists.
func withoutFormatMetadata(entries []analysis.LayerEntry) []analysis.LayerEntry {
	out := entries[:0]
	for _, e := range entries {
		if p, err := analysis.CleanLayerPath(e.Path); err == nil && estargzMetadata[p[1:]] {
			continue
		}
		out = append(out, e)
	}
	return out
}

// tocEntry is an entry of an eStargz or zstd:chunked table of contents;
// the two formats share this JSON.
type tocEntry struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Size     int64  `json:"size"`
	LinkName string `json:"linkName"`
	Mode     int64  `json:"mode"`
	UID      int    `json:"uid"`
	GID      int    `json:"gid"`
	Digest   string `json:"digest"`
}

// emptyDigest is the sha256 of no bytes: tables of contents leave an empty
// file's digest out, a stream hashes it.
var emptyDigest = "sha256:" + hex.EncodeToString(func() []byte { s := sha256.Sum256(nil); return s[:] }())

// blobRanges reads parts of one blob with range requests, through the
// client's transport (limits, budgets, credentials).
type blobRanges struct {
	rt    http.RoundTripper
	url   string
	ua    string
	bytes int64
}

func (c *Client) blobRanges(ctx context.Context, n name.Digest) (*blobRanges, error) {
	repo := n.Context()
	auth, err := authn.Resolve(ctx, c.keychain, repo)
	if err != nil {
		return nil, err
	}
	rt, err := transport.NewWithContext(ctx, repo.Registry, auth, c.transport, []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, err
	}
	u := fmt.Sprintf("%s://%s/v2/%s/blobs/%s", repo.Scheme(), repo.RegistryStr(), repo.RepositoryStr(), n.DigestStr())
	return &blobRanges{rt: rt, url: u, ua: c.userAgent}, nil
}

// get reads bytes [off, off+n) of the blob.
func (b *blobRanges) get(ctx context.Context, off, n int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	req.Header.Set("User-Agent", b.ua)
	resp, err := b.rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil, errRangesIgnored
	}
	if err := transport.CheckError(resp, http.StatusPartialContent); err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, n+1))
	b.bytes += int64(len(body))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) != n {
		return nil, fmt.Errorf("asked for %d bytes at %d, got %d", n, off, len(body))
	}
	return body, nil
}

// readTOC lists a layer's entries from its table of contents alone.
func (c *Client) readTOC(ctx context.Context, n name.Digest, blob LayerBlob, format string, opts LayerOptions) (LayerContents, error) {
	br, err := c.blobRanges(ctx, n)
	if err != nil {
		return LayerContents{}, err
	}
	var toc []byte
	switch format {
	case SourceEstargz:
		toc, err = estargzTOC(ctx, br, blob)
	default:
		toc, err = zstdChunkedTOC(ctx, br, blob)
	}
	if err != nil {
		return LayerContents{}, err
	}
	entries, err := parseTOC(toc, opts.MaxEntries)
	if err != nil {
		return LayerContents{}, err
	}
	compression := "gzip"
	if format == SourceZstdChunked {
		compression = "zstd"
	}
	return LayerContents{Entries: withoutFormatMetadata(entries), Source: format, Compression: compression, BytesRead: br.bytes}, nil
}

// errBadTOC marks a table of contents that cannot be used; the stream is
// read instead.
var errBadTOC = errors.New("unusable table of contents")

func badTOC(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadTOC, fmt.Sprintf(format, args...))
}

// estargzTOC reads an eStargz blob's footer, then its TOC member, and
// returns the TOC's JSON, checked against the descriptor's TOC digest.
func estargzTOC(ctx context.Context, br *blobRanges, blob LayerBlob) ([]byte, error) {
	if blob.Size < estargzFooterSize {
		return nil, badTOC("blob shorter than its footer")
	}
	footer, err := br.get(ctx, blob.Size-estargzFooterSize, estargzFooterSize)
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(bytes.NewReader(footer))
	if err != nil {
		return nil, badTOC("footer: %v", err)
	}
	extra := zr.Extra
	if len(extra) != 4+22 || extra[0] != 'S' || extra[1] != 'G' || binary.LittleEndian.Uint16(extra[2:4]) != 22 || string(extra[20:]) != "STARGZ" {
		return nil, badTOC("footer without the STARGZ field")
	}
	off, err := strconv.ParseInt(string(extra[4:20]), 16, 64)
	if err != nil || off < 0 || off >= blob.Size-estargzFooterSize {
		return nil, badTOC("footer names offset %q", extra[4:20])
	}
	size := blob.Size - estargzFooterSize - off
	if size > maxTOCBytes {
		return nil, badTOC("TOC of %d bytes", size)
	}
	member, err := br.get(ctx, off, size)
	if err != nil {
		return nil, err
	}
	gz, err := gzip.NewReader(bytes.NewReader(member))
	if err != nil {
		return nil, badTOC("TOC member: %v", err)
	}
	tr := tar.NewReader(gz)
	hdr, err := tr.Next()
	if err != nil || hdr.Name != "stargz.index.json" {
		return nil, badTOC("TOC member holds no stargz.index.json")
	}
	js, err := io.ReadAll(io.LimitReader(tr, maxTOCJSONBytes))
	if err != nil {
		return nil, badTOC("TOC: %v", err)
	}
	if want := blob.Annotations[estargzTOCDigest]; want != "" && want != sha256Digest(js) {
		return nil, badTOC("TOC digest %s, the descriptor says %s", sha256Digest(js), want)
	}
	return js, nil
}

// zstdChunkedTOC reads a zstd:chunked blob's manifest where its position
// annotation says, or where its footer says when there is no annotation,
// and returns the manifest's JSON, checked against the checksum annotation.
func zstdChunkedTOC(ctx context.Context, br *blobRanges, blob LayerBlob) ([]byte, error) {
	a := blob.Annotations
	pos := cmpOr(a[zstdChunkedPosition], a[zstdChunkedPositionShort])
	checksum := cmpOr(a[zstdChunkedChecksum], a[zstdChunkedChecksumShort])
	var off, size int64
	if pos != "" {
		parts := strings.Split(pos, ":")
		if len(parts) < 2 {
			return nil, badTOC("position %q", pos)
		}
		var err1, err2 error
		off, err1 = strconv.ParseInt(parts[0], 10, 64)
		size, err2 = strconv.ParseInt(parts[1], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, badTOC("position %q", pos)
		}
	} else {
		n := min(int64(zstdChunkedFooterLong), blob.Size)
		tail, err := br.get(ctx, blob.Size-n, n)
		if err != nil {
			return nil, err
		}
		off, size, err = parseZstdChunkedFooter(tail)
		if err != nil {
			return nil, err
		}
	}
	if off < 0 || size <= 0 || size > maxTOCBytes || off+size > blob.Size {
		return nil, badTOC("manifest at %d, %d bytes, in a blob of %d", off, size, blob.Size)
	}
	compressed, err := br.get(ctx, off, size)
	if err != nil {
		return nil, err
	}
	if checksum != "" && checksum != sha256Digest(compressed) {
		return nil, badTOC("manifest checksum %s, the descriptor says %s", sha256Digest(compressed), checksum)
	}
	zr, err := zstd.NewReader(bytes.NewReader(compressed), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(DefaultMaxZstdWindow))
	if err != nil {
		return nil, badTOC("manifest: %v", err)
	}
	defer zr.Close()
	js, err := io.ReadAll(io.LimitReader(zr, maxTOCJSONBytes))
	if err != nil {
		return nil, badTOC("manifest: %v", err)
	}
	return js, nil
}

// parseZstdChunkedFooter finds the manifest's offset and compressed length
// in a blob's last bytes, in either footer dialect.
func parseZstdChunkedFooter(tail []byte) (off, size int64, err error) {
	for _, n := range []int{zstdChunkedFooterLong, zstdChunkedFooterShort} {
		if len(tail) < n {
			continue
		}
		f := tail[len(tail)-n:]
		if !bytes.Equal(f[:4], skippableFrameMagic) || int(binary.LittleEndian.Uint32(f[4:8])) != n-8 ||
			!bytes.Equal(f[n-8:], zstdChunkedFrameMagic) {
			continue
		}
		p := f[8:]
		return int64(binary.LittleEndian.Uint64(p[0:8])), int64(binary.LittleEndian.Uint64(p[8:16])), nil
	}
	return 0, 0, badTOC("no zstd:chunked footer")
}

// parseTOC turns a table of contents into the entries a stream would have
// given, in the blob's order: a file's chunks after the first are not
// entries, and an empty file's digest is filled in.
func parseTOC(js []byte, maxEntries int) ([]analysis.LayerEntry, error) {
	var toc struct {
		Entries []tocEntry `json:"entries"`
	}
	if err := json.Unmarshal(js, &toc); err != nil {
		return nil, badTOC("JSON: %v", err)
	}
	entries := make([]analysis.LayerEntry, 0, len(toc.Entries))
	for _, t := range toc.Entries {
		e := analysis.LayerEntry{Path: t.Name, Size: t.Size, Mode: uint32(t.Mode) & 0o7777, UID: t.UID, GID: t.GID}
		switch t.Type {
		case "chunk":
			continue
		case "reg":
			e.Type, e.Digest = analysis.TypeFile, t.Digest
			if e.Digest == "" && t.Size == 0 {
				e.Digest = emptyDigest
			}
			if e.Digest == "" {
				return nil, badTOC("file %q has no digest", t.Name)
			}
		case "dir":
			e.Type = analysis.TypeDir
		case "symlink":
			e.Type, e.LinkTarget = analysis.TypeSymlink, t.LinkName
		case "hardlink":
			e.Type, e.LinkTarget, e.Size = analysis.TypeHardlink, t.LinkName, 0
		default:
			e.Type, e.Size = analysis.TypeOther, 0
		}
		if e.Type != analysis.TypeFile {
			e.Size = 0
		}
		if strings.IndexByte(t.Name, 0) >= 0 {
			return nil, analysis.Errorf(analysis.ErrInvalidLayer, nil, "a table of contents entry has a NUL byte in its name")
		}
		if len(entries) >= maxEntries {
			return nil, analysis.Errorf(analysis.ErrTooLarge, nil, "the layer has more than %d entries", maxEntries)
		}
		entries = append(entries, e)
	}
	return entries, nil
}

func sha256Digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
