package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/imagebadger/imagebadger/store"
)

// SessionCookie is the name of the cookie that carries a session's secret.
const SessionCookie = "ib_session"

// maxPersonLength bounds the identity a proxy's header may name (an
// e-mail address is at most 254 bytes); a longer one is not believed.
const maxPersonLength = 320

// DefaultSessionLifetime is how long a sign-in lasts.
const DefaultSessionLifetime = 7 * 24 * time.Hour

// CallbackPath is where the OpenID provider sends a person back to; the
// provider's client must list BaseURL + CallbackPath as a redirect URI.
const CallbackPath = "/signin/callback"

// Options configures an Auth. Zero values mean the documented defaults.
type Options struct {
	// Store keeps sessions and tokens.
	Store *store.Store
	// BaseURL is the service's public address: its scheme decides whether
	// cookies are Secure, and the OpenID callback is under it.
	BaseURL string
	// OIDC is the OpenID Connect provider; none when Issuer is empty.
	OIDC OIDCOptions
	// ProxyHeader names the header an authenticating proxy sets to the
	// person's identity; it is believed only from ProxyTrusted addresses.
	ProxyHeader  string
	ProxyTrusted []netip.Prefix
	// BadgeKey derives badge tokens from the salts the store keeps; badge
	// tokens are off without one.
	BadgeKey []byte
	// SessionLifetime defaults to DefaultSessionLifetime.
	SessionLifetime time.Duration
	// Now defaults to time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.SessionLifetime <= 0 {
		o.SessionLifetime = DefaultSessionLifetime
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.OIDC = o.OIDC.withDefaults()
	return o
}

// Auth tells who a request comes from and signs people in and out.
type Auth struct {
	store    *store.Store
	now      func() time.Time
	log      *slog.Logger
	secure   bool
	baseURL  string
	lifetime time.Duration
	badgeKey []byte

	proxyHeader  string
	proxyTrusted []netip.Prefix

	oidc    OIDCOptions
	allowed allowList
	// mu guards provider, found on first use (discovery) so that a
	// provider down at start delays sign-in, not the service.
	mu       sync.Mutex
	provider *oidc.Provider
}

// New returns an Auth for opts.
func New(opts Options) (*Auth, error) {
	opts = opts.withDefaults()
	if opts.Store == nil {
		return nil, errors.New("auth: no store")
	}
	a := &Auth{
		store: opts.Store, now: opts.Now, log: opts.Logger,
		baseURL: strings.TrimRight(opts.BaseURL, "/"), lifetime: opts.SessionLifetime,
		badgeKey: opts.BadgeKey, proxyHeader: http.CanonicalHeaderKey(opts.ProxyHeader),
		proxyTrusted: opts.ProxyTrusted, oidc: opts.OIDC,
	}
	if u, err := url.Parse(a.baseURL); err == nil {
		a.secure = u.Scheme == "https"
	}
	if opts.OIDC.Issuer != "" {
		if a.baseURL == "" {
			return nil, errors.New("auth: OpenID Connect needs the service's base URL for its callback")
		}
		al, err := parseAllowed(opts.OIDC.Allowed)
		if err != nil {
			return nil, err
		}
		a.allowed = al
	}
	return a, nil
}

// SignInConfigured reports whether anyone can sign in at all.
func (a *Auth) SignInConfigured() bool { return a.OIDCConfigured() || a.ProxyConfigured() }

// OIDCConfigured reports whether sign-in goes through an OpenID provider.
func (a *Auth) OIDCConfigured() bool { return a.oidc.Issuer != "" }

// ProxyConfigured reports whether an authenticating proxy's header is
// believed from some address.
func (a *Auth) ProxyConfigured() bool { return a.proxyHeader != "" && len(a.proxyTrusted) > 0 }

// Viewer is who r comes from: the holder of the API token in its
// Authorization header, else the person an authenticating proxy named
// (from a trusted address only), else the person of its session cookie,
// else anonymous. A bearer token that is wrong, revoked or expired is
// ErrUnauthorized rather than anonymous, so a script learns its token is
// bad instead of reading as nobody.
func (a *Auth) Viewer(r *http.Request) (Viewer, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return Viewer{}, fmt.Errorf("auth: %w: the Authorization header takes Bearer ib_… tokens", ErrUnauthorized)
		}
		return a.TokenViewer(r.Context(), strings.TrimSpace(tok))
	}
	if p := a.proxyPerson(r); p != "" {
		return Viewer{Person: p}, nil
	}
	return a.sessionViewer(r)
}

