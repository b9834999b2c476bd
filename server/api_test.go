package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/crane"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/server"
)

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("GET %s: Content-Type %q", url, ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func pushRandom(t *testing.T, ref string) v1.Image {
	t.Helper()
	img, err := random.Image(512, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := crane.Push(img, ref); err != nil {
		t.Fatal(err)
	}
	return img
}

func TestImageReportAndRequestCounts(t *testing.T) {
	reg := faultreg.Start(t)
	s := stack.New(t, stack.Options{Timeout: 5 * time.Second, Server: &server.Options{}})
	img := pushRandom(t, reg.Host+"/acme/app:1")
	reg.Requests()

	var rep analysis.Report
	if code := getJSON(t, s.URL+"/api/v1/images/"+reg.Host+"/acme/app:1", &rep); code != 200 {
		t.Fatalf("status %d", code)
	}
	digest, _ := img.Digest()
	m, _ := img.Manifest()
	if rep.Digest != digest.String() || rep.Repository != "acme/app" || rep.Registry != reg.Host || rep.Tag != "1" {
		t.Errorf("report names %s %s %s %s", rep.Registry, rep.Repository, rep.Tag, rep.Digest)
	}
	if !cmp.Equal(rep.Tags, []string{"1"}) {
		t.Errorf("tags = %v", rep.Tags)
	}
	if len(rep.Platforms) != 1 || rep.Platforms[0].LayerCount != len(m.Layers) || rep.Platforms[0].ConfigDigest != m.Config.Digest.String() {
		t.Fatalf("platforms = %+v", rep.Platforms)
	}

	// Immutable content is never fetched again: a refresh costs one HEAD,
	// and the look for signatures and attestations, which come after the
	// image (the tag list and the image's referrers).
	refreshed := []string{"HEAD /v2/acme/app/manifests/1", "GET /v2/acme/app/tags/list", "GET /v2/acme/app/referrers/" + digest.String()}
	reg.Requests()
	if code := getJSON(t, s.URL+"/api/v1/images/"+reg.Host+"/acme/app:1?refresh=1", &rep); code != 200 {
		t.Fatalf("status %d", code)
	}
	if got, want := reg.Requests(), refreshed; !cmp.Equal(got, want) {
		t.Errorf("refresh made requests %v, want %v", got, want)
	}
	// Without refresh, a freshly checked tag is answered from the store alone.
	if code := getJSON(t, s.URL+"/api/v1/images/"+reg.Host+"/acme/app:1", &rep); code != 200 {
		t.Fatalf("status %d", code)
	}
	if got := reg.Requests(); len(got) != 0 {
		t.Errorf("plain read made requests %v, want none", got)
	}
	// POST refresh is the same path.
	resp, err := http.Post(s.URL+"/api/v1/images/"+reg.Host+"/acme/app:1/refresh", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, want := reg.Requests(), refreshed; resp.StatusCode != 200 || !cmp.Equal(got, want) {
		t.Errorf("POST refresh: status %d, requests %v, want 200 and %v", resp.StatusCode, got, want)
	}
	// By digest, the stored manifest answers without any request.
	if code := getJSON(t, s.URL+"/api/v1/images/"+reg.Host+"/acme/app@"+digest.String(), &rep); code != 200 || rep.Digest != digest.String() {
		t.Fatalf("by digest: status %d digest %s", code, rep.Digest)
	}
	if got := reg.Requests(); len(got) != 0 {
		t.Errorf("read by digest made requests %v, want none", got)
	}
}

func TestErrorsAnswerTheContract(t *testing.T) {
	reg := faultreg.Start(t)
	s := stack.New(t, stack.Options{Timeout: 5 * time.Second, Server: &server.Options{}})
	pushRandom(t, reg.Host+"/acme/app:1")
	for _, tc := range []struct {
		path   string
		status int
		code   string
	}{
		{"/api/v1/images/UPPER/Case:1", 400, "invalid_reference"},
		{"/api/v1/images/acme/app:bad tag", 400, "invalid_reference"},
		{"/api/v1/images/" + reg.Host + "/acme/app:nope", 404, "not_found"},
		{"/api/v1/images/" + reg.Host + "/acme/nothing:1", 404, "not_found"},
		{"/api/v1/images/169.254.169.254/x:1", 403, "registry_forbidden"},
		{"/api/v1/images/[fd00:ec2::254]:80/x:1", 403, "registry_forbidden"},
		{"/api/v1/nothing-here", 404, "not_found"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			var body errorBody
			code := getJSON(t, s.URL+tc.path, &body)
			if code != tc.status || body.Error.Code != tc.code {
				t.Errorf("got %d %q, want %d %q", code, body.Error.Code, tc.status, tc.code)
			}
			if body.Error.Message == "" || strings.Contains(body.Error.Message, "http://") || strings.Contains(body.Error.Message, "goroutine") {
				t.Errorf("message %q is empty or leaks internals", body.Error.Message)
			}
		})
	}
}

func TestHangingRegistryTimesOutWhileHealthzAnswers(t *testing.T) {
	block := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(block)
	s := stack.New(t, stack.Options{Timeout: time.Second, Server: &server.Options{}})

	done := make(chan struct{})
	var code int
	var body errorBody
	go func() {
		defer close(done)
		code = getJSON(t, s.URL+"/api/v1/images/"+strings.TrimPrefix(hang.URL, "http://")+"/acme/app:1", &body)
	}()
	// While the image request waits on the registry, /healthz answers.
	for i := 0; i < 5; i++ {
		resp, err := http.Get(s.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != "ok" {
			t.Fatalf("healthz = %d %q", resp.StatusCode, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("no answer long after the 1s registry deadline")
	}
	if code != 504 || body.Error.Code != "registry_timeout" {
		t.Errorf("got %d %q, want 504 registry_timeout", code, body.Error.Code)
	}
}

func TestMetrics(t *testing.T) {
	s := stack.New(t, stack.Options{Timeout: time.Second, Server: &server.Options{}})
	http.Get(s.URL + "/healthz")
	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `imagebadger_http_requests_total{code="200",route="healthz"} 1`) {
		t.Errorf("metrics = %d\n%s", resp.StatusCode, b)
	}
}

func decode(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", resp.Request.URL, err)
	}
}

// TestRefreshesAreRateLimitedPerClient: each refresh costs registry
// requests, so one client gets 20 per 10 minutes, then 429 with Retry-After,
// while plain reads go on being answered from the store.
func TestRefreshesAreRateLimitedPerClient(t *testing.T) {
	reg := faultreg.Start(t)
	s := stack.New(t, stack.Options{Timeout: 5 * time.Second, Server: &server.Options{}})
	pushRandom(t, reg.Host+"/acme/app:1")
	url := s.URL + "/api/v1/images/" + reg.Host + "/acme/app:1"
	for i := 0; i < 20; i++ {
		resp, err := http.Post(url+"/refresh", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("refresh %d: %d", i+1, resp.StatusCode)
		}
	}
	var body errorBody
	resp, err := http.Get(url + "?refresh=1")
	if err != nil {
		t.Fatal(err)
	}
	decode(t, resp, &body)
	if resp.StatusCode != 429 || body.Error.Code != "rate_limited" || resp.Header.Get("Retry-After") == "" {
		t.Errorf("21st refresh: %d %q Retry-After %q, want 429 rate_limited with Retry-After", resp.StatusCode, body.Error.Code, resp.Header.Get("Retry-After"))
	}
	var rep map[string]any
	if code := getJSON(t, url, &rep); code != 200 {
		t.Errorf("a plain read after the limit: %d", code)
	}
}

// TestStaleReadsDoNotWaitOnTheRegistry: once the poll interval has passed,
// a plain read (JSON, page, MicroBadger API) is answered from the store at
// once while one background HEAD refreshes the tag for the next reader.
func TestStaleReadsDoNotWaitOnTheRegistry(t *testing.T) {
	reg := faultreg.Start(t)
	s := stack.New(t, stack.Options{Timeout: 10 * time.Second, FreshFor: 50 * time.Millisecond, Server: &server.Options{}})
	pushRandom(t, reg.Host+"/acme/app:1")
	var rep analysis.Report
	if code := getJSON(t, s.URL+"/api/v1/images/"+reg.Host+"/acme/app:1", &rep); code != 200 {
		t.Fatalf("first read: %d", code)
	}
	// The MicroBadger API lists the repository's tags on its first read.
	var mb map[string]any
	if code := getJSON(t, s.URL+"/v1/images/"+reg.Host+"/acme/app:1", &mb); code != 200 {
		t.Fatalf("first MicroBadger read: %d", code)
	}
	time.Sleep(100 * time.Millisecond) // the resolution and the listing are now stale
	reg.Requests()
	reg.Add(faultreg.Rule{PathContains: "/manifests/", Fault: faultreg.Hold})
	for _, path := range []string{"/api/v1/images/", "/images/", "/v1/images/"} {
		resp, err := http.Get(s.URL + path + reg.Host + "/acme/app:1")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("stale read of %s while the registry holds every request: %d", path, resp.StatusCode)
		}
	}
	// One background refresh is waiting at the registry for all three reads
	// (the MicroBadger read's background listing checks the tag through it).
	if got := reg.WaitRequests(1, 5*time.Second, "/manifests/"); len(got) != 1 || got[0] != "HEAD /v2/acme/app/manifests/1" {
		t.Errorf("background refresh requests = %v, want one HEAD", got)
	}
	reg.Release()
}
