package e2e_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"testing"
	"time"

	"github.com/imagebadger/imagebadger/internal/testing/oidcprovider"
	"github.com/imagebadger/imagebadger/internal/testing/testenv"
)

// oidcArgs are the serve flags of sign-in through provider p, letting
// ada@example.com in.
func oidcArgs(p *oidcprovider.Provider) []string {
	return []string{"--oidc-issuer", p.Issuer(), "--oidc-client-id", p.ClientID(),
		"--oidc-client-secret", p.ClientSecret(), "--oidc-allowed", "ada@example.com"}
}

// signInTo signs ada in on the server at base through the provider, as a
// browser following redirects, and returns her session cookie.
func signInTo(t *testing.T, p *oidcprovider.Provider, base string) *http.Cookie {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 15 * time.Second}
	p.SignInAs("ada@example.com")
	resp, err := c.Get(base + "/signin?return=/settings/tokens")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/settings/tokens" {
		t.Fatalf("sign-in on %s ended at %v with %d", base, resp.Request.URL, resp.StatusCode)
	}
	u, _ := url.Parse(base)
	for _, ck := range jar.Cookies(u) {
		if ck.Name == "ib_session" {
			return ck
		}
	}
	t.Fatal("no session cookie after signing in")
	return nil
}

// send makes one request to u with an optional cookie and bearer token and
// decodes a JSON answer into out.
func send(t *testing.T, method, u string, cookie *http.Cookie, token string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, u, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := (&http.Client{Timeout: 15 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %s", method, u, resp.StatusCode, b)
		}
	}
	return resp.StatusCode
}

// TestReplicasShareSessionsAndTokens: two serve processes on one
// PostgreSQL database, as a scaled-out deployment: a session made on one
// is accepted by the other, a token made on one works on the other, a
// revocation on one holds on both, and signing out on one ends the
// session on both.
func TestReplicasShareSessionsAndTokens(t *testing.T) {
	p := oidcprovider.Start(t, oidcprovider.Options{})
	dsn := testenv.SharedPostgresDatabase(t)
	srvs := replicas(t, dsn, 2, oidcArgs(p)...)
	a, b := srvs[0].URL, srvs[1].URL
	session := signInTo(t, p, a)

	var list struct {
		Tokens []struct{ ID, Name string }
	}
	if code := send(t, "GET", b+"/api/v1/tokens", session, "", nil, &list); code != 200 {
		t.Fatalf("the session made on one process, on the other: %d, want 200", code)
	}
	var tok struct{ ID, Token string }
	if code := send(t, "POST", a+"/api/v1/tokens", session, "", map[string]string{"name": "ci", "scope": "read"}, &tok); code != 201 {
		t.Fatalf("create a token: %d", code)
	}
	if code := send(t, "GET", b+"/api/v1/tokens", session, "", nil, &list); code != 200 || len(list.Tokens) != 1 || list.Tokens[0].ID != tok.ID {
		t.Errorf("the other process lists %d %+v, want the token made on the first", code, list)
	}
	if code := send(t, "GET", b+"/api/v1/search?q=acme", nil, tok.Token, nil, nil); code != 200 {
		t.Errorf("the token made on one process, on the other: %d, want 200", code)
	}
	if code := send(t, "DELETE", b+"/api/v1/tokens/"+tok.ID, session, "", nil, nil); code != 204 {
		t.Fatalf("revoke on the other process: %d", code)
	}
	if code := send(t, "GET", a+"/api/v1/search?q=acme", nil, tok.Token, nil, nil); code != 401 {
		t.Errorf("the token revoked on one process, on the other: %d, want 401", code)
	}
	if code := send(t, "POST", b+"/signout", session, "", nil, nil); code != http.StatusSeeOther {
		t.Fatalf("sign out: %d", code)
	}
	if code := send(t, "GET", a+"/api/v1/tokens", session, "", nil, nil); code != 401 {
		t.Errorf("after signing out on one process the session, on the other: %d, want 401", code)
	}
}

// fromAddr is a client whose connections leave from the loopback address
// local, so that the service sees that address as the request's source.
func fromAddr(local string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}

// TestProxyHeaderOnlyFromTrustedAddresses: the real binary behind an
// authenticating proxy's header: a request from the trusted address
// (127.0.0.2) carrying the header is that person's; the same request from
// any other address (127.0.0.1) is anonymous, whatever the header says.
func TestProxyHeaderOnlyFromTrustedAddresses(t *testing.T) {
	srv := testenv.ServeProcess(t, testenv.Binary(t), testenv.ServeOptions{Args: []string{
		"--auth-proxy-header", "X-Forwarded-Email", "--auth-proxy-trusted", "127.0.0.2/32", "--badge-token-key", "e2e-badge-key"}})
	for _, tc := range []struct {
		from string
		want int
	}{{"127.0.0.2", 200}, {"127.0.0.1", 401}} {
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/tokens", nil)
		req.Header.Set("X-Forwarded-Email", "ada@example.com")
		resp, err := fromAddr(tc.from).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("the header from %s: %d, want %d", tc.from, resp.StatusCode, tc.want)
		}
	}
}
