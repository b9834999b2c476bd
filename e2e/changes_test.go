package e2e_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/imagebadger/imagebadger/internal/testing/testenv"
)

// apiError is the contract's error body.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// fetchJSON asks url with method and decodes its JSON body into v, returning
// the status; the answer is checked against docs/openapi.yaml on the way.
func fetchJSON(t *testing.T, method, url string, v any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s %s: %s, body not JSON: %v", method, url, resp.Status, err)
	}
	return resp.StatusCode
}

type historyAnswer struct {
	Changes []struct {
		Tag            string  `json:"tag"`
		Kind           string  `json:"kind"`
		Digest         *string `json:"digest"`
		PreviousDigest *string `json:"previousDigest"`
		At             string  `json:"at"`
	} `json:"changes"`
}

// craneTags is what crane lists of a repository.
func craneTags(t *testing.T, repo string) []string {
	t.Helper()
	return strings.Fields(string(testenv.Crane(t, "ls", repo)))
}

// checkRemoved checks everything a removed tag must show, against what
// crane said before the deletion (digest) and after (the tags left).
func checkRemoved(t *testing.T, srv, repo, tag, digest string, left []string, noticedAfter time.Time) {
	t.Helper()
	var e apiError
	if code := fetchJSON(t, "GET", srv+"/api/v1/images/"+repo+":"+tag, &e); code != 404 || e.Error.Code != "not_found" {
		t.Fatalf("report of the deleted tag: %d %+v", code, e.Error)
	}
	if !strings.Contains(e.Error.Message, repo+":"+tag+" was removed from its registry") || !strings.Contains(e.Error.Message, digest) {
		t.Errorf("message %q does not say it was removed and where it pointed (%s)", e.Error.Message, digest)
	}
	// The removal time, in the message to the minute.
	var when string
	for _, m := range []time.Time{noticedAfter, time.Now()} {
		when = m.UTC().Format("2 Jan 2006 15:04 UTC")
		if strings.Contains(e.Error.Message, when) {
			break
		}
		when = ""
	}
	if when == "" {
		t.Errorf("message %q holds no removal time between %s and now", e.Error.Message, noticedAfter.UTC().Format(time.RFC3339))
	}
	if b := fetchBadge(t, srv+"/badges/version/"+repo+":"+tag+".svg"); b.status != 200 || b.right != "tag removed" {
		t.Errorf("badge %d %q, want \"tag removed\"", b.status, b.right)
	}
	var list tagList
	fetchJSON(t, "GET", srv+"/api/v1/repositories/"+repo+"/tags", &list)
	var ours []string
	for _, g := range list.Groups {
		ours = append(ours, g.Tags...)
	}
	slices.Sort(ours)
	slices.Sort(left)
	if !slices.Equal(ours, left) {
		t.Errorf("tag groups hold %v; crane lists %v", ours, left)
	}
	var h historyAnswer
	fetchJSON(t, "GET", srv+"/api/v1/repositories/"+repo+"/history?tag="+url.QueryEscape(tag), &h)
	if len(h.Changes) == 0 || h.Changes[0].Kind != "deleted" || h.Changes[0].Digest != nil || h.Changes[0].PreviousDigest == nil || *h.Changes[0].PreviousDigest != digest {
		t.Errorf("history of %s: %+v, want its deletion from %s first", tag, h.Changes, digest)
	}
	at, err := time.Parse(time.RFC3339, h.Changes[0].At)
	if err != nil || at.Before(noticedAfter.Add(-time.Second)) || at.After(time.Now().Add(time.Second)) {
		t.Errorf("deletion at %s (%v), want between %s and now", h.Changes[0].At, err, noticedAfter.Format(time.RFC3339))
	}
}

