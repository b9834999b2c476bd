package server_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/server"
)

// TestRegistryFaults: for each way a registry can misbehave, the service
// answers the documented error, stores nothing unverified, and keeps serving.
func TestRegistryFaults(t *testing.T) {
	s := stack.New(t, stack.Options{Timeout: time.Second, Server: &server.Options{}})
	healthy := faultreg.Start(t)
	pushRandom(t, healthy.Host+"/acme/fine:1")
	for _, tc := range []struct {
		name   string
		rules  func(manifest, config string) []faultreg.Rule
		status int
		code   string
	}{
		{"slow past the deadline", func(m, c string) []faultreg.Rule {
			return []faultreg.Rule{{PathContains: "/manifests/", Fault: faultreg.Slow, Delay: 3 * time.Second}}
		}, 504, "registry_timeout"},
		{"reset mid-body", func(m, c string) []faultreg.Rule {
			return []faultreg.Rule{{Method: "GET", PathContains: "/manifests/", Fault: faultreg.ResetMidBody}}
		}, 502, "registry_error"},
		{"429 with Retry-After", func(m, c string) []faultreg.Rule {
			return []faultreg.Rule{{PathContains: "/manifests/", Fault: faultreg.RateLimit, RetryAfter: 7}}
		}, 429, "rate_limited"},
		{"500s", func(m, c string) []faultreg.Rule {
			return []faultreg.Rule{{PathContains: "/manifests/", Fault: faultreg.ServerError}}
		}, 502, "registry_error"},
		{"truncated config", func(m, c string) []faultreg.Rule {
			return []faultreg.Rule{{Method: "GET", PathContains: "/blobs/", Fault: faultreg.Truncate}}
		}, 502, "registry_error"},
		{"oversized manifest", func(m, c string) []faultreg.Rule {
			return []faultreg.Rule{{Method: "GET", PathContains: "/manifests/", Fault: faultreg.Oversize, Pad: 5 << 20}}
		}, 502, "registry_error"},
		// Asked for by digest: a first read of a tag fetches it by tag, and
		// a body fetched so is stored under its own digest; one asked for by
		// digest (a reference @sha256:…, a platform of an index, a tag seen
		// before whose HEAD named the digest) must match it.
		{"manifest not matching its digest", func(m, c string) []faultreg.Rule {
			return []faultreg.Rule{{Method: "GET", PathContains: "/manifests/" + m, Fault: faultreg.WrongDigest}}
		}, 502, "registry_error"},
		{"config not matching its digest", func(m, c string) []faultreg.Rule {
			return []faultreg.Rule{{Method: "GET", PathContains: "/blobs/" + c, Fault: faultreg.WrongDigest}}
		}, 502, "registry_error"},
		{"redirect to a metadata address", func(m, c string) []faultreg.Rule {
			return []faultreg.Rule{{Method: "GET", PathContains: "/blobs/", Fault: faultreg.RedirectTo, Location: "http://169.254.169.254/latest/meta-data/"}}
		}, 403, "registry_forbidden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := faultreg.New()
			defer reg.Close()
			img, _ := random.Image(1024, 2)
			if err := crane.Push(img, reg.Host+"/acme/app:1"); err != nil {
				t.Fatal(err)
			}
			digest, _ := img.Digest()
			cfg, _ := img.ConfigName()
			reg.Add(tc.rules(digest.String(), cfg.String())...)

			ref := reg.Host + "/acme/app:1"
			if tc.name == "manifest not matching its digest" {
				ref = reg.Host + "/acme/app@" + digest.String()
			}
			resp, err := http.Get(s.URL + "/api/v1/images/" + ref)
			if err != nil {
				t.Fatal(err)
			}
			var body errorBody
			decode(t, resp, &body)
			if resp.StatusCode != tc.status || body.Error.Code != tc.code {
				t.Errorf("got %d %q (%s), want %d %q", resp.StatusCode, body.Error.Code, body.Error.Message, tc.status, tc.code)
			}
			if tc.status == 429 && resp.Header.Get("Retry-After") != "7" {
				t.Errorf("Retry-After = %q, want the registry's 7", resp.Header.Get("Retry-After"))
			}
			// Nothing unverified was kept.
			ctx := context.Background()
			if _, _, err := s.Store.Manifest(ctx, digest.String()); tc.status != 200 && err == nil && tc.name == "manifest not matching its digest" {
				t.Error("a manifest that failed verification was stored")
			}
			if got, err := s.Store.Config(ctx, cfg.String()); err == nil && (tc.name == "config not matching its digest" || tc.name == "truncated config") {
				t.Errorf("a config that failed verification was stored (%d bytes)", len(got))
			} else if err != nil && !errors.Is(err, analysis.ErrNotFound) {
				t.Fatal(err)
			}
			// The service keeps serving other registries.
			var ok map[string]any
			if code := getJSON(t, s.URL+"/api/v1/images/"+healthy.Host+"/acme/fine:1?refresh=1", &ok); code != 200 {
				t.Errorf("a healthy registry then answers %d", code)
			}
			// And the same image is read once the registry behaves again.
			reg.Reset()
			if tc.status != 429 { // the client rightly holds this registry for 7 s
				if code := getJSON(t, s.URL+"/api/v1/images/"+reg.Host+"/acme/app:1?refresh=1", &ok); code != 200 {
					t.Errorf("after the fault is gone: %d %v", code, ok)
				}
			}
		})
	}
}
