package analysis

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// DefaultMaxLayerEntries is how many tar entries one layer may hold before
// its analysis stops as too large: the memory a layer's analysis takes grows
// with its entries, never with its bytes, so this is what bounds it.
const DefaultMaxLayerEntries = 1_000_000

// hashBuffer is how much of a file ReadLayer hashes at once.
const hashBuffer = 128 << 10

// The kinds of failure of a contents analysis, checked with errors.Is.
var (
	// ErrInvalidLayer marks a layer whose tar cannot be applied: it is
	// malformed, or one of its entries escapes the root. The message says
	// which entry and why.
	ErrInvalidLayer = errors.New("invalid layer")
	// ErrTooLarge marks an analysis stopped by a limit (the entries of a
	// layer, the bytes of an image); the message names the limit.
	ErrTooLarge = errors.New("too large")
)

// EntryType is what a tar entry, or a node of the filesystem it builds, is.
type EntryType uint8

// The entry types of the contents API, in its words.
const (
	TypeFile EntryType = iota
	TypeDir
	TypeSymlink
	TypeHardlink
	// TypeOther is a device, a FIFO or anything else that holds no bytes.
	TypeOther
)

// String is the type's name in the contents API.
func (t EntryType) String() string {
	switch t {
	case TypeFile:
		return "file"
	case TypeDir:
		return "dir"
	case TypeSymlink:
		return "symlink"
	case TypeHardlink:
		return "hardlink"
	}
	return "other"
}

// ParseEntryType is String's inverse, for what was stored by name.
func ParseEntryType(s string) (EntryType, bool) {
	for t := TypeFile; t <= TypeOther; t++ {
		if t.String() == s {
			return t, true
		}
	}
	return TypeOther, false
}

// LayerEntry is one entry of a layer's tar as read, before it is applied
// to the filesystem below: Path is the name as the tar spells it (Apply
// cleans it), Digest the sha256 of a regular file's content.
type LayerEntry struct {
	Path       string
	Type       EntryType
	Size       int64
	Mode       uint32
	UID, GID   int
	LinkTarget string
	Digest     string
	// Implicit marks a directory the tar does not hold but its entries
	// need, as a store that lists directories on their own keeps it: Apply
	// creates it where nothing is, exactly as it creates the directories a
	// tar's entry names, and changes nothing where something is.
	Implicit bool
}

// ReadLayerOptions bounds ReadLayer.
type ReadLayerOptions struct {
	// MaxEntries is the most entries the layer may have; 0 means
	// DefaultMaxLayerEntries.
	MaxEntries int
}

func (o ReadLayerOptions) withDefaults() ReadLayerOptions {
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxLayerEntries
	}
	return o
}

// ReadLayer reads an uncompressed layer tar once, in order, hashing each
// regular file's content on the way, and returns its entries. Memory grows
// with the number of entries, never with the size of a file; a tar that does
// not parse is ErrInvalidLayer and one over MaxEntries ErrTooLarge. It reads
// nothing past the tar's end: a caller verifying a digest drains the rest.
func ReadLayer(r io.Reader, opts ReadLayerOptions) ([]LayerEntry, error) {
	opts = opts.withDefaults()
	tr := tar.NewReader(r)
	var entries []LayerEntry
	h := sha256.New()
	var sum [sha256.Size]byte
	// One buffer for every file: io.Copy would allocate one a file, as
	// neither the tar reader nor the hash offers to copy without one.
	buf := make([]byte, hashBuffer)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return entries, nil
		}
		if err != nil {
			return nil, Errorf(ErrInvalidLayer, err, "the layer is not a valid tar (after %d entries)", len(entries))
		}
		var e LayerEntry
		switch hdr.Typeflag {
		case tar.TypeXGlobalHeader:
			continue
		case tar.TypeReg, tar.TypeGNUSparse: // the reader turns the old TypeRegA into these
			e.Type = TypeFile
		case tar.TypeDir:
			e.Type = TypeDir
		case tar.TypeSymlink:
			e.Type = TypeSymlink
		case tar.TypeLink:
			e.Type = TypeHardlink
		default:
			e.Type = TypeOther
		}
		if len(entries) >= opts.MaxEntries {
			return nil, Errorf(ErrTooLarge, nil, "the layer has more than %d entries", opts.MaxEntries)
		}
		if strings.IndexByte(hdr.Name, 0) >= 0 || strings.IndexByte(hdr.Linkname, 0) >= 0 {
			return nil, Errorf(ErrInvalidLayer, nil, "entry %d has a NUL byte in its name", len(entries))
		}
		e.Path = hdr.Name
		e.Mode = uint32(hdr.Mode) & 0o7777
		e.UID, e.GID = hdr.Uid, hdr.Gid
		if e.Type == TypeSymlink || e.Type == TypeHardlink {
			e.LinkTarget = hdr.Linkname
		}
		if e.Type == TypeFile {
			h.Reset()
			n, err := io.CopyBuffer(h, tr, buf)
			if err != nil {
				return nil, Errorf(ErrInvalidLayer, err, "the layer's tar ends inside %q", hdr.Name)
			}
			e.Size = n
			e.Digest = "sha256:" + hex.EncodeToString(h.Sum(sum[:0]))
		}
		entries = append(entries, e)
	}
}

// String is for test failures and logs.
func (e LayerEntry) String() string {
	return fmt.Sprintf("%s %s %d %o %s", e.Type, e.Path, e.Size, e.Mode, e.LinkTarget)
}
