package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/internal/testing/testenv"
	"github.com/imagebadger/imagebadger/server"
)

// The subscription routes' own promises: options checked with errors
// naming the field, tokens rate-limited, cross-site posts refused, header
// values never shown, pages never cached. (Who hears what, and when: the
// notify package's flow tests.)

func errorMessage(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	if e == nil || e["code"] != "invalid_request" {
		return fmt.Sprintf("not invalid_request: %v", m)
	}
	return e["message"].(string)
}

// TestInvalidOptionsNameTheField: every malformed option is 400
// invalid_request with a message naming its field, from the API and from
// the form alike.
func TestInvalidOptionsNameTheField(t *testing.T) {
	s := stack.New(t, stack.Options{Registry: true, Notify: true, AllowPrivateWebhooks: true, Server: &server.Options{}})
	rc := stack.NewReceiver(t)
	lib := s.Registry.Host + "/acme/lib"
	stack.Push(t, lib+":1.0")
	many := map[string]any{}
	for i := range 9 {
		many[fmt.Sprintf("X-H%d", i)] = "v"
	}
	for field, body := range map[string]map[string]any{
		"tags.include": {"tags": map[string]any{"include": "("}},
		"tags.exclude": {"tags": map[string]any{"exclude": "a[z-a]"}},
		"tags.semver":  {"tags": map[string]any{"semver": "~banana"}},
		"coalesce":     {"coalesce": "2h"},
		"format":       {"format": "telegram"},
		"headers":      {"headers": many},
		"url":          {"format": "github"},
	} {
		body["image"], body["url"] = lib, rc.URL+"/x"
		_, m := s.Create(t, body, 400)
		if msg := errorMessage(m); !strings.HasPrefix(msg, field+":") {
			t.Errorf("%s: message %q does not name the field", field, msg)
		}
	}
	for _, h := range []string{"webhook-signature", "Content-Type", "Host"} {
		_, m := s.Create(t, map[string]any{"image": lib, "url": rc.URL + "/x", "headers": map[string]any{h: "x"}}, 400)
		if msg := errorMessage(m); !strings.Contains(msg, "headers:") {
			t.Errorf("reserved header %s: %q", h, msg)
		}
	}
	_, m := s.Create(t, map[string]any{"image": lib + ":1.0", "url": rc.URL + "/x", "tags": map[string]any{"semver": "~1"}}, 400)
	if msg := errorMessage(m); !strings.HasPrefix(msg, "tags:") {
		t.Errorf("filters on a tag subscription: %q", msg)
	}
	// The form says the same.
	form := url.Values{"image": {lib}, "url": {rc.URL + "/x"}, "events": {"image.updated"}, "tags_semver": {"~banana"}}
	resp, err := http.PostForm(s.URL+"/subscriptions", form)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(page), "tags.semver: not a version constraint") {
		t.Errorf("form: %d, page without the API's message", resp.StatusCode)
	}
}

