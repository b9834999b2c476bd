package apispec

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
)

// fakeTB records what Check reports instead of failing the test.
type fakeTB struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Logf(string, ...any) {}

func (f *fakeTB) failures() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.errors)
}

var jsonHeader = http.Header{"Content-Type": {"application/json"}}

const digestA = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
const digestB = "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

// checkOne runs Check on a fake TB and returns what it reported.
func checkOne(t *testing.T, method, target string, reqHeader http.Header, reqBody string, status int, header http.Header, body string) []string {
	t.Helper()
	var rb io.Reader
	if reqBody != "" {
		rb = strings.NewReader(reqBody)
	}
	req := httptest.NewRequest(method, target, rb)
	for k, v := range reqHeader {
		req.Header[k] = v
	}
	f := &fakeTB{TB: t}
	Check(f, req, status, header, []byte(body))
	return f.failures()
}

func wantPass(t *testing.T, failures []string) {
	t.Helper()
	if len(failures) > 0 {
		t.Errorf("Check reported failures, want none:\n%s", strings.Join(failures, "\n"))
	}
}

func wantFail(t *testing.T, failures []string, substr ...string) {
	t.Helper()
	if len(failures) == 0 {
		t.Fatalf("Check reported nothing, want a failure")
	}
	all := strings.Join(failures, "\n")
	for _, s := range substr {
		if !strings.Contains(all, s) {
			t.Errorf("failure does not mention %q:\n%s", s, all)
		}
	}
}

func TestDocumentLoadsAndValidates(t *testing.T) {
	s, err := load()
	if err != nil {
		t.Fatal(err)
	}
	if got := s.doc.OpenAPI; got != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", got)
	}
	// The routes of docs/API.md's JSON API, and the methods each answers.
	want := map[string][]string{
		"/api/v1/images/{reference}":                {"GET"},
		"/api/v1/images/{reference}/refresh":        {"POST"},
		"/api/v1/images/{reference}/sbom":           {"GET"},
		"/api/v1/repositories/{repository}/tags":    {"GET"},
		"/api/v1/repositories/{repository}/history": {"GET"},
		"/api/v1/diff":                             {"GET"},
		"/api/v1/search":                           {"GET"},
		"/api/v1/shields/{kind}/{reference}":       {"GET"},
		"/api/v1/subscriptions":                    {"POST"},
		"/api/v1/subscriptions/{id}":               {"DELETE", "GET"},
		"/v1/images/{reference}":                   {"GET"},
		"/v1/images/{reference}/version/{digest}":  {"GET"},
		"/images/{repository}/{token}":             {"POST"},
		"/hooks/registry":                          {"POST"},
		"/hooks/dockerhub/{token}":                 {"POST"},
		"/api/v1/openapi.yaml":                     {"GET"},
		"/api/v1/images/{reference}/contents":      {"GET", "POST"},
		"/api/v1/images/{reference}/contents/tree": {"GET"},
		"/healthz":            {"GET", "HEAD"},
		"/readyz":             {"GET", "HEAD"},
		"/api/v1/tokens":      {"GET", "POST"},
		"/api/v1/tokens/{id}": {"DELETE"},
		"/api/v1/repositories/{repository}/badge-token": {"GET", "POST"},
	}
	for path, methods := range want {
		item := s.doc.Paths.Value(path)
		if item == nil {
			t.Errorf("%s is not documented", path)
			continue
		}
		var got []string
		for m, op := range item.Operations() {
			got = append(got, m)
			if op.Description == "" {
				t.Errorf("%s %s has no description", m, path)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, methods) {
			t.Errorf("%s documents %v, want %v", path, got, methods)
		}
	}
	if n := s.doc.Paths.Len(); n != len(want) {
		t.Errorf("the document has %d paths, want %d", n, len(want))
	}
}

