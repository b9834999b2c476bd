package auth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/internal/testing/oidcprovider"
	"github.com/imagebadger/imagebadger/netguard"
	"github.com/imagebadger/imagebadger/store"
)

// site is a minimal service around an Auth: /signin, the callback, and
// /whoami, which answers who the request comes from.
type site struct {
	*httptest.Server
	a *auth.Auth
}

func newSite(t *testing.T, p *oidcprovider.Provider, allowed []string, mutate func(*auth.Options)) *site {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "ib.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := &site{}
	mux := http.NewServeMux()
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	opts := auth.Options{Store: st, BaseURL: s.URL, BadgeKey: []byte("k")}
	if p != nil {
		// Loopback is allowed as the registry tests allow it: the private
		// ranges opened, metadata addresses still refused.
		opts.OIDC = auth.OIDCOptions{Issuer: p.Issuer(), ClientID: p.ClientID(), ClientSecret: p.ClientSecret(),
			Allowed: allowed, Transport: netguard.New(true).Transport()}
	}
	if mutate != nil {
		mutate(&opts)
	}
	a, err := auth.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.a = a
	mux.HandleFunc("/signin", func(w http.ResponseWriter, r *http.Request) {
		to, err := a.BeginSignIn(w, r, r.URL.Query().Get("return"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		http.Redirect(w, r, to, http.StatusFound)
	})
	mux.HandleFunc(auth.CallbackPath, func(w http.ResponseWriter, r *http.Request) {
		to, err := a.FinishSignIn(w, r)
		switch {
		case errors.Is(err, auth.ErrForbidden):
			http.Error(w, err.Error(), http.StatusForbidden)
		case err != nil:
			http.Error(w, err.Error(), http.StatusBadRequest)
		default:
			http.Redirect(w, r, to, http.StatusFound)
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		v, err := a.Viewer(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, "%s|%s|%s", r.URL.Path, v.Person, v.Scope)
	})
	return s
}

func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 10 * time.Second}
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, string(b)
}

// TestCodeFlowWithPKCE signs in through the provider over HTTP as a browser
// would: the provider receives an S256 challenge and, at the token
// endpoint, a verifier it checks against it; the person lands on the path
// they asked for, signed in; the session cookie has the attributes the
// contract names.
func TestCodeFlowWithPKCE(t *testing.T) {
	p := oidcprovider.Start(t, oidcprovider.Options{})
	s := newSite(t, p, []string{"@example.com"}, nil)
	c := browser(t)
	p.SignInAs("ada@example.com")
	code, body := get(t, c, s.URL+"/signin?return="+url.QueryEscape("/images/r.test/acme/app:1?x=1"))
	if code != 200 || body != "/images/r.test/acme/app:1|ada@example.com|" {
		t.Fatalf("after sign-in: %d %q, want the asked path, signed in as ada", code, body)
	}
	az := p.AuthorizeRequests()
	if len(az) != 1 || az[0].Get("code_challenge_method") != "S256" || az[0].Get("code_challenge") == "" ||
		az[0].Get("nonce") == "" || az[0].Get("state") == "" {
		t.Errorf("authorization requests %v, want one with an S256 challenge, a nonce and a state", az)
	}
	tr := p.TokenRequests()
	if len(tr) == 0 {
		t.Error("no token request reached the provider")
	}
	for _, q := range tr {
		if q.Get("code_verifier") == "" {
			t.Errorf("token request %v without a code verifier", q)
		}
	}
	// The cookie as the browser was told it.
	u, _ := url.Parse(s.URL)
	var session *http.Cookie
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == auth.SessionCookie {
			session = ck
		}
	}
	if session == nil {
		t.Fatal("no session cookie in the jar")
	}
	// The jar does not keep attributes; read them from a fresh sign-in's
	// Set-Cookie header.
	p.SignInAs("ada@example.com")
	nc := browser(t)
	nc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Path == "/" || strings.HasPrefix(req.URL.Path, "/images") {
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, err := nc.Get(s.URL + "/signin")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var set *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == auth.SessionCookie {
			set = ck
		}
	}
	if set == nil || !set.HttpOnly || set.SameSite != http.SameSiteLaxMode || set.Secure || set.Path != "/" {
		t.Errorf("session cookie %+v, want HttpOnly, SameSite=Lax, Path=/, not Secure under http", set)
	}
}

