package badge

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/imagebadger/imagebadger/analysis"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ with the current output")

// svgTexts parses svg as XML and returns the text of its <text> elements. It
// fails when svg is not well-formed, or holds a script element, an on*
// attribute, or anything that points outside the badge.
func svgTexts(svg []byte) ([]string, error) {
	d := xml.NewDecoder(bytes.NewReader(svg))
	d.Strict = true
	var texts []string
	var in *strings.Builder
	depth := 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("not well-formed XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 1 && t.Name.Local != "svg" {
				return nil, fmt.Errorf("root element is <%s>, want <svg>", t.Name.Local)
			}
			switch strings.ToLower(t.Name.Local) {
			case "script", "foreignobject", "iframe", "image", "use", "a":
				return nil, fmt.Errorf("holds a <%s> element", t.Name.Local)
			case "text":
				in = &strings.Builder{}
			}
			for _, a := range t.Attr {
				if strings.HasPrefix(strings.ToLower(a.Name.Local), "on") {
					return nil, fmt.Errorf("<%s> has an event attribute %s", t.Name.Local, a.Name.Local)
				}
				if a.Name.Local == "href" {
					return nil, fmt.Errorf("<%s> has an href", t.Name.Local)
				}
			}
		case xml.EndElement:
			depth--
			if t.Name.Local == "text" && in != nil {
				texts = append(texts, in.String())
				in = nil
			}
		case xml.CharData:
			if in != nil {
				in.Write(t)
			}
		case xml.ProcInst, xml.Directive:
			return nil, fmt.Errorf("holds a processing instruction or directive")
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("unbalanced elements")
	}
	return texts, nil
}

// shownTexts returns the left and right texts of a rendered badge; each is
// drawn twice (shadow, then text).
func shownTexts(t testing.TB, svg []byte) (left, right string) {
	t.Helper()
	texts, err := svgTexts(svg)
	if err != nil {
		t.Fatalf("%v\n%s", err, svg)
	}
	if len(texts) != 4 || texts[0] != texts[1] || texts[2] != texts[3] {
		t.Fatalf("texts %q, want left and right twice each", texts)
	}
	return texts[0], texts[2]
}

func platform(mut func(p *analysis.Platform)) *analysis.Report {
	p := analysis.Platform{
		Platform: "linux/amd64", OS: "linux", Architecture: "amd64",
		Digest:       "sha256:1111111111111111111111111111111111111111111111111111111111111111",
		LayerCount:   8,
		DownloadSize: 18_634_211,
	}
	if mut != nil {
		mut(&p)
	}
	return &analysis.Report{
		Registry: "127.0.0.1:5000", Repository: "acme/app", Tag: "2.3",
		Digest:    "sha256:2222222222222222222222222222222222222222222222222222222222222222",
		Tags:      []string{"2", "2.3", "2.3.1", "latest"},
		Platforms: []analysis.Platform{p},
	}
}