// Carries reports whether r carries credentials of a kind Viewer reads (an
// Authorization header, a session cookie, the proxy's header), without
// looking them up: an answer made for such a request may show what an
// anonymous one would not, so shared caches must not keep it.
func (a *Auth) Carries(r *http.Request) bool {
	if r.Header.Get("Authorization") != "" || (a.proxyHeader != "" && r.Header.Get(a.proxyHeader) != "") {
		return true
	}
	_, err := r.Cookie(SessionCookie)
	return err == nil
}

// proxyPerson is the person the authenticating proxy's header names, when
// r comes straight from a trusted address; from any other address the
// header is ignored, since anyone can set it. The address is the TCP peer,
// never the client a Forwarded or X-Forwarded-For header names (as the
// server's rate limits use behind --trusted-proxies): the header is a
// claim of the proxy that authenticated the person, so only the connection
// itself can show it came from that proxy; a forwarded address is what
// some proxy says about a hop further out, and believing it here would let
// anyone who reaches a trusted network's forwarding proxy name a person.
func (a *Auth) proxyPerson(r *http.Request) string {
	if !a.ProxyConfigured() {
		return ""
	}
	v := strings.TrimSpace(r.Header.Get(a.proxyHeader))
	if v == "" || len(v) > maxPersonLength || strings.ContainsFunc(v, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
		return ""
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return ""
	}
	ip = ip.Unmap()
	for _, p := range a.proxyTrusted {
		if p.Contains(ip) {
			return v
		}
	}
	return ""
}

// sessionViewer is the person of r's session cookie; a cookie of no live
// session is anonymous (it expired or was signed out elsewhere).
func (a *Auth) sessionViewer(r *http.Request) (Viewer, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return Viewer{}, nil
	}
	ss, err := a.store.SessionByHash(r.Context(), hashOf(c.Value), a.now())
	if errors.Is(err, store.ErrUnknownCredential) {
		return Viewer{}, nil
	}
	if err != nil {
		return Viewer{}, fmt.Errorf("auth: session: %w", err)
	}
	return Viewer{Person: ss.Person}, nil
}

// startSession records a session for person and sets its cookie on w.
func (a *Auth) startSession(ctx context.Context, w http.ResponseWriter, person string) error {
	secret := randomText(secretBytes)
	now := a.now()
	if err := a.store.CreateSession(ctx, store.Session{Hash: hashOf(secret), Person: person,
		Created: now.UTC().Truncate(time.Millisecond), Expires: now.Add(a.lifetime).UTC().Truncate(time.Millisecond)}); err != nil {
		return fmt.Errorf("auth: start session: %w", err)
	}
	http.SetCookie(w, a.cookie(SessionCookie, "/", secret, a.lifetime))
	// Sign-ins are rare and the delete uses the expiry index: pruning here
	// keeps the table to the sessions in use without a timer of its own.
	if _, err := a.store.DeleteExpiredSessions(ctx, now); err != nil {
		a.log.WarnContext(ctx, "prune expired sessions", "err", err)
	}
	return nil
}

// SignOut ends r's session, on every replica, and clears its cookie.
func (a *Auth) SignOut(w http.ResponseWriter, r *http.Request) error {
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		if err := a.store.DeleteSession(r.Context(), hashOf(c.Value)); err != nil {
			return fmt.Errorf("auth: sign out: %w", err)
		}
	}
	http.SetCookie(w, a.cookie(SessionCookie, "/", "", -1))
	return nil
}

// cookie is a cookie of this service: never readable by scripts, Secure
// under https, and sent on top-level navigations from other sites (the
// provider's redirect back) but not on their sub-requests or POSTs.
// A negative maxAge deletes it.
func (a *Auth) cookie(name, path, value string, maxAge time.Duration) *http.Cookie {
	c := &http.Cookie{Name: name, Value: value, Path: path, HttpOnly: true, Secure: a.secure, SameSite: http.SameSiteLaxMode}
	if maxAge < 0 {
		c.MaxAge = -1
	} else {
		c.MaxAge = int(maxAge / time.Second)
	}
	return c
}

// LocalPath is ret if it is a path on this site, else "/": the return
// address after sign-in is never another site, whatever a link says
// (absolute URLs, scheme-relative //host, backslashes browsers read as
// slashes, and control characters are all refused).
func LocalPath(ret string) string {
	if ret == "" || !strings.HasPrefix(ret, "/") || strings.HasPrefix(ret, "//") ||
		strings.ContainsAny(ret, "\\\r\n\t") {
		return "/"
	}
	u, err := url.Parse(ret)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, "/") {
		return "/"
	}
	for _, c := range ret {
		if c < 0x20 || c == 0x7f {
			return "/"
		}
	}
	return ret
}