// TestDeletedTagOnDistribution deletes a tag with `crane delete` on the real
// registry: the next refresh answers 404 with the removal time, the badge
// says "tag removed", the tag leaves the groups, and the history shows the
// deletion; crane is the judge of what the registry still has.
//
// Debian's distribution (2.8) refuses a DELETE by tag (400 "digest
// invalid"), so the tag is deleted as that registry allows: `crane delete`
// of its manifest by digest, which removes every tag pointing at it.
func TestDeletedTagOnDistribution(t *testing.T) {
	testenv.EachEngine(t, func(t *testing.T, db string) {
		reg := testenv.Distribution(t)
		srv := testenv.ServeProcess(t, testenv.Binary(t), testenv.ServeOptions{DBPath: db}).URL
		repo := reg + "/acme/base"
		img := must(random.Image(300, 2))
		writeImage(t, repo+":3.19.4", img, "3.19")
		other := must(random.Image(300, 2))
		writeImage(t, repo+":3.20", other)
		var list tagList
		fetchJSON(t, "GET", srv+"/api/v1/repositories/"+repo+"/tags?refresh=1", &list)
		if list.TagCount != 3 {
			t.Fatalf("test setup: %d tags listed, want 3", list.TagCount)
		}
		digest := strings.TrimSpace(string(testenv.Crane(t, "digest", repo+":3.19.4")))

		start := time.Now()
		testenv.Crane(t, "delete", repo+"@"+digest)
		left := craneTags(t, repo)
		if slices.Contains(left, "3.19.4") {
			t.Fatalf("crane still lists 3.19.4 after deleting it: %v", left)
		}
		var e apiError
		if code := fetchJSON(t, "POST", srv+"/api/v1/images/"+repo+":3.19.4/refresh", &e); code != 404 {
			t.Fatalf("refresh of the deleted tag: %d %+v", code, e.Error)
		}
		// A manifest deleted by digest takes every tag at it (distribution does
		// so): those crane no longer lists are refreshed too.
		for _, tg := range []string{"3.19", "3.20"} {
			if !slices.Contains(left, tg) {
				fetchJSON(t, "POST", srv+"/api/v1/images/"+repo+":"+tg+"/refresh", &e)
			}
		}
		checkRemoved(t, srv, repo, "3.19.4", digest, left, start)
	})
}

// TestDeletedTagByNotification: the same, noticed through the registry's
// own delete notification to /hooks/registry, with no refresh or poll.
func TestDeletedTagByNotification(t *testing.T) {
	testenv.EachEngine(t, func(t *testing.T, db string) {
		srv, reg := notifying(t, db)
		repo := reg + "/acme/base"
		img := must(random.Image(300, 2))
		writeImage(t, repo+":3.19.4", img)
		writeImage(t, repo+":3.20", must(random.Image(300, 2)))
		var list tagList
		fetchJSON(t, "GET", srv+"/api/v1/repositories/"+repo+"/tags?refresh=1", &list)
		digest := strings.TrimSpace(string(testenv.Crane(t, "digest", repo+":3.19.4")))

		start := time.Now()
		testenv.Crane(t, "delete", repo+"@"+digest)
		left := craneTags(t, repo)
		deadline := time.Now().Add(15 * time.Second)
		for {
			var e apiError
			if code := fetchJSON(t, "GET", srv+"/api/v1/images/"+repo+":3.19.4", &e); code == 404 && strings.Contains(e.Error.Message, "removed") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the registry's notification did not make 3.19.4 removed within 15 s")
			}
			time.Sleep(50 * time.Millisecond)
		}
		checkRemoved(t, srv, repo, "3.19.4", digest, left, start)
	})
}

// TestDiffCommand runs `imagebadger diff` as a user would, judged by crane.
func TestDiffCommand(t *testing.T) {
	reg := testenv.Distribution(t)
	empty := must(random.Image(0, 0))
	base := on(t, empty, 2)
	tag(t, reg+"/acme/app:1", on(t, base, 1))
	tag(t, reg+"/acme/app:2", on(t, base, 3))
	from, to := diffIDs(t, reg+"/acme/app:1"), diffIDs(t, reg+"/acme/app:2")
	bin := testenv.Binary(t)
	out, err := exec.Command(bin, "diff", "--json", "--allow-private-registries", reg+"/acme/app:1", reg+"/acme/app:2").Output()
	if err != nil {
		t.Fatalf("diff: %v", err)
	}
	var d struct {
		Shared struct {
			LayerCount int `json:"layerCount"`
		} `json:"shared"`
		Removed, Added []struct {
			DiffID string `json:"diffId"`
		}
		LayerCountDelta int `json:"layerCountDelta"`
	}
	if err := json.Unmarshal(out, &d); err != nil {
		t.Fatalf("diff --json: %v\n%s", err, out)
	}
	var added []string
	for _, l := range d.Added {
		added = append(added, l.DiffID)
	}
	if d.Shared.LayerCount != 2 || len(d.Removed) != 1 || d.Removed[0].DiffID != from[2] || !slices.Equal(added, to[2:]) || d.LayerCountDelta != 2 {
		t.Errorf("diff %+v; crane says 1 has %v and 2 has %v", d, from, to)
	}
	text, err := exec.Command(bin, "diff", "--allow-private-registries", reg+"/acme/app:1", reg+"/acme/app:2").CombinedOutput()
	if err != nil || !strings.Contains(string(text), "shared: 2 layers") || !strings.Contains(string(text), "added: 3 layers") {
		t.Errorf("diff: %v\n%s", err, text)
	}
	// A platform the images lack is the user's mistake, said as such.
	text, err = exec.Command(bin, "diff", "--platform", "linux/s390x", "--allow-private-registries", reg+"/acme/app:1", reg+"/acme/app:2").CombinedOutput()
	if err == nil || !strings.Contains(string(text), "has no linux/s390x image") {
		t.Errorf("diff --platform linux/s390x: %v\n%s", err, text)
	}
}