func TestTextRules(t *testing.T) {
	for _, tc := range []struct {
		name  string
		kind  Kind
		rep   *analysis.Report
		want  Badge
		color Color
	}{
		{"image", Image, platform(nil), Badge{"18.6 MB", "8 layers", ColorValue}, ""},
		{"image one small layer", Image, platform(func(p *analysis.Platform) { p.LayerCount, p.DownloadSize = 1, 512 }), Badge{"512 B", "1 layer", ColorValue}, ""},
		{"version from metadata", Version, platform(func(p *analysis.Platform) { p.Metadata.Version = "2.3.1-rc1" }), Badge{"version", "2.3.1-rc1", ColorValue}, ""},
		{"version from the longest tag", Version, platform(nil), Badge{"version", "2.3.1", ColorValue}, ""},
		{"commit", Commit, platform(func(p *analysis.Platform) { p.Metadata.Revision = "0f3c2a9e1b7d4c5a" }), Badge{"commit", "0f3c2a9", ColorValue}, ""},
		{"short commit", Commit, platform(func(p *analysis.Platform) { p.Metadata.Revision = "abc" }), Badge{"commit", "abc", ColorValue}, ""},
		{"no commit", Commit, platform(nil), Badge{"commit", "not given", ColorMissing}, ""},
		{"license", License, platform(func(p *analysis.Platform) { p.Metadata.Licenses = "Apache-2.0" }), Badge{"license", "Apache-2.0", ColorValue}, ""},
		{"no license", License, platform(nil), Badge{"license", "not given", ColorMissing}, ""},
		{"no base", Base, platform(nil), Badge{"base", "not given", ColorMissing}, ""},
		{"official base", Base, platform(func(p *analysis.Platform) {
			p.Parent = &analysis.Parent{Registry: "docker.io", Repository: "library/alpine", Tags: []string{"latest", "3", "3.19", "3.20"}}
		}), Badge{"base", "alpine:3.20", ColorCurrent}, ""},
		{"base only latest", Base, platform(func(p *analysis.Platform) {
			p.Parent = &analysis.Parent{Registry: "docker.io", Repository: "bitnami/redis", Tags: []string{"latest"}}
		}), Badge{"base", "bitnami/redis:latest", ColorCurrent}, ""},
		{"base by digest", Base, platform(func(p *analysis.Platform) {
			p.Parent = &analysis.Parent{Registry: "ghcr.io", Repository: "acme/runtime", Digest: "sha256:0123456789abcdef0123"}
		}), Badge{"base", "acme/runtime@sha256:0123456789ab", ColorCurrent}, ""},
		{"outdated base", Base, platform(func(p *analysis.Platform) {
			p.Parent = &analysis.Parent{Registry: "127.0.0.1:5000", Repository: "acme/runtime", Tags: []string{"3", "3.0"}, Outdated: true, CurrentDigest: "sha256:9"}
		}), Badge{"base", "acme/runtime:3.0 (outdated)", ColorWarning}, ""},
		{"outdated base with a long name keeps its mark", Base, platform(func(p *analysis.Platform) {
			p.Parent = &analysis.Parent{Registry: "ghcr.io", Repository: strings.Repeat("team/", 20) + "runtime", Tags: []string{"1"}, Outdated: true}
		}), Badge{"base", strings.Repeat("team/", 10) + "te… (outdated)", ColorWarning}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := tc.rep.Select("")
			got := For(tc.kind, tc.rep, p)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("For(%s) (-want +got):\n%s", tc.kind, diff)
			}
			if n := utf8.RuneCountInString(got.Right); n > MaxRight {
				t.Errorf("right text has %d characters, more than %d", n, MaxRight)
			}
			left, right := shownTexts(t, Render(got).SVG)
			if left != tc.want.Left || right != tc.want.Right {
				t.Errorf("rendered %q | %q, want %q | %q", left, right, tc.want.Left, tc.want.Right)
			}
		})
	}
}

func TestVersionWithoutValue(t *testing.T) {
	rep := platform(nil)
	rep.Tags = []string{"latest"}
	p, _ := rep.Select("")
	if got, want := For(Version, rep, p), Missing(Version, TextNotGiven); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestParseKind(t *testing.T) {
	for _, k := range Kinds() {
		if got, ok := ParseKind(string(k)); !ok || got != k {
			t.Errorf("ParseKind(%q) = %q, %v", k, got, ok)
		}
	}
	for _, s := range []string{"", "Image", "size", "image.svg", "../image"} {
		if _, ok := ParseKind(s); ok {
			t.Errorf("ParseKind(%q) accepted", s)
		}
	}
}

func TestClean(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"  1.2.3 \n", 64, "1.2.3"},
		{"a\tb\x00c\x1bd", 64, "a b c d"},
		{"a\u202eevil\u2066b\ufeff", 64, "aevilb"},
		{"bad \xff utf8", 64, "bad \ufffd utf8"},
		{"\uffff\ufffe", 64, ""},
		{"abcdefgh", 5, "abcd…"},
		{"abc   defgh", 5, "abc…"},
		{"abcde", 5, "abcde"},
		{"日本語のテキスト", 4, "日本語…"},
		{"x", 0, ""},
	} {
		got := Clean(tc.in, tc.max)
		if got != tc.want {
			t.Errorf("Clean(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
		if again := Clean(got, tc.max); again != got {
			t.Errorf("Clean is not idempotent: %q then %q", got, again)
		}
	}
}

// TestGolden pins the SVG of each kind, and of the grey and hostile cases,
// byte for byte. Run `go test ./badge -update` after a deliberate change and
// look at the files (they open in any browser).
func TestGolden(t *testing.T) {
	withMeta := platform(func(p *analysis.Platform) {
		p.Metadata = analysis.Metadata{Version: "2.3.1", Revision: "0f3c2a9e1b7d4c5a6f8e", Licenses: "Apache-2.0"}
		p.Parent = &analysis.Parent{Registry: "docker.io", Repository: "library/alpine", Tags: []string{"3", "3.20"}}
	})
	outdated := platform(func(p *analysis.Platform) {
		p.Parent = &analysis.Parent{Registry: "127.0.0.1:5000", Repository: "acme/runtime", Tags: []string{"3", "3.0"}, Outdated: true}
	})
	hostile := platform(func(p *analysis.Platform) {
		p.Metadata.Version = `<script>alert("x")</script> & 'q' ` + strings.Repeat("ж", 80)
	})
	p := func(r *analysis.Report) *analysis.Platform { pl, _ := r.Select(""); return pl }
	cases := map[string]Badge{
		"image":            For(Image, withMeta, p(withMeta)),
		"version":          For(Version, withMeta, p(withMeta)),
		"commit":           For(Commit, withMeta, p(withMeta)),
		"license":          For(License, withMeta, p(withMeta)),
		"base":             For(Base, withMeta, p(withMeta)),
		"base-outdated":    For(Base, outdated, p(outdated)),
		"commit-not-given": For(Commit, outdated, p(outdated)),
		"not-found":        Missing(Image, TextNotFound),
		"not-found-yet":    Missing(Version, TextNotFoundYet),
		"escaped":          For(Version, hostile, p(hostile)),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			got := Render(b).SVG
			if _, err := svgTexts(got); err != nil {
				t.Fatalf("%v\n%s", err, got)
			}
			path := filepath.Join("testdata", name+".svg")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./badge -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the golden file (run with -update if the change is meant):\n got %s\nwant %s", path, got, want)
			}
		})
	}
}

