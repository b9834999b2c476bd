package server_test

import (
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/crane"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/server"
)

// history is GET /api/v1/repositories/{repository}/history's answer as a
// client reads it.
type history struct {
	Registry   string `json:"registry"`
	Repository string `json:"repository"`
	Changes    []struct {
		Tag            string    `json:"tag"`
		Kind           string    `json:"kind"`
		Digest         *string   `json:"digest"`
		PreviousDigest *string   `json:"previousDigest"`
		At             time.Time `json:"at"`
	} `json:"changes"`
	Next string `json:"next"`
	errorBody
}

func (h history) summary() []string {
	var out []string
	for _, c := range h.Changes {
		d, p := "null", "null"
		if c.Digest != nil {
			d = analysis.ShortDigest(*c.Digest)
		}
		if c.PreviousDigest != nil {
			p = analysis.ShortDigest(*c.PreviousDigest)
		}
		out = append(out, fmt.Sprintf("%s %s %s→%s", c.Kind, c.Tag, p, d))
	}
	return out
}

func short(img v1.Image) string { return analysis.ShortDigest(must(img.Digest()).String()) }

// TestDeletedTagIsAnsweredEverywhere: a tag deleted from the registry is
// noticed by a refresh (the registry answers 404); from then on the report
// answers 404 saying when it was removed and where it last pointed, the
// badge says "tag removed" without asking the registry, the tag leaves the
// tag groups and the tags lists, the pages say so, and the history keeps
// the deletion. Pushed again, it is a new tag. A listing and the
// registry's delete notification notice deletions too.
func TestDeletedTagIsAnsweredEverywhere(t *testing.T) {
	s := stack.New(t, stack.Options{Registry: true, Notify: true, Watcher: true, AllowPrivateWebhooks: true, Server: &server.Options{HookToken: "hook-s3cret"}})
	repo := s.Registry.Host + "/acme/base"
	old := stack.Image(t, nil, 2, nil)
	stack.PushImage(t, old, repo+":3.19.4", repo+":3.19", repo+":3")
	s.ListTags(t, repo)

	if err := crane.Delete(repo + ":3.19.4"); err != nil {
		t.Fatal(err)
	}
	code, _, a := stack.Call(t, "POST", s.URL+"/api/v1/images/"+repo+":3.19.4/refresh", "", nil)
	if code != 404 || a.Error == nil || a.Error.Code != "not_found" {
		t.Fatalf("refresh of the deleted tag: %d %+v", code, a.Error)
	}
	wantMsg := repo + ":3.19.4 was removed from its registry"
	if !strings.Contains(a.Error.Message, wantMsg) || !strings.Contains(a.Error.Message, must(old.Digest()).String()) {
		t.Errorf("message %q, want it to say it was removed and where it pointed (%s)", a.Error.Message, must(old.Digest()))
	}

	s.Registry.Requests()
	var e errorBody
	if code := getJSON(t, s.URL+"/api/v1/images/"+repo+":3.19.4", &e); code != 404 || e.Error.Code != "not_found" || !strings.Contains(e.Error.Message, wantMsg) {
		t.Errorf("report of the deleted tag: %d %+v", code, e.Error)
	}
	for range 3 {
		if b := getBadge(t, s.URL+"/badges/version/"+repo+":3.19.4.svg", nil); b.status != 200 || b.right != "tag removed" {
			t.Errorf("badge: %d %q, want 200 \"tag removed\"", b.status, b.right)
		}
	}
	if got := s.Registry.Requests(); len(got) != 0 {
		t.Errorf("reads of a deleted tag asked the registry: %v", got)
	}

	var list analysis.TagList
	getJSON(t, s.URL+"/api/v1/repositories/"+repo+"/tags", &list)
	if list.TagCount != 2 || len(list.Groups) != 1 || !cmp.Equal(list.Groups[0].Tags, []string{"3", "3.19"}) {
		t.Errorf("tag groups after the deletion: %d tags, %+v", list.TagCount, list.Groups)
	}
	var rep analysis.Report
	getJSON(t, s.URL+"/api/v1/images/"+repo+":3.19", &rep)
	if !cmp.Equal(rep.Tags, []string{"3", "3.19"}) {
		t.Errorf("tags sharing the digest: %v", rep.Tags)
	}

	// Pages say so in words.
	page := pageGet(t, s, "/images/"+repo+":3.19.4")
	if page.status != 404 || page.doc.Find("h1").Text() != "Tag removed" || !strings.Contains(page.testid("error-message").Text(), wantMsg) {
		t.Errorf("image page of the deleted tag: %d %q %q", page.status, page.doc.Find("h1").Text(), page.testid("error-message").Text())
	}
	if href, _ := page.testid("error-links").Find("a").First().Attr("href"); href != "/images/"+repo+"@"+must(old.Digest()).String() {
		t.Errorf("the page links %q, want the image the tag pointed at", href)
	}
	if got := pageGet(t, s, "/repositories/"+repo).testid("removed-tags").Text(); !strings.Contains(got, "3.19.4") {
		t.Errorf("repository page's removed tags: %q", got)
	}

	var h history
	getJSON(t, s.URL+"/api/v1/repositories/"+repo+"/history", &h)
	if got := h.summary(); len(got) == 0 || got[0] != "deleted 3.19.4 "+short(old)+"→null" {
		t.Errorf("history = %v, want the deletion first", got)
	}

	// Pushed again: a new tag, created from nothing.
	again := stack.Image(t, nil, 2, nil)
	stack.PushImage(t, again, repo+":3.19.4")
	if code, _, _ := stack.Call(t, "POST", s.URL+"/api/v1/images/"+repo+":3.19.4/refresh", "", nil); code != 200 {
		t.Fatalf("refresh after the tag came back: %d", code)
	}
	getJSON(t, s.URL+"/api/v1/repositories/"+repo+"/history?tag=3.19.4", &h)
	want := []string{"created 3.19.4 null→" + short(again), "deleted 3.19.4 " + short(old) + "→null", "created 3.19.4 null→" + short(old)}
	if diff := cmp.Diff(want, h.summary()); diff != "" {
		t.Errorf("history of 3.19.4 (-want +got):\n%s", diff)
	}

	// A listing notices a tag the registry no longer lists.
	if err := crane.Delete(repo + ":3"); err != nil {
		t.Fatal(err)
	}
	s.ListTags(t, repo)
	getJSON(t, s.URL+"/api/v1/repositories/"+repo+"/history?tag=3&limit=1", &h)
	if got := h.summary(); !cmp.Equal(got, []string{"deleted 3 " + short(old) + "→null"}) {
		t.Errorf("after the listing, history of 3 = %v", got)
	}

	// The registry's delete notification (of a tag, and of a manifest by
	// digest, which removes every tag at it) is noticed without a poll.
	if err := crane.Delete(repo + ":3.19"); err != nil {
		t.Fatal(err)
	}
	body := `{"events":[{"id":"d1","action":"delete","target":{"repository":"acme/base","tag":"3.19"},"request":{"host":"` + s.Registry.Host + `"}}]}`
	if code, out := stack.PostHook(t, s.URL+"/hooks/registry", "hook-s3cret", "application/vnd.docker.distribution.events.v1+json", body); code != 202 {
		t.Fatalf("hook: %d %v", code, out)
	}
	waitDeleted(t, s, repo+":3.19")
}

