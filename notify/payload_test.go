package notify_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/notify"
)

func change(tag, previous, current string, at time.Time) notify.Change {
	return notify.Change{Repo: repo, Tag: tag, Previous: previous, Current: current, At: at, PlatformsChanged: true,
		Report: &analysis.Report{Digest: current}}
}

func decode(t *testing.T, e notify.Event) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(e.Payload, &m); err != nil {
		t.Fatalf("payload of %s: %v", e.Type, err)
	}
	return m
}

const (
	dOld = "sha256:1a2b3c4d00000000000000000000000000000000000000000000000000000000"
	dNew = "sha256:5e6f7a8b00000000000000000000000000000000000000000000000000000000"
)

func TestImageUpdatedPayload(t *testing.T) {
	b := notify.NewBuilder("http://localhost:8080/")
	evs, err := b.Events(change("1.0", dOld, dNew, t0), nil)
	if err != nil || len(evs) != 1 {
		t.Fatalf("events = %v, %v", evs, err)
	}
	e := evs[0]
	if e.Type != "image.updated" || e.Registry != repo.Registry || e.Repository != repo.Name || e.Tag != "1.0" || e.ID == "" {
		t.Errorf("event = %+v", e)
	}
	want := map[string]any{
		"type":      "image.updated",
		"timestamp": "2026-11-26T22:00:00Z",
		"title":     "127.0.0.1:5000/acme/base:1.0 moved to a new image",
		"text": "127.0.0.1:5000/acme/base:1.0 moved to a new image (sha256:1a2b3c4d0000 → sha256:5e6f7a8b0000) http://localhost:8080/images/127.0.0.1:5000/acme/base:1.0" +
			" diff: http://localhost:8080/diff?from=127.0.0.1:5000/acme/base@" + dOld + "&to=127.0.0.1:5000/acme/base@" + dNew,
		"data": map[string]any{"image": map[string]any{
			"registry": "127.0.0.1:5000", "repository": "acme/base", "tag": "1.0",
			"reference": "127.0.0.1:5000/acme/base:1.0", "digest": dNew, "previousDigest": dOld,
			"url":     "http://localhost:8080/images/127.0.0.1:5000/acme/base:1.0",
			"diffUrl": "http://localhost:8080/diff?from=127.0.0.1:5000/acme/base@" + dOld + "&to=127.0.0.1:5000/acme/base@" + dNew,
		}},
	}
	if diff := cmp.Diff(want, decode(t, e)); diff != "" {
		t.Errorf("payload (-want +got):\n%s", diff)
	}
	// Every event gets its own id (a tag moving back and forth is several events).
	again, _ := b.Events(change("1.0", dOld, dNew, t0), nil)
	if again[0].ID == e.ID {
		t.Error("two events share an id")
	}
}

func TestNewTagHasNullPreviousDigest(t *testing.T) {
	evs, err := notify.NewBuilder("http://x").Events(change("2.0", "", dNew, t0), nil)
	// image.updated, and, the new tag being a version, a release candidate.
	if err != nil || len(evs) != 2 || evs[1].Type != "version.released" || !evs[1].Release() || evs[1].Audience() != notify.AudienceRepository {
		t.Fatalf("events = %v, %v", evs, err)
	}
	img := decode(t, evs[0])["data"].(map[string]any)["image"].(map[string]any)
	if v, ok := img["previousDigest"]; !ok || v != nil {
		t.Errorf("previousDigest = %v (present %v), want null", v, ok)
	}
}

func TestUnchangedPlatformsGiveNoImageUpdated(t *testing.T) {
	c := change("1.0", dOld, dNew, t0)
	c.PlatformsChanged = false
	if evs, err := notify.NewBuilder("http://x").Events(c, nil); err != nil || len(evs) != 0 {
		t.Errorf("events = %v, %v; want none", evs, err)
	}
}

