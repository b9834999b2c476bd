package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/internal/testing/oidcprovider"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/netguard"
	"github.com/imagebadger/imagebadger/ratelimit"
	"github.com/imagebadger/imagebadger/server"
)

// signInStack is a service with OpenID sign-in through a provider on
// loopback that lets ada@example.com and @corp.example in.
func signInStack(t *testing.T, engine, db string, mutate func(*auth.Options)) (*stack.Stack, *oidcprovider.Provider) {
	t.Helper()
	p := oidcprovider.Start(t, oidcprovider.Options{})
	ao := &auth.Options{
		OIDC: auth.OIDCOptions{Issuer: p.Issuer(), ClientID: p.ClientID(), ClientSecret: p.ClientSecret(),
			Allowed: []string{"ada@example.com", "@corp.example"}, Transport: netguard.New(true).Transport()},
		BadgeKey: []byte("badge key of the test"),
	}
	if mutate != nil {
		mutate(ao)
	}
	st := stack.New(t, stack.Options{Engine: engine, DB: db, Registry: true, Server: &server.Options{}, Auth: ao})
	return st, p
}

// browserClient keeps cookies and follows redirects, as a browser does.
func browserClient(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 10 * time.Second}
}

// signIn signs email in through the provider in c and returns the page
// it lands on.
func signIn(t *testing.T, st *stack.Stack, p *oidcprovider.Provider, c *http.Client, email, ret string) (int, string, *url.URL) {
	t.Helper()
	p.SignInAs(email)
	resp, err := c.Get(st.URL + "/signin?return=" + url.QueryEscape(ret))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b), resp.Request.URL
}

// call sends method to path with an optional bearer token and JSON body and
// decodes the JSON answer into out (when given).
func call(t *testing.T, c *http.Client, method, u, token string, body any, out any) (int, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, u, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode, resp.Header
}

type apiErr struct {
	Error struct{ Code, Message string } `json:"error"`
}

