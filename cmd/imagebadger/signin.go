package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"strings"

	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/netguard"
	"github.com/imagebadger/imagebadger/store"
)

// SignIn is the sign-in part of Config: docs/API.md's --oidc-* and
// --auth-proxy-* flags, and --badge-token-key.
type SignIn struct {
	OIDCIssuer, OIDCClientID, OIDCClientSecret, OIDCAllowed string
	AuthProxyHeader, AuthProxyTrusted                       string
	// BadgeTokenKey derives badge tokens; by default they derive from the
	// OpenID client secret.
	BadgeTokenKey string
}

// registerSignIn adds the sign-in flags of a serving process to fs.
func (c *Config) registerSignIn(fs *flag.FlagSet) {
	fs.StringVar(&c.SignIn.OIDCIssuer, "oidc-issuer", c.SignIn.OIDCIssuer, "OpenID Connect issuer URL to sign people in with; empty turns OpenID sign-in off")
	fs.StringVar(&c.SignIn.OIDCClientID, "oidc-client-id", c.SignIn.OIDCClientID, "this service's client id at the OpenID provider (its redirect URI is the base URL + /signin/callback)")
	fs.StringVar(&c.SignIn.OIDCClientSecret, "oidc-client-secret", c.SignIn.OIDCClientSecret, "this service's client secret at the OpenID provider")
	fs.StringVar(&c.SignIn.OIDCAllowed, "oidc-allowed", c.SignIn.OIDCAllowed, "comma-separated e-mail addresses, @domains and group:names who may sign in")
	fs.StringVar(&c.SignIn.AuthProxyHeader, "auth-proxy-header", c.SignIn.AuthProxyHeader, "header an authenticating proxy sets to the signed-in person (e.g. X-Forwarded-Email)")
	fs.StringVar(&c.SignIn.AuthProxyTrusted, "auth-proxy-trusted", c.SignIn.AuthProxyTrusted, "comma-separated CIDRs the proxy's header is believed from; from any other address it is ignored")
	fs.StringVar(&c.SignIn.BadgeTokenKey, "badge-token-key", c.SignIn.BadgeTokenKey, "secret the badge tokens of private repositories are derived from (default: derived from --oidc-client-secret); the same on every replica")
}

// badgeKeyLabel separates the badge key derived from the OpenID client
// secret from any other use of that secret.
const badgeKeyLabel = "imagebadger badge tokens"

// newAuth builds sign-in from cfg, or nil when none is configured. The
// OpenID provider is dialled through netguard with the registries' policy
// (--allow-private-registries opens a provider on the operator's own
// network), as every outbound dial is.
func newAuth(cfg *Config, st *store.Store, log *slog.Logger) (*auth.Auth, error) {
	si := cfg.SignIn
	if si.OIDCIssuer == "" && si.AuthProxyHeader == "" && si.AuthProxyTrusted == "" {
		if si.OIDCClientID != "" || si.OIDCClientSecret != "" || si.OIDCAllowed != "" {
			return nil, usageError{"--oidc-client-id, --oidc-client-secret and --oidc-allowed need --oidc-issuer"}
		}
		return nil, nil
	}
	opts := auth.Options{Store: st, BaseURL: cfg.BaseURL, Logger: log}
	if si.OIDCIssuer != "" {
		u, err := url.Parse(si.OIDCIssuer)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, usageError{fmt.Sprintf("--oidc-issuer %q is not an http or https URL", si.OIDCIssuer)}
		}
		if si.OIDCClientID == "" || si.OIDCClientSecret == "" {
			return nil, usageError{"--oidc-issuer needs --oidc-client-id and --oidc-client-secret"}
		}
		if len(list(si.OIDCAllowed)) == 0 {
			return nil, usageError{"--oidc-issuer needs --oidc-allowed: the e-mail addresses, @domains or group:names who may sign in"}
		}
		opts.OIDC = auth.OIDCOptions{Issuer: si.OIDCIssuer, ClientID: si.OIDCClientID, ClientSecret: si.OIDCClientSecret,
			Allowed: list(si.OIDCAllowed), Transport: netguard.New(cfg.AllowPrivateRegistries).Transport()}
	}
	if (si.AuthProxyHeader == "") != (si.AuthProxyTrusted == "") {
		return nil, usageError{"--auth-proxy-header and --auth-proxy-trusted go together: the header is believed only from the trusted networks"}
	}
	if si.AuthProxyHeader != "" {
		if strings.ContainsAny(si.AuthProxyHeader, " :\t") {
			return nil, usageError{fmt.Sprintf("--auth-proxy-header %q is not a header name", si.AuthProxyHeader)}
		}
		opts.ProxyHeader = si.AuthProxyHeader
		for _, c := range list(si.AuthProxyTrusted) {
			p, err := netip.ParsePrefix(c)
			if err != nil {
				return nil, usageError{fmt.Sprintf("--auth-proxy-trusted: %q is not a CIDR (e.g. 10.0.0.0/8 or 127.0.0.1/32)", c)}
			}
			opts.ProxyTrusted = append(opts.ProxyTrusted, p.Masked())
		}
	}
	switch {
	case si.BadgeTokenKey != "":
		opts.BadgeKey = []byte(si.BadgeTokenKey)
	case si.OIDCClientSecret != "":
		m := hmac.New(sha256.New, []byte(si.OIDCClientSecret))
		m.Write([]byte(badgeKeyLabel))
		opts.BadgeKey = m.Sum(nil)
	default:
		return nil, usageError{"sign-in through the proxy header needs --badge-token-key (a secret, the same on every replica) for the badge tokens of private repositories"}
	}
	a, err := auth.New(opts)
	if err != nil {
		return nil, usageError{err.Error()}
	}
	return a, nil
}
