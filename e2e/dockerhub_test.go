package e2e_test

import (
	"strings"
	"testing"
	"time"

	"github.com/imagebadger/imagebadger/internal/testing/hubapi"
	"github.com/imagebadger/imagebadger/internal/testing/testenv"
)

// TestDockerHubFactsAndListing: with the distribution registry standing in
// for docker.io and the Docker Hub API double for hub.docker.com, the image
// report's repositoryInfo and /v1's Description, PullCount, StarCount and
// LastUpdated are Docker Hub's, the page shows them, and the tag groups are
// what crane says of the registry.
func TestDockerHubFactsAndListing(t *testing.T) {
	reg := testenv.Distribution(t)
	a, b := whImage(t, nil, 1), whImage(t, nil, 2)
	da, db := whPush(t, reg+"/library/base:1", a), whPush(t, reg+"/library/base:2", b)
	whPush(t, reg+"/library/base:latest", b)
	pushed := time.Date(2026, 11, 21, 8, 30, 0, 0, time.UTC)
	hub := hubapi.Start()
	defer hub.Close()
	repo := hubapi.Repository{Description: "The base of everything", Stars: 321, Pulls: 9_876_543, LastUpdated: pushed}
	for _, tg := range []struct{ name, digest string }{{"1", da}, {"2", db}, {"latest", db}} {
		repo.Tags = append(repo.Tags, hubapi.Tag{Name: tg.name, Digest: tg.digest, LastPushed: pushed,
			Images: []hubapi.Image{{Digest: tg.digest, OS: "linux", Architecture: "amd64"}}})
	}
	hub.Put("library/base", repo)
	srv := testenv.Serve(t, testenv.Binary(t), "--dockerhub-api", hub.URL, "--registry-endpoints", "docker.io="+reg)

	var mb struct {
		ImageName, LatestSHA, Description string
		PullCount, StarCount              int64
		LastUpdated                       time.Time
	}
	getJSON(t, srv+"/v1/images/library/base:2", &mb)
	crane2 := strings.TrimSpace(string(testenv.Crane(t, "digest", reg+"/library/base:2")))
	if mb.ImageName != "base" || mb.LatestSHA != crane2 || mb.Description != "The base of everything" ||
		mb.PullCount != 9_876_543 || mb.StarCount != 321 || !mb.LastUpdated.Equal(pushed) {
		t.Errorf("/v1 answer %+v; want Docker Hub's description, counts and last push, LatestSHA %s", mb, crane2)
	}
	var rep struct {
		Digest         string
		RepositoryInfo *struct {
			Source, Description  string
			PullCount, StarCount int64
			LastUpdated          time.Time
		}
	}
	getJSON(t, srv+"/api/v1/images/library/base:1", &rep)
	if ri := rep.RepositoryInfo; ri == nil || ri.Source != "dockerhub" || ri.PullCount != 9_876_543 || !ri.LastUpdated.Equal(pushed) || rep.Digest != da {
		t.Errorf("report digest %s repositoryInfo %+v", rep.Digest, rep.RepositoryInfo)
	}
	_, page := fetch(t, srv+"/images/library/base:1")
	if !strings.Contains(page, `data-testid="dockerhub"`) || !strings.Contains(page, "The base of everything") || !strings.Contains(page, "9.9M") {
		t.Error("the image page does not show Docker Hub's facts")
	}
	var list tagList
	getJSON(t, srv+"/api/v1/repositories/library/base/tags", &list)
	got := map[string]string{}
	for _, g := range list.Groups {
		for _, tg := range g.Tags {
			got[tg] = g.Digest
		}
	}
	for _, tg := range strings.Fields(string(testenv.Crane(t, "ls", reg+"/library/base"))) {
		if want := strings.TrimSpace(string(testenv.Crane(t, "digest", reg+"/library/base:"+tg))); got[tg] != want {
			t.Errorf("tag %s in group %s, crane says %s", tg, got[tg], want)
		}
	}
	if repoAsks, pages := hub.Requests(); repoAsks == 0 || pages == 0 {
		t.Errorf("Docker Hub asked %d times for the repository and %d for tag pages; the facts and listing did not come from it", repoAsks, pages)
	}
}
