package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/ratelimit"
	"github.com/imagebadger/imagebadger/server"
)

// TestBusyAnswers503AndBadgesSayTryAgain: with a registry's share of the
// inspections in flight and its queue full, a read of another never-seen
// image of that registry answers 503 unavailable with a Retry-After on the
// JSON API, the MicroBadger API and the pages, never 500; its badge says
// "try again" (not "not found yet") and is not cached.
func TestBusyAnswers503AndBadgesSayTryAgain(t *testing.T) {
	reg := faultreg.Start(t)
	s := stack.New(t, stack.Options{
		Images: images.Options{MaxInspections: 4, MaxInspectionsPerRegistry: 1, QueueWait: 5 * time.Second},
		Server: &server.Options{Badges: server.BadgeOptions{Wait: 100 * time.Millisecond}},
	})
	for _, tag := range []string{"a", "b", "c", "d", "e"} {
		pushTo(t, reg.Host+"/acme/app:"+tag, labelledImage(t, 1, linuxAMD64, nil))
	}
	reg.Requests()
	reg.Add(faultreg.Rule{PathContains: "/manifests/", Fault: faultreg.Hold})
	t.Cleanup(reg.Release) // before the service's Close waits for the held inspection
	badgeURL := func(tag string) string { return s.URL + "/badges/version/" + reg.Host + "/acme/app:" + tag + ".svg" }

	// The one slot of the registry's share: running, held.
	if a := getBadge(t, badgeURL("a"), nil); a.right != "not found yet" {
		t.Fatalf("badge of the running inspection: %d %q, want \"not found yet\"", a.status, a.right)
	}
	// The one place in its queue: the badge gives up waiting first.
	a := getBadge(t, badgeURL("b"), nil)
	if a.status != http.StatusOK || a.right != "try again" {
		t.Errorf("badge of a queued inspection: %d %q, want 200 \"try again\"", a.status, a.right)
	}
	checkBadgeHeaders(t, a, false)

	for _, tc := range []struct{ path, contentType string }{
		{"/api/v1/images/" + reg.Host + "/acme/app:c", "application/json"},
		{"/v1/images/" + reg.Host + "/acme/app:d", "application/json"},
		{"/images/" + reg.Host + "/acme/app:e", "text/html"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, err := http.Get(s.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "5" {
				t.Fatalf("status %d, Retry-After %q, want 503 with 5:\n%s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
			}
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.contentType) {
				t.Errorf("Content-Type %q, want %s", resp.Header.Get("Content-Type"), tc.contentType)
			}
			if tc.contentType != "application/json" {
				if !strings.Contains(string(body), "try again") {
					t.Errorf("the page does not say to try again:\n%s", body)
				}
				return
			}
			var e struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatal(err)
			}
			if e.Error.Code != "unavailable" || !strings.Contains(e.Error.Message, reg.Host) || !strings.Contains(e.Error.Message, "try again") {
				t.Errorf("error %+v, want unavailable naming the registry and saying to try again", e.Error)
			}
		})
	}
	if got := reg.Peek("/manifests/"); len(got) != 1 {
		t.Errorf("the registry got %v, want only the running inspection's request", got)
	}
}

// TestClientBudgetAnswers429: a client's reads that start registry work
// spend its budget (one here): the next read of an image never seen
// answers 429 rate_limited with a Retry-After, while its read of the
// image already stored answers 200.
func TestClientBudgetAnswers429(t *testing.T) {
	reg := faultreg.Start(t)
	s := stack.New(t, stack.Options{
		Images: images.Options{ClientInspections: ratelimit.Limit{Burst: 1, Period: time.Hour}},
		Server: &server.Options{},
	})
	for _, tag := range []string{"a", "b"} {
		pushTo(t, reg.Host+"/acme/app:"+tag, labelledImage(t, 1, linuxAMD64, nil))
	}
	get := func(tag string) *http.Response {
		t.Helper()
		resp, err := http.Get(s.URL + "/api/v1/images/" + reg.Host + "/acme/app:" + tag)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := get("a"); resp.StatusCode != http.StatusOK {
		t.Fatalf("first new image: %s", resp.Status)
	}
	resp := get("b")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("second new image: %s, Retry-After %q; want 429 with a Retry-After", resp.Status, resp.Header.Get("Retry-After"))
	}
	if resp := get("a"); resp.StatusCode != http.StatusOK {
		t.Errorf("the stored image again: %s", resp.Status)
	}
}
