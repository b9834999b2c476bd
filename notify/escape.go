package notify

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The chat formats show text that registries wrote (version labels, tags,
// descriptions) beside this service's own link markup. Each platform reads
// some characters as markup, so registry text is escaped as the platform's
// documentation says before it is put in a message, and the service's
// links are written in a form no registry text can break out of: a label
// must never become a mention of the whole channel or a link of its own.

// zeroWidthSpace keeps an "@" from starting a mention without changing what
// people read.
const zeroWidthSpace = "\u200b"

// mentionWords are the mentions that notify everyone in a channel: Slack's
// @channel, @here and @everyone, Mattermost's @channel, @all and @here,
// Rocket.Chat's @all and @here, Discord's @everyone and @here.
func mentionWords() []string { return []string{"channel", "here", "all", "everyone"} }

// neutraliseMentions puts a zero-width space after every "@" that starts one
// of mentionWords (in any case), so no platform reads it as a mention.
func neutraliseMentions(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteByte(s[i])
		if s[i] != '@' {
			continue
		}
		rest := strings.ToLower(s[i+1:])
		for _, w := range mentionWords() {
			if strings.HasPrefix(rest, w) {
				b.WriteString(zeroWidthSpace)
				break
			}
		}
	}
	return b.String()
}

// oneLine turns line breaks, tabs and other control characters into
// spaces, and drops the bidirectional overrides and isolates: in every
// chat format a line break can start a quote, a list or a heading, and an
// override can make a message read other than it is written; registry text
// has no business laying out the message.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case unicode.IsControl(r):
			return ' '
		case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			return -1
		}
		return r
	}, s)
}

// slackEscape escapes the three characters Slack's text reserves for its
// control sequences (<!channel>, <url|label>), as Slack's "Escaping text"
// says: & as &amp;, < as &lt;, > as &gt;. Mattermost and Rocket.Chat read
// Slack's payload and decode the same entities.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// slackText is registry text for the slack format (Slack, Mattermost,
// Rocket.Chat): one line, Slack's three characters escaped and the
// channel-wide mentions made plain words.
func slackText(s string) string { return neutraliseMentions(slackEscape(oneLine(s))) }

// teamsMarkup are the characters of the Markdown an Adaptive Card's
// TextBlock and FactSet render in Teams: emphasis, code, links.
const teamsMarkup = "\\`*_~[]()"

// discordMarkup are those of Discord's Markdown: teamsMarkup, and spoilers
// (||), quotes and headings (> and # at a line's start) and the <@id>,
// <#id> and <t:…> forms.
const discordMarkup = teamsMarkup + "|<>#"

// markdownEscape puts a backslash before each of the characters in markup,
// as CommonMark's backslash escapes (which Teams and Discord honour) make
// them literal, after making s one line and its mentions plain words.
func markdownEscape(s, markup string) string {
	s = oneLine(s)
	var b strings.Builder
	for _, r := range s {
		if r < utf8.RuneSelf && strings.ContainsRune(markup, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return neutraliseMentions(b.String())
}

func teamsText(s string) string   { return markdownEscape(s, teamsMarkup) }
func discordText(s string) string { return markdownEscape(s, discordMarkup) }

// linkSafe writes one of this service's URLs so that it stays one link in
// any format: every byte outside the characters a URL carries as they are
// (RFC 3986's unreserved and reserved ones, and %) is percent-encoded, and
// so are the reserved ones a chat format reads as markup: ( ) [ ] * and
// the , and ; that ntfy's Actions header separates with. A tag from a
// registry is part of an image page's URL; encoded, it is the same page.
func linkSafe(u string) string {
	const keep = "-._~:/?#@!$&'+=%"
	var b strings.Builder
	for i := 0; i < len(u); i++ {
		c := u[i]
		if c < utf8.RuneSelf && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(keep, c) >= 0) {
			b.WriteByte(c)
			continue
		}
		b.WriteString("%")
		b.WriteByte("0123456789ABCDEF"[c>>4])
		b.WriteByte("0123456789ABCDEF"[c&15])
	}
	return b.String()
}

// linkURLs are the service's own URLs a message's text holds: the pages of
// its image and base and their diffs, longest first, so that of two
// starting at one place the longer is taken.
func (m *message) linkURLs() []string {
	var out []string
	for _, d := range []*imageData{m.Data.Image, m.Data.Base} {
		if d == nil {
			continue
		}
		for _, u := range []string{d.URL, d.DiffURL} {
			if u != "" && !slices.Contains(out, u) {
				out = append(out, u)
			}
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// chatText renders a payload's text for a chat format: the service's own
// URLs in it (links) written by link, everything else, registry text
// included, by esc.
func chatText(s string, links []string, esc, link func(string) string) string {
	var b strings.Builder
	for s != "" {
		at, which := -1, ""
		for _, l := range links {
			if i := strings.Index(s, l); i >= 0 && (at < 0 || i < at) {
				at, which = i, l
			}
		}
		if at < 0 {
			b.WriteString(esc(s))
			break
		}
		b.WriteString(esc(s[:at]))
		b.WriteString(link(which))
		s = s[at+len(which):]
	}
	return b.String()
}

// fit renders s with render, shortening s (marked with "…") until what
// render makes is at most n characters: the platforms' limits count the
// escaped text, and cutting after escaping could split an escape in two.
func fit(s string, n int, render func(string) string) string {
	for {
		out := render(s)
		over := utf8.RuneCountInString(out) - n
		if over <= 0 {
			return out
		}
		s = cut(s, max(1, utf8.RuneCountInString(s)-over))
	}
}
