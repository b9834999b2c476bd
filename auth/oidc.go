package auth

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// DefaultOIDCTimeout bounds each call to the OpenID provider (discovery,
// keys, the code exchange).
const DefaultOIDCTimeout = 10 * time.Second

// DefaultOIDCMaxBytes bounds each answer read from the OpenID provider.
const DefaultOIDCMaxBytes = 1 << 20

// signInCookie carries, between /signin and the callback, what the callback
// checks: the state, the nonce, the PKCE verifier and where to go after.
// It is the browser's, so a callback on any replica can finish the flow.
const signInCookie = "ib_signin"

// signInLifetime is how long a person has at the provider's login.
const signInLifetime = 10 * time.Minute

// OIDCOptions configures sign-in through an OpenID Connect provider.
type OIDCOptions struct {
	Issuer, ClientID, ClientSecret string
	// Allowed lists who may sign in: e-mail addresses, @domains and
	// group: names (from the ID token's groups claim).
	Allowed []string
	// Transport carries every call to the provider; the caller gives one
	// that dials through netguard, as every outbound dial does.
	Transport http.RoundTripper
	// Timeout defaults to DefaultOIDCTimeout, MaxBytes to
	// DefaultOIDCMaxBytes.
	Timeout  time.Duration
	MaxBytes int64
}

func (o OIDCOptions) withDefaults() OIDCOptions {
	if o.Timeout <= 0 {
		o.Timeout = DefaultOIDCTimeout
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultOIDCMaxBytes
	}
	if o.Transport == nil {
		o.Transport = http.DefaultTransport
	}
	return o
}

// allowList is --oidc-allowed, parsed.
type allowList struct {
	emails, domains, groups map[string]bool
}

func parseAllowed(entries []string) (allowList, error) {
	al := allowList{emails: map[string]bool{}, domains: map[string]bool{}, groups: map[string]bool{}}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		switch {
		case e == "":
		case strings.HasPrefix(e, "group:") && len(e) > len("group:"):
			al.groups[strings.TrimPrefix(e, "group:")] = true
		case strings.HasPrefix(e, "@") && len(e) > 1:
			al.domains[strings.ToLower(e[1:])] = true
		case strings.Count(e, "@") == 1 && !strings.HasSuffix(e, "@"):
			al.emails[strings.ToLower(e)] = true
		default:
			return allowList{}, fmt.Errorf("auth: --oidc-allowed entry %q: want an e-mail address, @domain or group:name", e)
		}
	}
	if len(al.emails)+len(al.domains)+len(al.groups) == 0 {
		return allowList{}, errors.New("auth: --oidc-allowed is empty: name the e-mail addresses, @domains or group: names that may sign in")
	}
	return al, nil
}

// allows reports whether the person with a verified email and groups may
// sign in.
func (al allowList) allows(email string, verified bool, groups []string) bool {
	for _, g := range groups {
		if al.groups[g] {
			return true
		}
	}
	if email == "" || !verified {
		return false
	}
	email = strings.ToLower(email)
	if al.emails[email] {
		return true
	}
	_, domain, _ := strings.Cut(email, "@")
	return al.domains[domain]
}

// limitedTransport bounds every answer body it carries to max bytes.
type limitedTransport struct {
	next http.RoundTripper
	max  int64
}

func (t limitedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{r: io.LimitReader(resp.Body, t.max+1), c: resp.Body, left: t.max}
	return resp, nil
}

type limitedBody struct {
	r    io.Reader
	c    io.Closer
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n, errors.New("auth: the OpenID provider's answer is over the size limit")
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.c.Close() }

// client is the HTTP client of every call to the provider, bounded in
// time and size.
func (a *Auth) client() *http.Client {
	return &http.Client{Transport: limitedTransport{next: a.oidc.Transport, max: a.oidc.MaxBytes}, Timeout: a.oidc.Timeout}
}

// providerCtx is the context the provider's key set and exchanges use: it
// carries the bounded client and is never cancelled (go-oidc keeps it for
// later fetches of the provider's keys; the client's timeout bounds them).
func (a *Auth) providerCtx() context.Context {
	c := a.client()
	return context.WithValue(oidc.ClientContext(context.Background(), c), oauth2.HTTPClient, c)
}

// getProvider discovers the provider on first use and keeps it; a failed
// discovery is tried again on the next sign-in.
func (a *Auth) getProvider(ctx context.Context) (*oidc.Provider, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.provider != nil {
		return a.provider, nil
	}
	pctx := a.providerCtx()
	done := make(chan struct{})
	var p *oidc.Provider
	var err error
	go func() {
		defer close(done)
		p, err = oidc.NewProvider(pctx, a.oidc.Issuer)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, fmt.Errorf("auth: discover the OpenID provider: %w", ctx.Err())
	}
	if err != nil {
		return nil, fmt.Errorf("auth: discover the OpenID provider %s: %w", a.oidc.Issuer, err)
	}
	a.provider = p
	return p, nil
}

func (a *Auth) oauthConfig(p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{
		ClientID: a.oidc.ClientID, ClientSecret: a.oidc.ClientSecret,
		Endpoint: p.Endpoint(), RedirectURL: a.baseURL + CallbackPath,
		Scopes: []string{oidc.ScopeOpenID, "email", "profile", "groups"},
	}
}

