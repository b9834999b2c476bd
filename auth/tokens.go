package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/imagebadger/imagebadger/store"
)

// TokenPrefix begins every API token, so that a leaked one is recognised
// by secret scanners and by a person reading a log.
const TokenPrefix = "ib_"

// badgeTokenPrefix begins every badge token; a badge token is never an API
// token, and its prefix says so.
const badgeTokenPrefix = "ibb_"

// tokenIDBytes and secretBytes are the sizes of a token's public id and of
// its secret: 64 bits name a token, 256 bits make it unguessable.
const (
	tokenIDBytes = 8
	secretBytes  = 32
)

// MaxTokenNameLength bounds the name a person gives a token.
const MaxTokenNameLength = 100

// ErrUnauthorized marks a request whose credentials are missing where they
// are needed, or wrong, revoked or expired: 401 unauthorized.
var ErrUnauthorized = errors.New("unauthorized")

// ErrForbidden marks a request from someone known who is not allowed what
// they ask (a read token writing, a person outside --oidc-allowed):
// 403 forbidden.
var ErrForbidden = errors.New("forbidden")

// ErrInvalid marks a request whose fields are malformed (a token name too
// long, an unknown scope, an expiry in the past).
var ErrInvalid = errors.New("invalid request")

// randomText is n random bytes in URL-safe base64 without padding.
func randomText(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashOf is the hex SHA-256 of a secret: what the store keeps of it. The
// secrets are 256 random bits, not passwords, so one plain hash suffices.
func hashOf(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// NewToken is a token as made: the secret, shown once, and what is kept.
type NewToken struct {
	Token string
	store.APIToken
}

// CreateToken makes a new API token of person's, named name, with scope
// and an optional expiry (zero for none).
func (a *Auth) CreateToken(ctx context.Context, person, name string, scope Scope, expires time.Time) (NewToken, error) {
	if person == "" {
		return NewToken{}, fmt.Errorf("auth: create token: %w: only a signed-in person makes tokens", ErrUnauthorized)
	}
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return NewToken{}, fmt.Errorf("auth: create token: %w: a token needs a name", ErrInvalid)
	case len(name) > MaxTokenNameLength:
		return NewToken{}, fmt.Errorf("auth: create token: %w: a name is at most %d bytes", ErrInvalid, MaxTokenNameLength)
	case scope != ScopeRead && scope != ScopeWrite:
		return NewToken{}, fmt.Errorf("auth: create token: %w: the scope is %q or %q", ErrInvalid, ScopeRead, ScopeWrite)
	}
	now := a.now()
	if !expires.IsZero() && !expires.After(now) {
		return NewToken{}, fmt.Errorf("auth: create token: %w: the expiry is in the past", ErrInvalid)
	}
	idb := make([]byte, tokenIDBytes)
	rand.Read(idb)
	id := hex.EncodeToString(idb)
	tok := TokenPrefix + id + "_" + randomText(secretBytes)
	t := store.APIToken{ID: id, Hash: hashOf(tok), Person: person, Name: name, Scope: string(scope),
		Created: now.UTC().Truncate(time.Millisecond)}
	if !expires.IsZero() {
		t.Expires = expires.UTC().Truncate(time.Millisecond)
	}
	if err := a.store.CreateAPIToken(ctx, t); err != nil {
		return NewToken{}, fmt.Errorf("auth: create token: %w", err)
	}
	return NewToken{Token: tok, APIToken: t}, nil
}

// Tokens lists person's tokens, newest first, without their secrets
// (which are not kept).
func (a *Auth) Tokens(ctx context.Context, person string) ([]store.APIToken, error) {
	ts, err := a.store.APITokens(ctx, person)
	if err != nil {
		return nil, fmt.Errorf("auth: tokens: %w", err)
	}
	return ts, nil
}

// RevokeToken revokes person's token id; someone else's is as one that
// does not exist.
func (a *Auth) RevokeToken(ctx context.Context, person, id string) error {
	if err := a.store.RevokeAPIToken(ctx, person, id, a.now()); err != nil {
		return fmt.Errorf("auth: revoke token: %w", err)
	}
	return nil
}

// TokenViewer is the viewer an API token makes: its scope, no person (a
// token cannot do what only a person may, such as make tokens). A token
// that does not parse, is unknown, revoked or expired is ErrUnauthorized.
func (a *Auth) TokenViewer(ctx context.Context, tok string) (Viewer, error) {
	rest, ok := strings.CutPrefix(tok, TokenPrefix)
	id, _, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 || len(id) != 2*tokenIDBytes {
		return Viewer{}, fmt.Errorf("auth: %w: not an API token", ErrUnauthorized)
	}
	t, err := a.store.APITokenByID(ctx, id)
	if errors.Is(err, store.ErrUnknownCredential) {
		return Viewer{}, fmt.Errorf("auth: %w: unknown token", ErrUnauthorized)
	}
	if err != nil {
		return Viewer{}, fmt.Errorf("auth: token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(hashOf(tok)), []byte(t.Hash)) != 1 {
		return Viewer{}, fmt.Errorf("auth: %w: wrong token", ErrUnauthorized)
	}
	now := a.now()
	switch {
	case !t.Revoked.IsZero():
		return Viewer{}, fmt.Errorf("auth: %w: the token was revoked", ErrUnauthorized)
	case !t.Expires.IsZero() && !now.Before(t.Expires):
		return Viewer{}, fmt.Errorf("auth: %w: the token expired", ErrUnauthorized)
	}
	return Viewer{Scope: Scope(t.Scope), TokenOwner: t.Person}, nil
}

// badgeToken derives the badge token of repository name on registry from
// its salt with the service's badge key: the store keeps the salt alone,
// so a copy of the database opens no badge.
func (a *Auth) badgeToken(registry, name, salt string) string {
	m := hmac.New(sha256.New, a.badgeKey)
	m.Write([]byte("imagebadger badge token\x00" + registry + "/" + name + "\x00" + salt))
	return badgeTokenPrefix + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// errNoBadgeKey is the error of a badge-token call on a service that has
// no badge key (no sign-in configured: no one could be shown the token).
var errNoBadgeKey = errors.New("auth: badge tokens need sign-in configured")

// BadgeToken is the badge token of repository name on registry, made on
// first use and kept until regenerated.
func (a *Auth) BadgeToken(ctx context.Context, registry, name string) (string, error) {
	if len(a.badgeKey) == 0 {
		return "", errNoBadgeKey
	}
	salt, err := a.store.BadgeSalt(ctx, registry, name, func() string { return randomText(secretBytes) }, a.now())
	if err != nil {
		return "", fmt.Errorf("auth: badge token: %w", err)
	}
	return a.badgeToken(registry, name, salt), nil
}

// NewBadgeToken makes a new badge token for the repository, retiring the
// one before, and returns it.
func (a *Auth) NewBadgeToken(ctx context.Context, registry, name string) (string, error) {
	if len(a.badgeKey) == 0 {
		return "", errNoBadgeKey
	}
	salt := randomText(secretBytes)
	if err := a.store.SetBadgeSalt(ctx, registry, name, salt, a.now()); err != nil {
		return "", fmt.Errorf("auth: new badge token: %w", err)
	}
	return a.badgeToken(registry, name, salt), nil
}

// BadgeViewer is the viewer a badge token tok makes for the repository:
// one that sees that repository's badges, or, for a token that is not the
// repository's current one, the anonymous viewer (a badge answers as for
// anyone, never 401).
func (a *Auth) BadgeViewer(ctx context.Context, registry, name, tok string) (Viewer, error) {
	if tok == "" || len(a.badgeKey) == 0 || !strings.HasPrefix(tok, badgeTokenPrefix) {
		return Viewer{}, nil
	}
	salt, err := a.store.BadgeSaltIfAny(ctx, registry, name)
	if errors.Is(err, store.ErrUnknownCredential) {
		return Viewer{}, nil
	}
	if err != nil {
		return Viewer{}, fmt.Errorf("auth: badge token: %w", err)
	}
	if !hmac.Equal([]byte(a.badgeToken(registry, name, salt)), []byte(tok)) {
		return Viewer{}, nil
	}
	return Viewer{BadgeRepository: registry + "/" + name}, nil
}