// TestSignInFlowThroughTheServer: /signin sends the browser to the
// provider, the callback brings it back signed in to the path it asked
// for, the tokens page knows the person, a foreign return address lands
// home, and someone --oidc-allowed does not name is 403 with no session.
func TestSignInFlowThroughTheServer(t *testing.T) {
	st, p := signInStack(t, stack.SQLite, "", nil)
	c := browserClient(t)
	code, _, at := signIn(t, st, p, c, "ada@example.com", "/settings/tokens")
	if code != 200 || at.Path != "/settings/tokens" {
		t.Fatalf("landed on %v with %d, want /settings/tokens 200", at, code)
	}
	resp, err := c.Get(st.URL + "/settings/tokens")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := goquery.NewDocumentFromReader(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got := doc.Find(`[data-testid="person"]`).Text(); got != "ada@example.com" {
		t.Errorf("tokens page names %q, want ada@example.com", got)
	}
	az := p.AuthorizeRequests()
	if len(az) == 0 || az[0].Get("code_challenge_method") != "S256" || az[0].Get("redirect_uri") != st.URL+auth.CallbackPath {
		t.Errorf("authorization request %v, want an S256 challenge and the callback of this service", az)
	}

	_, _, at = signIn(t, st, p, browserClient(t), "ada@example.com", "https://evil.example/")
	if at.Host != strings.TrimPrefix(st.URL, "http://") || at.Path != "/" {
		t.Errorf("a foreign return address landed on %v, want this site's home", at)
	}

	mallory := browserClient(t)
	code, body, _ := signIn(t, st, p, mallory, "mallory@evil.example", "/")
	if code != http.StatusForbidden || !strings.Contains(body, "mallory@evil.example may not sign in here") {
		t.Errorf("a person not allowed: %d, want 403 naming them", code)
	}
	var e apiErr
	if code, _ := call(t, mallory, "GET", st.URL+"/api/v1/tokens", "", nil, &e); code != http.StatusUnauthorized || e.Error.Code != "unauthorized" {
		t.Errorf("after a refused sign-in the token list answers %d %+v, want 401 unauthorized", code, e)
	}
}

// TestSignOutIsAPostFromThisSite: a cross-site POST to /signout is refused
// (a page elsewhere cannot sign a person out), the site's own signs out.
func TestSignOutIsAPostFromThisSite(t *testing.T) {
	st, p := signInStack(t, stack.SQLite, "", nil)
	c := browserClient(t)
	signIn(t, st, p, c, "ada@example.com", "/")
	req, _ := http.NewRequest("POST", st.URL+"/signout", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site sign-out: %d, want 403", resp.StatusCode)
	}
	if code, _ := call(t, c, "GET", st.URL+"/api/v1/tokens", "", nil, nil); code != 200 {
		t.Fatalf("still signed in after the refused sign-out? %d", code)
	}
	if code, _ := call(t, c, "GET", st.URL+"/signout", "", nil, nil); code != http.StatusMethodNotAllowed && code != http.StatusNotFound {
		t.Errorf("GET /signout: %d, want it refused", code)
	}
	req, _ = http.NewRequest("POST", st.URL+"/signout", nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code, _ := call(t, c, "GET", st.URL+"/api/v1/tokens", "", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("after signing out the token list answers %d, want 401", code)
	}
}

type tokenOut struct {
	ID, Token, Name, Scope string
	ExpiresAt              *time.Time
	RevokedAt              *time.Time
}

// TestAPITokensThroughTheServer: a signed-in person makes, lists and
// revokes tokens; the token reads API routes as itself and no person; a
// token cannot make tokens (403), nobody is 401, a read token cannot make
// a new badge token (403) where a write token can; wrong, revoked and
// expired tokens are 401 on every API route; a wrong token's 401s run out
// into 429.
func TestAPITokensThroughTheServer(t *testing.T) {
	now := time.Now()
	st, p := signInStack(t, stack.SQLite, "", func(o *auth.Options) {
		o.Now = func() time.Time { return now }
	})
	c := browserClient(t)
	signIn(t, st, p, c, "ada@example.com", "/")
	var rd, wr, short tokenOut
	if code, h := call(t, c, "POST", st.URL+"/api/v1/tokens", "", map[string]any{"name": "ci", "scope": "read"}, &rd); code != 201 || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("create: %d %v", code, h)
	}
	call(t, c, "POST", st.URL+"/api/v1/tokens", "", map[string]any{"name": "deploy", "scope": "write"}, &wr)
	exp := now.Add(time.Hour).UTC().Truncate(time.Second)
	call(t, c, "POST", st.URL+"/api/v1/tokens", "", map[string]any{"name": "short", "scope": "read", "expiresAt": exp}, &short)
	if !strings.HasPrefix(rd.Token, "ib_"+rd.ID+"_") || rd.Scope != "read" || wr.Scope != "write" || short.ExpiresAt == nil || !short.ExpiresAt.Equal(exp) {
		t.Fatalf("made %+v, %+v, %+v", rd, wr, short)
	}
	var e apiErr
	for _, bad := range []map[string]any{{"name": "x", "scope": "admin"}, {"scope": "read"}, {"name": "x", "scope": "read", "extra": 1},
		{"name": "x", "scope": "read", "expiresAt": now.Add(-time.Hour)}} {
		if code, _ := call(t, c, "POST", st.URL+"/api/v1/tokens", "", bad, &e); code != 400 || e.Error.Code != "invalid_request" {
			t.Errorf("create %v: %d %+v, want 400 invalid_request", bad, code, e)
		}
	}
	var list struct{ Tokens []tokenOut }
	if code, _ := call(t, c, "GET", st.URL+"/api/v1/tokens", "", nil, &list); code != 200 || len(list.Tokens) != 3 {
		t.Fatalf("list: %d %+v", code, list)
	}
	for _, tk := range list.Tokens {
		if tk.Token != "" {
			t.Errorf("the list shows a secret: %+v", tk)
		}
	}
	anon := &http.Client{Timeout: 10 * time.Second}
	// A token reads an API route; it is no person.
	if code, _ := call(t, anon, "GET", st.URL+"/api/v1/search?q=acme", rd.Token, nil, nil); code != 200 {
		t.Errorf("search with a read token: %d", code)
	}
	if code, _ := call(t, anon, "POST", st.URL+"/api/v1/tokens", wr.Token, map[string]any{"name": "x", "scope": "read"}, &e); code != 403 || e.Error.Code != "forbidden" {
		t.Errorf("a token making a token: %d %+v, want 403 forbidden", code, e)
	}
	if code, _ := call(t, anon, "GET", st.URL+"/api/v1/tokens", "", nil, &e); code != 401 || e.Error.Code != "unauthorized" {
		t.Errorf("the token list without credentials: %d %+v, want 401", code, e)
	}
	// Badge tokens: read reads, only write (or a person) makes a new one.
	repo := st.Registry.Host + "/acme/app"
	var b1, b2 struct{ Token string }
	if code, _ := call(t, anon, "GET", st.URL+"/api/v1/repositories/"+repo+"/badge-token", rd.Token, nil, &b1); code != 200 || b1.Token == "" {
		t.Errorf("badge token with a read token: %d %+v", code, b1)
	}
	if code, _ := call(t, anon, "POST", st.URL+"/api/v1/repositories/"+repo+"/badge-token", rd.Token, nil, &e); code != 403 || e.Error.Code != "forbidden" {
		t.Errorf("a new badge token with a read token: %d %+v, want 403 forbidden", code, e)
	}
	if code, _ := call(t, anon, "POST", st.URL+"/api/v1/repositories/"+repo+"/badge-token", wr.Token, nil, &b2); code != 200 || b2.Token == "" || b2.Token == b1.Token {
		t.Errorf("a new badge token with a write token: %d %+v (old %q)", code, b2, b1.Token)
	}
	if code, _ := call(t, anon, "GET", st.URL+"/api/v1/repositories/"+repo+"/badge-token", "", nil, &e); code != 401 {
		t.Errorf("badge token without credentials: %d, want 401", code)
	}
	// Revoked and expired tokens are 401 on every kind of API route.
	if code, _ := call(t, c, "DELETE", st.URL+"/api/v1/tokens/"+rd.ID, "", nil, nil); code != 204 {
		t.Fatalf("revoke: %d", code)
	}
	if code, _ := call(t, c, "DELETE", st.URL+"/api/v1/tokens/nope", "", nil, &e); code != 404 {
		t.Errorf("revoking an unknown token: %d, want 404", code)
	}
	now = now.Add(2 * time.Hour)
	for _, u := range []string{"/api/v1/search?q=acme", "/api/v1/images/" + repo + ":1", "/v1/images/" + repo + ":1",
		"/api/v1/shields/version/" + repo + ":1", "/api/v1/repositories/" + repo + "/tags"} {
		for name, tok := range map[string]string{"revoked": rd.Token, "expired": short.Token, "wrong": "ib_0123456789abcdef_" + strings.Repeat("x", 43)} {
			if code, _ := call(t, anon, "GET", st.URL+u, tok, nil, &e); code != 401 || e.Error.Code != "unauthorized" {
				t.Errorf("%s token on %s: %d %+v, want 401 unauthorized", name, u, code, e)
			}
		}
	}
	if code, _ := call(t, anon, "GET", st.URL+"/api/v1/search?q=acme", wr.Token, nil, nil); code != 200 {
		t.Errorf("the write token after the others failed: %d", code)
	}
}

// TestWrongAPITokensAreRateLimited: a client trying wrong tokens is
// answered 429 once its failures are used up, as on the hooks, and then
// even its right token waits (the limit is not an oracle).
func TestWrongAPITokensAreRateLimited(t *testing.T) {
	p := oidcprovider.Start(t, oidcprovider.Options{})
	ao := &auth.Options{OIDC: auth.OIDCOptions{Issuer: p.Issuer(), ClientID: p.ClientID(), ClientSecret: p.ClientSecret(),
		Allowed: []string{"ada@example.com"}, Transport: netguard.New(true).Transport()}}
	st := stack.New(t, stack.Options{Server: &server.Options{TokenFailures: ratelimit.Limit{Burst: 3, Period: time.Hour}}, Auth: ao})
	c := browserClient(t)
	signIn(t, st, p, c, "ada@example.com", "/")
	var good tokenOut
	call(t, c, "POST", st.URL+"/api/v1/tokens", "", map[string]any{"name": "ci", "scope": "read"}, &good)
	anon := &http.Client{Timeout: 10 * time.Second}
	for i := range 3 {
		if code, _ := call(t, anon, "GET", st.URL+"/api/v1/search?q=acme", fmt.Sprintf("ib_%016d_guess", i), nil, nil); code != 401 {
			t.Fatalf("guess %d: %d, want 401", i, code)
		}
	}
	var e apiErr
	code, h := call(t, anon, "GET", st.URL+"/api/v1/search?q=acme", "ib_0000000000000009_guess", nil, &e)
	if code != 429 || e.Error.Code != "rate_limited" || h.Get("Retry-After") == "" {
		t.Errorf("the 4th guess: %d %+v, want 429 with Retry-After", code, e)
	}
	if code, _ := call(t, anon, "GET", st.URL+"/api/v1/search?q=acme", good.Token, nil, nil); code != 429 {
		t.Errorf("a right token from the same address after the guesses: %d, want 429", code)
	}
}

// TestTokensPage: the page makes a token and shows it once, lists it, and
// revokes it; without a session it sends the browser to sign in.
func TestTokensPage(t *testing.T) {
	st, p := signInStack(t, stack.SQLite, "", nil)
	c := browserClient(t)
	signIn(t, st, p, c, "ada@example.com", "/")
	resp, err := c.PostForm(st.URL+"/settings/tokens", url.Values{"name": {"laptop"}, "scope": {"write"}})
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := goquery.NewDocumentFromReader(resp.Body)
	resp.Body.Close()
	shown := doc.Find(`[data-testid="new-token-value"]`).Text()
	if resp.StatusCode != http.StatusCreated || !strings.HasPrefix(shown, "ib_") {
		t.Fatalf("made on the page: %d, shown %q", resp.StatusCode, shown)
	}
	if code, _ := call(t, &http.Client{}, "GET", st.URL+"/api/v1/search?q=acme", shown, nil, nil); code != 200 {
		t.Errorf("the token shown on the page does not work: %d", code)
	}
	resp, _ = c.Get(st.URL + "/settings/tokens")
	doc, _ = goquery.NewDocumentFromReader(resp.Body)
	resp.Body.Close()
	if doc.Find(`[data-testid="new-token-value"]`).Length() != 0 || strings.Contains(doc.Text(), shown) {
		t.Error("the token is shown again on a later view")
	}
	id := strings.Split(shown, "_")[1]
	if got := doc.Find(`[data-testid="token-` + id + `"] [data-testid="token-status"]`).Text(); got != "active" {
		t.Errorf("listed as %q, want active", got)
	}
	resp, err = c.PostForm(st.URL+"/settings/tokens/"+id+"/revoke", nil)
	if err != nil {
		t.Fatal(err)
	}
	doc, _ = goquery.NewDocumentFromReader(resp.Body)
	resp.Body.Close()
	if got := doc.Find(`[data-testid="token-` + id + `"] [data-testid="token-status"]`).Text(); got != "revoked" {
		t.Errorf("after revoking listed as %q", got)
	}
	if code, _ := call(t, &http.Client{}, "GET", st.URL+"/api/v1/search?q=acme", shown, nil, nil); code != 401 {
		t.Errorf("the revoked token: %d, want 401", code)
	}
	// Without a session: to sign-in, and back here afterwards.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noFollow.Get(st.URL + "/settings/tokens")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/signin?return=/settings/tokens" {
		t.Errorf("anonymous tokens page: %d to %q", resp.StatusCode, loc)
	}
}