// waitDeleted waits (bounded) until the report of ref answers 404 as a
// deleted tag.
func waitDeleted(t *testing.T, s *stack.Stack, ref string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var e errorBody
		code := getJSON(t, s.URL+"/api/v1/images/"+ref, &e)
		if code == 404 && strings.Contains(e.Error.Message, "was removed from its registry") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d %+v within 10 s of the notification, want 404 removed", ref, code, e.Error)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHistoryAPIPagesAndRefusals: the history pages through its cursor
// without gaps or repeats, keeps one tag's changes when asked, and refuses
// what it cannot answer with the contract's codes.
func TestHistoryAPIPagesAndRefusals(t *testing.T) {
	s := stack.New(t, stack.Options{Timeout: 5 * time.Second, Server: &server.Options{}})
	reg := startRegistry(t)
	repo := reg + "/acme/app"
	var pushed []string
	for i := range 6 {
		img := stack.Image(t, nil, 1, nil)
		stack.PushImage(t, img, repo+":moving")
		getJSON(t, s.URL+"/api/v1/images/"+repo+":moving?refresh=1", &analysis.Report{})
		pushed = append(pushed, short(img))
		if i == 0 {
			stack.PushImage(t, img, repo+":still")
			getJSON(t, s.URL+"/api/v1/images/"+repo+":still?refresh=1", &analysis.Report{})
		}
	}
	var all []string
	next := ""
	for range 10 {
		var h history
		u := s.URL + "/api/v1/repositories/" + repo + "/history?limit=3"
		if next != "" {
			u += "&before=" + url.QueryEscape(next)
		}
		if code := getJSON(t, u, &h); code != 200 || h.Registry != reg || h.Repository != "acme/app" || len(h.Changes) > 3 {
			t.Fatalf("page: %d %+v", code, h)
		}
		all = append(all, h.summary()...)
		if next = h.Next; next == "" {
			break
		}
	}
	want := []string{}
	for i := 5; i >= 1; i-- {
		want = append(want, "moved moving "+pushed[i-1]+"→"+pushed[i])
	}
	want = append(want, "created still null→"+pushed[0], "created moving null→"+pushed[0])
	if diff := cmp.Diff(want, all); diff != "" {
		t.Errorf("paged history (-want +got):\n%s", diff)
	}
	var h history
	getJSON(t, s.URL+"/api/v1/repositories/"+repo+"/history?tag=still", &h)
	if got := h.summary(); !cmp.Equal(got, []string{"created still null→" + pushed[0]}) || h.Next != "" {
		t.Errorf("history of still = %v (next %q)", got, h.Next)
	}
	for _, tc := range []struct {
		query, code string
		status      int
	}{
		{"limit=0", "invalid_request", 400},
		{"limit=501", "invalid_request", 400},
		{"limit=x", "invalid_request", 400},
		{"before=-3", "invalid_request", 400},
	} {
		var e errorBody
		if code := getJSON(t, s.URL+"/api/v1/repositories/"+repo+"/history?"+tc.query, &e); code != tc.status || e.Error.Code != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.query, code, e.Error.Code, tc.status, tc.code)
		}
	}
	var e errorBody
	if code := getJSON(t, s.URL+"/api/v1/repositories/"+reg+"/acme/never/history", &e); code != 404 || e.Error.Code != "not_found" {
		t.Errorf("history of an unknown repository: %d %+v", code, e.Error)
	}
}

