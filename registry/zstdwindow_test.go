package registry

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// TestZstdLowMem: the low-memory option is chosen from the window the
// first frame's header declares (RFC 8878 section 3.1.1.1.2): frames of
// windows up to 8 MiB, and single-segment frames as small as their content,
// are decoded fast; larger windows, and what is not a zstd frame header,
// in the least memory.
func TestZstdLowMem(t *testing.T) {
	// A frame header written by hand: the magic number, a descriptor
	// byte with no content size, no single segment, no checksum and no
	// dictionary, and the window descriptor: an exponent of 10 below the
	// window's log in its top five bits, eighths of it to add in the
	// bottom three.
	header := func(exponent, mantissa byte) []byte {
		return []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, exponent<<3 | mantissa}
	}
	single, err := zstd.NewWriter(nil, zstd.WithSingleSegment(true))
	if err != nil {
		t.Fatal(err)
	}
	defer single.Close()
	for _, tc := range []struct {
		name string
		blob []byte
		low  bool
	}{
		{"1 MiB window", header(10, 0), false},
		{"8 MiB window", header(13, 0), false},
		{"9 MiB window", header(13, 1), true},
		{"16 MiB window", header(14, 0), true},
		{"a single segment of 48 KiB", single.EncodeAll(bytes.Repeat([]byte("layer bytes "), 1<<12), nil), false},
		{"not zstd", []byte("not a zstd frame at all"), true},
		{"a header cut short", header(10, 0)[:5], true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := zstdLowMem(bufio.NewReader(bytes.NewReader(tc.blob))); got != tc.low {
				t.Errorf("zstdLowMem = %v, want %v", got, tc.low)
			}
		})
	}
}
