// Package auth decides who is asking: the signed-in person behind a session
// (OpenID Connect or an authenticating proxy's header), the scope of an API
// token, or the one repository a badge token opens. It hands the answer to
// every read as a Viewer, so that images can apply one visibility rule to
// every route; what a viewer may see is decided there, not per handler.
package auth

// Scope is what an API token may do.
type Scope string

// The scopes of API tokens. A read token reads private images; a write
// token also subscribes, refreshes and starts analyses.
const (
	ScopeRead  Scope = "read"
	ScopeWrite Scope = "write"
)

// Viewer is who a request comes from. The zero value is an anonymous
// visitor, so a caller that forgets to say who is asking shows no private
// image.
type Viewer struct {
	// Person is the signed-in person's identity (their e-mail address, or
	// what the authenticating proxy's header named); empty for anyone else.
	Person string
	// Scope is the scope of the API token the request carried; empty
	// without one.
	Scope Scope
	// BadgeRepository is the repository whose badge token the request
	// carried; it opens that repository's badges and nothing else.
	BadgeRepository string
	// TokenOwner is the person who made the API token the request carried.
	// It says on whose behalf the token acts (a subscription it makes is
	// that person's), never that the request may do what only a person
	// signed in may.
	TokenOwner string
}

// SignedIn reports whether a person signed in made the request.
func (v Viewer) SignedIn() bool { return v.Person != "" }

// MaySeePrivate reports whether v may see the private repository repo:
// signed-in people and token holders see every private repository, a badge
// token opens only its own.
func (v Viewer) MaySeePrivate(repo string) bool {
	return v.Person != "" || v.Scope != "" || (v.BadgeRepository != "" && v.BadgeRepository == repo)
}

// MayWritePrivate reports whether v may change what the service keeps about
// a private repository (subscribe, refresh, analyse): a signed-in person or
// a write token.
func (v Viewer) MayWritePrivate() bool {
	return v.Person != "" || v.Scope == ScopeWrite
}
