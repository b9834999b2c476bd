package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/internal/testing/testenv"
	"github.com/imagebadger/imagebadger/server"
)

func do(t *testing.T, method, url, contentType string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
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
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// TestWrongMethodIs405WithAllow: a route asked with a method it does not
// take answers 405 method_not_allowed, with the methods it takes in Allow.
func TestWrongMethodIs405WithAllow(t *testing.T) {
	s := stack.New(t, stack.Options{Registry: true, Notify: true, Server: &server.Options{HookToken: "t"}})
	for _, tc := range []struct{ method, path, allow string }{
		{http.MethodDelete, "/api/v1/images/" + s.Registry.Host + "/acme/app:1", "GET"},
		{http.MethodPut, "/api/v1/subscriptions", "POST"},
		{http.MethodGet, "/hooks/registry", "POST"},
		{http.MethodPost, "/v1/images/acme/app", "GET"},
		{http.MethodPost, "/api/v1/repositories/" + s.Registry.Host + "/acme/app/tags", "GET"},
	} {
		resp, body := do(t, tc.method, s.URL+tc.path, "", nil)
		var e errorBody
		_ = json.Unmarshal(body, &e)
		if resp.StatusCode != 405 || e.Error.Code != "method_not_allowed" || !strings.Contains(resp.Header.Get("Allow"), tc.allow) {
			t.Errorf("%s %s: %d %q Allow %q, want 405 method_not_allowed with %s allowed", tc.method, tc.path, resp.StatusCode, e.Error.Code, resp.Header.Get("Allow"), tc.allow)
		}
	}
}

// TestBodyOverTheLimitIs413: 64 KiB for JSON bodies, 1 MiB for hooks.
func TestBodyOverTheLimitIs413(t *testing.T) {
	s := stack.New(t, stack.Options{Registry: true, Notify: true, Server: &server.Options{HookToken: "t"}})
	big := `{"image": "` + s.Registry.Host + `/acme/app:1", "url": "http://127.0.0.1:9/", "pad": "` + strings.Repeat("x", 65<<10) + `"}`
	resp, body := do(t, http.MethodPost, s.URL+"/api/v1/subscriptions", "application/json", strings.NewReader(big))
	var e errorBody
	_ = json.Unmarshal(body, &e)
	if resp.StatusCode != 413 || e.Error.Code != "request_too_large" || !strings.Contains(e.Error.Message, "64 KiB") {
		t.Errorf("a 65 KiB subscription request: %d %+v, want 413 request_too_large naming 64 KiB", resp.StatusCode, e)
	}
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/hooks/registry", strings.NewReader(`{"events":[],"pad":"`+strings.Repeat("x", 1<<20)+`"}`))
	req.Header.Set("Authorization", "Bearer t")
	req.Header.Set("Content-Type", "application/json")
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Body.Close()
	if r2.StatusCode != 413 {
		t.Errorf("a 1 MiB hook: %d, want 413", r2.StatusCode)
	}
	// Data after the JSON object is a mistake too.
	resp, body = do(t, http.MethodPost, s.URL+"/api/v1/subscriptions", "application/json",
		strings.NewReader(`{"image": "`+s.Registry.Host+`/acme/app:1", "url": "http://127.0.0.1:9/"} {"again": 1}`))
	_ = json.Unmarshal(body, &e)
	if resp.StatusCode != 400 || e.Error.Code != "invalid_request" {
		t.Errorf("trailing data: %d %+v, want 400 invalid_request", resp.StatusCode, e)
	}
}

// TestRefusedRegistriesNameTheFlag: a loopback registry refused by policy
// says which setting would allow it, in the API and on the page; a
// metadata address says it is never dialled.
func TestRefusedRegistriesNameTheFlag(t *testing.T) {
	reg := faultreg.Start(t)
	s := stack.New(t, stack.Options{Timeout: 0, Server: &server.Options{}}) // a loopback registry is allowed here…
	pushRandom(t, reg.Host+"/acme/app:1")
	strict := stack.New(t, stack.Options{StrictRegistries: true, Server: &server.Options{}}) // …and refused here
	var e errorBody
	if code := getJSON(t, strict.URL+"/api/v1/images/"+reg.Host+"/acme/app:1", &e); code != 403 || e.Error.Code != "registry_forbidden" ||
		!strings.Contains(e.Error.Message, "--allow-private-registries") || !strings.Contains(e.Error.Message, reg.Host) {
		t.Errorf("loopback registry, private refused: %d %+v", code, e)
	}
	resp, body := do(t, http.MethodGet, strict.URL+"/images/"+reg.Host+"/acme/app:1", "", nil)
	if resp.StatusCode != 403 || !strings.Contains(string(body), "--allow-private-registries") {
		t.Errorf("the page of a refused registry: %d, flag not named", resp.StatusCode)
	}
	if code := getJSON(t, s.URL+"/api/v1/images/169.254.169.254/acme/app:1", &e); code != 403 ||
		!strings.Contains(e.Error.Message, "never dialled") || strings.Contains(e.Error.Message, "--allow-private") {
		t.Errorf("metadata address: %d %+v, want it said never to be dialled, with no flag to allow it", code, e)
	}
}

// TestHookTokensNeverReachTheLog: the request log and the error log show
// a token in a path as {token}.
func TestHookTokensNeverReachTheLog(t *testing.T) {
	var log testenv.Buffer
	s := stack.New(t, stack.Options{Registry: true, Notify: true, AllowPrivateWebhooks: true, Log: &log, Server: &server.Options{}})
	repo := s.Registry.Host + "/acme/app"
	pushTo(t, repo+":1", labelled(t, 1, nil, ""))
	s.Subscribe(t, stack.NewReceiver(t), repo+":1", "/hook") // makes the hook token
	_, img := getMap(t, s.URL+"/v1/images/"+repo+":1")
	hook := strings.Replace(img["WebhookURL"].(string), "http://imagebadger.test", s.URL, 1)
	token := hook[strings.LastIndex(hook, "/")+1:]
	do(t, http.MethodPost, hook, "", nil)
	do(t, http.MethodPost, hook+"x", "", nil) // a wrong token, refused and logged
	do(t, http.MethodPost, s.URL+"/hooks/dockerhub/"+token, "application/json", strings.NewReader(`{}`))
	if strings.Contains(log.String(), token) {
		t.Errorf("the log holds the hook token:\n%s", log.String())
	}
	if !strings.Contains(log.String(), `{token}`) {
		t.Errorf("the log does not show the hook requests at all:\n%s", log.String())
	}
}

// TestDuplicateSubscriptionIs409: a second subscription with the same
// image, URL and events answers 409 naming the first, instead of a silent
// duplicate that would send everything twice.
func TestDuplicateSubscriptionIs409(t *testing.T) {
	s := stack.New(t, stack.Options{Registry: true, Notify: true, AllowPrivateWebhooks: true, Server: &server.Options{}})
	rc := stack.NewReceiver(t)
	stack.Push(t, s.Registry.Host+"/acme/app:1")
	req := map[string]any{"image": s.Registry.Host + "/acme/app:1", "url": rc.URL + "/hook", "events": []string{"image.updated", "base.updated"}}
	code, _, first := stack.Call(t, http.MethodPost, s.URL+"/api/v1/subscriptions", "", req)
	if code != 201 {
		t.Fatalf("first: %d", code)
	}
	req["events"] = []string{"base.updated", "image.updated"} // the same set, another order
	code, header, _ := stack.Call(t, http.MethodPost, s.URL+"/api/v1/subscriptions", "", req)
	if code != 409 || header.Get("Location") != "/api/v1/subscriptions/"+first.ID {
		t.Errorf("second identical: %d Location %q, want 409 and %s", code, header.Get("Location"), first.ID)
	}
	resp, body := do(t, http.MethodPost, s.URL+"/api/v1/subscriptions", "application/json", strings.NewReader(mustJSON(t, req)))
	var e errorBody
	_ = json.Unmarshal(body, &e)
	if resp.StatusCode != 409 || e.Error.Code != "subscription_exists" || !strings.Contains(e.Error.Message, first.ID) {
		t.Errorf("409 body %+v, want subscription_exists naming %s", e, first.ID)
	}
	req["events"] = []string{"image.updated"} // other events: another subscription
	if code, _, _ := stack.Call(t, http.MethodPost, s.URL+"/api/v1/subscriptions", "", req); code != 201 {
		t.Errorf("same image and URL, other events: %d, want 201", code)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestShieldsEndpoint: the badge as shields.io's endpoint schema
// (schemaVersion 1, label, message, color, isError), cached as badges are.
func TestShieldsEndpoint(t *testing.T) {
	s := stack.New(t, stack.Options{Registry: true, Notify: true, Server: &server.Options{}})
	ref := s.Registry.Host + "/acme/app:1"
	pushTo(t, ref, labelled(t, 1, map[string]string{"org.opencontainers.image.version": "1.4.2"}, ""))
	for _, tc := range []struct {
		path             string
		label, message   string
		isError, hasHash bool
	}{
		{"/api/v1/shields/version/" + ref, "version", "1.4.2", false, false},
		{"/api/v1/shields/image/" + ref, "", "1 layer", false, false},
		{"/api/v1/shields/license/" + ref, "license", "not given", false, false},
		{"/api/v1/shields/version/" + s.Registry.Host + "/acme/nothing:1", "version", "not found", true, false},
	} {
		resp, body := do(t, http.MethodGet, s.URL+tc.path, "", nil)
		var got struct {
			SchemaVersion int    `json:"schemaVersion"`
			Label         string `json:"label"`
			Message       string `json:"message"`
			Color         string `json:"color"`
			IsError       bool   `json:"isError"`
		}
		if err := json.Unmarshal(body, &got); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", tc.path, resp.StatusCode, body)
		}
		if got.SchemaVersion != 1 || (tc.label != "" && got.Label != tc.label) || got.Message != tc.message || got.IsError != tc.isError ||
			got.Color == "" || strings.HasPrefix(got.Color, "#") {
			t.Errorf("%s: %+v, want label %q message %q isError %v and a hex color without #", tc.path, got, tc.label, tc.message, tc.isError)
		}
		if !strings.Contains(resp.Header.Get("Cache-Control"), "max-age=") {
			t.Errorf("%s: Cache-Control %q", tc.path, resp.Header.Get("Cache-Control"))
		}
	}
	var e errorBody
	if code := getJSON(t, s.URL+"/api/v1/shields/size/"+ref, &e); code != 404 || e.Error.Code != "not_found" {
		t.Errorf("unknown kind: %d %+v", code, e)
	}
}

// TestUnreachableRegistryPage: a registry that cannot be connected to is
// "cannot be reached" in the page's title as in its message, not "answered
// with an error".
func TestUnreachableRegistryPage(t *testing.T) {
	s := stack.New(t, stack.Options{Timeout: 0, Server: &server.Options{}})
	resp, body := do(t, http.MethodGet, s.URL+"/images/127.0.0.1:1/acme/app:1", "", nil)
	page := string(body)
	if resp.StatusCode != 502 || !strings.Contains(page, "<title>The registry cannot be reached") || !strings.Contains(page, "cannot be reached</") ||
		strings.Contains(page, "answered with an error") {
		t.Errorf("unreachable registry's page: %d\n%s", resp.StatusCode, page)
	}
}
