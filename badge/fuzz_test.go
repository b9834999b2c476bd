package badge

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/imagebadger/imagebadger/analysis"
)

// FuzzBadge feeds outside input (image labels, tags, references) through
// every kind and the grey badges, and checks that the SVG always parses as
// XML, never holds a script element or an on* attribute, shows exactly the
// cleaned texts and stays within the length caps. The seeds in
// testdata/fuzz/FuzzBadge run with every `go test`.
func FuzzBadge(f *testing.F) {
	f.Add("2.3.1", "0f3c2a9e1b7d", "Apache-2.0", "2.3", "127.0.0.1:5000/acme/runtime:3.0", true)
	f.Add(`<script>alert(1)</script>`, `" onload="alert(1)`, "MIT & <b>", "latest", "x", false)
	f.Fuzz(func(t *testing.T, version, revision, licenses, tag, reference string, outdated bool) {
		parent := &analysis.Parent{Repository: reference, Tags: []string{tag, "latest"}, Outdated: outdated, Digest: revision}
		if ref, err := analysis.ParseReference(reference); err == nil {
			parent.Registry, parent.Repository = ref.Registry, ref.Name
			if ref.Tag != "" {
				parent.Tags = append(parent.Tags, ref.Tag)
			}
		}
		rep := &analysis.Report{
			Tags: []string{tag, "latest"},
			Platforms: []analysis.Platform{{
				Platform: "linux/amd64", Digest: revision,
				LayerCount: len(version), DownloadSize: int64(len(licenses)) << 20,
				Labels:   map[string]string{"org.opencontainers.image.version": version},
				Metadata: analysis.Metadata{Version: version, Revision: revision, Licenses: licenses},
				Parent:   parent,
			}},
		}
		p, _ := rep.Select("")
		badges := []Badge{Missing(Version, reference), Missing(Kind(tag), TextNotFound), {Left: tag, Right: reference, Color: Color(licenses)}}
		for _, k := range Kinds() {
			badges = append(badges, For(k, rep, p))
		}
		for _, b := range badges {
			out := Render(b)
			texts, err := svgTexts(out.SVG)
			if err != nil {
				t.Fatalf("badge %+v: %v\n%s", b, err, out.SVG)
			}
			if len(texts) != 4 {
				t.Fatalf("badge %+v: %d texts", b, len(texts))
			}
			if want := Clean(b.Left, MaxLeft); texts[0] != want {
				t.Errorf("left text %q, want %q", texts[0], want)
			}
			if want := Clean(b.Right, MaxRight); texts[2] != want {
				t.Errorf("right text %q, want %q", texts[2], want)
			}
			if utf8.RuneCountInString(texts[0]) > MaxLeft || utf8.RuneCountInString(texts[2]) > MaxRight {
				t.Errorf("texts over the caps: %q %q", texts[0], texts[2])
			}
			if strings.Contains(strings.ToLower(string(out.SVG)), "<script") {
				t.Errorf("script element in %s", out.SVG)
			}
		}
	})
}
