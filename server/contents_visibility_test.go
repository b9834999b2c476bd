package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/contents"
	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/internal/testing/oidcprovider"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/netguard"
	"github.com/imagebadger/imagebadger/server"
)

// TestContentsOfPrivateImage: under the default policy with sign-in, a
// read token may not start a private image's contents analysis (403
// forbidden), on the API and the page's button alike, and a write token or
// a signed-in person may; once it is analysed, the contents
// routes, the tree, the contents page and its start button, and the
// efficiency badge (image and shields) answer an anonymous visitor exactly
// as for a repository that does not exist on the same registry (status,
// content type and body, the one name put for the other), while the
// repository's badge token opens the efficiency badge.
func TestContentsOfPrivateImage(t *testing.T) {
	stack.EachEngine(t, func(t *testing.T, engine string) {
		reg := faultreg.Start(t)
		h := reg.Host
		// 12 of 522 shipped bytes are kept: 2% efficient.
		pushTo(t, h+"/private/app:1", imageWith(t,
			tarLayer(t, 'b', "etc/", 0, "etc/conf", 10, "var/", 0, "var/cache.bin", 500),
			tarLayer(t, 'c', "var/.wh.cache.bin", -1, "etc/conf", 12)))
		for _, p := range []string{"/private/", "/nothere/"} {
			reg.Add(faultreg.Rule{Fault: faultreg.RequireBasicAuth, PathContains: p, Username: "reader", Password: "s3cret"})
		}
		creds := credentials{h: {Username: "reader", Password: "s3cret"}}
		p := oidcprovider.Start(t, oidcprovider.Options{})
		st := stack.New(t, stack.Options{Engine: engine, Keychain: creds, Server: &server.Options{}, Contents: &contents.Options{},
			Auth: &auth.Options{OIDC: auth.OIDCOptions{Issuer: p.Issuer(), ClientID: p.ClientID(), ClientSecret: p.ClientSecret(),
				Allowed: []string{"ada@example.com"}, Transport: netguard.New(true).Transport()}, BadgeKey: []byte("k")}})
		app := h + "/private/app:1"
		api := st.URL + "/api/v1/images/" + app + "/contents"

		// An anonymous visitor first: the read learns the repository is
		// private and answers as for a missing one.
		if a := ask(t, http.MethodGet, st.URL+"/api/v1/images/"+app, "", nil); a.status != http.StatusNotFound {
			t.Fatalf("anonymous read: %d %s, want 404", a.status, a.body)
		}
		c := browserClient(t)
		signIn(t, st, p, c, "ada@example.com", "/")
		var rd, wr tokenOut
		call(t, c, http.MethodPost, st.URL+"/api/v1/tokens", "", map[string]any{"name": "r", "scope": "read"}, &rd)
		call(t, c, http.MethodPost, st.URL+"/api/v1/tokens", "", map[string]any{"name": "w", "scope": "write"}, &wr)
		if rd.Token == "" || wr.Token == "" {
			t.Fatalf("tokens not made: read %+v, write %+v", rd, wr)
		}
		anon := &http.Client{Timeout: 10 * time.Second}

		var e apiErr
		if code, _ := call(t, anon, http.MethodGet, api, "ib_wrong", nil, &e); code != http.StatusUnauthorized || e.Error.Code != "unauthorized" {
			t.Errorf("a wrong token on the contents route: %d %+v, want 401 unauthorized", code, e)
		}
		if code, _ := call(t, anon, http.MethodPost, api, rd.Token, nil, &e); code != http.StatusForbidden || e.Error.Code != "forbidden" {
			t.Errorf("read token starting the analysis: %d %+v, want 403 forbidden", code, e)
		}
		if code, _ := call(t, anon, http.MethodGet, api, rd.Token, nil, &e); code != http.StatusNotFound || e.Error.Code != "not_analyzed" {
			t.Fatalf("after the read token's POST: %d %+v, want 404 not_analyzed (nothing started)", code, e)
		}
		if code, _ := call(t, anon, http.MethodPost, api, wr.Token, nil, nil); code != http.StatusAccepted && code != http.StatusOK {
			t.Fatalf("write token starting the analysis: %d, want 202 or 200", code)
		}
		var res contents.Result
		for range 200 {
			code, _ := call(t, anon, http.MethodGet, api, rd.Token, nil, &res)
			if code == http.StatusOK {
				break
			}
			if code != http.StatusAccepted {
				t.Fatalf("polling the analysis with the read token: %d", code)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if res.State != "done" || res.LayerFilesSize != 522 || res.TotalSize != 12 {
			t.Fatalf("the private image's contents for the read token = %+v, want done, 522 shipped, 12 kept", res)
		}
		var tok struct{ Token string }
		if code, _ := call(t, c, http.MethodGet, st.URL+"/api/v1/repositories/"+h+"/private/app/badge-token", "", nil, &tok); code != http.StatusOK || tok.Token == "" {
			t.Fatalf("badge token: %d %+v", code, tok)
		}
		if a := ask(t, http.MethodGet, st.URL+"/badges/efficiency/"+app+".svg?token="+url.QueryEscape(tok.Token), "", nil); !strings.Contains(a.body, ">2%<") {
			t.Errorf("the efficiency badge with the repository's badge token does not show 2%%: %d\n%s", a.status, a.body)
		}
		var shield struct{ Message string }
		if code, _ := call(t, anon, http.MethodGet, st.URL+"/api/v1/shields/efficiency/"+app+"?token="+url.QueryEscape(tok.Token), "", nil, &shield); code != http.StatusOK || shield.Message != "2%" {
			t.Errorf("the efficiency shield with the badge token: %d %+v, want 2%%", code, shield)
		}

		// The page's start button: a read token is refused, a signed-in
		// person is sent on to the contents page.
		page := st.URL + "/images/" + app + "/contents"
		if a := withCookie(t, http.MethodPost, page, nil, rd.Token); a.status != http.StatusForbidden {
			t.Errorf("read token pressing the page's start button: %d, want 403", a.status)
		}
		u, _ := url.Parse(st.URL)
		var session *http.Cookie
		for _, ck := range c.Jar.Cookies(u) {
			if ck.Name == auth.SessionCookie {
				session = ck
			}
		}
		if a := withCookie(t, http.MethodPost, page, session, ""); a.status != http.StatusOK || !strings.Contains(a.body, `data-testid="contents-efficiency">2.30%<`) {
			t.Errorf("signed-in person pressing the page's start button: %d, want the contents page with 2.30%%\n%s", a.status, a.body)
		}

		// Anonymous, the analysed private image is a missing one.
		routes := []struct{ name, method, path, contentType string }{
			{"api contents", "GET", "/api/v1/images/{r}/contents", ""},
			{"api contents start", "POST", "/api/v1/images/{r}/contents", ""},
			{"api tree", "GET", "/api/v1/images/{r}/contents/tree?path=/etc", ""},
			{"api tree changes", "GET", "/api/v1/images/{r}/contents/tree?path=/var&layer=1&changes=1", ""},
			{"page contents", "GET", "/images/{r}/contents", ""},
			{"page contents tree", "GET", "/images/{r}/contents?path=/etc&layer=1", ""},
			{"page contents start", "POST", "/images/{r}/contents", "application/x-www-form-urlencoded"},
			{"badge efficiency", "GET", "/badges/efficiency/{r}.svg", ""},
			{"shields efficiency", "GET", "/api/v1/shields/efficiency/{r}", ""},
		}
		for _, r := range routes {
			t.Run(r.name, func(t *testing.T) {
				private := ask(t, r.method, st.URL+strings.ReplaceAll(r.path, "{r}", app), r.contentType, nil)
				missing := ask(t, r.method, st.URL+strings.ReplaceAll(r.path, "{r}", h+"/nothere/app:1"), r.contentType, nil)
				private.body = strings.ReplaceAll(private.body, "private/app", "nothere/app")
				if private != missing {
					t.Errorf("the private repository answers\n%d %s\n%s\n\na missing one\n%d %s\n%s",
						private.status, private.contentType, private.body, missing.status, missing.contentType, missing.body)
				}
				// Both are the answer for a missing repository, not some
				// other failure answered alike.
				if strings.Contains(r.name, "efficiency") {
					if !strings.Contains(missing.body, "not found") {
						t.Errorf("a missing repository's badge does not say not found: %s", missing.body)
					}
				} else if missing.status != http.StatusNotFound {
					t.Errorf("a missing repository answers %d, want 404: %s", missing.status, missing.body)
				} else if strings.HasPrefix(r.name, "api") {
					var e apiErr
					if err := json.Unmarshal([]byte(missing.body), &e); err != nil || e.Error.Code != "not_found" {
						t.Errorf("a missing repository's answer is not not_found: %s", missing.body)
					}
				}
			})
		}
	})
}