// TestImageUpdatedCarriesTheDiffAndPlatforms: data.changes is the diff of
// the move (absent for a new tag), data.image.platforms says which
// platforms changed, a dropped one included.
func TestImageUpdatedCarriesTheDiffAndPlatforms(t *testing.T) {
	c := change("1.0", dOld, dNew, t0)
	version := func(s string) *string { return &s }
	c.Diff = &analysis.Diff{Platform: "linux/amd64", Shared: analysis.Shared{LayerCount: 2, Size: 300},
		Removed: []analysis.DiffLayer{{Digest: "sha256:r", DiffID: "sha256:rd", Size: 10, CreatedBy: "RUN old"}},
		Added:   []analysis.DiffLayer{}, SizeDelta: -10, LayerCountDelta: -1,
		Metadata:   analysis.MetadataDiff{Version: &analysis.ValueChange{From: version("1.0.1"), To: version("1.0.2")}},
		CompareURL: "https://github.com/acme/base/compare/a...b"}
	c.Platforms = []notify.PlatformChange{
		{Platform: "linux/amd64", Digest: "sha256:a2", Previous: "sha256:a1"},
		{Platform: "linux/arm64", Digest: "sha256:b1", Previous: "sha256:b1"},
		{Platform: "linux/s390x", Digest: "sha256:s1"},
		{Platform: "linux/ppc64le", Previous: "sha256:p1"},
	}
	evs, err := notify.NewBuilder("http://x").Events(c, nil)
	if err != nil || len(evs) != 1 {
		t.Fatalf("events = %v, %v", evs, err)
	}
	data := decode(t, evs[0])["data"].(map[string]any)
	wantPlatforms := []any{
		map[string]any{"platform": "linux/amd64", "digest": "sha256:a2", "previousDigest": "sha256:a1", "changed": true},
		map[string]any{"platform": "linux/arm64", "digest": "sha256:b1", "previousDigest": "sha256:b1", "changed": false},
		map[string]any{"platform": "linux/s390x", "digest": "sha256:s1", "previousDigest": nil, "changed": true},
		map[string]any{"platform": "linux/ppc64le", "digest": nil, "previousDigest": "sha256:p1", "changed": true},
	}
	if diff := cmp.Diff(wantPlatforms, data["image"].(map[string]any)["platforms"]); diff != "" {
		t.Errorf("data.image.platforms (-want +got):\n%s", diff)
	}
	wantChanges := map[string]any{
		"platform": "linux/amd64", "shared": map[string]any{"layerCount": 2.0, "size": 300.0},
		"removed":   []any{map[string]any{"digest": "sha256:r", "diffId": "sha256:rd", "size": 10.0, "createdBy": "RUN old"}},
		"added":     []any{},
		"sizeDelta": -10.0, "layerCountDelta": -1.0,
		"metadata":   map[string]any{"version": map[string]any{"from": "1.0.1", "to": "1.0.2"}},
		"compareUrl": "https://github.com/acme/base/compare/a...b",
	}
	if diff := cmp.Diff(wantChanges, data["changes"]); diff != "" {
		t.Errorf("data.changes (-want +got):\n%s", diff)
	}
	// A new tag has no previous image: no changes.
	evs, _ = notify.NewBuilder("http://x").Events(change("2.0", "", dNew, t0), nil)
	if _, ok := decode(t, evs[0])["data"].(map[string]any)["changes"]; ok {
		t.Error("a new tag's image.updated carries data.changes")
	}
}

