package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/badge"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/server"
)

// credentials is a keychain holding a user and password per registry host,
// as a Docker config's auths do.
type credentials map[string]authn.AuthConfig

func (c credentials) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if a, ok := c[r.RegistryStr()]; ok {
		return authn.FromConfig(a), nil
	}
	return authn.Anonymous, nil
}

// answer is what a route said: enough to compare two answers whole.
type answer struct {
	status      int
	contentType string
	body        string
}

func ask(t *testing.T, method, url, contentType string, body []byte) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header.Get("Content-Type"), string(b)}
}

// privateRegistry is an in-process registry that asks for basic auth on
// the repositories under private/ (and on one that does not exist,
// nothere/, so that reading it is the same path), with private/app:1,
// private/app:2 and open/app:1 pushed; the service is given the
// credentials.
func privateRegistry(t *testing.T) (*faultreg.Registry, credentials) {
	t.Helper()
	reg := faultreg.Start(t)
	pushRandom(t, reg.Host+"/private/app:1")
	pushRandom(t, reg.Host+"/private/app:2")
	pushRandom(t, reg.Host+"/open/app:1")
	for _, p := range []string{"/private/", "/nothere/"} {
		reg.Add(faultreg.Rule{Fault: faultreg.RequireBasicAuth, PathContains: p, Username: "reader", Password: "s3cret"})
	}
	reg.Requests() // the pushes
	return reg, credentials{reg.Host: {Username: "reader", Password: "s3cret"}}
}

