package server_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/ratelimit"
	"github.com/imagebadger/imagebadger/server"
)

func TestSubscriptionAPI(t *testing.T) {
	stack.EachEngine(t, func(t *testing.T, engine string) {
		s := stack.New(t, stack.Options{Engine: engine, Registry: true, Notify: true, AllowPrivateWebhooks: true, Server: &server.Options{}})
		rc := stack.NewReceiver(t)
		ref := s.Registry.Host + "/acme/base:1.0"
		old := stack.Push(t, ref)

		code, hdr, sub := stack.Call(t, "POST", s.URL+"/api/v1/subscriptions", "", map[string]any{"image": ref, "url": rc.URL + "/hook"})
		if code != 201 || sub.ID == "" || sub.Image != ref || sub.URL != rc.URL+"/hook" || sub.Status != "active" ||
			!strings.HasPrefix(sub.Secret, "whsec_") || sub.Token == "" || sub.CreatedAt == "" ||
			strings.Join(sub.Events, ",") != "image.updated,base.updated" {
			t.Fatalf("create: %d %+v", code, sub)
		}
		if hdr.Get("Location") != "/api/v1/subscriptions/"+sub.ID {
			t.Errorf("Location = %q", hdr.Get("Location"))
		}
		ping := rc.Wait(t, sub.Secret, "webhook.ping", 1)[0]
		if ping["data"].(map[string]any)["subscription"] != sub.ID {
			t.Errorf("ping = %v", ping)
		}

		// The token is required, and shown only at creation.
		for _, tok := range []string{"", "wrong"} {
			code, _, a := stack.Call(t, "GET", s.URL+"/api/v1/subscriptions/"+sub.ID, tok, nil)
			if code != 401 || a.Error == nil || a.Error.Code != "unauthorized" {
				t.Errorf("GET with token %q: %d %+v", tok, code, a.Error)
			}
		}
		code, _, got := stack.Call(t, "GET", s.URL+"/api/v1/subscriptions/"+sub.ID, sub.Token, nil)
		if code != 200 || got.Secret != "" || got.Token != "" || len(got.Deliveries) != 1 ||
			got.Deliveries[0].Type != "webhook.ping" || got.Deliveries[0].Status != "delivered" || got.Deliveries[0].Attempt != 1 ||
			got.Deliveries[0].StatusCode == nil || *got.Deliveries[0].StatusCode != 200 {
			t.Fatalf("GET: %d %+v", code, got)
		}

		// A move noticed by the API's refresh is delivered once, however often
		// it is noticed again.
		moved := stack.Push(t, ref)
		for range 2 {
			if code, _, _ := stack.Call(t, "POST", s.URL+"/api/v1/images/"+ref+"/refresh", "", nil); code != 200 {
				t.Fatalf("refresh: %d", code)
			}
		}
		upd := rc.Wait(t, sub.Secret, "image.updated", 1)[0]
		img := upd["data"].(map[string]any)["image"].(map[string]any)
		if img["digest"] != moved || img["previousDigest"] != old || img["reference"] != ref || img["url"] != "http://imagebadger.test/images/"+ref {
			t.Errorf("image.updated data = %v", img)
		}
		time.Sleep(100 * time.Millisecond)
		rc.Wait(t, sub.Secret, "image.updated", 1)
		code, _, got = stack.Call(t, "GET", s.URL+"/api/v1/subscriptions/"+sub.ID, sub.Token, nil)
		if code != 200 || len(got.Deliveries) != 2 || got.Deliveries[0].Type != "image.updated" || got.Deliveries[0].Status != "delivered" {
			t.Errorf("deliveries after the move = %+v", got.Deliveries)
		}

		if code, _, _ := stack.Call(t, "DELETE", s.URL+"/api/v1/subscriptions/"+sub.ID, "wrong", nil); code != 401 {
			t.Errorf("DELETE with a wrong token: %d", code)
		}
		if code, _, _ := stack.Call(t, "DELETE", s.URL+"/api/v1/subscriptions/"+sub.ID, sub.Token, nil); code != 204 {
			t.Errorf("DELETE: %d", code)
		}
		code, _, a := stack.Call(t, "GET", s.URL+"/api/v1/subscriptions/"+sub.ID, sub.Token, nil)
		if code != 404 || a.Error == nil || a.Error.Code != "not_found" {
			t.Errorf("GET after DELETE: %d %+v", code, a.Error)
		}
	})
}

