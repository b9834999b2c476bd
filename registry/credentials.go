package registry

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"golang.org/x/net/publicsuffix"
)

// realmGuard keeps credentials where they belong. go-containerregistry sends
// a registry's credentials to whatever token realm the registry's
// WWW-Authenticate challenge names, as docker does; that is right for the
// registry's own token service (ghcr.io/token, auth.docker.io for
// registry-1.docker.io, gitlab.com for registry.gitlab.com), but a registry
// must not be able to hand a credential meant for it to a host of another
// site. So a request going to another site than the registry's carries only
// the credentials the Docker config holds for that host itself, or none.
//
// It sits below go-containerregistry's authentication transports (so it sees
// the headers they set) and above the limiter and the network policy.
type realmGuard struct {
	next     http.RoundTripper
	keychain authn.Keychain
}

// maxTokenForm bounds the OAuth2 form body that is read to check it.
const maxTokenForm = 64 << 10

func (g *realmGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	info, ok := requestOf(req.Context())
	if !ok || sameSite(req.URL.Host, info.host) {
		return g.next.RoundTrip(req)
	}
	own, err := g.credentialsFor(req.Context(), req.URL.Host)
	if err != nil {
		return nil, err
	}
	out := req.Clone(req.Context())
	if auth := out.Header.Get("Authorization"); auth != "" {
		out.Header.Del("Authorization")
		if strings.HasPrefix(strings.ToLower(auth), "basic ") && own.Username != "" && own.Password != "" {
			out.SetBasicAuth(own.Username, own.Password)
		}
	}
	if req.Method == http.MethodPost && req.Body != nil && strings.HasPrefix(req.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		// OAuth2's form: grant_type=refresh_token or password, with the
		// secret in the body.
		body, err := io.ReadAll(io.LimitReader(req.Body, maxTokenForm))
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, fmt.Errorf("registry: token request form: %w", err)
		}
		if form.Has("refresh_token") || form.Has("password") {
			if own.IdentityToken == "" {
				return nil, &foreignRealmError{registry: info.registry, realm: req.URL.Host}
			}
			form.Del("password")
			form.Del("username")
			form.Set("grant_type", "refresh_token")
			form.Set("refresh_token", own.IdentityToken)
			body = []byte(form.Encode())
		}
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.ContentLength = int64(len(body))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	return g.next.RoundTrip(out)
}

// credentialsFor returns what the Docker config holds for host itself
// (empty when nothing).
func (g *realmGuard) credentialsFor(ctx context.Context, host string) (*authn.AuthConfig, error) {
	reg, err := name.NewRegistry(host, name.WeakValidation)
	if err != nil {
		return &authn.AuthConfig{}, nil
	}
	a, err := authn.Resolve(ctx, g.keychain, reg)
	if err != nil {
		return nil, fmt.Errorf("registry: credentials for %s: %w", host, err)
	}
	if a == authn.Anonymous {
		return &authn.AuthConfig{}, nil
	}
	return authn.Authorization(ctx, a)
}

// foreignRealmError refuses to send a registry's OAuth2 secret to a token
// service of another site for which the Docker config holds nothing.
type foreignRealmError struct{ registry, realm string }

func (e *foreignRealmError) Error() string {
	return fmt.Sprintf("registry %s names a token service on another site (%s) that the Docker config holds no credentials for", e.registry, e.realm)
}

// sameSite reports whether two hosts (host[:port]) belong to one site: the
// same host name, whatever the ports, or the same registrable domain
// (auth.docker.io and registry-1.docker.io). IP addresses and single-label
// names (localhost) are their own site.
func sameSite(a, b string) bool {
	a, b = hostname(a), hostname(b)
	if a == b {
		return true
	}
	if isIPOrLabel(a) || isIPOrLabel(b) {
		return false
	}
	sa, err1 := publicsuffix.EffectiveTLDPlusOne(a)
	sb, err2 := publicsuffix.EffectiveTLDPlusOne(b)
	return err1 == nil && err2 == nil && sa == sb
}

func hostname(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	return strings.ToLower(strings.Trim(h, "[]."))
}

func isIPOrLabel(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	return !strings.Contains(h, ".")
}