func TestErrorAnswer(t *testing.T) {
	const target = "/api/v1/images/docker.io/library/alpine:3.20"
	t.Run("valid", func(t *testing.T) {
		wantPass(t, checkOne(t, "GET", target, nil, "", 404, jsonHeader, `{"error":{"code":"not_found","message":"x"}}`))
	})
	t.Run("misspelt field", func(t *testing.T) {
		wantFail(t, checkOne(t, "GET", target, nil, "", 404, jsonHeader, `{"error":{"code":"not_found","mesage":"x"}}`),
			"/api/v1/images/{reference}", "404")
	})
	t.Run("unknown code", func(t *testing.T) {
		wantFail(t, checkOne(t, "GET", target, nil, "", 404, jsonHeader, `{"error":{"code":"nope","message":"x"}}`))
	})
	t.Run("code of another status", func(t *testing.T) {
		wantFail(t, checkOne(t, "GET", target, nil, "", 404, jsonHeader, `{"error":{"code":"registry_timeout","message":"x"}}`))
	})
	t.Run("undocumented status", func(t *testing.T) {
		wantFail(t, checkOne(t, "GET", target, nil, "", 418, jsonHeader, `{"error":{"code":"internal","message":"x"}}`), "418")
	})
	t.Run("not JSON", func(t *testing.T) {
		wantFail(t, checkOne(t, "GET", target, nil, "", 404, http.Header{"Content-Type": {"text/html; charset=utf-8"}}, `<p>not found</p>`))
	})
	t.Run("rate limited without Retry-After", func(t *testing.T) {
		body := `{"error":{"code":"rate_limited","message":"slow down"}}`
		wantFail(t, checkOne(t, "GET", target, nil, "", 429, jsonHeader, body), "Retry-After")
		h := jsonHeader.Clone()
		h.Set("Retry-After", "60")
		wantPass(t, checkOne(t, "GET", target, nil, "", 429, h, body))
	})
}

// report is a minimal image report written from docs/API.md's example.
func report(layerCount string) string {
	return `{
  "reference": "127.0.0.1:5000/acme/app:2.3",
  "registry": "127.0.0.1:5000",
  "repository": "acme/app",
  "tag": "2.3",
  "digest": "` + digestA + `",
  "mediaType": "application/vnd.oci.image.index.v1+json",
  "tags": ["2", "2.3", "latest"],
  "checkedAt": "2026-11-26T22:00:00Z",
  "platforms": [
    {
      "platform": "linux/arm64/v8",
      "os": "linux", "architecture": "arm64", "variant": "v8",
      "digest": "` + digestB + `",
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "configDigest": "` + digestA + `",
      "created": "2026-11-20T10:00:00Z",
      "layerCount": ` + layerCount + `,
      "downloadSize": 31457280,
      "layers": [
        {"digest": "` + digestA + `", "diffId": "` + digestB + `", "size": 29000000,
         "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
         "createdBy": "/bin/sh -c apt-get install -y curl", "created": "2026-11-20T10:00:00Z"}
      ],
      "labels": {"org.opencontainers.image.version": "2.3.1"},
      "metadata": {"version": "2.3.1", "source": "https://github.com/acme/app"},
      "parent": {
        "registry": "127.0.0.1:5000", "repository": "acme/runtime", "tags": ["3", "3.0"],
        "digest": "` + digestB + `", "layerCount": 3, "matchedLayers": 3, "method": "layers",
        "outdated": true, "currentDigest": "` + digestA + `"
      }
    }
  ]
}`
}

func TestImageReport(t *testing.T) {
	const target = "/api/v1/images/127.0.0.1:5000/acme/app:2.3"
	t.Run("valid", func(t *testing.T) {
		wantPass(t, checkOne(t, "GET", target, nil, "", 200, jsonHeader, report("4")))
	})
	t.Run("layerCount is a string", func(t *testing.T) {
		wantFail(t, checkOne(t, "GET", target, nil, "", 200, jsonHeader, report(`"4"`)), "layerCount")
	})
	t.Run("parent null", func(t *testing.T) {
		body := strings.Replace(report("4"), `"parent": {`, `"parent": null, "x": {`, 1)
		// "x" is not a field of a platform.
		wantFail(t, checkOne(t, "GET", target, nil, "", 200, jsonHeader, body))
		start := strings.Index(report("4"), `"parent": {`)
		end := strings.LastIndex(report("4"), "}\n    }\n  ]")
		body = report("4")[:start] + `"parent": null` + report("4")[end+1:]
		wantPass(t, checkOne(t, "GET", target, nil, "", 200, jsonHeader, body))
	})
	t.Run("checkedAt not a date-time", func(t *testing.T) {
		body := strings.Replace(report("4"), `"checkedAt": "2026-11-26T22:00:00Z"`, `"checkedAt": "yesterday"`, 1)
		wantFail(t, checkOne(t, "GET", target, nil, "", 200, jsonHeader, body), "checkedAt")
	})
	t.Run("missing required field", func(t *testing.T) {
		body := strings.Replace(report("4"), `"tags": ["2", "2.3", "latest"],`, ``, 1)
		wantFail(t, checkOne(t, "GET", target, nil, "", 200, jsonHeader, body), "tags")
	})
	t.Run("refresh answers the report", func(t *testing.T) {
		wantPass(t, checkOne(t, "POST", target+"/refresh", nil, "", 200, jsonHeader, report("4")))
	})
}

