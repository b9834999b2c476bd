package trust

import (
	"math/rand/v2"
	"path"
	"regexp"
	"testing"
)

// globRegexp must match exactly what path.Match matches: the rules file
// documents subjects as path.Match patterns, and sigstore-go is handed the
// translation.
func TestGlobRegexpMatchesPathMatch(t *testing.T) {
	patterns := []string{
		"", "a", "*", "?", "a*", "*@acme.example", "a?c", "[abc]", "[^abc]", "[a-c]x", "[^a-c]", `\*`, `a\?b`, `[\]]`, `[\-]`,
		"https://github.com/acme/app/.github/workflows/release.yml@refs/tags/*",
		"https://github.com/acme/*/.github/workflows/*.yml@refs/heads/main",
		"a.b", "a+b", "(a)", "a|b", "^a$", "{a}", "é*", "[é-ü]",
		"[/]", "[^/]", "*/*", "a[b-d]?[^x-z]*",
	}
	alphabet := []rune{'a', 'b', 'c', 'x', '/', '.', '@', '*', '?', '[', ']', '-', '\\', '^', 'é', '|', '+', '(', '\n'}
	r := rand.New(rand.NewPCG(1, 2))
	inputs := []string{"", "a", "abc", "a/b", "release@acme.example", "*", "?", "]", "-", "/", "a.b", "axb", "a+b", "é", "ö", "a\nb",
		"https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.2.3",
		"https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1/2",
		"https://github.com/acme/tool/.github/workflows/ci.yml@refs/heads/main"}
	for range 2000 {
		n := r.IntN(6)
		s := make([]rune, n)
		for i := range s {
			s[i] = alphabet[r.IntN(len(alphabet))]
		}
		inputs = append(inputs, string(s))
	}
	// And patterns made of the same letters, those path.Match accepts.
	for range 3000 {
		s := make([]rune, 1+r.IntN(6))
		for i := range s {
			s[i] = alphabet[r.IntN(len(alphabet))]
		}
		if _, err := path.Match(string(s), ""); err == nil {
			patterns = append(patterns, string(s))
		}
	}
	for _, p := range patterns {
		expr, err := globRegexp(p)
		if err != nil {
			t.Errorf("globRegexp(%q): %v", p, err)
			continue
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			t.Errorf("globRegexp(%q) = %q, which does not compile: %v", p, expr, err)
			continue
		}
		for _, s := range inputs {
			want, _ := path.Match(p, s)
			if got := re.MatchString(s); got != want {
				t.Errorf("pattern %q (regexp %q) on %q: %v, path.Match says %v", p, expr, s, got, want)
			}
		}
	}
	for _, bad := range []string{"[", "a[", "[]", `a\`, "[a-]"} {
		if _, err := globRegexp(bad); err == nil {
			t.Errorf("globRegexp(%q) accepted a pattern path.Match refuses", bad)
		}
	}
}
