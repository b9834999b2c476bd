package server_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/internal/testing/syncbuf"
	"github.com/imagebadger/imagebadger/server"
)

func errCode(m map[string]any) string {
	if e, ok := m["error"].(map[string]any); ok {
		s, _ := e["code"].(string)
		return s
	}
	return ""
}

func TestRegistryHookIsOffWithoutToken(t *testing.T) {
	s := stack.New(t, stack.Options{Registry: true, Notify: true, Server: &server.Options{}})
	code, out := stack.PostHook(t, s.URL+"/hooks/registry", "", "application/json", `{"events":[]}`)
	if code != 404 || errCode(out) != "not_found" {
		t.Errorf("hook without --hook-token: %d %v", code, out)
	}
	// The answer says the route is off and which setting turns it on.
	if msg, _ := out["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "disabled") || !strings.Contains(msg, "--hook-token") {
		t.Errorf("disabled hook's message %q does not say how to enable it", msg)
	}
}

// TestDockerHubHook checks the per-repository token, made by the
// repository's first subscription (to a registry standing in for Docker
// Hub) and shown on the page confirming it and on the form from then on.
// The watcher is not run: the refresh it queues would go to the stand-in,
// which is not what is tested.
func TestDockerHubHook(t *testing.T) {
	reg := stack.New(t, stack.Options{Registry: true})
	s := stack.New(t, stack.Options{Store: reg.Store, Endpoints: map[string]string{analysis.DockerHub: reg.Registry.Host},
		Notify: true, AllowPrivateWebhooks: true, Server: &server.Options{}})
	stack.Push(t, reg.Registry.Host+"/acme/app:1")
	hookOn := func(page string) string {
		i := strings.Index(page, "/hooks/dockerhub/")
		if i < 0 {
			return ""
		}
		token := page[i+len("/hooks/dockerhub/"):]
		return token[:strings.IndexAny(token, `"<`)]
	}
	if _, page := get(t, s.URL+"/subscriptions/new?image="+url.QueryEscape("acme/app:1")); hookOn(page) != "" {
		t.Fatal("a Docker Hub hook URL on the form before any subscription")
	}
	rc := stack.NewReceiver(t)
	code, created := form(t, s.URL+"/subscriptions", "", url.Values{"image": {"acme/app:1"}, "url": {rc.URL + "/hook"}, "events": {"image.updated"}})
	token := hookOn(created)
	if code != http.StatusCreated || token == "" {
		t.Fatalf("subscribing: %d, hook token %q on the page", code, token)
	}
	if _, page := get(t, s.URL+"/subscriptions/new?image="+url.QueryEscape("acme/app:2")); hookOn(page) != token {
		t.Errorf("the form shows the hook token %q, want the one made by the subscription %q", hookOn(page), token)
	}
	body := `{"push_data":{"tag":"1.2"},"repository":{"repo_name":"acme/app"}}`

	code, out := stack.PostHook(t, s.URL+"/hooks/dockerhub/"+token, "", "application/json", body)
	if code != 202 || len(out["refreshing"].([]any)) != 1 || out["refreshing"].([]any)[0] != "docker.io/acme/app:1.2" {
		t.Errorf("hook: %d %v", code, out)
	}
	if code, out := stack.PostHook(t, s.URL+"/hooks/dockerhub/wrong", "", "application/json", body); code != 401 || errCode(out) != "unauthorized" {
		t.Errorf("unknown token: %d %v", code, out)
	}
	other := `{"push_data":{"tag":"1"},"repository":{"repo_name":"someone/else"}}`
	if code, out := stack.PostHook(t, s.URL+"/hooks/dockerhub/"+token, "", "application/json", other); code != 401 || errCode(out) != "unauthorized" {
		t.Errorf("token of another repository: %d %v", code, out)
	}
	if code, out := stack.PostHook(t, s.URL+"/hooks/dockerhub/"+token, "", "application/json", `{`); code != 400 || errCode(out) != "invalid_request" {
		t.Errorf("malformed body: %d %v", code, out)
	}
}