func TestRouteFinder(t *testing.T) {
	s, err := load()
	if err != nil {
		t.Fatal(err)
	}
	hex := strings.Repeat("0123456789abcdef", 4)
	for _, tc := range []struct {
		method, path string
		template     string
		params       map[string]string
	}{
		{"POST", "/api/v1/images/127.0.0.1:5000/acme/app:2.3/refresh", "/api/v1/images/{reference}/refresh",
			map[string]string{"reference": "127.0.0.1:5000/acme/app:2.3"}},
		{"GET", "/api/v1/images/ghcr.io/acme/app@sha256:" + hex, "/api/v1/images/{reference}",
			map[string]string{"reference": "ghcr.io/acme/app@sha256:" + hex}},
		// A path that ends like the refresh route but asks GET is an image
		// named .../refresh, as the server's router has it.
		{"GET", "/api/v1/images/acme/refresh", "/api/v1/images/{reference}",
			map[string]string{"reference": "acme/refresh"}},
		{"GET", "/v1/images/acme/app/version/sha256:" + hex, "/v1/images/{reference}/version/{digest}",
			map[string]string{"reference": "acme/app", "digest": "sha256:" + hex}},
		{"GET", "/v1/images/acme/app:1.0", "/v1/images/{reference}",
			map[string]string{"reference": "acme/app:1.0"}},
		{"GET", "/v1/images/acme/app/", "/v1/images/{reference}",
			map[string]string{"reference": "acme/app"}},
		{"GET", "/api/v1/repositories/127.0.0.1:5000/acme/base/tags", "/api/v1/repositories/{repository}/tags",
			map[string]string{"repository": "127.0.0.1:5000/acme/base"}},
		{"GET", "/api/v1/repositories/acme/base/history", "/api/v1/repositories/{repository}/history",
			map[string]string{"repository": "acme/base"}},
		{"GET", "/api/v1/shields/version/ghcr.io/acme/app:1.0", "/api/v1/shields/{kind}/{reference}",
			map[string]string{"kind": "version", "reference": "ghcr.io/acme/app:1.0"}},
		{"POST", "/images/acme/app/9f2c", "/images/{repository}/{token}",
			map[string]string{"repository": "acme/app", "token": "9f2c"}},
		{"POST", "/images/python/9f2c/", "/images/{repository}/{token}",
			map[string]string{"repository": "python", "token": "9f2c"}},
		{"DELETE", "/api/v1/subscriptions/sub_abc", "/api/v1/subscriptions/{id}",
			map[string]string{"id": "sub_abc"}},
		{"POST", "/hooks/dockerhub/tok", "/hooks/dockerhub/{token}", map[string]string{"token": "tok"}},
		{"GET", "/healthz", "/healthz", map[string]string{}},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r, params, err := s.FindRoute(httptest.NewRequest(tc.method, tc.path, nil))
			if err != nil {
				t.Fatal(err)
			}
			if r.Path != tc.template {
				t.Errorf("route %s, want %s", r.Path, tc.template)
			}
			if r.Operation == nil || r.Operation != r.PathItem.GetOperation(tc.method) {
				t.Errorf("operation is not the path's %s", tc.method)
			}
			if fmt.Sprint(params) != fmt.Sprint(tc.params) {
				t.Errorf("params %v, want %v", params, tc.params)
			}
		})
	}

	for _, path := range []string{"/api/v1/nothing", "/api/v2/images/acme/app", "/images/acme/app", "/metrics"} {
		if _, _, err := s.FindRoute(httptest.NewRequest("GET", path, nil)); err == nil {
			t.Errorf("GET %s found a route, want none", path)
		}
	}
	_, _, err = s.FindRoute(httptest.NewRequest("PUT", "/api/v1/subscriptions/sub_x", nil))
	if want := "documents only DELETE, GET"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("PUT on a subscription: %v, want an error saying %q", err, want)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	body := `{"error":{"code":"method_not_allowed","message":"use GET"}}`
	h := jsonHeader.Clone()
	h.Set("Allow", "GET")
	wantPass(t, checkOne(t, "DELETE", "/api/v1/images/acme/app", nil, "", 405, h, body))
	wantFail(t, checkOne(t, "DELETE", "/api/v1/images/acme/app", nil, "", 405, jsonHeader, body), "Allow")
	wantFail(t, checkOne(t, "DELETE", "/api/v1/images/acme/app", nil, "", 405, h, `{"error":{"code":"not_found","message":"x"}}`))
	wantFail(t, checkOne(t, "DELETE", "/api/v1/images/acme/app", nil, "", 200, jsonHeader, report("4")), "not documented")
}

