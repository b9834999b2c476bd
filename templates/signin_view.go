package templates

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
