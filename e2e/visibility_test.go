package e2e_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imagebadger/imagebadger/internal/testing/distreg"
	"github.com/imagebadger/imagebadger/internal/testing/testenv"
)

// visAnswer is a route's answer, whole.
type visAnswer struct {
	status      int
	contentType string
	body        string
}

func visAsk(t *testing.T, method, url, contentType, body string) visAnswer {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader([]byte(body)))
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
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return visAnswer{resp.StatusCode, resp.Header.Get("Content-Type"), string(b)}
}

// TestPrivateImagesStayPrivate: two real distribution registries, one
// anonymous and one with `auth: htpasswd` whose credentials the service's
// DOCKER_CONFIG holds; the real binary with the default policy and no
// sign-in. To an anonymous visitor the image of the htpasswd registry
// answers every route kind exactly as a repository that does not exist
// there (status, content type and body, the one name put for the other),
// and search and the home page leave it out; the anonymous registry's
// image is served; repeated reads cost neither registry a request. With
// --private-images=everyone the private image is served.
func TestPrivateImagesStayPrivate(t *testing.T) {
	// The anonymous registry's requests are counted by method and by
	// what they ask for: manifests, tags, referrers, blobs.
	open, openCounts, stop, err := distreg.MeteredProxy(testenv.Distribution(t), 0, func(r *http.Request) string {
		kind := "other"
		for _, k := range []string{"/manifests/", "/tags/", "/referrers/", "/blobs/"} {
			if strings.Contains(r.URL.Path, k) {
				kind = strings.Trim(k, "/")
			}
		}
		return r.Method + " " + kind
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	openRequests := func() int {
		n := 0
		for _, c := range openCounts() {
			n += c
		}
		return n
	}
	priv := testenv.DistributionWithHtpasswd(t, "ci-user", "pw-visibility-51c2")
	basic := remote.WithAuth(&authn.Basic{Username: priv.User, Password: priv.Password})
	for _, tag := range []string{"1", "2"} {
		if err := remote.Write(must(name.ParseReference(priv.Host+"/team/secret:"+tag)), whImage(t, nil, 2), basic); err != nil {
			t.Fatal(err)
		}
	}
	publicRef := open + "/team/public:1"
	if err := remote.Write(must(name.ParseReference(publicRef)), whImage(t, nil, 2), remote.WithAuth(authn.Anonymous)); err != nil {
		t.Fatal(err)
	}
	privateDigest := strings.TrimSpace(string(testenv.CraneWithConfig(t, testenv.DockerConfig(t, map[string][2]string{priv.Host: {priv.User, priv.Password}}), "digest", priv.Host+"/team/secret:1")))
	cfg := testenv.DockerConfig(t, map[string][2]string{priv.Host: {priv.User, priv.Password}})
	bin := testenv.Binary(t)
	h := priv.Host

	testenv.EachEngine(t, func(t *testing.T, db string) {
		srv := testenv.ServeProcess(t, bin, testenv.ServeOptions{DBPath: db, Env: []string{"DOCKER_CONFIG=" + cfg},
			Args: []string{"--dockerhub-api", "", "--allow-private-webhooks"}})
		if !strings.Contains(srv.Output(), `"private_images":"signed-in"`) {
			t.Errorf("the policy is not logged at start:\n%s", srv.Output())
		}
		// The service reads the private repository (answering its first
		// reader as for a missing one) and lists it; the public one too.
		for _, p := range []string{"/api/v1/images/" + h + "/team/secret:1", "/api/v1/repositories/" + h + "/team/secret/tags",
			"/api/v1/images/" + publicRef, "/api/v1/repositories/" + open + "/team/public/tags"} {
			visAsk(t, "GET", srv.URL+p, "", "")
		}
		if a := visAsk(t, "GET", srv.URL+"/api/v1/images/"+publicRef, "", ""); a.status != http.StatusOK {
			t.Fatalf("the public image: %d %s", a.status, a.body)
		}

		routes := [][4]string{ // name, method, path, JSON body
			{"api image", "GET", "/api/v1/images/{h}/{n}:1", ""},
			{"api refresh", "POST", "/api/v1/images/{h}/{n}:1/refresh", ""},
			{"v1", "GET", "/v1/images/{h}/{n}:1", ""},
			{"page", "GET", "/images/{h}/{n}:1", ""},
			{"api tags", "GET", "/api/v1/repositories/{h}/{n}/tags", ""},
			{"page tags", "GET", "/repositories/{h}/{n}", ""},
			{"api history", "GET", "/api/v1/repositories/{h}/{n}/history", ""},
			{"page history", "GET", "/repositories/{h}/{n}/history", ""},
			{"api diff", "GET", "/api/v1/diff?from={h}/{n}:1&to={h}/{n}:2", ""},
			{"page diff", "GET", "/diff?from={h}/{n}:1&to={h}/{n}:2", ""},
			{"subscribe", "POST", "/api/v1/subscriptions", `{"image":"{h}/{n}:1","url":"http://127.0.0.1:9/hook"}`},
		}
		for _, k := range []string{"image", "version", "commit", "license", "base"} {
			routes = append(routes, [4]string{"badge " + k, "GET", "/badges/" + k + "/{h}/{n}:1.svg", ""},
				[4]string{"shields " + k, "GET", "/api/v1/shields/" + k + "/{h}/{n}:1", ""})
		}
		fill := func(s, n string) string { return strings.NewReplacer("{h}", h, "{n}", n).Replace(s) }
		for _, r := range routes {
			ct := ""
			if r[3] != "" {
				ct = "application/json"
			}
			private := visAsk(t, r[1], srv.URL+fill(r[2], "team/secret"), ct, fill(r[3], "team/secret"))
			missing := visAsk(t, r[1], srv.URL+fill(r[2], "team/nothere"), ct, fill(r[3], "team/nothere"))
			private.body = strings.ReplaceAll(private.body, "team/secret", "team/nothere")
			if private != missing {
				t.Errorf("%s: the private image answers\n%d %s\n%s\na missing one\n%d %s\n%s", r[0],
					private.status, private.contentType, private.body, missing.status, missing.contentType, missing.body)
			}
			if strings.Contains(private.body, privateDigest) {
				t.Errorf("%s shows the private image's digest", r[0])
			}
		}

		// Search and the home page leave it out and show the public one.
		for _, p := range []string{"/api/v1/search?q=team", "/search?q=team", "/"} {
			a := visAsk(t, "GET", srv.URL+p, "", "")
			if strings.Contains(a.body, "team/secret") || !strings.Contains(a.body, "team/public") {
				t.Errorf("%s: shows the private repository %v, the public one %v", p,
					strings.Contains(a.body, "team/secret"), strings.Contains(a.body, "team/public"))
			}
		}

		// A refresh of the public image costs its registry, which the
		// service holds no credentials for, the one HEAD a refresh costs:
		// no visibility check there (it would be a second HEAD of the
		// manifest). Besides, the refresh looks again for what signs and
		// attests the image: only its referrers and tag listings. An
		// anonymous refresh of the private image costs its registry
		// nothing: it is refused before.
		countsBefore := openCounts()
		if a := visAsk(t, "POST", srv.URL+"/api/v1/images/"+publicRef+"/refresh", "", ""); a.status != http.StatusOK {
			t.Fatalf("refresh of the public image: %d %s", a.status, a.body)
		}
		cost := openCounts()
		for k, n := range countsBefore {
			cost[k] -= n
		}
		for k, n := range cost {
			switch {
			case n == 0:
			case k == "HEAD manifests":
				if n != 1 {
					t.Errorf("a refresh on the registry without credentials cost %d HEADs of the manifest, want 1 (all: %v)", n, cost)
				}
			case k != "GET referrers" && k != "GET tags":
				t.Errorf("a refresh on the registry without credentials cost %d %s requests, want none (all: %v)", n, k, cost)
			}
		}
		if cost["HEAD manifests"] == 0 {
			t.Errorf("a refresh cost no HEAD of the manifest: %v", cost)
		}
		before := priv.Requests()
		if a := visAsk(t, "POST", srv.URL+"/api/v1/images/"+h+"/team/secret:1/refresh", "", ""); a.status != http.StatusNotFound {
			t.Errorf("anonymous refresh of the private image: %d", a.status)
		}
		if n := priv.Requests() - before; n != 0 {
			t.Errorf("a refused refresh cost the registry %d requests", n)
		}

		// Reads answered from the store ask neither registry anything:
		// the visibility is known.
		before = priv.Requests()
		openBefore := openRequests()
		for range 3 {
			visAsk(t, "GET", srv.URL+"/api/v1/images/"+h+"/team/secret:1", "", "")
			visAsk(t, "GET", srv.URL+"/badges/image/"+h+"/team/secret:1.svg", "", "")
			visAsk(t, "GET", srv.URL+"/badges/image/"+publicRef+".svg", "", "")
		}
		if n := priv.Requests() - before; n != 0 {
			t.Errorf("repeated reads of the private image cost %d registry requests, want 0", n)
		}
		if n := openRequests() - openBefore; n != 0 {
			t.Errorf("repeated reads of the public image cost %d registry requests, want 0", n)
		}
	})

	t.Run("everyone", func(t *testing.T) {
		srv := testenv.ServeProcess(t, bin, testenv.ServeOptions{Env: []string{"DOCKER_CONFIG=" + cfg},
			Args: []string{"--dockerhub-api", "", "--private-images=everyone"}})
		var rep report
		getJSON(t, srv.URL+"/api/v1/images/"+h+"/team/secret:1", &rep)
		if rep.Digest != privateDigest {
			t.Errorf("with --private-images=everyone the private image's digest is %q, crane says %s", rep.Digest, privateDigest)
		}
		if a := visAsk(t, "GET", srv.URL+"/images/"+h+"/team/secret:1", "", ""); a.status != http.StatusOK || !strings.Contains(a.body, privateDigest) {
			t.Errorf("with --private-images=everyone the page answers %d", a.status)
		}
	})
}