func TestUnknownPath(t *testing.T) {
	wantPass(t, checkOne(t, "GET", "/api/v1/nothing", nil, "", 404, jsonHeader, `{"error":{"code":"not_found","message":"x"}}`))
	wantFail(t, checkOne(t, "GET", "/api/v1/nothing", nil, "", 404, http.Header{"Content-Type": {"text/html"}}, `<p>not found</p>`))
	wantFail(t, checkOne(t, "GET", "/api/v1/nothing", nil, "", 404, jsonHeader, `{"error":{"code":"internal","message":"x"}}`))
	wantFail(t, checkOne(t, "GET", "/api/v1/nothing", nil, "", 200, jsonHeader, `{}`), "no documented operation")
}

func TestRequests(t *testing.T) {
	created := `{"id": "sub_abc", "image": "127.0.0.1:5000/acme/base:1.0", "url": "https://example.com/hook",
	  "events": ["image.updated", "base.updated"], "status": "pending", "secret": "whsec_c2VjcmV0",
	  "token": "tok", "manage": "http://localhost:8080/subscriptions/sub_abc?token=tok", "createdAt": "2026-11-26T22:00:00Z"}`
	t.Run("valid subscription request", func(t *testing.T) {
		wantPass(t, checkOne(t, "POST", "/api/v1/subscriptions", jsonHeader,
			`{"image": "127.0.0.1:5000/acme/base:1.0", "url": "https://example.com/hook", "events": ["image.updated", "base.updated"]}`,
			201, jsonHeader, created))
	})
	t.Run("events null", func(t *testing.T) {
		wantPass(t, checkOne(t, "POST", "/api/v1/subscriptions", jsonHeader,
			`{"image": "127.0.0.1:5000/acme/base:1.0", "url": "https://example.com/hook", "events": null}`,
			201, jsonHeader, created))
	})
	t.Run("unknown event", func(t *testing.T) {
		wantFail(t, checkOne(t, "POST", "/api/v1/subscriptions", jsonHeader,
			`{"image": "127.0.0.1:5000/acme/base:1.0", "url": "https://example.com/hook", "events": ["image.moved"]}`,
			201, jsonHeader, created), "events")
	})
	t.Run("malformed request accepted", func(t *testing.T) {
		wantFail(t, checkOne(t, "POST", "/api/v1/subscriptions", jsonHeader, `{"image": 5, "url": "https://example.com/hook"}`,
			201, jsonHeader, created), "request does not match")
	})
	t.Run("malformed request refused", func(t *testing.T) {
		wantPass(t, checkOne(t, "POST", "/api/v1/subscriptions", jsonHeader, `{"image": 5}`,
			400, jsonHeader, `{"error":{"code":"invalid_request","message":"bad"}}`))
	})
	t.Run("secret shown again", func(t *testing.T) {
		body := `{"id": "sub_abc", "image": "acme/base", "url": "https://example.com/hook", "events": ["image.updated"],
		  "status": "active", "secret": "whsec_c2VjcmV0", "createdAt": "2026-11-26T22:00:00Z", "deliveries": []}`
		wantFail(t, checkOne(t, "GET", "/api/v1/subscriptions/sub_abc", http.Header{"Authorization": {"Bearer tok"}}, "",
			200, jsonHeader, body), "secret")
	})
	t.Run("delete answers no body", func(t *testing.T) {
		wantPass(t, checkOne(t, "DELETE", "/api/v1/subscriptions/sub_abc", nil, "", 204, http.Header{}, ""))
		wantFail(t, checkOne(t, "DELETE", "/api/v1/subscriptions/sub_abc", nil, "", 204, jsonHeader, "{}"), "no content")
	})
	t.Run("registry envelope", func(t *testing.T) {
		h := http.Header{"Content-Type": {"application/vnd.docker.distribution.events.v2+json"}, "Authorization": {"Bearer x"}}
		wantPass(t, checkOne(t, "POST", "/hooks/registry", h, `{"events": [{"action": "push", "target": {"repository": "acme/app", "tag": "1"}}]}`,
			202, jsonHeader, `{"refreshing": ["127.0.0.1:5000/acme/app:1"]}`))
		wantFail(t, checkOne(t, "POST", "/hooks/registry", h, `{"events": "push"}`,
			202, jsonHeader, `{"refreshing": []}`), "request does not match")
	})
	t.Run("hook answer", func(t *testing.T) {
		wantPass(t, checkOne(t, "POST", "/images/acme/app/9f2c", nil, "", 200, jsonHeader, `{"status": "ok"}`))
		wantFail(t, checkOne(t, "POST", "/images/acme/app/9f2c", nil, "", 200, jsonHeader, `{"status": "OK"}`))
	})
	t.Run("healthz", func(t *testing.T) {
		wantPass(t, checkOne(t, "GET", "/healthz", nil, "", 200, http.Header{"Content-Type": {"text/plain; charset=utf-8"}}, "ok\n"))
		wantPass(t, checkOne(t, "HEAD", "/healthz", nil, "", 200, http.Header{"Content-Type": {"text/plain; charset=utf-8"}}, ""))
		wantFail(t, checkOne(t, "GET", "/healthz", nil, "", 200, jsonHeader, `"ok"`))
	})
}

