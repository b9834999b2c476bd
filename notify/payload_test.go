package notify_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"imagebadger/analysis"
	"imagebadger/images"
	"imagebadger/notify"
	"imagebadger/store"
)

func change(tag, previous, current string, at time.Time) images.Change {
	return images.Change{Repo: repo, Tag: tag, Previous: previous, Current: current, At: at, PlatformsChanged: true,
		Report: &analysis.Report{Digest: current}}
}

func decode(t *testing.T, e store.Event) map[string]any {
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
	evs, err := b.Events(change("1.0", dOld, dNew, t0))
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
		"text":      "127.0.0.1:5000/acme/base:1.0 changed: sha256:1a2b3c4d0000 → sha256:5e6f7a8b0000 http://localhost:8080/images/127.0.0.1:5000/acme/base:1.0",
		"data": map[string]any{"image": map[string]any{
			"registry": "127.0.0.1:5000", "repository": "acme/base", "tag": "1.0",
			"reference": "127.0.0.1:5000/acme/base:1.0", "digest": dNew, "previousDigest": dOld,
			"url": "http://localhost:8080/images/127.0.0.1:5000/acme/base:1.0",
		}},
	}
	if diff := cmp.Diff(want, decode(t, e)); diff != "" {
		t.Errorf("payload (-want +got):\n%s", diff)
	}
	// Every event gets its own id (a tag moving back and forth is several events).
	again, _ := b.Events(change("1.0", dOld, dNew, t0))
	if again[0].ID == e.ID {
		t.Error("two events share an id")
	}
}

func TestNewTagHasNullPreviousDigest(t *testing.T) {
	evs, err := notify.NewBuilder("http://x").Events(change("2.0", "", dNew, t0))
	if err != nil || len(evs) != 1 {
		t.Fatalf("events = %v, %v", evs, err)
	}
	img := decode(t, evs[0])["data"].(map[string]any)["image"].(map[string]any)
	if v, ok := img["previousDigest"]; !ok || v != nil {
		t.Errorf("previousDigest = %v (present %v), want null", v, ok)
	}
}

func TestUnchangedPlatformsGiveNoEvent(t *testing.T) {
	c := change("1.0", dOld, dNew, t0)
	c.PlatformsChanged = false
	c.Outdated = []images.OutdatedChild{{Child: repo.WithTag("x"), ChildDigest: "sha256:c", Platform: "linux/amd64", BuiltOn: dOld}}
	if evs, err := notify.NewBuilder("http://x").Events(c); err != nil || len(evs) != 0 {
		t.Errorf("events = %v, %v; want none", evs, err)
	}
}

// TestBaseUpdatedPayload builds base.updated from a Change as the parent
// detection fills it: one entry per child tag and platform.
func TestBaseUpdatedPayload(t *testing.T) {
	app := analysis.Repository{Registry: "127.0.0.1:5000", Name: "acme/app"}
	c := change("1.0", dOld, dNew, t0)
	c.Outdated = []images.OutdatedChild{
		{Child: app.WithTag("2.3"), ChildDigest: "sha256:c1", Platform: "linux/amd64", BuiltOn: dOld},
		{Child: app.WithTag("2.3"), ChildDigest: "sha256:c1", Platform: "linux/arm64", BuiltOn: dOld},
		{Child: app.WithTag("latest"), ChildDigest: "sha256:c1", Platform: "linux/amd64", BuiltOn: dOld},
		// Known by digest only: nobody can have subscribed to it.
		{Child: app.WithDigest("sha256:c2"), ChildDigest: "sha256:c2", Platform: "linux/amd64", BuiltOn: dOld},
	}
	evs, err := notify.NewBuilder("http://localhost:8080").Events(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 || evs[0].Type != "image.updated" {
		t.Fatalf("events = %+v, want image.updated and two base.updated", evs)
	}
	var tags []string
	for _, e := range evs[1:] {
		if e.Type != "base.updated" || e.Registry != app.Registry || e.Repository != app.Name {
			t.Errorf("event = %+v", e)
		}
		tags = append(tags, e.Tag)
	}
	if !cmp.Equal(tags, []string{"2.3", "latest"}) {
		t.Errorf("base.updated tags = %v", tags)
	}
	want := map[string]any{
		"type":      "base.updated",
		"timestamp": "2026-11-26T22:00:00Z",
		"text":      "127.0.0.1:5000/acme/app:2.3 is outdated: its base 127.0.0.1:5000/acme/base:1.0 moved from sha256:1a2b3c4d0000 to sha256:5e6f7a8b0000 http://localhost:8080/images/127.0.0.1:5000/acme/app:2.3",
		"data": map[string]any{
			"image": map[string]any{
				"registry": "127.0.0.1:5000", "repository": "acme/app", "tag": "2.3",
				"reference": "127.0.0.1:5000/acme/app:2.3", "digest": "sha256:c1", "previousDigest": nil,
				"url": "http://localhost:8080/images/127.0.0.1:5000/acme/app:2.3", "platforms": []any{"linux/amd64", "linux/arm64"},
			},
			"base": map[string]any{
				"registry": "127.0.0.1:5000", "repository": "acme/base", "tag": "1.0",
				"reference": "127.0.0.1:5000/acme/base:1.0", "digest": dNew, "previousDigest": dOld,
				"url": "http://localhost:8080/images/127.0.0.1:5000/acme/base:1.0",
			},
		},
	}
	if diff := cmp.Diff(want, decode(t, evs[1])); diff != "" {
		t.Errorf("base.updated payload (-want +got):\n%s", diff)
	}
}

func TestDockerHubNamesAreShort(t *testing.T) {
	c := change("3.12", dOld, dNew, t0)
	c.Repo = analysis.Repository{Registry: "docker.io", Name: "library/python"}
	evs, _ := notify.NewBuilder("https://badges.example").Events(c)
	if got := decode(t, evs[0])["text"]; got != "python:3.12 changed: sha256:1a2b3c4d0000 → sha256:5e6f7a8b0000 https://badges.example/images/docker.io/library/python:3.12" {
		t.Errorf("text = %v", got)
	}
}
