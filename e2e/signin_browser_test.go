package e2e_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imagebadger/imagebadger/internal/testing/oidcprovider"
	"github.com/imagebadger/imagebadger/internal/testing/testenv"
)

// bearerCall sends method to u with a bearer token and a JSON body; it
// returns the status and the error code of an error answer.
func bearerCall(t *testing.T, method, u, token string, body any) (int, string) {
	t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	req, _ := http.NewRequest(method, u, bytes.NewReader(b))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct{ Error struct{ Code string } }
	_ = json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.Error.Code
}

// TestSignInEndToEnd: the real binary with the default policy, a public
// distribution registry and one with `auth: htpasswd` whose credentials are
// in the service's DOCKER_CONFIG, and an OpenID provider with a login
// page. Anonymously the private image is missing and the public one is
// served; after signing in through the provider's login page in chromium,
// the private image's page, search and badges (with the badge token from
// the page, and in the browser without it) show it; tokens made on the
// tokens page: a read token reads and is 403 on a write, a write token
// subscribes, a revoked one is 401; the badge token opens no other private
// repository.
func TestSignInEndToEnd(t *testing.T) {
	pub := testenv.Distribution(t)
	priv := testenv.DistributionWithHtpasswd(t, "reader", "pw-signin-e2e-51c2")
	basic := remote.WithAuth(&authn.Basic{Username: priv.User, Password: priv.Password})
	secret, other, public := priv.Host+"/acme/secret:1", priv.Host+"/acme/other:1", pub+"/acme/open:1"
	for ref, opt := range map[string][]remote.Option{secret: {basic}, other: {basic}, public: nil} {
		if err := remote.Write(must(name.ParseReference(ref)), whImage(t, nil, 2), opt...); err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
	}
	missing := priv.Host + "/acme/nothere:1"
	p := oidcprovider.Start(t, oidcprovider.Options{LoginPage: true})
	rc := newWHReceiver(t)
	srv := testenv.ServeProcess(t, testenv.Binary(t), testenv.ServeOptions{
		Env:  []string{"DOCKER_CONFIG=" + testenv.DockerConfig(t, map[string][2]string{priv.Host: {priv.User, priv.Password}})},
		Args: append([]string{"--dockerhub-api", "", "--allow-private-webhooks"}, oidcArgs(p)...),
	})

	// Anonymous: the private image is as missing, the public one served.
	for _, ref := range []string{secret, other} {
		got, _ := fetch(t, srv.URL+"/api/v1/images/"+ref)
		want, _ := fetch(t, srv.URL+"/api/v1/images/"+missing)
		if got != 404 || got != want {
			t.Fatalf("anonymous %s: %d, want %d as for a missing one", ref, got, want)
		}
	}
	if code, _ := fetch(t, srv.URL+"/api/v1/images/"+public); code != 200 {
		t.Fatalf("anonymous public image: %d", code)
	}
	hidden := fetchBadge(t, srv.URL+"/badges/image/"+secret+".svg")
	if absent := fetchBadge(t, srv.URL+"/badges/image/"+missing+".svg"); hidden.right != absent.right || hidden.status != absent.status {
		t.Errorf("anonymous badge of the private image %+v, of a missing one %+v", hidden, absent)
	}

	// Signing in through the provider's login page, in chromium.
	tb := newTab(t, srv.URL)
	tb.visit("/signin?return=" + url.QueryEscape("/images/"+secret))
	tb.do(chromedp.WaitVisible(chromedp.CSS(`#login_email`)),
		chromedp.SendKeys(chromedp.CSS(`#login_email`), "ada@example.com"),
		chromedp.Click(chromedp.CSS(`#login_submit`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="badges"]`)))
	if loc := tb.eval(`location.pathname`); loc != "/images/"+secret {
		t.Fatalf("after signing in the browser is at %s", loc)
	}
	token := tb.text(`[data-testid="badge-token-value"]`)
	if !strings.HasPrefix(token, "ibb_") {
		t.Fatalf("the image page shows no badge token: %q", token)
	}
	// The badge without a token, as the signed-in browser loads it (its
	// session cookie goes along): it shows the image, not the grey
	// answer of a missing one.
	svg := tb.eval(`(() => { const x = new XMLHttpRequest(); x.open('GET', '/badges/image/` + secret + `.svg', false); x.send(); return x.responseText })()`)
	if !strings.Contains(svg, "2 layers") {
		t.Errorf("the badge the signed-in browser loads does not show the image:\n%.400s", svg)
	}
	tb.visit("/search?q=secret")
	if body := tb.eval(`document.body.innerText`); !strings.Contains(body, "acme/secret") {
		t.Errorf("signed-in search does not find the private repository:\n%.500s", body)
	}
	// Badges from outside (a README): with the token they show the image.
	if b := fetchBadge(t, srv.URL+"/badges/image/"+secret+".svg?token="+url.QueryEscape(token)); b.right != "2 layers" {
		t.Errorf("badge with the badge token: %+v, want 2 layers", b)
	}
	if b := fetchBadge(t, srv.URL+"/badges/image/"+other+".svg?token="+url.QueryEscape(token)); b.right != hidden.right {
		t.Errorf("the badge token on another private repository: %+v, want it hidden (%q)", b, hidden.right)
	}

	// Tokens, made on the tokens page.
	makeToken := func(scope string) string {
		tb.visit("/settings/tokens")
		tb.do(chromedp.SendKeys(chromedp.CSS(`#token-name`), "e2e "+scope),
			chromedp.SetValue(chromedp.CSS(`#token-scope`), scope),
			chromedp.Click(chromedp.CSS(`[data-testid="token-create"]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="new-token-value"]`)))
		return tb.text(`[data-testid="new-token-value"]`)
	}
	read, write := makeToken("read"), makeToken("write")
	if code, _ := bearerCall(t, "GET", srv.URL+"/api/v1/images/"+secret, read, nil); code != 200 {
		t.Errorf("read token reading the private image: %d", code)
	}
	sub := map[string]any{"image": secret, "url": rc.URL + "/private"}
	if code, ec := bearerCall(t, "POST", srv.URL+"/api/v1/subscriptions", read, sub); code != 403 || ec != "forbidden" {
		t.Errorf("read token subscribing: %d %s, want 403 forbidden", code, ec)
	}
	if code, _ := bearerCall(t, "POST", srv.URL+"/api/v1/subscriptions", write, sub); code != 201 {
		t.Errorf("write token subscribing: %d, want 201", code)
	}
	if code, ec := bearerCall(t, "GET", srv.URL+"/api/v1/images/"+secret, read+"x", nil); code != 401 || ec != "unauthorized" {
		t.Errorf("a wrong token: %d %s, want 401 unauthorized", code, ec)
	}
	// Revoked on the tokens page, the read token is 401 from then on.
	tb.visit("/settings/tokens")
	id := strings.Split(read, "_")[1]
	tb.do(chromedp.Click(chromedp.CSS(`[data-testid="token-`+id+`"] [data-testid="token-revoke"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="tokens"]`)))
	if got := tb.text(`[data-testid="token-` + id + `"] [data-testid="token-status"]`); got != "revoked" {
		t.Errorf("after revoking, the page lists the token as %q", got)
	}
	if code, ec := bearerCall(t, "GET", srv.URL+"/api/v1/images/"+secret, read, nil); code != 401 || ec != "unauthorized" {
		t.Errorf("the revoked token: %d %s, want 401 unauthorized", code, ec)
	}
}