// TestRegistryHookRefreshesAndDelivers: an authenticated distribution
// notification of a push refreshes the tag, and the subscriber hears of the
// move; without the token nothing is refreshed.
func TestRegistryHookRefreshesAndDelivers(t *testing.T) {
	stack.EachEngine(t, func(t *testing.T, engine string) {
		s := stack.New(t, stack.Options{Engine: engine, Registry: true, Notify: true, Watcher: true, AllowPrivateWebhooks: true, Server: &server.Options{HookToken: "s3cret"}})
		rc := stack.NewReceiver(t)
		ref := s.Registry.Host + "/acme/base:1.0"
		old := stack.Push(t, ref)
		_, _, sub := stack.Call(t, "POST", s.URL+"/api/v1/subscriptions", "", map[string]any{"image": ref, "url": rc.URL, "events": []string{"image.updated"}})
		if sub.Status != "active" {
			t.Fatalf("subscription %+v", sub)
		}
		moved := stack.Push(t, ref)
		envelope := `{"events":[{"action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + moved +
			`","repository":"acme/base","tag":"1.0","url":"http://` + s.Registry.Host + `/v2/acme/base/manifests/` + moved +
			`"},"request":{"host":"` + s.Registry.Host + `"},"source":{"addr":"registry-host:5000"}}]}`

		for _, tc := range []struct{ name, token string }{{"no token", ""}, {"wrong token", "nope"}} {
			code, out := stack.PostHook(t, s.URL+"/hooks/registry", tc.token, "application/vnd.docker.distribution.events.v1+json", envelope)
			if code != 401 || errCode(out) != "unauthorized" {
				t.Errorf("%s: %d %v", tc.name, code, out)
			}
		}
		if st, _ := s.Store.Tag(context.Background(), analysis.Repository{Registry: s.Registry.Host, Name: "acme/base"}, "1.0"); st.Digest != old {
			t.Fatalf("an unauthenticated hook moved the tag to %s", st.Digest)
		}
		if code, out := stack.PostHook(t, s.URL+"/hooks/registry", "s3cret", "text/plain", envelope); code != 400 || errCode(out) != "invalid_request" {
			t.Errorf("wrong media type: %d %v", code, out)
		}
		code, out := stack.PostHook(t, s.URL+"/hooks/registry", "s3cret", "application/vnd.docker.distribution.events.v2+json", envelope)
		if code != 202 {
			t.Fatalf("hook: %d %v", code, out)
		}
		if got := out["refreshing"]; len(got.([]any)) != 1 || got.([]any)[0] != ref {
			t.Errorf("refreshing = %v", got)
		}
		img := rc.Wait(t, sub.Secret, "image.updated", 1)[0]["data"].(map[string]any)["image"].(map[string]any)
		if img["digest"] != moved || img["previousDigest"] != old {
			t.Errorf("image.updated = %v", img)
		}
	})
}

// TestRegistryHookSkipsTagsOutsideTheGrammar: an event whose tag is not a
// tag (here CR/LF, which would reach every ntfy header) is left out of the
// refreshes and logged, quoted; the valid events of the envelope go on.
func TestRegistryHookSkipsTagsOutsideTheGrammar(t *testing.T) {
	log := &syncbuf.Buffer{}
	s := stack.New(t, stack.Options{Registry: true, Notify: true, Server: &server.Options{HookToken: "s3cret"}, Log: log})
	event := func(tag string) string {
		return `{"action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":"acme/base","tag":` + tag +
			`},"request":{"host":"` + s.Registry.Host + `"}}`
	}
	envelope := `{"events":[` + event(`"bad\r\nX-Injected: 1"`) + `,` + event(`"1.0"`) + `]}`
	code, out := stack.PostHook(t, s.URL+"/hooks/registry", "s3cret", "application/vnd.docker.distribution.events.v2+json", envelope)
	if code != 202 {
		t.Fatalf("hook: %d %v", code, out)
	}
	if got := out["refreshing"].([]any); len(got) != 1 || got[0] != s.Registry.Host+"/acme/base:1.0" {
		t.Errorf("refreshing = %v, want the valid tag alone", got)
	}
	if logged := log.String(); !strings.Contains(logged, `"tag":"\"bad\\r\\nX-Injected: 1\""`) || !strings.Contains(logged, "not a valid tag") {
		t.Errorf("the log does not name the skipped tag, quoted:\n%s", logged)
	}
}