func TestRenderIsDeterministicWithStrongETag(t *testing.T) {
	b := Badge{Left: "version", Right: "1.0", Color: ColorValue}
	r1, r2 := Render(b), Render(b)
	if !bytes.Equal(r1.SVG, r2.SVG) || r1.ETag != r2.ETag {
		t.Fatal("two renders of one badge differ")
	}
	if !strings.HasPrefix(r1.ETag, `"`) || !strings.HasSuffix(r1.ETag, `"`) || strings.HasPrefix(r1.ETag, "W/") {
		t.Errorf("ETag %s is not a strong entity tag", r1.ETag)
	}
	if other := Render(Badge{Left: "version", Right: "1.1", Color: ColorValue}); other.ETag == r1.ETag {
		t.Error("different badges share an ETag")
	}
	// A colour that is not a hex colour never reaches the attribute.
	bad := Render(Badge{Left: "a", Right: "b", Color: `red" onload="alert(1)`})
	if bytes.Contains(bad.SVG, []byte("onload")) {
		t.Errorf("colour injected: %s", bad.SVG)
	}
}

func TestCacheIsBoundedAndLRU(t *testing.T) {
	c := NewCache(2)
	key := func(v string) Key {
		return Key{Kind: Version, Digest: "sha256:" + v, Platform: "linux/amd64", Badge: Badge{Left: "version", Right: v, Color: ColorValue}}
	}
	a := c.Get(key("a"))
	c.Get(key("b"))
	if again := c.Get(key("a")); &again.SVG[0] != &a.SVG[0] {
		t.Error("a hit rendered again")
	}
	c.Get(key("c")) // evicts b, the least recently used
	if c.Len() != 2 {
		t.Errorf("Len = %d, want 2", c.Len())
	}
	if again := c.Get(key("a")); &again.SVG[0] != &a.SVG[0] {
		t.Error("a was evicted instead of b")
	}
	_, right := shownTexts(t, c.Get(key("b")).SVG)
	if right != "b" {
		t.Errorf("b renders %q", right)
	}
}

func TestCacheConcurrent(t *testing.T) {
	c := NewCache(16)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				v := fmt.Sprint((g + i) % 32)
				r := c.Get(Key{Kind: Version, Badge: Badge{Left: "version", Right: v, Color: ColorValue}})
				if _, right := shownTexts(t, r.SVG); right != v {
					t.Errorf("got %q for %q", right, v)
					return
				}
			}
		})
	}
	wg.Wait()
	if c.Len() > 16 {
		t.Errorf("Len = %d, over the bound", c.Len())
	}
}

func BenchmarkRender(b *testing.B) {
	bd := Badge{Left: "version", Right: "2.3.1-bookworm", Color: ColorValue}
	b.ReportAllocs()
	for b.Loop() {
		Render(bd)
	}
}

func BenchmarkCacheHit(b *testing.B) {
	c := NewCache(4096)
	k := Key{Kind: Version, Digest: "sha256:1", Platform: "linux/amd64", Badge: Badge{Left: "version", Right: "2.3.1", Color: ColorValue}}
	c.Get(k)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Get(k)
		}
	})
}