// startRegistry starts an in-process registry and returns its host.
func startRegistry(t *testing.T) string {
	t.Helper()
	return faultreg.Start(t).Host
}

// diffAnswer is the diff API's answer as a client reads it.
type diffAnswer struct {
	From, To struct {
		Reference, Digest, PlatformDigest string
	}
	Platform string
	Shared   struct {
		LayerCount int
		Size       int64
	}
	Removed, Added []struct {
		Digest    string
		DiffID    string `json:"diffId"`
		Size      int64
		CreatedBy string
	}
	SizeDelta       int64
	LayerCountDelta int
	Metadata        map[string]struct{ From, To *string }
	Parent          struct{ From, To *analysis.Parent }
	CompareURL      string
	errorBody
}

// TestDiffAPI compares images pushed by the test; every expectation comes
// from what crane reports of them (layer digests, diffIDs and sizes), not
// from the service.
func TestDiffAPI(t *testing.T) {
	s := stack.New(t, stack.Options{Timeout: 5 * time.Second, Server: &server.Options{}})
	reg := startRegistry(t)
	labels := func(v, rev string) map[string]string {
		return map[string]string{"org.opencontainers.image.version": v, "org.opencontainers.image.revision": rev,
			"org.opencontainers.image.source": "https://github.com/acme/app"}
	}
	base := stack.Image(t, nil, 3, nil)
	stack.PushImage(t, base, reg+"/acme/base:1")
	v1img := stack.Image(t, base, 1, labels("2.2.7", "3f9a1c5e7b2d"))
	v2img := stack.Image(t, base, 2, labels("2.3.1", "0f3c2a9d8e7b"))
	stack.PushImage(t, v1img, reg+"/acme/app:2.2")
	stack.PushImage(t, v2img, reg+"/acme/app:2.3")
	getJSON(t, s.URL+"/api/v1/images/"+reg+"/acme/base:1", &analysis.Report{})

	var d diffAnswer
	if code := getJSON(t, s.URL+"/api/v1/diff?from="+url.QueryEscape(reg+"/acme/app:2.2")+"&to="+url.QueryEscape(reg+"/acme/app:2.3"), &d); code != 200 {
		t.Fatalf("diff: %d %+v", code, d.Error)
	}
	fd, fdiff, fsizes := stack.CraneLayers(t, reg+"/acme/app:2.2")
	td, tdiff, tsizes := stack.CraneLayers(t, reg+"/acme/app:2.3")
	shared := 0
	for shared < len(fdiff) && shared < len(tdiff) && fdiff[shared] == tdiff[shared] {
		shared++
	}
	if shared != 3 {
		t.Fatalf("test setup: crane reports %d shared layers, want the base's 3", shared)
	}
	var sharedSize, fromSize, toSize int64
	for i, n := range tsizes {
		toSize += n
		if i < shared {
			sharedSize += n
		}
	}
	for _, n := range fsizes {
		fromSize += n
	}
	if d.Platform != "linux/amd64" || d.Shared.LayerCount != shared || d.Shared.Size != sharedSize {
		t.Errorf("platform %s, shared %+v; want linux/amd64, %d layers of %d bytes", d.Platform, d.Shared, shared, sharedSize)
	}
	if len(d.Removed) != len(fd)-shared || len(d.Removed) != 1 || d.Removed[0].Digest != fd[3] || d.Removed[0].DiffID != fdiff[3] || d.Removed[0].Size != fsizes[3] {
		t.Errorf("removed %+v, want crane's last layer of 2.2", d.Removed)
	}
	if len(d.Added) != 2 || d.Added[0].DiffID != tdiff[3] || d.Added[1].DiffID != tdiff[4] || d.Added[1].Digest != td[4] ||
		!strings.Contains(d.Added[0].CreatedBy, "package-00") {
		t.Errorf("added %+v, want crane's layers 4 and 5 of 2.3 with their commands", d.Added)
	}
	if d.SizeDelta != toSize-fromSize || d.LayerCountDelta != 1 {
		t.Errorf("deltas %d %d, want %d 1", d.SizeDelta, d.LayerCountDelta, toSize-fromSize)
	}
	if v := d.Metadata["version"]; v.From == nil || *v.From != "2.2.7" || *v.To != "2.3.1" || len(d.Metadata) != 2 {
		t.Errorf("metadata %+v, want version and revision only", d.Metadata)
	}
	if d.CompareURL != "https://github.com/acme/app/compare/3f9a1c5e7b2d...0f3c2a9d8e7b" {
		t.Errorf("compareUrl %q", d.CompareURL)
	}
	if d.Parent.From == nil || d.Parent.From.Repository != "acme/base" || d.Parent.From.MatchedLayers != 3 || d.Parent.To == nil {
		t.Errorf("parents %+v", d.Parent)
	}
	if d.From.Reference != reg+"/acme/app:2.2" || d.To.Digest != must(v2img.Digest()).String() || d.To.PlatformDigest != d.To.Digest {
		t.Errorf("sides %+v %+v", d.From, d.To)
	}

	// Identical images: nothing added, removed or changed.
	d = diffAnswer{}
	getJSON(t, s.URL+"/api/v1/diff?from="+url.QueryEscape(reg+"/acme/app:2.3")+"&to="+url.QueryEscape(reg+"/acme/app@"+must(v2img.Digest()).String()), &d)
	if len(d.Added) != 0 || len(d.Removed) != 0 || d.SizeDelta != 0 || d.LayerCountDelta != 0 || len(d.Metadata) != 0 || d.Shared.LayerCount != 5 {
		t.Errorf("identical images: %+v", d)
	}

	// A platform one side lacks is 400; different platforms compare.
	amd := stack.Image(t, base, 1, nil)
	arm := mutate.ConfigMediaType(stack.Image(t, nil, 2, nil), types.OCIConfigJSON)
	cf := must(arm.ConfigFile()).DeepCopy()
	cf.Architecture, cf.Variant = "arm64", "v8"
	arm = must(mutate.ConfigFile(arm, cf))
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}})
	stack.PushIndex(t, reg+"/acme/app:multi", idx)
	d = diffAnswer{}
	getJSON(t, s.URL+"/api/v1/diff?from="+url.QueryEscape(reg+"/acme/app:multi")+"&to="+url.QueryEscape(reg+"/acme/app:multi")+"&platform=linux/arm64", &d)
	if d.Platform != "linux/arm64/v8" || d.From.PlatformDigest != must(arm.Digest()).String() || d.Shared.LayerCount != 2 {
		t.Errorf("arm64 diff: %s %s shared %d", d.Platform, d.From.PlatformDigest, d.Shared.LayerCount)
	}
	for _, tc := range []struct{ query, code string }{
		{"from=" + url.QueryEscape(reg+"/acme/app:2.2") + "&to=" + url.QueryEscape(reg+"/acme/app:multi") + "&platform=linux/arm64", "invalid_request"},
		{"from=" + url.QueryEscape(reg+"/acme/app:2.2"), "invalid_request"},
		{"from=UPPER/x:1&to=" + url.QueryEscape(reg+"/acme/app:2.2"), "invalid_reference"},
		{"from=" + url.QueryEscape(reg+"/acme/app:2.2") + "&to=" + url.QueryEscape(reg+"/acme/app:2.2") + "&platform=linux", "invalid_request"},
	} {
		var e diffAnswer
		if code := getJSON(t, s.URL+"/api/v1/diff?"+tc.query, &e); code != 400 || e.Error.Code != tc.code {
			t.Errorf("%s: %d %+v, want 400 %s", tc.query, code, e.Error, tc.code)
		}
	}
	var e diffAnswer
	if code := getJSON(t, s.URL+"/api/v1/diff?from="+url.QueryEscape(reg+"/acme/app:2.2")+"&to="+url.QueryEscape(reg+"/acme/app:nope"), &e); code != 404 || e.Error.Code != "not_found" {
		t.Errorf("unknown side: %d %+v", code, e.Error)
	}
}

