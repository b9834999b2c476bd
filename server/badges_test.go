package server_test

import (
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/badge"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/server"
)

// labelledImage is a random image of the platform with config labels.
func labelledImage(t *testing.T, layers int64, plat v1.Platform, labels map[string]string) v1.Image {
	t.Helper()
	img, err := random.Image(1024, layers)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = plat.OS, plat.Architecture, plat.Variant
	cf.Config.Labels = labels
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

func pushTo(t *testing.T, ref string, img v1.Image) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

var linuxAMD64 = v1.Platform{OS: "linux", Architecture: "amd64"}

// svgBadge is a rendered badge read back: its two texts.
type svgBadge struct {
	XMLName xml.Name `xml:"svg"`
	Groups  []struct {
		Texts []string `xml:"text"`
	} `xml:"g"`
}

type badgeAnswer struct {
	status      int
	header      http.Header
	body        []byte
	left, right string
}

func getBadge(t *testing.T, url string, header map[string]string) badgeAnswer {
	t.Helper()
	return doBadge(t, http.MethodGet, url, header)
}

func doBadge(t *testing.T, method, url string, header map[string]string) badgeAnswer {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := badgeAnswer{status: resp.StatusCode, header: resp.Header, body: body}
	if resp.Header.Get("Content-Type") == "image/svg+xml" && len(body) > 0 {
		var doc svgBadge
		if err := xml.Unmarshal(body, &doc); err != nil {
			t.Fatalf("GET %s: not XML: %v\n%s", url, err, body)
		}
		if len(doc.Groups) != 2 || len(doc.Groups[1].Texts) != 4 {
			t.Fatalf("GET %s: unexpected SVG %s", url, body)
		}
		a.left, a.right = doc.Groups[1].Texts[0], doc.Groups[1].Texts[2]
	}
	return a
}

func checkBadgeHeaders(t *testing.T, a badgeAnswer, cacheable bool) {
	t.Helper()
	h := a.header
	for k, want := range map[string]string{
		"Content-Type":            "image/svg+xml",
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if et := h.Get("ETag"); !strings.HasPrefix(et, `"`) || len(et) < 10 {
		t.Errorf("ETag = %q, want a strong entity tag", et)
	}
	cc := h.Get("Cache-Control")
	if cacheable && (!strings.Contains(cc, "max-age=") || strings.Contains(cc, "max-age=0") || strings.Contains(cc, "no-")) {
		t.Errorf("Cache-Control = %q, want a short positive max-age", cc)
	}
	if !cacheable && !strings.Contains(cc, "max-age=0") {
		t.Errorf("Cache-Control = %q, want max-age=0 for a badge about to change", cc)
	}
}

func TestBadgeKindsHeadersAndConditionalRequests(t *testing.T) {
	reg := faultreg.Start(t)
	url := stack.New(t, stack.Options{FreshFor: time.Hour, Images: images.Options{RetryFailedAfter: 0}, Server: &server.Options{Badges: server.BadgeOptions{}}}).URL
	img := labelledImage(t, 3, linuxAMD64, map[string]string{
		"org.opencontainers.image.version":  "2.3.1",
		"org.opencontainers.image.revision": "0f3c2a9e1b7d4c5a",
		"org.label-schema.license":          "Apache-2.0",
	})
	pushTo(t, reg.Host+"/acme/app:2.3", img)
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	for _, l := range m.Layers {
		size += l.Size
	}

	for _, tc := range []struct{ kind, left, right string }{
		{"image", analysis.HumanSize(size), "3 layers"},
		{"version", "version", "2.3.1"},
		{"commit", "commit", "0f3c2a9"},
		{"license", "license", "Apache-2.0"},
		{"base", "base", "not given"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			u := url + "/badges/" + tc.kind + "/" + reg.Host + "/acme/app:2.3.svg"
			a := getBadge(t, u, nil)
			if a.status != 200 || a.left != tc.left || a.right != tc.right {
				t.Fatalf("got %d %q | %q, want 200 %q | %q", a.status, a.left, a.right, tc.left, tc.right)
			}
			checkBadgeHeaders(t, a, true)
			etag := a.header.Get("ETag")

			for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag, "*"} {
				c := getBadge(t, u, map[string]string{"If-None-Match": inm})
				if c.status != http.StatusNotModified || len(c.body) != 0 || c.header.Get("ETag") != etag {
					t.Errorf("If-None-Match %s: got %d with %d bytes, ETag %q; want 304, empty, %s", inm, c.status, len(c.body), c.header.Get("ETag"), etag)
				}
			}
			if c := getBadge(t, u, map[string]string{"If-None-Match": `"stale"`}); c.status != 200 || c.right != tc.right {
				t.Errorf("a non-matching If-None-Match got %d %q", c.status, c.right)
			}
			if h := doBadge(t, http.MethodHead, u, nil); h.status != 200 || len(h.body) != 0 || h.header.Get("ETag") != etag {
				t.Errorf("HEAD got %d with %d bytes and ETag %q", h.status, len(h.body), h.header.Get("ETag"))
			}
		})
	}
	// The same image by digest has the same badges.
	d, _ := img.Digest()
	if a := getBadge(t, url+"/badges/commit/"+reg.Host+"/acme/app@"+d.String()+".svg", nil); a.status != 200 || a.right != "0f3c2a9" {
		t.Errorf("by digest: %d %q", a.status, a.right)
	}
}