// TestNoSecretInTheDatabase: after a sign-in, a token and a badge token, a
// dump of the database (pg_dump; SQLite's file and log, byte for byte)
// holds none of the secrets the browser and scripts were given.
func TestNoSecretInTheDatabase(t *testing.T) {
	stack.EachEngine(t, func(t *testing.T, engine string) {
		db := stack.NewDatabase(t, engine)
		st, p := signInStack(t, engine, db, nil)
		c := browserClient(t)
		signIn(t, st, p, c, "ada@example.com", "/")
		var tok tokenOut
		call(t, c, "POST", st.URL+"/api/v1/tokens", "", map[string]any{"name": "ci", "scope": "write"}, &tok)
		var bt struct{ Token string }
		call(t, c, "GET", st.URL+"/api/v1/repositories/"+st.Registry.Host+"/acme/app/badge-token", "", nil, &bt)
		u, _ := url.Parse(st.URL)
		var session string
		for _, ck := range c.Jar.Cookies(u) {
			if ck.Name == auth.SessionCookie {
				session = ck.Value
			}
		}
		if session == "" || tok.Token == "" || bt.Token == "" {
			t.Fatalf("secrets: session %q, token %q, badge %q", session, tok.Token, bt.Token)
		}
		dump := stack.Dump(t, db)
		if !bytes.Contains(dump, []byte(tok.ID)) || !bytes.Contains(dump, []byte("ada@example.com")) {
			t.Fatalf("the dump (%d bytes) lacks the token's id or the person: not a dump of this database", len(dump))
		}
		for name, secret := range map[string]string{"session": session, "API token": tok.Token,
			"API token's secret part": tok.Token[len("ib_")+17:], "badge token": bt.Token, "badge token's secret part": strings.TrimPrefix(bt.Token, "ibb_")} {
			if bytes.Contains(dump, []byte(secret)) {
				t.Errorf("the dump holds the %s in clear", name)
			}
		}
	})
}