// TestSearchAPI finds known repositories by part of their name.
func TestSearchAPI(t *testing.T) {
	s := stack.New(t, stack.Options{Timeout: 5 * time.Second, Server: &server.Options{}})
	reg := startRegistry(t)
	for _, r := range []string{"acme/app", "acme/app-worker", "acme/base", "other/webapp"} {
		stack.PushImage(t, stack.Image(t, nil, 1, nil), reg+"/"+r+":1")
		getJSON(t, s.URL+"/api/v1/images/"+reg+"/"+r+":1", &analysis.Report{})
	}
	stack.PushImage(t, stack.Image(t, nil, 1, nil), reg+"/acme/app:2")
	getJSON(t, s.URL+"/api/v1/images/"+reg+"/acme/app:2", &analysis.Report{})
	var out struct {
		Results []struct {
			Registry, Repository, Reference string
			TagCount                        int
			ChangedAt                       time.Time
		}
		errorBody
	}
	if code := getJSON(t, s.URL+"/api/v1/search?q=APP", &out); code != 200 {
		t.Fatalf("search: %d %+v", code, out.Error)
	}
	var names []string
	for _, r := range out.Results {
		names = append(names, r.Repository)
	}
	if !cmp.Equal(names, []string{"acme/app", "acme/app-worker", "other/webapp"}) {
		t.Errorf("results %v", names)
	}
	if r := out.Results[0]; r.Registry != reg || r.Reference != reg+"/acme/app:2" || r.TagCount != 2 || r.ChangedAt.IsZero() {
		t.Errorf("first result %+v, want acme/app with its latest tag 2 of 2", r)
	}
	getJSON(t, s.URL+"/api/v1/search?q=app&limit=1", &out)
	if len(out.Results) != 1 {
		t.Errorf("limit=1 gave %d results", len(out.Results))
	}
	for _, q := range []string{"q=a", "", "q=app&limit=0"} {
		var e errorBody
		if code := getJSON(t, s.URL+"/api/v1/search?"+q, &e); code != 400 || e.Error.Code != "invalid_request" {
			t.Errorf("%q: %d %+v", q, code, e.Error)
		}
	}
}

