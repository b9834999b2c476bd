package analysis

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// index and manifest write an index of n entries and an image manifest
// of n layers by hand, as a registry would send them.
func index(n int) []byte {
	entries := make([]string, n)
	for i := range entries {
		entries[i] = fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"sha256:%064x","platform":{"os":"linux","architecture":"a%d"}}`, i, i)
	}
	return []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` + strings.Join(entries, ",") + `]}`)
}

func manifest(n int) []byte {
	layers := make([]string, n)
	for i := range layers {
		layers[i] = fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":1,"digest":"sha256:%064x"}`, i)
	}
	return []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[` + strings.Join(layers, ",") + `]}`)
}

func TestCheckShape(t *testing.T) {
	const idx, img = "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json"
	for _, tc := range []struct {
		name, mt string
		body     []byte
		says     string // "" for accepted
	}{
		{"index at the limit", idx, index(128), ""},
		{"index over it", idx, index(129), "lists 129 manifests, more than the 128"},
		{"manifest at the limit", img, manifest(256), ""},
		{"manifest over it", img, manifest(300), "has 300 layers, more than the 256"},
		{"not JSON", img, []byte("<html>"), "not a valid image manifest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckShape(tc.mt, tc.body, "image x")
			if tc.says == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			msg, _ := PublicMessage(err)
			if !errors.Is(err, ErrUpstream) || !strings.Contains(msg, tc.says) {
				t.Errorf("err = %v (message %q), want a registry error saying %q", err, msg, tc.says)
			}
		})
	}
	// The parsers hold stored content to the same limits.
	if _, _, err := ParseIndex(index(129), "image x"); err == nil || !strings.Contains(err.Error(), "129 manifests") {
		t.Errorf("ParseIndex of 129 entries: %v", err)
	}
	if _, err := ParseManifest(manifest(257), "image x"); err == nil || !strings.Contains(err.Error(), "257 layers") {
		t.Errorf("ParseManifest of 257 layers: %v", err)
	}
}