// pendingSignIn is what the sign-in cookie holds.
type pendingSignIn struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Return   string `json:"r"`
}

// BeginSignIn starts the authorization code flow: it remembers a fresh
// state, nonce and PKCE verifier in a cookie and returns the provider's
// address to send the browser to. ret is where to come back to, kept only
// if it is a path on this site.
func (a *Auth) BeginSignIn(w http.ResponseWriter, r *http.Request, ret string) (string, error) {
	if !a.OIDCConfigured() {
		return "", fmt.Errorf("auth: %w: no OpenID provider is configured", ErrInvalid)
	}
	p, err := a.getProvider(r.Context())
	if err != nil {
		return "", err
	}
	ps := pendingSignIn{State: randomText(secretBytes), Nonce: randomText(secretBytes),
		Verifier: oauth2.GenerateVerifier(), Return: LocalPath(ret)}
	b, err := json.Marshal(ps)
	if err != nil {
		return "", fmt.Errorf("auth: begin sign-in: %w", err)
	}
	http.SetCookie(w, a.cookie(signInCookie, CallbackPath, base64.RawURLEncoding.EncodeToString(b), signInLifetime))
	return a.oauthConfig(p).AuthCodeURL(ps.State, oidc.Nonce(ps.Nonce), oauth2.S256ChallengeOption(ps.Verifier)), nil
}

// idClaims are the claims of the ID token that sign-in reads.
type idClaims struct {
	Email         string   `json:"email"`
	EmailVerified *bool    `json:"email_verified"`
	Groups        []string `json:"groups"`
	Subject       string   `json:"sub"`
}

// FinishSignIn completes the flow at the callback: the state must be the
// one this browser was given, the code is exchanged with the PKCE
// verifier, the ID token is verified (signature, issuer, audience,
// expiry) and must carry the nonce; a person --oidc-allowed does not name
// is ErrForbidden. It starts a session and returns the path to go back to.
func (a *Auth) FinishSignIn(w http.ResponseWriter, r *http.Request) (string, error) {
	if !a.OIDCConfigured() {
		return "", fmt.Errorf("auth: %w: no OpenID provider is configured", ErrInvalid)
	}
	c, err := r.Cookie(signInCookie)
	if err != nil {
		return "", fmt.Errorf("auth: %w: no sign-in was started in this browser (or it took too long); sign in again", ErrInvalid)
	}
	http.SetCookie(w, a.cookie(signInCookie, CallbackPath, "", -1))
	var ps pendingSignIn
	raw, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || json.Unmarshal(raw, &ps) != nil || ps.State == "" || ps.Verifier == "" || ps.Nonce == "" {
		return "", fmt.Errorf("auth: %w: the sign-in cookie is malformed; sign in again", ErrInvalid)
	}
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		return "", fmt.Errorf("auth: %w: the provider refused the sign-in (%.100s)", ErrForbidden, e)
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(ps.State)) != 1 {
		return "", fmt.Errorf("auth: %w: the sign-in's state does not match; sign in again", ErrInvalid)
	}
	code := q.Get("code")
	if code == "" {
		return "", fmt.Errorf("auth: %w: the provider sent no code", ErrInvalid)
	}
	p, err := a.getProvider(r.Context())
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(a.providerCtx(), a.oidc.Timeout)
	defer cancel()
	stop := context.AfterFunc(r.Context(), cancel)
	defer stop()
	tok, err := a.oauthConfig(p).Exchange(ctx, code, oauth2.VerifierOption(ps.Verifier))
	if err != nil {
		return "", fmt.Errorf("auth: %w: the provider refused the code: %w", ErrUnauthorized, err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return "", fmt.Errorf("auth: %w: the provider sent no ID token", ErrUnauthorized)
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: a.oidc.ClientID, Now: a.now}).Verify(ctx, rawID)
	if err != nil {
		return "", fmt.Errorf("auth: %w: the ID token does not verify: %w", ErrUnauthorized, err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(ps.Nonce)) != 1 {
		return "", fmt.Errorf("auth: %w: the ID token's nonce does not match", ErrUnauthorized)
	}
	var cl idClaims
	if err := idt.Claims(&cl); err != nil {
		return "", fmt.Errorf("auth: %w: the ID token's claims: %w", ErrUnauthorized, err)
	}
	verified := cl.EmailVerified == nil || *cl.EmailVerified
	if !a.allowed.allows(cl.Email, verified, cl.Groups) {
		a.log.Info("sign-in refused", "email", cl.Email, "subject", cl.Subject)
		return "", fmt.Errorf("auth: %w: %s may not sign in here", ErrForbidden, personName(cl))
	}
	person := cl.Email
	if person == "" {
		person = a.oidc.Issuer + "#" + cl.Subject
	}
	if err := a.startSession(r.Context(), w, person); err != nil {
		return "", err
	}
	return LocalPath(ps.Return), nil
}

func personName(cl idClaims) string {
	if cl.Email != "" {
		return cl.Email
	}
	return "this account"
}
