package badge

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"unicode"
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

// Render draws b in go-badge's flat style, with both texts cleaned and
// capped (MaxLeft, MaxRight) and XML-escaped.
func Render(b Badge) Rendered {
	svg := renderSVG(Clean(b.Left, MaxLeft), Clean(b.Right, MaxRight), colorOrDefault(b.Color))
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

// textWidth is go-badge's measure of s: the advance of s in Vera Sans at
// 11 px, whole pixels, plus 13 px of padding (shields.io's 10 px, tuned by
// go-badge for Vera instead of Verdana).
func textWidth(s string) int {
	const extra = 13
	w, prev := 0, -1
	for _, r := range s {
		g, adv := veraGlyph(r)
		if prev >= 0 {
			w += veraKern(uint16(prev), g)
		}
		w += adv
		prev = int(g)
	}
	return w + extra
}

// renderSVG writes go-badge's flat template (narqo/go-badge style.go, with
// its white space stripped as go-badge does) byte for byte, so that a badge
// drawn here and one drawn by go-badge from the same texts are identical.
func renderSVG(left, right, color string) []byte {
	lw, rw := textWidth(left), textWidth(right)
	width := num(float64(lw + rw))
	lwS, rwS := num(float64(lw)), num(float64(rw))
	lx, rx := num(float64(lw)/2+1), num(float64(lw)+float64(rw)/2-1)
	l, r := escape(left), escape(right)

	b := make([]byte, 0, 1200+2*len(l)+2*len(r))
	b = append(b, `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="`...)
	b = append(b, width...)
	b = append(b, `" height="20"><linearGradient id="smooth" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient><mask id="round"><rect width="`...)
	b = append(b, width...)
	b = append(b, `" height="20" rx="3" fill="#fff"/></mask><g mask="url(#round)"><rect width="`...)
	b = append(b, lwS...)
	b = append(b, `" height="20" fill="#555"/><rect x="`...)
	b = append(b, lwS...)
	b = append(b, `" width="`...)
	b = append(b, rwS...)
	b = append(b, `" height="20" fill="`...)
	b = append(b, color...)
	b = append(b, `"/><rect width="`...)
	b = append(b, width...)
	b = append(b, `" height="20" fill="url(#smooth)"/></g><g fill="#fff" text-anchor="middle" font-family="DejaVu Sans,Verdana,Geneva,sans-serif" font-size="11">`...)
	for _, t := range []struct{ x, s string }{{lx, l}, {rx, r}} {
		b = append(b, `<text x="`...)
		b = append(b, t.x...)
		b = append(b, `" y="15" fill="#010101" fill-opacity=".3">`...)
		b = append(b, t.s...)
		b = append(b, `</text><text x="`...)
		b = append(b, t.x...)
		b = append(b, `" y="14">`...)
		b = append(b, t.s...)
		b = append(b, `</text>`...)
	}
	b = append(b, `</g></svg>`...)
	return b
}

// num formats a coordinate as go-badge's template does (fmt's %v of a float64).
func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// escape is the escaping go-badge's template applies to text (the html
// function): the five XML specials as character references, NUL as U+FFFD
// (Clean has removed NUL already).
func escape(s string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); i++ {
		var repl string
		switch s[i] {
		case 0:
			repl = "\uFFFD"
		case '"':
			repl = "&#34;"
		case '&':
			repl = "&amp;"
		case '\'':
			repl = "&#39;"
		case '<':
			repl = "&lt;"
		case '>':
			repl = "&gt;"
		default:
			continue
		}
		if b.Len() == 0 {
			b.Grow(len(s) + 16)
		}
		b.WriteString(s[last:i])
		b.WriteString(repl)
		last = i + 1
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}