func TestBadgeErrors(t *testing.T) {
	reg := faultreg.Start(t)
	url := stack.New(t, stack.Options{FreshFor: time.Hour, Images: images.Options{RetryFailedAfter: 0}, Server: &server.Options{Badges: server.BadgeOptions{}}}).URL
	pushTo(t, reg.Host+"/acme/app:1", labelledImage(t, 1, linuxAMD64, nil))

	// Unknown images are grey "not found" badges with status 200.
	for _, path := range []string{
		"/badges/version/" + reg.Host + "/acme/nothing:1.svg",
		"/badges/image/" + reg.Host + "/acme/app:nope.svg",
		"/badges/image/" + reg.Host + "/acme/app:1.svg?platform=linux/s390x",
	} {
		a := getBadge(t, url+path, nil)
		if a.status != 200 || a.right != "not found" {
			t.Errorf("%s: got %d %q, want 200 \"not found\"", path, a.status, a.right)
		}
		checkBadgeHeaders(t, a, true)
	}

	// A registry failure is a 200 grey badge saying so (a README's image
	// proxy would show any other status as a broken image), never cached.
	a := getBadge(t, url+"/badges/version/169.254.169.254/acme/app:1.svg", nil)
	if a.status != http.StatusOK || a.right != "registry refused" {
		t.Errorf("refused registry: got %d %q, want 200 \"registry refused\"", a.status, a.right)
	}
	checkBadgeHeaders(t, a, false)

	// Mistakes in the URL are SVGs too (API.md: every answer under /badges/
	// is one): an unknown kind is a 404 grey "unknown badge", a reference or
	// platform that does not parse a grey "invalid".
	for _, tc := range []struct {
		path   string
		status int
		right  string
	}{
		{"/badges/size/" + reg.Host + "/acme/app:1.svg", 404, "unknown badge"},
		{"/badges/Image/" + reg.Host + "/acme/app:1.svg", 404, "unknown badge"},
		{"/badges/version/UPPER/Case:1.svg", 200, "invalid"},
		{"/badges/version/" + reg.Host + "/acme/app:1.svg?platform=linux", 200, "invalid"},
		{"/badges/version/" + reg.Host + "/acme/app:1.svg?platform=linux/amd64/v1/x", 200, "invalid"},
	} {
		a := getBadge(t, url+tc.path, nil)
		if a.status != tc.status || a.right != tc.right {
			t.Errorf("%s: got %d %q, want %d %q", tc.path, a.status, a.right, tc.status, tc.right)
		}
		checkBadgeHeaders(t, a, true)
	}
}