func TestMicroBadgerImage(t *testing.T) {
	body := `{"ImageName": "acme/app", "Id": "` + digestA + `", "LatestSHA": "` + digestA + `", "LatestVersion": "2.3",
	  "LastUpdated": "2026-11-20T10:00:00Z", "UpdatedAt": "2026-11-26T22:00:00Z", "PullCount": 0, "StarCount": 0,
	  "LayerCount": 4, "DownloadSize": 31457280, "Labels": {"a": "b"},
	  "Versions": [{"SHA": "` + digestA + `", "Tags": [{"tag": "2.3"}], "ImageName": "acme/app", "Author": "",
	    "LayerCount": 4, "DownloadSize": 31457280, "Created": "2026-11-20T10:00:00Z",
	    "Layers": [{"BlobSum": "` + digestB + `", "Command": "", "DownloadSize": 1}],
	    "VersionControl": {"Type": "git", "URL": "https://github.com/acme/app", "Commit": "0f3c2a9"}}]}`
	wantPass(t, checkOne(t, "GET", "/v1/images/acme/app:2.3", nil, "", 200, jsonHeader, body))
	// Empty maps are left out, as MicroBadger's omitempty did.
	wantFail(t, checkOne(t, "GET", "/v1/images/acme/app:2.3", nil, "", 200, jsonHeader,
		strings.Replace(body, `"Labels": {"a": "b"}`, `"Labels": {}`, 1)), "Labels")
	// Official images are named without library/.
	wantFail(t, checkOne(t, "GET", "/v1/images/python", nil, "", 200, jsonHeader,
		strings.Replace(body, `"ImageName": "acme/app"`, `"ImageName": "library/python"`, 1)), "ImageName")
	// Numbers are always present.
	wantFail(t, checkOne(t, "GET", "/v1/images/acme/app:2.3", nil, "", 200, jsonHeader,
		strings.Replace(body, `"PullCount": 0, `, ``, 1)), "PullCount")
}

