package server_test

import (
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/server"
)

// TestUnauthorizedSaysNothingOfCredentialsToAnonymous: a registry that
// wants credentials answers registry_unauthorized whether the service has
// none for it or has some the registry refuses. To an anonymous caller
// both answers are byte for byte the same, on every route that shows the
// message (the JSON API, the image page, the subscription form), so they
// tell nothing of which registries the operator holds credentials for; a
// signed-in person reads which case it is.
func TestUnauthorizedSaysNothingOfCredentialsToAnonymous(t *testing.T) {
	reg := faultreg.Start(t)
	pushRandom(t, reg.Host+"/locked/app:1")
	reg.Add(faultreg.Rule{Fault: faultreg.RequireBasicAuth, PathContains: "/locked/", Username: "reader", Password: "s3cret"})
	wrong := credentials{reg.Host: {Username: "reader", Password: "not-the-password"}}

	for _, policy := range []images.Policy{images.PrivateToSignedIn, images.PrivateToEveryone} {
		t.Run(string(policy), func(t *testing.T) { unauthorizedAnswers(t, reg, wrong, policy) })
	}
}

// unauthorizedAnswers is TestUnauthorizedSaysNothingOfCredentialsToAnonymous
// under one --private-images policy.
func unauthorizedAnswers(t *testing.T, reg *faultreg.Registry, wrong credentials, policy images.Policy) {
	// Sign-in is by a proxy's header from 127.0.0.1.
	newStack := func(keychain authn.Keychain) *stack.Stack {
		return stack.New(t, stack.Options{Keychain: keychain, Notify: true, AllowPrivateWebhooks: true,
			Images: images.Options{PrivateImages: policy},
			Auth: &auth.Options{ProxyHeader: "X-Forwarded-Email", ProxyTrusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
				BadgeKey: []byte("badge key of the test")},
			Server: &server.Options{}})
	}
	none, held := newStack(nil), newStack(wrong)
	ref := reg.Host + "/locked/app:1"

	type route struct{ name, method, path, contentType, body string }
	routes := []route{
		{"api image", "GET", "/api/v1/images/" + ref, "", ""},
		{"microbadger v1", "GET", "/v1/images/" + ref, "", ""},
		{"page image", "GET", "/images/" + ref, "", ""},
		{"api tags", "GET", "/api/v1/repositories/" + reg.Host + "/locked/app/tags", "", ""},
		{"api subscribe", "POST", "/api/v1/subscriptions", "application/json", `{"image":"` + ref + `","url":"http://127.0.0.1:9/hook"}`},
		{"page subscribe", "POST", "/subscriptions", "application/x-www-form-urlencoded", "image=" + ref + "&url=http://127.0.0.1:9/hook&events=image.updated"},
	}
	do := func(s *stack.Stack, r route, person string) answer {
		t.Helper()
		req, err := http.NewRequest(r.method, s.URL+r.path, strings.NewReader(r.body))
		if err != nil {
			t.Fatal(err)
		}
		if r.contentType != "" {
			req.Header.Set("Content-Type", r.contentType)
		}
		if person != "" {
			req.Header.Set("X-Forwarded-Email", person)
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
	for _, r := range routes {
		t.Run(r.name, func(t *testing.T) {
			a, b := do(none, r, ""), do(held, r, "")
			if a.status != http.StatusForbidden && a.status != http.StatusBadRequest {
				t.Fatalf("without credentials: %d %s, want the registry's refusal", a.status, a.body)
			}
			if strings.HasPrefix(a.contentType, "application/json") && !strings.Contains(a.body, `"registry_unauthorized"`) {
				t.Errorf("without credentials: %s, want the code registry_unauthorized", a.body)
			}
			if a != b {
				t.Errorf("anonymous answers differ:\nwithout credentials: %d %s\n%s\nwith refused ones: %d %s\n%s", a.status, a.contentType, a.body, b.status, b.contentType, b.body)
			}
			for _, leak := range []string{"does not have", "this service has", "from the Docker config"} {
				if strings.Contains(a.body, leak) || strings.Contains(b.body, leak) {
					t.Errorf("an anonymous answer says %q", leak)
				}
			}
			if r.method != "GET" {
				return // a signed-in person's write would go on to subscribe
			}
			sa, sb := do(none, r, "ops@example.com"), do(held, r, "ops@example.com")
			if !strings.Contains(sa.body, "requires credentials this service does not have") ||
				!strings.Contains(sb.body, "refused the credentials this service has") {
				t.Errorf("a signed-in person is not told which case it is:\n%s\n%s", sa.body, sb.body)
			}
		})
	}
}