// TestPrivateImageAnswersAsMissing: with the default policy and no
// sign-in, a repository the registry refuses to serve anonymously answers
// every route exactly as a repository that does not exist on the same
// registry: the same status, content type and body, once the one name is
// put for the other. Search and the recent changes leave it out; a public
// repository on the same registry is served.
func TestPrivateImageAnswersAsMissing(t *testing.T) {
	stack.EachEngine(t, func(t *testing.T, engine string) {
		reg, creds := privateRegistry(t)
		receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		t.Cleanup(receiver.Close)
		s := stack.New(t, stack.Options{Engine: engine, Keychain: creds, Notify: true, AllowPrivateWebhooks: true, Server: &server.Options{}})
		h := reg.Host

		// The service reads the private repository (its first reader is
		// anonymous, and is already answered as for a missing one), lists
		// it, and records its history; the public one likewise.
		for _, p := range []string{"/api/v1/images/" + h + "/private/app:1", "/api/v1/repositories/" + h + "/private/app/tags",
			"/api/v1/images/" + h + "/open/app:1", "/api/v1/repositories/" + h + "/open/app/tags"} {
			ask(t, http.MethodGet, s.URL+p, "", nil)
		}
		if a := ask(t, http.MethodGet, s.URL+"/api/v1/images/"+h+"/open/app:1", "", nil); a.status != http.StatusOK {
			t.Fatalf("the public image: %d %s", a.status, a.body)
		}
		if a := ask(t, http.MethodGet, s.URL+"/api/v1/repositories/"+h+"/open/app/history", "", nil); a.status != http.StatusOK || !strings.Contains(a.body, `"tag": "1"`) {
			t.Fatalf("the public image's history: %d %s", a.status, a.body)
		}

		type route struct {
			name, method, path, contentType, body string
		}
		routes := []route{
			{"api image", "GET", "/api/v1/images/{h}/{n}:1", "", ""},
			{"api image by digest-less refresh", "GET", "/api/v1/images/{h}/{n}:1?refresh=1", "", ""},
			{"api refresh", "POST", "/api/v1/images/{h}/{n}:1/refresh", "", ""},
			{"microbadger v1", "GET", "/v1/images/{h}/{n}:1", "", ""},
			{"page image", "GET", "/images/{h}/{n}:1", "", ""},
			{"page refresh", "POST", "/images/{h}/{n}:1/refresh", "application/x-www-form-urlencoded", ""},
			{"page subscribe", "POST", "/subscriptions", "application/x-www-form-urlencoded",
				"image={h}/{n}:1&url=" + receiver.URL + "/hook&events=image.updated"},
			{"api tags", "GET", "/api/v1/repositories/{h}/{n}/tags", "", ""},
			{"page repository", "GET", "/repositories/{h}/{n}", "", ""},
			{"api history", "GET", "/api/v1/repositories/{h}/{n}/history", "", ""},
			{"page history", "GET", "/repositories/{h}/{n}/history", "", ""},
			{"api diff", "GET", "/api/v1/diff?from={h}/{n}:1&to={h}/{n}:2", "", ""},
			{"page diff", "GET", "/diff?from={h}/{n}:1&to={h}/{n}:2", "", ""},
			{"api subscribe", "POST", "/api/v1/subscriptions", "application/json",
				`{"image":"{h}/{n}:1","url":"` + receiver.URL + `/hook"}`},
		}
		for _, k := range badge.Kinds() {
			routes = append(routes,
				route{"badge " + string(k), "GET", "/badges/" + string(k) + "/{h}/{n}:1.svg", "", ""},
				route{"shields " + string(k), "GET", "/api/v1/shields/" + string(k) + "/{h}/{n}:1", "", ""})
		}
		fill := func(s, name string) string {
			return strings.NewReplacer("{h}", h, "{n}", name).Replace(s)
		}
		for _, r := range routes {
			t.Run(r.name, func(t *testing.T) {
				private := ask(t, r.method, s.URL+fill(r.path, "private/app"), r.contentType, []byte(fill(r.body, "private/app")))
				missing := ask(t, r.method, s.URL+fill(r.path, "nothere/app"), r.contentType, []byte(fill(r.body, "nothere/app")))
				private.body = strings.ReplaceAll(private.body, "private/app", "nothere/app")
				if private != missing {
					t.Errorf("the private repository answers\n%d %s\n%s\n\na missing one\n%d %s\n%s",
						private.status, private.contentType, private.body, missing.status, missing.contentType, missing.body)
				}
				// Both are the answer for a missing repository, not some
				// other failure answered alike.
				if strings.HasPrefix(r.name, "badge ") || strings.HasPrefix(r.name, "shields ") {
					if !strings.Contains(missing.body, "not found") {
						t.Errorf("a missing repository's badge does not say not found: %s", missing.body)
					}
				} else if missing.status != http.StatusNotFound {
					t.Errorf("a missing repository answers %d, want 404: %s", missing.status, missing.body)
				}
			})
		}

		// The repository's refresh hook, whose token anyone gets from the
		// subscription form, answers as for a missing repository too.
		hook := func(name string) answer {
			repo, err := analysis.ParseRepository(h + "/" + name)
			if err != nil {
				t.Fatal(err)
			}
			// Made as a subscription to the repository makes it.
			tok, err := s.Store.MakeHookToken(context.Background(), repo, func() string { return "hook-token-of-" + strings.ReplaceAll(name, "/", "-") }, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			a := ask(t, http.MethodPost, s.URL+"/images/"+h+"/"+name+"/"+tok, "", nil)
			a.body = strings.ReplaceAll(a.body, "private/app", "nothere/app")
			return a
		}
		if private, missing := hook("private/app"), hook("nothere/app"); private != missing || missing.status != http.StatusNotFound {
			t.Errorf("the refresh hook: the private repository answers %d %s, a missing one %d %s", private.status, private.body, missing.status, missing.body)
		}

		// The not-found page says how private images are shown here: to
		// nobody, until sign-in is configured or the policy changed.
		if a := ask(t, http.MethodGet, s.URL+"/images/"+h+"/private/app:1", "", nil); a.status != http.StatusNotFound ||
			!strings.Contains(a.body, `data-testid="private-help"`) || !strings.Contains(a.body, "--private-images=everyone") {
			t.Errorf("the not-found page does not say how to see private images: %d\n%s", a.status, a.body)
		}

		// Search and "recently changed" leave the private repository out,
		// and show the public one.
		var found struct {
			Results []struct{ Repository string } `json:"results"`
		}
		a := ask(t, http.MethodGet, s.URL+"/api/v1/search?q=app", "", nil)
		if err := json.Unmarshal([]byte(a.body), &found); err != nil || a.status != http.StatusOK {
			t.Fatalf("search: %d %s %v", a.status, a.body, err)
		}
		var names []string
		for _, r := range found.Results {
			names = append(names, r.Repository)
		}
		if strings.Join(names, ",") != "open/app" {
			t.Errorf("search for app found %q, want only open/app", names)
		}
		for _, p := range []string{"/", "/search?q=app", "/?q=" + h + "/private/app:1"} {
			a := ask(t, http.MethodGet, s.URL+p, "", nil)
			if strings.Contains(a.body, "private/app") && !strings.Contains(p, "private") {
				t.Errorf("%s names the private repository:\n%s", p, a.body)
			}
			if !strings.Contains(a.body, "open/app") && p != "/?q="+h+"/private/app:1" {
				t.Errorf("%s does not show the public repository", p)
			}
		}
		// The home page's search for the private reference is answered as
		// the one for a missing reference.
		private := ask(t, http.MethodGet, s.URL+"/?q="+h+"/private/app:1", "", nil)
		missing := ask(t, http.MethodGet, s.URL+"/?q="+h+"/nothere/app:1", "", nil)
		private.body = strings.ReplaceAll(private.body, "private/app", "nothere/app")
		if private != missing {
			t.Errorf("the home page's search for the private image answers %d, for a missing one %d", private.status, missing.status)
		}
	})
}

// TestPrivateImagesForEveryone: --private-images=everyone shows the
// private image, its tags and its history to anyone.
func TestPrivateImagesForEveryone(t *testing.T) {
	reg, creds := privateRegistry(t)
	s := stack.New(t, stack.Options{Keychain: creds, Images: images.Options{PrivateImages: images.PrivateToEveryone}, Server: &server.Options{}})
	for _, p := range []string{"/api/v1/images/" + reg.Host + "/private/app:1", "/api/v1/repositories/" + reg.Host + "/private/app/tags",
		"/api/v1/repositories/" + reg.Host + "/private/app/history", "/images/" + reg.Host + "/private/app:1", "/v1/images/" + reg.Host + "/private/app:1"} {
		if a := ask(t, http.MethodGet, s.URL+p, "", nil); a.status != http.StatusOK {
			t.Errorf("%s: %d %s", p, a.status, a.body)
		}
	}
	if a := ask(t, http.MethodGet, s.URL+"/api/v1/search?q=private", "", nil); !strings.Contains(a.body, `"repository": "private/app"`) {
		t.Errorf("search leaves the private repository out: %s", a.body)
	}
	if a := ask(t, http.MethodGet, s.URL+"/images/"+reg.Host+"/nothere/app:1", "", nil); a.status != http.StatusNotFound || strings.Contains(a.body, "private-help") {
		t.Errorf("with the policy everyone, the not-found page still speaks of hidden private images: %d", a.status)
	}
	if anon := reg.Anonymous("/private/app/"); len(anon) != 0 {
		t.Errorf("the policy everyone asked the registry anonymously: %q", anon)
	}
}