// server answers like the real one would for a few routes, and one wrong
// answer.
func server() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/images/{ref...}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Test", "1")
		if strings.HasSuffix(r.URL.Path, ":wrong") {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":{"code":"not_found","mesage":"x"}}`)
			return
		}
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":{"code":"not_found","message":"no such image"}}`)
	})
	mux.HandleFunc("POST /images/{ref...}", func(w http.ResponseWriter, r *http.Request) {
		// The image page's refresh form: HTML, not part of the JSON API.
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusSeeOther)
	})
	mux.HandleFunc("POST /api/v1/subscriptions", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if !bytes.Contains(b, []byte(`"image"`)) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":{"code":"invalid_request","message":"no image"}}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"id": "sub_abc", "image": "acme/base:1.0", "url": "https://example.com/hook", "events": ["image.updated"],
		  "status": "pending", "secret": "whsec_c2VjcmV0", "token": "tok", "createdAt": "2026-11-26T22:00:00Z",
		  "echo": `+fmt.Sprint(len(b))+`}`)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n") // sniffed as text/plain
	})
	return mux
}

func TestHandler(t *testing.T) {
	f := &fakeTB{TB: t}
	srv := httptest.NewServer(Handler(f, server()))
	defer srv.Close()
	client := srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	resp, err := client.Get(srv.URL + "/api/v1/images/docker.io/library/alpine:3.20")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || resp.Header.Get("X-Test") != "1" || string(b) != `{"error":{"code":"not_found","message":"no such image"}}` {
		t.Errorf("the client got %d %v %q, not what the handler wrote", resp.StatusCode, resp.Header, b)
	}
	resp, err = client.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = client.Post(srv.URL+"/images/acme/app:1.0/refresh", "application/x-www-form-urlencoded", strings.NewReader("x=1"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	wantPass(t, f.failures())

	// The handler reads the whole body the client sent.
	sent := `{"image": "acme/base:1.0", "url": "https://example.com/hook"}`
	resp, err = client.Post(srv.URL+"/api/v1/subscriptions", "application/json", strings.NewReader(sent))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), fmt.Sprintf(`"echo": %d}`, len(sent))) {
		t.Errorf("the handler did not get the whole body: %s", b)
	}
	wantFail(t, f.failures(), "echo", "201")

	f.errors = nil
	resp, err = client.Get(srv.URL + "/api/v1/images/acme/app:wrong")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	wantFail(t, f.failures(), "/api/v1/images/{reference}", "404")
}

func TestTransport(t *testing.T) {
	srv := httptest.NewServer(server())
	defer srv.Close()
	f := &fakeTB{TB: t}
	client := &http.Client{Transport: Transport(f, srv.Client().Transport)}

	resp, err := client.Get(srv.URL + "/api/v1/images/docker.io/library/alpine:3.20")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || string(b) != `{"error":{"code":"not_found","message":"no such image"}}` {
		t.Errorf("got %d %q through the transport", resp.StatusCode, b)
	}
	// A body without GetBody still reaches the server whole.
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/subscriptions", io.NopCloser(strings.NewReader(`{"url": 1}`)))
	req.Header.Set("Content-Type", "application/json")
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("status %d, want 400", resp.StatusCode)
	}
	wantPass(t, f.failures())

	resp, err = client.Get(srv.URL + "/api/v1/images/acme/app:wrong")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	wantFail(t, f.failures(), "mesage")
}

func TestChecked(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		want         bool
	}{
		{"GET", "/api/v1/images/acme/app", true},
		{"GET", "/v1/images/acme/app", true},
		{"POST", "/hooks/registry", true},
		{"GET", "/healthz", true},
		{"GET", "/readyz", true},
		{"POST", "/images/acme/app/9f2c", true},
		{"POST", "/images/acme/app/9f2c/", true},
		{"POST", "/images/acme/app:1.0/refresh", false},
		{"POST", "/images/python/refresh/", false},
		{"GET", "/images/acme/app/9f2c", false},
		{"POST", "/images/python", false},
		{"GET", "/badges/image/acme/app.svg", false},
		{"GET", "/metrics", false},
		{"GET", "/", false},
	} {
		if got := checked(tc.method, tc.path); got != tc.want {
			t.Errorf("checked(%s %s) = %v, want %v", tc.method, tc.path, got, tc.want)
		}
	}
}