// withCookie asks like ask, as the holder of session (and bearer token,
// when given).
func withCookie(t *testing.T, method, u string, session *http.Cookie, token string) answer {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if session != nil {
		req.AddCookie(session)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return answer{resp.StatusCode, resp.Header.Get("Content-Type"), string(b)}
}

// TestPrivateImagesForSignedInPeople: under the default policy a private
// image that anonymous visitors are answered as missing is shown to a
// signed-in person (pages, API, search) and to token holders; the image
// page gives signed-in people the badge token in its snippets; that token
// opens the repository's badges and shields endpoint and not another
// private repository's; a read token reads but may not refresh (403
// forbidden), a write token refreshes and subscribes.
func TestPrivateImagesForSignedInPeople(t *testing.T) {
	reg := faultreg.Start(t)
	pushRandom(t, reg.Host+"/private/app:1")
	pushRandom(t, reg.Host+"/private/other:1")
	for _, p := range []string{"/private/", "/nothere/"} {
		reg.Add(faultreg.Rule{Fault: faultreg.RequireBasicAuth, PathContains: p, Username: "reader", Password: "s3cret"})
	}
	creds := credentials{reg.Host: {Username: "reader", Password: "s3cret"}}
	p := oidcprovider.Start(t, oidcprovider.Options{})
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(receiver.Close)
	st := stack.New(t, stack.Options{Keychain: creds, Notify: true, AllowPrivateWebhooks: true, Server: &server.Options{},
		Auth: &auth.Options{OIDC: auth.OIDCOptions{Issuer: p.Issuer(), ClientID: p.ClientID(), ClientSecret: p.ClientSecret(),
			Allowed: []string{"ada@example.com"}, Transport: netguard.New(true).Transport()}, BadgeKey: []byte("k")}})
	h := reg.Host
	app, other := h+"/private/app:1", h+"/private/other:1"
	// An anonymous visitor first: the read learns the repositories are
	// private and answers as for a missing one.
	for _, ref := range []string{app, other} {
		if a := ask(t, "GET", st.URL+"/api/v1/images/"+ref, "", nil); a.status != 404 {
			t.Fatalf("anonymous read of %s: %d %s, want 404", ref, a.status, a.body)
		}
	}
	c := browserClient(t)
	signIn(t, st, p, c, "ada@example.com", "/")
	u, _ := url.Parse(st.URL)
	var session *http.Cookie
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == auth.SessionCookie {
			session = ck
		}
	}
	if a := withCookie(t, "GET", st.URL+"/api/v1/images/"+app, session, ""); a.status != 200 {
		t.Errorf("signed-in read: %d %s", a.status, a.body)
	}
	if a := withCookie(t, "GET", st.URL+"/api/v1/search?q=private", session, ""); !strings.Contains(a.body, "private/app") {
		t.Errorf("signed-in search leaves the private repository out: %s", a.body)
	}
	if a := ask(t, "GET", st.URL+"/api/v1/search?q=private", "", nil); strings.Contains(a.body, "private/app") {
		t.Errorf("anonymous search shows the private repository: %s", a.body)
	}
	page := withCookie(t, "GET", st.URL+"/images/"+app, session, "")
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(page.body))
	if err != nil || page.status != 200 {
		t.Fatalf("signed-in image page: %d %v", page.status, err)
	}
	tok := doc.Find(`[data-testid="badge-token-value"]`).Text()
	md := doc.Find(`[data-testid="badge-version"] [data-testid="snippet-markdown"]`).AttrOr("value", doc.Find(`[data-testid="badge-version"] [data-testid="snippet-markdown"]`).Text())
	if !strings.HasPrefix(tok, "ibb_") || !strings.Contains(md, "?token="+url.QueryEscape(tok)) {
		t.Fatalf("the page's badge token %q, snippet %q: want the token in the snippet", tok, md)
	}
	// The page kept for a signed-in person is never served to anyone else.
	if a := ask(t, "GET", st.URL+"/images/"+app, "", nil); a.status != 404 || strings.Contains(a.body, tok) {
		t.Errorf("the anonymous image page after a signed-in one: %d, token shown: %v", a.status, strings.Contains(a.body, tok))
	}
	// The badge token opens its repository's badge and shields endpoint,
	// and nothing of the other private repository.
	badge := func(ref, token string) answer {
		q := ""
		if token != "" {
			q = "?token=" + url.QueryEscape(token)
		}
		return ask(t, "GET", st.URL+"/badges/version/"+ref+".svg"+q, "", nil)
	}
	shield := func(ref, token string) answer {
		return ask(t, "GET", st.URL+"/api/v1/shields/version/"+ref+"?token="+url.QueryEscape(token), "", nil)
	}
	missing := h + "/nothere/app:1"
	if got, hidden := badge(app, tok), badge(app, ""); got.status != 200 || got.body == hidden.body {
		t.Errorf("badge with its token: %d, same as without: %v", got.status, got.body == hidden.body)
	}
	if got, hidden := shield(app, tok), shield(app, ""); got.status != 200 || got == hidden {
		t.Errorf("shields with the badge token: %d %s, the same as without: %v", got.status, got.body, got == hidden)
	}
	otherAnswer := badge(other, tok)
	otherHidden := badge(other, "")
	if otherAnswer != otherHidden {
		t.Errorf("app's badge token on the other repository: %+v, want the anonymous answer %+v", otherAnswer, otherHidden)
	}
	if got, want := shield(other, tok), shield(other, ""); got != want {
		t.Errorf("app's badge token on the other repository's shields: %+v, want the anonymous answer %+v", got, want)
	}
	if got, want := shield(other, tok), shield(missing, tok); strings.ReplaceAll(got.body, "private/other", "nothere/app") != want.body {
		t.Errorf("app's badge token on the other repository's shields: %s, want the answer for a missing one %s", got.body, want.body)
	}
	// A badge answered to a session may show a private image: no shared
	// cache may keep it. One answered to nobody in particular may be.
	for _, tc := range []struct {
		session *http.Cookie
		want    string
	}{{session, "private, max-age=60"}, {nil, "public, max-age=60"}} {
		req, _ := http.NewRequest("GET", st.URL+"/badges/image/"+app+".svg", nil)
		if tc.session != nil {
			req.AddCookie(tc.session)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Cache-Control"); got != tc.want {
			t.Errorf("badge with session %v: Cache-Control %q, want %q", tc.session != nil, got, tc.want)
		}
	}
	// Tokens: read reads and may not refresh; write refreshes and subscribes.
	var rd, wr tokenOut
	call(t, c, "POST", st.URL+"/api/v1/tokens", "", map[string]any{"name": "r", "scope": "read"}, &rd)
	call(t, c, "POST", st.URL+"/api/v1/tokens", "", map[string]any{"name": "w", "scope": "write"}, &wr)
	anon := &http.Client{Timeout: 10 * time.Second}
	if code, _ := call(t, anon, "GET", st.URL+"/api/v1/images/"+app, rd.Token, nil, nil); code != 200 {
		t.Errorf("read token reading: %d", code)
	}
	var e apiErr
	if code, _ := call(t, anon, "POST", st.URL+"/api/v1/images/"+app+"/refresh", rd.Token, nil, &e); code != 403 || e.Error.Code != "forbidden" {
		t.Errorf("read token refreshing: %d %+v, want 403 forbidden", code, e)
	}
	if code, _ := call(t, anon, "POST", st.URL+"/api/v1/images/"+app+"/refresh", wr.Token, nil, nil); code != 200 {
		t.Errorf("write token refreshing: %d", code)
	}
	sub := map[string]any{"image": app, "url": receiver.URL + "/hook"}
	if code, _ := call(t, anon, "POST", st.URL+"/api/v1/subscriptions", rd.Token, sub, &e); code != 403 || e.Error.Code != "forbidden" {
		t.Errorf("read token subscribing: %d %+v, want 403 forbidden", code, e)
	}
	if code, _ := call(t, anon, "POST", st.URL+"/api/v1/subscriptions", wr.Token, sub, nil); code != 201 {
		t.Errorf("write token subscribing: %d, want 201", code)
	}
}