// TestSecureCookieUnderHTTPS: with an https base URL the session cookie
// is Secure. The site itself is plain http here, so the cookie is read off
// the callback's answer.
func TestSecureCookieUnderHTTPS(t *testing.T) {
	p := oidcprovider.Start(t, oidcprovider.Options{})
	// The callback is called by hand: the redirect URI need only match
	// between authorize and exchange.
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "ib.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := auth.New(auth.Options{Store: st, BaseURL: "https://badges.example", OIDC: auth.OIDCOptions{
		Issuer: p.Issuer(), ClientID: p.ClientID(), ClientSecret: p.ClientSecret(), Allowed: []string{"ada@example.com"},
		Transport: netguard.New(true).Transport()}})
	if err != nil {
		t.Fatal(err)
	}
	p.SignInAs("ada@example.com")
	w := httptest.NewRecorder()
	to, err := a.BeginSignIn(w, httptest.NewRequest("GET", "https://badges.example/signin", nil), "/")
	if err != nil {
		t.Fatal(err)
	}
	for _, ck := range w.Result().Cookies() {
		if !ck.Secure || !ck.HttpOnly {
			t.Errorf("sign-in cookie %+v under https, want Secure and HttpOnly", ck)
		}
	}
	// Follow the provider's redirect by hand and bring its answer to the
	// callback.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(to)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || back.Path != auth.CallbackPath {
		t.Fatalf("the provider sent the browser to %q", resp.Header.Get("Location"))
	}
	req := httptest.NewRequest("GET", "https://badges.example"+auth.CallbackPath+"?"+back.RawQuery, nil)
	for _, ck := range w.Result().Cookies() {
		req.AddCookie(ck)
	}
	w2 := httptest.NewRecorder()
	if _, err := a.FinishSignIn(w2, req); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ck := range w2.Result().Cookies() {
		if ck.Name == auth.SessionCookie && ck.MaxAge > 0 {
			found = true
			if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode {
				t.Errorf("session cookie %+v under https, want Secure, HttpOnly, SameSite=Lax", ck)
			}
		}
	}
	if !found {
		t.Error("no session cookie set under https")
	}
}

// TestDisallowedPersonIsForbidden: someone the provider signs in but
// --oidc-allowed does not name gets 403 and no session; a group named in
// the list lets its members in.
func TestDisallowedPersonIsForbidden(t *testing.T) {
	p := oidcprovider.Start(t, oidcprovider.Options{})
	s := newSite(t, p, []string{"ada@example.com", "@corp.example", "group:ops"}, nil)
	for _, tc := range []struct {
		email  string
		groups []string
		want   int
	}{
		{"mallory@evil.example", nil, http.StatusForbidden},
		{"ada@example.com.evil.example", nil, http.StatusForbidden},
		{"bob@example.com", nil, http.StatusForbidden},
		{"ada@example.com", nil, http.StatusOK},
		{"carol@corp.example", nil, http.StatusOK},
		{"dan@elsewhere.example", []string{"ops"}, http.StatusOK},
		{"erin@elsewhere.example", []string{"dev"}, http.StatusForbidden},
	} {
		c := browser(t)
		p.SignInAs(tc.email, tc.groups...)
		code, body := get(t, c, s.URL+"/signin?return=/x")
		if code != tc.want {
			t.Errorf("%s %v: %d %q, want %d", tc.email, tc.groups, code, body, tc.want)
			continue
		}
		if code == http.StatusForbidden {
			if _, who := get(t, c, s.URL+"/x"); who != "/x||" {
				t.Errorf("%s was refused yet reads as %q", tc.email, who)
			}
		}
	}
}