// TestBaseUpdatedPayload builds base.updated from a change and the images
// parent detection says it makes outdated: for each outdated image, one
// event for the subscribers of each of its tags and one for its
// repository's, each with a key that makes it one of a kind.
func TestBaseUpdatedPayload(t *testing.T) {
	app := analysis.Repository{Registry: "127.0.0.1:5000", Name: "acme/app"}
	c := change("1.0", dOld, dNew, t0)
	outdated := []images.OutdatedImage{
		{Child: app, Digest: "sha256:c1", Tags: []string{"2.3", "latest"}, Platforms: []string{"linux/amd64", "linux/arm64"},
			Base: repo, BaseDigest: dNew, BaseTags: []string{"1", "1.0"}, BuiltOn: dOld},
		// Known by digest only: nobody can have subscribed to it.
		{Child: app, Digest: "sha256:c2", Platforms: []string{"linux/amd64"}, Base: repo, BaseDigest: dNew, BaseTags: []string{"1.0"}, BuiltOn: dOld},
	}
	evs, err := notify.NewBuilder("http://localhost:8080").EventsOfSet(7, c, outdated)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 4 || evs[0].Type != "image.updated" {
		t.Fatalf("events = %+v, want image.updated and three base.updated", evs)
	}
	type who struct {
		Tag      string
		Audience int
	}
	var got []who
	keys := map[string]bool{}
	for _, e := range evs[1:] {
		if e.Type != "base.updated" || e.Registry != app.Registry || e.Repository != app.Name || e.Key == "" {
			t.Errorf("event = %+v", e)
		}
		got = append(got, who{e.Tag, e.Audience()})
		keys[e.Key] = true
	}
	if diff := cmp.Diff([]who{{"2.3", notify.AudienceTag}, {"latest", notify.AudienceTag}, {"", notify.AudienceRepository}}, got); diff != "" {
		t.Errorf("base.updated audiences (-want +got):\n%s", diff)
	}
	if len(keys) != 3 {
		t.Errorf("dedup keys %v, want three different", keys)
	}
	// The same image outdated by the same new base, described again for
	// the same change set (by a successor of a fan-out that died), gets the
	// same keys.
	again, _ := notify.NewBuilder("http://localhost:8080").EventsOfSet(7, c, outdated)
	for i, e := range again[1:] {
		if e.Key != evs[i+1].Key {
			t.Errorf("event %d: key %q, then %q", i, evs[i+1].Key, e.Key)
		}
	}
	base := map[string]any{
		"registry": "127.0.0.1:5000", "repository": "acme/base", "tag": "1.0",
		"reference": "127.0.0.1:5000/acme/base:1.0", "digest": dNew, "previousDigest": dOld,
		"url": "http://localhost:8080/images/127.0.0.1:5000/acme/base:1.0", "tags": []any{"1", "1.0"},
		"diffUrl": "http://localhost:8080/diff?from=127.0.0.1:5000/acme/base@" + dOld + "&to=127.0.0.1:5000/acme/base@" + dNew,
	}
	want := map[string]any{
		"type":      "base.updated",
		"timestamp": "2026-11-26T22:00:00Z",
		"title":     "127.0.0.1:5000/acme/base:1.0 was rebuilt",
		"text": "127.0.0.1:5000/acme/base:1.0 was rebuilt; 127.0.0.1:5000/acme/app:2.3 is built on it and is now outdated" +
			" (sha256:1a2b3c4d0000 → sha256:5e6f7a8b0000) http://localhost:8080/images/127.0.0.1:5000/acme/app:2.3" +
			" diff: http://localhost:8080/diff?from=127.0.0.1:5000/acme/base@" + dOld + "&to=127.0.0.1:5000/acme/base@" + dNew,
		"data": map[string]any{
			"image": map[string]any{
				"registry": "127.0.0.1:5000", "repository": "acme/app", "tag": "2.3",
				"reference": "127.0.0.1:5000/acme/app:2.3", "digest": "sha256:c1", "previousDigest": nil,
				"url": "http://localhost:8080/images/127.0.0.1:5000/acme/app:2.3", "outdatedPlatforms": []any{"linux/amd64", "linux/arm64"},
			},
			"base": base,
		},
	}
	if diff := cmp.Diff(want, decode(t, evs[1])); diff != "" {
		t.Errorf("base.updated payload (-want +got):\n%s", diff)
	}
	repoWide := decode(t, evs[3])["data"].(map[string]any)["image"].(map[string]any)
	if diff := cmp.Diff([]any{"2.3", "latest"}, repoWide["tags"]); diff != "" {
		t.Errorf("repository-wide data.image.tags (-want +got):\n%s", diff)
	}
	if repoWide["tag"] != "2.3" {
		t.Errorf("repository-wide data.image.tag = %v, want the most specific tag", repoWide["tag"])
	}
}

func TestDockerHubNamesAreShort(t *testing.T) {
	c := change("3.12", dOld, dNew, t0)
	c.Repo = analysis.Repository{Registry: "docker.io", Name: "library/python"}
	evs, _ := notify.NewBuilder("https://badges.example").Events(c, nil)
	if got := decode(t, evs[0])["title"]; got != "python:3.12 moved to a new image" {
		t.Errorf("text = %v", got)
	}
}