// TestWrongTokensAreRateLimited: 30 wrong tokens on any token route give
// 429 with Retry-After (and then even a right token waits).
func TestWrongTokensAreRateLimited(t *testing.T) {
	routes := map[string]func(s *stack.Stack, sub stack.Subscription, repoPath, tok string) (*http.Request, error){
		"GET subscription": func(s *stack.Stack, sub stack.Subscription, _, tok string) (*http.Request, error) {
			r, err := http.NewRequest("GET", s.URL+"/api/v1/subscriptions/"+sub.ID, nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			return r, err
		},
		"DELETE subscription": func(s *stack.Stack, sub stack.Subscription, _, tok string) (*http.Request, error) {
			r, err := http.NewRequest("DELETE", s.URL+"/api/v1/subscriptions/"+sub.ID, nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			return r, err
		},
		"manage page": func(s *stack.Stack, sub stack.Subscription, _, tok string) (*http.Request, error) {
			return http.NewRequest("GET", s.URL+"/subscriptions/"+sub.ID+"?token="+url.QueryEscape(tok), nil)
		},
		"registry hook": func(s *stack.Stack, _ stack.Subscription, _, tok string) (*http.Request, error) {
			r, err := http.NewRequest("POST", s.URL+"/hooks/registry", strings.NewReader(`{"events":[]}`))
			r.Header.Set("Authorization", "Bearer "+tok)
			return r, err
		},
		"docker hub hook": func(s *stack.Stack, _ stack.Subscription, _, tok string) (*http.Request, error) {
			return http.NewRequest("POST", s.URL+"/hooks/dockerhub/"+tok, strings.NewReader(`{}`))
		},
		"refresh hook": func(s *stack.Stack, _ stack.Subscription, repoPath, tok string) (*http.Request, error) {
			return http.NewRequest("POST", s.URL+"/images/"+repoPath+"/"+tok, nil)
		},
	}
	for name, req := range routes {
		t.Run(name, func(t *testing.T) {
			s := stack.New(t, stack.Options{Registry: true, Notify: true, AllowPrivateWebhooks: true, Server: &server.Options{HookToken: "right-hook-token"}})
			rc := stack.NewReceiver(t)
			ref := s.Registry.Host + "/acme/base:1.0"
			stack.Push(t, ref)
			sub := s.Subscribe(t, rc, ref, "/hook")
			codes := map[int]int{}
			var retry string
			for i := range 30 {
				r, err := req(s, sub, s.Registry.Host+"/acme/base", fmt.Sprintf("wrong-token-%d", i))
				if err != nil {
					t.Fatal(err)
				}
				resp, err := http.DefaultClient.Do(r)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				codes[resp.StatusCode]++
				if resp.StatusCode == 429 {
					retry = resp.Header.Get("Retry-After")
				}
			}
			if codes[429] == 0 || codes[401]+codes[429] != 30 || retry == "" {
				t.Errorf("30 wrong tokens: answers %v (Retry-After %q), want 401s then 429s with Retry-After", codes, retry)
			}
			r, _ := routes["GET subscription"](s, sub, "", sub.Token)
			resp, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 429 {
				t.Errorf("the right token after 30 wrong ones: %d, want 429 until the limit refills", resp.StatusCode)
			}
		})
	}
}

// TestCrossSitePostsAreRefused: the state-changing JSON routes refuse what
// a browser sends from another site, whatever its content type (a
// "simple" text/plain POST needs no preflight), and take what curl -d
// sends; trailing data after the JSON object is 400.
func TestCrossSitePostsAreRefused(t *testing.T) {
	s := stack.New(t, stack.Options{Registry: true, Notify: true, AllowPrivateWebhooks: true, Server: &server.Options{}})
	rc := stack.NewReceiver(t)
	ref := s.Registry.Host + "/acme/base:1.0"
	stack.Push(t, ref)
	body := fmt.Sprintf(`{"image": %q, "url": %q}`, ref, rc.URL+"/hook")
	post := func(path, contentType, body string, header map[string]string) (int, map[string]any) {
		req, _ := http.NewRequest("POST", s.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	for _, h := range []map[string]string{{"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}} {
		code, m := post("/api/v1/subscriptions", "text/plain", body, h)
		if e, _ := m["error"].(map[string]any); code != 403 || e["code"] != "cross_origin" {
			t.Errorf("text/plain POST with %v: %d %v, want 403 cross_origin", h, code, m)
		}
		if code, _ := post("/api/v1/images/"+ref+"/refresh", "text/plain", "", h); code != 403 {
			t.Errorf("refresh with %v: %d, want 403", h, code)
		}
	}
	if n := len(rc.Payloads(t, "whsec_AAAA", "/hook", "webhook.ping")); n != 0 {
		t.Errorf("a refused request still created a subscription (%d pings)", n)
	}
	// curl -d '{…}': form-encoded, no Origin, no Sec-Fetch-Site.
	code, m := post("/api/v1/subscriptions", "application/x-www-form-urlencoded", body, nil)
	if code != 201 {
		t.Fatalf("curl -d: %d %v, want 201", code, m)
	}
	// A same-origin browser request passes too.
	if code, _ := post("/api/v1/images/"+ref+"/refresh", "", "", map[string]string{"Sec-Fetch-Site": "same-origin"}); code != 200 {
		t.Errorf("same-origin refresh: %d", code)
	}
	del, _ := http.NewRequest("DELETE", s.URL+"/api/v1/subscriptions/"+m["id"].(string), nil)
	del.Header.Set("Authorization", "Bearer "+m["token"].(string))
	del.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, err := http.DefaultClient.Do(del); err != nil || resp.StatusCode != 403 {
		t.Errorf("cross-site DELETE: %v %v, want 403", resp.StatusCode, err)
	}
	for _, trailing := range []string{body + ` {}`, body + `x`, body + `]`} {
		if code, m := post("/api/v1/subscriptions", "application/json", trailing, nil); code != 400 {
			t.Errorf("%q: %d %v, want 400", trailing, code, m)
		}
	}
}

// TestHeaderValuesNeverShown: a subscription's header values are sent to
// the receiver and appear in no API answer, page, log line or /metrics,
// whatever happens to the delivery.
func TestHeaderValuesNeverShown(t *testing.T) {
	const secret = "Bearer s3cr3t-8f1e2d3c4b5a"
	const formSecret = "glptt-f0rm-s3cr3t-99"
	var logs testenv.Buffer
	s := stack.New(t, stack.Options{Registry: true, Notify: true, AllowPrivateWebhooks: true, Log: &logs, Server: &server.Options{}})
	var sent atomic.Int32
	var fail atomic.Bool
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == secret {
			sent.Add(1)
		}
		if fail.Load() {
			// A receiver that echoes what it got: its answer is kept in
			// the delivery log's store, never shown.
			w.WriteHeader(500)
			fmt.Fprint(w, r.Header.Get("Authorization"))
		}
	}))
	t.Cleanup(rc.Close)
	ref := s.Registry.Host + "/acme/base:1.0"
	stack.Push(t, ref)
	var pages [][]byte
	resp := mustDo(t, "POST", s.URL+"/api/v1/subscriptions", "", fmt.Sprintf(`{"image": %q, "url": %q, "format": "slack", "headers": {"Authorization": %q}}`, ref, rc.URL+"/hook", secret))
	pages = append(pages, resp)
	var c map[string]any
	if err := json.Unmarshal(resp, &c); err != nil {
		t.Fatal(err)
	}
	if h, _ := json.Marshal(c["headers"]); string(h) != `["Authorization"]` {
		t.Errorf("headers in the answer %s, want the names alone", h)
	}
	id, token := c["id"].(string), c["token"].(string)
	fail.Store(true)
	stack.Push(t, ref)
	s.Refresh(t, ref)
	deadline := time.Now().Add(10 * time.Second)
	for sent.Load() < 2 && time.Now().Before(deadline) { // the ping and a failed attempt
		time.Sleep(10 * time.Millisecond)
	}
	if sent.Load() < 2 {
		t.Fatalf("the header was sent %d times, want the ping and the event\n%s", sent.Load(), logs.String())
	}
	time.Sleep(100 * time.Millisecond) // the attempt is recorded
	pages = append(pages, mustDo(t, "GET", s.URL+"/api/v1/subscriptions/"+id, token, ""))
	page := mustDo(t, "GET", s.URL+"/subscriptions/"+id+"?token="+url.QueryEscape(token), "", "")
	if !strings.Contains(string(page), "Authorization") {
		t.Error("the manage page does not list the header's name")
	}
	pages = append(pages, page)
	// The form: created, and shown again with an error; neither repeats a value.
	form := url.Values{"image": {s.Registry.Host + "/acme/base"}, "url": {rc.URL + "/form"}, "events": {"image.updated"},
		"header_name": {"Token"}, "header_value": {formSecret}}
	pages = append(pages, postForm(t, s.URL+"/subscriptions", form))
	form.Set("coalesce", "forever")
	pages = append(pages, postForm(t, s.URL+"/subscriptions", form))
	pages = append(pages, mustDo(t, "GET", s.URL+"/metrics", "", ""))
	pages = append(pages, []byte(logs.String()))
	for i, p := range pages {
		for _, v := range []string{"s3cr3t-8f1e2d3c4b5a", formSecret} {
			if bytes.Contains(p, []byte(v)) {
				t.Errorf("answer %d shows a header value: %.300s", i, p)
			}
		}
	}
	if !strings.Contains(logs.String(), "webhook attempt") {
		t.Error("no attempt was logged: the log check proves nothing")
	}
}

func mustDo(t *testing.T, method, u, token, body string) []byte {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %s %s", method, u, resp.Status, b)
	}
	return b
}

func postForm(t *testing.T, u string, form url.Values) []byte {
	t.Helper()
	resp, err := http.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b
}

// TestSubscriptionPagesAreNoStore: the pages holding a secret or the
// manage token are Cache-Control: no-store.
func TestSubscriptionPagesAreNoStore(t *testing.T) {
	s := stack.New(t, stack.Options{Registry: true, Notify: true, AllowPrivateWebhooks: true, Server: &server.Options{}})
	rc := stack.NewReceiver(t)
	ref := s.Registry.Host + "/acme/base:1.0"
	stack.Push(t, ref)
	resp, err := http.PostForm(s.URL+"/subscriptions", url.Values{"image": {ref}, "url": {rc.URL + "/x"}, "events": {"image.updated"}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("created page: %d, Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	i := bytes.Index(page, []byte("/subscriptions/sub_"))
	if i < 0 {
		t.Fatal("no manage link on the created page")
	}
	link := string(page[i:])
	link = strings.ReplaceAll(link[:strings.IndexByte(link, '"')], "&amp;", "&")
	resp, err = http.Get(s.URL + link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("manage page %s: %d, Cache-Control %q", link, resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
}