// TestWithoutSignIn: a service with no sign-in configured explains at
// /signin and /settings/tokens how the operator configures it, has no
// tokens to give (401), and refuses any bearer token on an API route
// rather than ignoring it.
func TestWithoutSignIn(t *testing.T) {
	st := stack.New(t, stack.Options{Server: &server.Options{}})
	for _, path := range []string{"/signin", "/settings/tokens"} {
		a := ask(t, "GET", st.URL+path, "", nil)
		doc, err := goquery.NewDocumentFromReader(strings.NewReader(a.body))
		if err != nil || a.status != 200 || doc.Find(`[data-testid="signin-not-configured"]`).Length() != 1 ||
			!strings.Contains(a.body, "--oidc-issuer") || !strings.Contains(a.body, "--private-images=everyone") {
			t.Errorf("%s without sign-in: %d, want the page saying how to configure it", path, a.status)
		}
	}
	var e apiErr
	anon := &http.Client{Timeout: 10 * time.Second}
	if code, _ := call(t, anon, "POST", st.URL+"/api/v1/tokens", "", map[string]any{"name": "x", "scope": "read"}, &e); code != 401 || e.Error.Code != "unauthorized" {
		t.Errorf("making a token without sign-in: %d %+v, want 401", code, e)
	}
	if code, _ := call(t, anon, "GET", st.URL+"/api/v1/search?q=acme", "ib_0123456789abcdef_x", nil, &e); code != 401 || e.Error.Code != "unauthorized" {
		t.Errorf("a bearer token without sign-in: %d %+v, want 401", code, e)
	}
	if code, _ := call(t, anon, "GET", st.URL+"/api/v1/search?q=acme", "", nil, nil); code != 200 {
		t.Errorf("no token without sign-in: %d, want 200", code)
	}
}
