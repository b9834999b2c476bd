// Package oidcprovider is the OpenID Connect provider of the test suite: a
// real provider on loopback (github.com/oauth2-proxy/mockoidc) speaking the
// protocol over HTTP: discovery, the authorization endpoint, the token
// endpoint that checks the PKCE verifier against the challenge, and ID
// tokens signed with an RSA key published at its JWKS endpoint. Sign-in
// tests go through it as a browser would, not through a stubbed verifier.
//
// With a login page, a GET of the authorization endpoint shows a form
// asking for an e-mail address, as a real provider's login does; posting
// it signs that person in and redirects back. Without one, the next
// person queued with SignInAs is signed in at once.
package oidcprovider

import (
	"html/template"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/oauth2-proxy/mockoidc"
)

// Options configures a provider.
type Options struct {
	// LoginPage shows a login form at the authorization endpoint.
	LoginPage bool
}

// Provider is a running provider.
type Provider struct {
	m *mockoidc.MockOIDC

	mu         sync.Mutex
	authorizes []url.Values
	tokens     []url.Values
	groups     map[string][]string
}

// Start runs a provider on 127.0.0.1 until the test ends.
func Start(t testing.TB, opts Options) *Provider {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &Provider{m: m, groups: map[string][]string{}}
	if err := m.AddMiddleware(p.record); err != nil {
		t.Fatal(err)
	}
	if opts.LoginPage {
		if err := m.AddMiddleware(p.loginPage); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	return p
}

// Issuer is the provider's issuer URL, what --oidc-issuer names.
func (p *Provider) Issuer() string { return p.m.Issuer() }

// ClientID and ClientSecret are the credentials of the one client the
// provider knows.
func (p *Provider) ClientID() string { return p.m.ClientID }

// ClientSecret is the client's secret.
func (p *Provider) ClientSecret() string { return p.m.ClientSecret }

// SignInAs makes the next authorization sign in email, a member of groups.
func (p *Provider) SignInAs(email string, groups ...string) {
	p.m.QueueUser(user(email, groups))
}

// SetGroups sets the groups a person signing in on the login page is in.
func (p *Provider) SetGroups(email string, groups ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.groups[email] = groups
}

func user(email string, groups []string) *mockoidc.MockUser {
	return &mockoidc.MockUser{Subject: "sub-" + email, Email: email, EmailVerified: true,
		PreferredUsername: strings.Split(email, "@")[0], Groups: groups}
}

// AuthorizeRequests are the parameters of every request to the
// authorization endpoint so far.
func (p *Provider) AuthorizeRequests() []url.Values {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]url.Values(nil), p.authorizes...)
}

// TokenRequests are the form parameters of every request to the token
// endpoint so far (the client secret left out).
func (p *Provider) TokenRequests() []url.Values {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]url.Values(nil), p.tokens...)
}

// record notes the parameters of authorization and token requests.
func (p *Provider) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case mockoidc.AuthorizationEndpoint:
			if err := r.ParseForm(); err == nil {
				p.mu.Lock()
				p.authorizes = append(p.authorizes, cloneValues(r.Form))
				p.mu.Unlock()
			}
		case mockoidc.TokenEndpoint:
			if err := r.ParseForm(); err == nil {
				f := url.Values{}
				for k, v := range r.PostForm {
					if k != "client_secret" {
						f[k] = v
					}
				}
				p.mu.Lock()
				p.tokens = append(p.tokens, f)
				p.mu.Unlock()
			}
		}
		next.ServeHTTP(w, r)
	})
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

var loginForm = template.Must(template.New("login").Parse(`<!doctype html>
<html><head><title>Test provider: sign in</title></head><body>
<h1>Sign in to the test provider</h1>
<form method="post" action="{{.Action}}">
{{range $k, $vs := .Params}}{{range $vs}}<input type="hidden" name="{{$k}}" value="{{.}}">{{end}}{{end}}
<label>E-mail <input type="email" name="login_email" id="login_email" data-testid="login-email"></label>
<button type="submit" id="login_submit" data-testid="login-submit">Sign in</button>
</form></body></html>`))

// loginPage shows the login form on a GET of the authorization endpoint
// and signs the posted e-mail address in on its POST.
func (p *Provider) loginPage(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != mockoidc.AuthorizationEndpoint {
			next.ServeHTTP(w, r)
			return
		}
		if r.Method == http.MethodGet {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			loginForm.Execute(w, map[string]any{"Action": mockoidc.AuthorizationEndpoint, "Params": r.URL.Query()})
			return
		}
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		email := r.PostForm.Get("login_email")
		p.mu.Lock()
		groups := p.groups[email]
		p.mu.Unlock()
		p.m.QueueUser(user(email, groups))
		next.ServeHTTP(w, r)
	})
}