func TestBadgePlatformSelection(t *testing.T) {
	reg := faultreg.Start(t)
	url := stack.New(t, stack.Options{FreshFor: time.Hour, Images: images.Options{RetryFailedAfter: 0}, Server: &server.Options{Badges: server.BadgeOptions{}}}).URL
	amd := labelledImage(t, 2, linuxAMD64, map[string]string{"org.opencontainers.image.version": "1.0-amd64"})
	arm := labelledImage(t, 4, v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, map[string]string{"org.opencontainers.image.version": "1.0-arm64"})
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &linuxAMD64}},
	)
	r, _ := name.ParseReference(reg.Host + "/acme/multi:1.0")
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	base := url + "/badges/%s/" + reg.Host + "/acme/multi:1.0.svg"
	for _, tc := range []struct{ kind, query, want string }{
		{"version", "", "1.0-amd64"},
		{"version", "?platform=linux/amd64", "1.0-amd64"},
		{"version", "?platform=linux/arm64/v8", "1.0-arm64"},
		{"version", "?platform=linux/arm64", "1.0-arm64"},
		{"image", "", "2 layers"},
		{"image", "?platform=linux/arm64/v8", "4 layers"},
		{"version", "?platform=windows/amd64", "not found"},
	} {
		u := strings.Replace(base, "%s", tc.kind, 1) + tc.query
		if a := getBadge(t, u, nil); a.status != 200 || a.right != tc.want {
			t.Errorf("%s%s: got %d %q, want 200 %q", tc.kind, tc.query, a.status, a.right, tc.want)
		}
	}
}