// TestPollNoticesADeletedTag: the watcher's poll of a subscribed tag that
// the registry no longer has records its deletion, once. The polls are an
// interval apart on the watcher's clock, so each finds the tracked tag due
// (the subscription checked it just before).
func TestPollNoticesADeletedTag(t *testing.T) {
	stack.EachEngine(t, func(t *testing.T, engine string) {
		var ahead atomic.Int64
		s := stack.New(t, stack.Options{Engine: engine, Registry: true, Notify: true, AllowPrivateWebhooks: true, WatcherNow: func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }, Server: &server.Options{}})
		ref := s.Registry.Host + "/acme/app:1.0"
		img := stack.Image(t, nil, 1, nil)
		stack.PushImage(t, img, ref)
		rc := stack.NewReceiver(t)
		sub := s.Subscribe(t, rc, ref, "/app", "image.updated")
		if err := crane.Delete(ref); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			ahead.Add(int64(2 * time.Hour)) // past the interval (1 h, ±10 %) since the last check
			if err := s.Watcher.Poll(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		waitDeleted(t, s, ref)
		var h history
		getJSON(t, s.URL+"/api/v1/repositories/"+s.Registry.Host+"/acme/app/history", &h)
		if diff := cmp.Diff([]string{"deleted 1.0 " + short(img) + "→null", "created 1.0 null→" + short(img)}, h.summary()); diff != "" {
			t.Errorf("history after two polls (-want +got):\n%s", diff)
		}
		// A deleted tag gives no event.
		if got := rc.Payloads(t, sub.Secret, "/app", "image.updated"); len(got) != 0 {
			t.Errorf("%d image.updated for a deletion", len(got))
		}
	})
}