// TestForeignReturnAddressIsReplaced: whatever return address a link
// carries, the person lands on a path of this site.
func TestForeignReturnAddressIsReplaced(t *testing.T) {
	p := oidcprovider.Start(t, oidcprovider.Options{})
	s := newSite(t, p, []string{"ada@example.com"}, nil)
	for _, ret := range []string{"https://evil.example/x", "//evil.example/x", "/\\evil.example", "http:/evil.example",
		"javascript:alert(1)", "evil.example", "/%0d%0aSet-Cookie:x=y"} {
		p.SignInAs("ada@example.com")
		c := browser(t)
		var last *url.URL
		c.CheckRedirect = func(req *http.Request, via []*http.Request) error { last = req.URL; return nil }
		code, body := get(t, c, s.URL+"/signin?return="+url.QueryEscape(ret))
		if code != 200 || last == nil || last.Host != strings.TrimPrefix(s.URL, "http://") {
			t.Errorf("return %q: %d %q, ended at %v, want this site", ret, code, body, last)
		}
	}
	for in, want := range map[string]string{"/images/a:1": "/images/a:1", "//x": "/", "https://x/": "/", "/a\\b": "/", "": "/", "/ok?q=1#f": "/ok?q=1#f"} {
		if got := auth.LocalPath(in); got != want {
			t.Errorf("LocalPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCallbackChecksState: a callback whose state is not the one this
// browser was given, or that comes without a sign-in started here, starts
// no session.
func TestCallbackChecksState(t *testing.T) {
	p := oidcprovider.Start(t, oidcprovider.Options{})
	s := newSite(t, p, []string{"ada@example.com"}, nil)
	c := browser(t)
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Path == auth.CallbackPath {
			q := req.URL.Query()
			q.Set("state", "forged")
			req.URL.RawQuery = q.Encode()
		}
		return nil
	}
	p.SignInAs("ada@example.com")
	if code, body := get(t, c, s.URL+"/signin"); code != http.StatusBadRequest {
		t.Errorf("forged state: %d %q, want 400", code, body)
	}
	if code, _ := get(t, browser(t), s.URL+auth.CallbackPath+"?state=x&code=y"); code != http.StatusBadRequest {
		t.Errorf("callback without a sign-in: %d, want 400", code)
	}
}

// TestWrongVerifierIsRefusedByTheProvider: the PKCE verifier is checked
// by the provider itself: a callback whose verifier is not the one whose
// challenge went to the authorization endpoint gets no token and no
// session.
func TestWrongVerifierIsRefusedByTheProvider(t *testing.T) {
	p := oidcprovider.Start(t, oidcprovider.Options{})
	s := newSite(t, p, []string{"ada@example.com"}, nil)
	c := browser(t)
	u, _ := url.Parse(s.URL + auth.CallbackPath)
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Path != auth.CallbackPath {
			return nil
		}
		for _, ck := range c.Jar.Cookies(u) {
			if ck.Name != "ib_signin" {
				continue
			}
			raw, _ := base64.RawURLEncoding.DecodeString(ck.Value)
			var m map[string]string
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatalf("sign-in cookie %q: %v", raw, err)
			}
			m["v"] = strings.Repeat("A", 43)
			b, _ := json.Marshal(m)
			c.Jar.SetCookies(u, []*http.Cookie{{Name: "ib_signin", Value: base64.RawURLEncoding.EncodeToString(b), Path: auth.CallbackPath}})
		}
		return nil
	}
	p.SignInAs("ada@example.com")
	if code, body := get(t, c, s.URL+"/signin"); code != http.StatusBadRequest || !strings.Contains(body, "refused the code") {
		t.Errorf("wrong verifier: %d %q, want 400 with the provider's refusal", code, body)
	}
	if _, who := get(t, c, s.URL+"/x"); who != "/x||" {
		t.Errorf("after a refused exchange the browser reads as %q", who)
	}
}

// TestProxyHeader: the proxy's header is believed from a trusted address
// and ignored from any other.
func TestProxyHeader(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("127.0.0.1/32")}
	s := newSite(t, nil, nil, func(o *auth.Options) { o.ProxyHeader = "X-Forwarded-Email"; o.ProxyTrusted = trusted })
	for _, tc := range []struct {
		remote, want string
	}{
		{"10.1.2.3:5555", "ada@example.com"},
		{"[::ffff:10.1.2.3]:5555", "ada@example.com"},
		{"10.2.0.1:5555", ""},
		{"192.0.2.7:80", ""},
		{"[2001:db8::1]:80", ""},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		r.Header.Set("X-Forwarded-Email", "ada@example.com")
		v, err := s.a.Viewer(r)
		if err != nil || v.Person != tc.want {
			t.Errorf("from %s: %+v %v, want person %q", tc.remote, v, err, tc.want)
		}
	}
	// A name no proxy would send is not believed, even from a trusted
	// address.
	for _, bad := range []string{strings.Repeat("a", 321) + "@example.com", "ada@example.com\x00admin"} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "10.1.2.3:5555"
		r.Header["X-Forwarded-Email"] = []string{bad}
		if v, _ := s.a.Viewer(r); v.Person != "" {
			t.Errorf("header %.20q… believed as %q", bad, v.Person)
		}
	}
	// And over a real connection from 127.0.0.1.
	req, _ := http.NewRequest("GET", s.URL+"/p", nil)
	req.Header.Set("X-Forwarded-Email", "ada@example.com")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "/p|ada@example.com|" {
		t.Errorf("over loopback: %q", b)
	}
}