func TestSubscriptionAPIErrors(t *testing.T) {
	s := stack.New(t, stack.Options{Registry: true, Notify: true, PerClient: ratelimit.Limit{Burst: 2, Period: time.Hour}, Server: &server.Options{}})
	ref := s.Registry.Host + "/acme/base:1.0"
	stack.Push(t, ref)
	for _, tc := range []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"not JSON", "{", 400, "invalid_request"},
		{"ftp", map[string]any{"image": ref, "url": "ftp://example.com/"}, 400, "invalid_request"},
		// Private targets are refused by this stack's policy.
		{"loopback target", map[string]any{"image": ref, "url": "http://127.0.0.1:1/"}, 400, "invalid_request"},
		{"unknown event", map[string]any{"image": ref, "url": "http://127.0.0.1:1/", "events": []string{"x"}}, 400, "invalid_request"},
		{"bad reference", map[string]any{"image": "UPPER/x:1", "url": "http://127.0.0.1:1/"}, 400, "invalid_reference"},
		// The per-client limit (2 here) counts every well-formed request:
		// the loopback target above and this one.
		{"metadata target", map[string]any{"image": ref, "url": "http://169.254.169.254/"}, 400, "invalid_request"},
		{"rate limited", map[string]any{"image": ref, "url": "http://169.254.169.254/"}, 429, "rate_limited"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, hdr, a := stack.Call(t, "POST", s.URL+"/api/v1/subscriptions", "", tc.body)
			if code != tc.status || a.Error == nil || a.Error.Code != tc.code || a.Error.Message == "" {
				t.Errorf("%d %+v, want %d %s", code, a.Error, tc.status, tc.code)
			}
			if code == 429 && hdr.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
		})
	}
}

// form posts a form as a browser on origin would, with Sec-Fetch-Site.
func form(t *testing.T, target, site string, values url.Values) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", target, strings.NewReader(values.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if site != "" {
		req.Header.Set("Sec-Fetch-Site", site)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func get(t *testing.T, target string) (int, string) {
	t.Helper()
	resp, err := http.Get(target)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestSubscriptionForms(t *testing.T) {
	s := stack.New(t, stack.Options{Registry: true, Notify: true, AllowPrivateWebhooks: true, Server: &server.Options{}})
	rc := stack.NewReceiver(t)
	ref := s.Registry.Host + "/acme/base:1.0"
	stack.Push(t, ref)

	code, page := get(t, s.URL+"/subscriptions/new?image="+url.QueryEscape(ref))
	if code != 200 || !strings.Contains(page, `data-testid="subscription-form"`) || !strings.Contains(page, `value="`+ref+`"`) {
		t.Fatalf("form page: %d", code)
	}
	// Docker Hub images are told their push webhook URL comes with the
	// first subscription (showing the form makes none).
	if _, page := get(t, s.URL+"/subscriptions/new?image=acme/app"); !strings.Contains(page, `data-testid="dockerhub-hook-later"`) ||
		strings.Contains(page, "/hooks/dockerhub/") {
		t.Error("the form for a Docker Hub image without subscriptions does not say the webhook comes with the first")
	}

	values := url.Values{"image": {ref}, "url": {rc.URL}, "events": {"image.updated"}}
	// Cross-site posts are refused and create nothing.
	if code, _ := form(t, s.URL+"/subscriptions", "cross-site", values); code != 403 {
		t.Errorf("cross-site form post: %d, want 403", code)
	}
	if n, _ := s.Store.SubscribedImages(context.Background()); len(n) != 0 {
		t.Fatalf("a refused post created %v", n)
	}
	code, page = form(t, s.URL+"/subscriptions", "same-origin", values)
	if code != 201 || !strings.Contains(page, "whsec_") || !strings.Contains(page, `data-testid="manage-link"`) {
		t.Fatalf("same-origin form post: %d\n%s", code, page)
	}
	i := strings.Index(page, `href="/subscriptions/sub_`)
	if i < 0 {
		t.Fatal("no manage link")
	}
	manage := page[i+len(`href="`):]
	manage = strings.ReplaceAll(manage[:strings.IndexByte(manage, '"')], "&amp;", "&")
	if code, page := get(t, s.URL+manage); code != 200 || !strings.Contains(page, `data-testid="delivery"`) || !strings.Contains(page, "webhook.ping") {
		t.Errorf("manage page: %d", code)
	} else if want := `href="/images/` + ref + `" data-testid="subscription-image"`; !strings.Contains(page, want) {
		t.Errorf("the manage page does not link back to its image (%s)", want)
	}
	id := strings.TrimPrefix(manage[:strings.IndexByte(manage, '?')], "/subscriptions/")
	if code, _ := get(t, s.URL+"/subscriptions/"+id); code != 401 {
		t.Errorf("manage page without token: %d, want 401", code)
	}
	// A refused form is shown again with the reason.
	bad := url.Values{"image": {ref}, "url": {"ftp://x"}, "events": {"image.updated"}}
	if code, page := form(t, s.URL+"/subscriptions", "", bad); code != 400 || !strings.Contains(page, `data-testid="form-error"`) || !strings.Contains(page, "ftp://x") {
		t.Errorf("bad form: %d", code)
	}
	tok, _ := url.ParseQuery(manage[strings.IndexByte(manage, '?')+1:])
	if code, _ := form(t, s.URL+"/subscriptions/"+id+"/delete", "cross-site", url.Values{"token": tok["token"]}); code != 403 {
		t.Errorf("cross-site delete: %d, want 403", code)
	}
	if code, page := form(t, s.URL+"/subscriptions/"+id+"/delete", "same-origin", url.Values{"token": tok["token"]}); code != 200 || !strings.Contains(page, `data-testid="deleted"`) {
		t.Errorf("delete: %d", code)
	}
	if code, _ := get(t, s.URL+manage); code != 404 {
		t.Errorf("manage page after delete: %d, want 404", code)
	}
}
