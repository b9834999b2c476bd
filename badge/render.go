package badge

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode"

	gobadge "github.com/narqo/go-badge"
)

// Clean makes s safe and short enough to print on a badge: invalid UTF-8
// becomes U+FFFD; control characters and runs of white space become one
// space; characters XML forbids, bidirectional overrides (which could make a
// badge read backwards) and byte-order marks are dropped; and text longer
// than max characters is cut, ending in "…". Clean is idempotent, so texts
// already cleaned pass Render unchanged.
func Clean(s string, max int) string {
	if max < 1 {
		return ""
	}
	var b strings.Builder
	b.Grow(len(s))
	n, space := 0, false
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case r < 0x20, r >= 0x7f && r <= 0x9f, unicode.IsSpace(r):
			space = n > 0
			continue
		case r == 0xFFFE, r == 0xFFFF, r == 0xFEFF, isBidiControl(r):
			continue
		}
		if space {
			b.WriteByte(' ')
			n++
			space = false
		}
		b.WriteRune(r)
		n++
	}
	out := b.String()
	if n <= max {
		return out
	}
	runes := []rune(out)[:max-1]
	return strings.TrimRight(string(runes), " ") + "…"
}

// isBidiControl reports the explicit directional formatting characters.
func isBidiControl(r rune) bool {
	return r == 0x061C || r == 0x200E || r == 0x200F ||
		(r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069)
}

// Rendered is a badge ready to send: its SVG and the strong ETag that
// identifies those bytes.
type Rendered struct {
	SVG  []byte
	ETag string
}

// Cleaned is b with both texts as Render prints them: cleaned and capped.
func (b Badge) Cleaned() Badge {
	return Badge{Left: Clean(b.Left, MaxLeft), Right: Clean(b.Right, MaxRight), Color: Color(colorOrDefault(b.Color))}
}

// Render draws b in go-badge's flat style, with both texts cleaned and
// capped (MaxLeft, MaxRight) and XML-escaped.
func Render(b Badge) Rendered {
	c := b.Cleaned()
	svg := renderSVG(c.Left, c.Right, string(c.Color))
	sum := sha256.Sum256(svg)
	return Rendered{SVG: svg, ETag: `"` + hex.EncodeToString(sum[:12]) + `"`}
}

// colorOrDefault accepts only "#" and 3 or 6 hex digits: the colour lands in
// an attribute, so nothing else may reach it.
func colorOrDefault(c Color) string {
	s := string(c)
	if (len(s) == 4 || len(s) == 7) && s[0] == '#' {
		ok := true
		for i := 1; i < len(s); i++ {
			ok = ok && strings.IndexByte("0123456789abcdefABCDEF", s[i]) >= 0
		}
		if ok {
			return s
		}
	}
	return string(ColorMissing)
}

// renderSVG draws the badge with go-badge's flat style. The texts arrive
// cleaned; go-badge's template escapes them.
func renderSVG(left, right, color string) []byte {
	svg, err := gobadge.RenderBytes(left, right, gobadge.Color(color))
	if err != nil {
		// The template is fixed and its inputs are plain strings: an error
		// here is a bug in go-badge, not bad input.
		panic(fmt.Sprintf("badge: go-badge failed to render %q %q: %v", left, right, err))
	}
	return svg
}