// TestTokens: a token made for a person reads as its scope and no person;
// wrong, revoked and expired tokens are unauthorized; the secret is never
// what the store keeps.
func TestTokens(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	s := newSite(t, nil, nil, func(o *auth.Options) { o.Now = func() time.Time { return now } })
	ctx := context.Background()
	if _, err := s.a.CreateToken(ctx, "", "x", auth.ScopeRead, time.Time{}); !errors.Is(err, auth.ErrUnauthorized) {
		t.Errorf("a token without a person: %v", err)
	}
	for _, bad := range []struct {
		name  string
		scope auth.Scope
		exp   time.Time
	}{{"", auth.ScopeRead, time.Time{}}, {"x", "admin", time.Time{}}, {"x", auth.ScopeRead, now.Add(-time.Second)}, {strings.Repeat("n", 101), auth.ScopeRead, time.Time{}}} {
		if _, err := s.a.CreateToken(ctx, "ada", bad.name, bad.scope, bad.exp); !errors.Is(err, auth.ErrInvalid) {
			t.Errorf("token %+v: %v, want invalid", bad, err)
		}
	}
	rd, err := s.a.CreateToken(ctx, "ada", "ci", auth.ScopeRead, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	wr, err := s.a.CreateToken(ctx, "ada", "deploy", auth.ScopeWrite, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rd.Token, "ib_") || len(rd.Token) < 3+16+1+43 || rd.Hash == rd.Token || strings.Contains(rd.Hash, rd.Token[20:]) {
		t.Errorf("token %q kept as %q", rd.Token, rd.Hash)
	}
	check := func(tok string, want auth.Viewer, wantErr error) {
		t.Helper()
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		v, err := s.a.Viewer(r)
		if !errors.Is(err, wantErr) || v != want {
			t.Errorf("token %.12s…: %+v %v, want %+v %v", tok, v, err, want, wantErr)
		}
	}
	// A token acts for its maker, but is no person signed in.
	check(rd.Token, auth.Viewer{Scope: auth.ScopeRead, TokenOwner: "ada"}, nil)
	check(wr.Token, auth.Viewer{Scope: auth.ScopeWrite, TokenOwner: "ada"}, nil)
	// The last character changed (to one it is not: base64url has 64).
	last := "A"
	if strings.HasSuffix(rd.Token, last) {
		last = "B"
	}
	check(rd.Token[:len(rd.Token)-1]+last, auth.Viewer{}, auth.ErrUnauthorized)
	check("ib_0000000000000000_x", auth.Viewer{}, auth.ErrUnauthorized)
	check("nonsense", auth.Viewer{}, auth.ErrUnauthorized)
	if err := s.a.RevokeToken(ctx, "bob", rd.ID); err == nil {
		t.Error("bob revoked ada's token")
	}
	if err := s.a.RevokeToken(ctx, "ada", rd.ID); err != nil {
		t.Fatal(err)
	}
	check(rd.Token, auth.Viewer{}, auth.ErrUnauthorized)
	now = now.Add(time.Hour)
	check(wr.Token, auth.Viewer{}, auth.ErrUnauthorized)
	list, err := s.a.Tokens(ctx, "ada")
	if err != nil || len(list) != 2 || list[0].Name != "deploy" || list[1].Revoked.IsZero() {
		t.Errorf("ada's tokens %+v (%v)", list, err)
	}
}

// TestBadgeTokens: a repository's badge token opens that repository and no
// other; regenerating retires the old one.
func TestBadgeTokens(t *testing.T) {
	s := newSite(t, nil, nil, nil)
	ctx := context.Background()
	tok, err := s.a.BadgeToken(ctx, "r.test", "acme/app")
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := s.a.BadgeToken(ctx, "r.test", "acme/app"); again != tok {
		t.Errorf("the token changed between reads: %q then %q", tok, again)
	}
	if v, _ := s.a.BadgeViewer(ctx, "r.test", "acme/app", tok); v != (auth.Viewer{BadgeRepository: "r.test/acme/app"}) {
		t.Errorf("own repository: %+v", v)
	}
	if _, err := s.a.BadgeToken(ctx, "r.test", "acme/other"); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.a.BadgeViewer(ctx, "r.test", "acme/other", tok); v != (auth.Viewer{}) {
		t.Errorf("another repository opened by app's token: %+v", v)
	}
	fresh, err := s.a.NewBadgeToken(ctx, "r.test", "acme/app")
	if err != nil || fresh == tok {
		t.Fatalf("regenerated %q (%v)", fresh, err)
	}
	if v, _ := s.a.BadgeViewer(ctx, "r.test", "acme/app", tok); v != (auth.Viewer{}) {
		t.Errorf("the retired token still opens: %+v", v)
	}
	if v, _ := s.a.BadgeViewer(ctx, "r.test", "acme/app", fresh); v.BadgeRepository != "r.test/acme/app" {
		t.Errorf("the new token does not open: %+v", v)
	}
}

// TestSignOut: signing out ends the session for every holder of the
// cookie, not only this browser's copy.
func TestSignOut(t *testing.T) {
	p := oidcprovider.Start(t, oidcprovider.Options{})
	s := newSite(t, p, []string{"ada@example.com"}, nil)
	c := browser(t)
	p.SignInAs("ada@example.com")
	if _, body := get(t, c, s.URL+"/signin"); body != "/|ada@example.com|" {
		t.Fatalf("signed in as %q", body)
	}
	u, _ := url.Parse(s.URL)
	cookies := c.Jar.Cookies(u)
	r := httptest.NewRequest("POST", "/signout", nil)
	for _, ck := range cookies {
		r.AddCookie(ck)
	}
	if err := s.a.SignOut(httptest.NewRecorder(), r); err != nil {
		t.Fatal(err)
	}
	if _, body := get(t, c, s.URL+"/"); body != "/||" {
		t.Errorf("after signing out the old cookie reads as %q", body)
	}
}

// TestProviderDialledThroughNetguard: the provider is reached through the
// transport given, netguard's: with loopback refused (a deployment that
// does not allow private addresses) a provider on loopback is never
// contacted and sign-in fails, naming the refusal.
func TestProviderDialledThroughNetguard(t *testing.T) {
	p := oidcprovider.Start(t, oidcprovider.Options{})
	s := newSite(t, p, []string{"ada@example.com"}, func(o *auth.Options) {
		o.OIDC.Transport = netguard.New(false).Transport()
	})
	code, body := get(t, browser(t), s.URL+"/signin")
	if code != http.StatusInternalServerError || !strings.Contains(body, "loopback") {
		t.Errorf("sign-in with loopback refused: %d %q, want a failure naming the refused address", code, body)
	}
	if n := len(p.AuthorizeRequests()); n != 0 {
		t.Errorf("the provider saw %d authorization requests", n)
	}
}