// TestBadgeNeverWaitsOnTheRegistry: once a report is stored, badges answer
// while the registry holds every request; a stale report is refreshed by one
// background request however many badges ask, and the next badges show what
// the refresh found.
func TestBadgeNeverWaitsOnTheRegistry(t *testing.T) {
	reg := faultreg.Start(t)
	// Every stored tag is stale at once, so every badge would refresh if it could.
	url := stack.New(t, stack.Options{FreshFor: time.Nanosecond, Images: images.Options{RetryFailedAfter: 100 * time.Millisecond}, Server: &server.Options{Badges: server.BadgeOptions{}}}).URL
	ref := reg.Host + "/acme/app:1"
	pushTo(t, ref, labelledImage(t, 1, linuxAMD64, map[string]string{"org.opencontainers.image.version": "1.0.0"}))
	u := url + "/badges/version/" + ref + ".svg"
	if a := getBadge(t, u, nil); a.right != "1.0.0" {
		t.Fatalf("first badge %q", a.right)
	}
	// Let the refresh the first badge may have started finish and be forgotten.
	time.Sleep(200 * time.Millisecond)
	reg.Requests()

	pushTo(t, ref, labelledImage(t, 1, linuxAMD64, map[string]string{"org.opencontainers.image.version": "1.1.0"}))
	reg.Requests() // the push's own requests
	reg.Add(faultreg.Rule{PathContains: "/manifests/", Fault: faultreg.Hold})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if a := getBadge(t, u, nil); a.status != 200 || a.right != "1.0.0" {
				t.Errorf("badge while the registry hangs: %d %q, want the stored 1.0.0", a.status, a.right)
			}
		})
	}
	wg.Wait() // every badge answered while the registry held its requests
	if got := reg.WaitRequests(1, 10*time.Second, "/manifests/"); len(got) != 1 || !strings.HasPrefix(got[0], "HEAD ") {
		t.Errorf("registry saw %v, want exactly one HEAD for 20 stale badges", got)
	}
	reg.Release()

	deadline := time.Now().Add(10 * time.Second)
	for {
		a := getBadge(t, u, nil)
		if a.right == "1.1.0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("badge still says %q long after the background refresh", a.right)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBadgeFirstInspection: a badge for an image never seen waits for its
// inspection a bounded time, answers "not found yet" if it takes longer, and
// shows the image once the inspection, started once, has finished.
func TestBadgeFirstInspection(t *testing.T) {
	reg := faultreg.Start(t)
	url := stack.New(t, stack.Options{FreshFor: time.Hour, Images: images.Options{RetryFailedAfter: time.Minute}, Server: &server.Options{Badges: server.BadgeOptions{}}}).URL // waits 3 s, as served
	pushTo(t, reg.Host+"/acme/quick:1", labelledImage(t, 1, linuxAMD64, map[string]string{"org.opencontainers.image.licenses": "MIT"}))
	pushTo(t, reg.Host+"/acme/slow:1", labelledImage(t, 1, linuxAMD64, map[string]string{"org.opencontainers.image.licenses": "BSD-3-Clause"}))
	reg.Requests()

	// A registry that answers in time: the first badge is the real one.
	if a := getBadge(t, url+"/badges/license/"+reg.Host+"/acme/quick:1.svg", nil); a.status != 200 || a.right != "MIT" {
		t.Errorf("first badge of a quick image: %d %q", a.status, a.right)
	}

	reg.Requests()
	reg.Add(faultreg.Rule{PathContains: "/manifests/", Fault: faultreg.Hold})
	u := url + "/badges/license/" + reg.Host + "/acme/slow:1.svg"
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			a := getBadge(t, u, nil)
			if a.status != 200 || a.right != "not found yet" {
				t.Errorf("badge while the first inspection hangs: %d %q", a.status, a.right)
			}
			checkBadgeHeaders(t, a, false)
		})
	}
	wg.Wait()
	if got := reg.WaitRequests(1, 10*time.Second, "/manifests/"); len(got) != 1 {
		t.Errorf("registry saw %v, want one inspection for 10 badges", got)
	}
	reg.Release()
	deadline := time.Now().Add(10 * time.Second)
	for {
		a := getBadge(t, u, nil)
		if a.right == "BSD-3-Clause" {
			checkBadgeHeaders(t, a, true)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("badge still says %q after the inspection could finish", a.right)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// BenchmarkBadgeCached measures one cached badge through the whole handler
// chain (router, logging, metrics), beside the same bytes written from
// memory with the same headers: the in-process half of what bench/loadbench
// measures over loopback.
func BenchmarkBadgeCached(b *testing.B) {
	s := stack.New(b, stack.Options{Registry: true, Server: &server.Options{}})
	host := s.Registry.Host
	img, err := random.Image(1024, 2)
	if err != nil {
		b.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.Config.Labels = map[string]string{"org.opencontainers.image.version": "1.0.3"}
	img, _ = mutate.ConfigFile(img, cf)
	ref, err := name.ParseReference(host + "/bench/app:1")
	if err != nil {
		b.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		b.Fatal(err)
	}
	srv := s.Server
	baseline := badge.Render(badge.Badge{Left: "version", Right: "1.0.3", Color: badge.ColorValue})
	fromMemory := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "image/svg+xml")
		h.Set("ETag", baseline.ETag)
		h.Set("Cache-Control", "public, max-age=60")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		h.Set("Content-Length", strconv.Itoa(len(baseline.SVG)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(baseline.SVG)
	})
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{
		{"badge", srv},
		{"baseline", fromMemory},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/badges/version/"+host+"/bench/app:1.svg", nil)
			w := httptest.NewRecorder()
			bc.h.ServeHTTP(w, req)
			if w.Code != 200 || !strings.Contains(w.Body.String(), ">1.0.3<") {
				b.Fatalf("%s: %d %s", bc.name, w.Code, w.Body)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				w := httptest.NewRecorder()
				bc.h.ServeHTTP(w, req)
			}
		})
	}
}
