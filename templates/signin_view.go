package templates

import (
	"net/url"
	"strings"
)

// TokensPage is /settings/tokens: the signed-in person's API tokens, a
// form to make one, and the one just made, shown this once.
type TokensPage struct {
	Meta   Meta
	Person string
	// New is the token just made; empty on every other view of the page.
	New     string
	NewName string
	Error   string
	Tokens  []TokenRow
}

// TokenRow is one token in the list, without its secret (which is not
// kept).
type TokenRow struct {
	ID, Name, Scope  string
	Created, Expires string
	// Status is "active", "revoked" or "expired".
	Status string
}

// SignInPage explains how to sign in where no OpenID provider takes the
// person there at once: behind an authenticating proxy, or with no sign-in
// configured (then it says how to configure one, or change the policy).
type SignInPage struct {
	Meta Meta
	// Proxy is set when an authenticating proxy signs people in.
	Proxy bool
	// Error is why a sign-in failed, when it did.
	Error string
}

// WithBadgeToken puts the private repository's badge token in every
// snippet, so that a README outside shows the badge, and says so on the
// page; only signed-in people are given a page made with it.
func (p *ImagePage) WithBadgeToken(tok string) {
	p.BadgeToken = tok
	for i, b := range p.Badges {
		sep := "?"
		if strings.Contains(b.Src, "?") {
			sep = "&"
		}
		withToken := b.Src + sep + "token=" + url.QueryEscape(tok)
		b.Markdown = strings.Replace(b.Markdown, b.Src, withToken, 1)
		b.HTML = strings.Replace(b.HTML, b.Src, withToken, 1)
		p.Badges[i] = b
	}
}
