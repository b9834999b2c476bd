package notify

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzChatEscapes holds the escapes of the chat formats to what each
// platform's documentation asks of them, whatever a registry writes:
// Slack's text has no < or > and no & but its three entities; Markdown
// text has no character of its markup that a backslash does not escape;
// no text holds a channel-wide mention or a line break; a link holds only
// the characters a URL carries as they are.
func FuzzChatEscapes(f *testing.F) {
	for _, s := range []string{
		"<!channel> <https://evil.test/login|Re-authenticate here>",
		"[login](https://evil.test) **bold** `code` ~~x~~ ||spoiler|| > quote",
		"@here @Channel @ALL @everyone @@here \\[x\\]",
		"line\r\nbreak\ttab \u202egnp.exe",
		"&amp; &lt; &",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		noMentions := func(where, out string) {
			low := strings.ToLower(out)
			for _, w := range mentionWords() {
				if strings.Contains(low, "@"+w) {
					t.Fatalf("%s(%q) = %q holds @%s", where, s, out, w)
				}
			}
			if strings.ContainsAny(out, "\r\n\t\u202e") {
				t.Fatalf("%s(%q) = %q holds a line break or an override", where, s, out)
			}
		}
		out := slackText(s)
		if strings.ContainsAny(out, "<>") {
			t.Fatalf("slackText(%q) = %q holds < or >", s, out)
		}
		for rest := out; ; {
			i := strings.IndexByte(rest, '&')
			if i < 0 {
				break
			}
			rest = rest[i:]
			if !strings.HasPrefix(rest, "&amp;") && !strings.HasPrefix(rest, "&lt;") && !strings.HasPrefix(rest, "&gt;") {
				t.Fatalf("slackText(%q) = %q has a bare &", s, out)
			}
			rest = rest[1:]
		}
		noMentions("slackText", out)
		for name, markup := range map[string]string{"teams": teamsMarkup, "discord": discordMarkup} {
			out := markdownEscape(s, markup)
			for i := 0; i < len(out); i++ {
				switch {
				case out[i] == '\\':
					i++ // an escape and what it escapes
				case strings.IndexByte(markup, out[i]) >= 0:
					t.Fatalf("%s: markdownEscape(%q) = %q leaves %q unescaped", name, s, out, out[i])
				}
			}
			noMentions(name, out)
		}
		for _, c := range []byte(linkSafe(s)) {
			if c >= utf8.RuneSelf || strings.IndexByte("()[]*,;<>\"`{}|\\^ ", c) >= 0 || c < 0x20 || c == 0x7f {
				t.Fatalf("linkSafe(%q) = %q holds %q", s, linkSafe(s), c)
			}
		}
	})
}
