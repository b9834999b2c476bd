package notify_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/internal/testing/supplyfix"
	"github.com/imagebadger/imagebadger/server"
)

// platformParents reads ref's report and returns each platform's parent.
func platformParents(t *testing.T, s *stack.Stack, ref string) map[string]*analysis.Parent {
	t.Helper()
	resp, err := http.Get(s.URL + "/api/v1/images/" + ref)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep analysis.Report
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil || resp.StatusCode != 200 {
		t.Fatalf("report of %s: %d %v", ref, resp.StatusCode, err)
	}
	out := map[string]*analysis.Parent{}
	for _, p := range rep.Platforms {
		out[p.Platform] = p.Parent
	}
	return out
}

// TestProvenanceNamesTheBase: a multi-stage build whose provenance lists
// the Dockerfile frontend, a golang builder stage and the alpine runtime
// base, for two platforms, neither base repository ever read before. The
// parent is alpine (method provenance) on both platforms, never the builder
// or the frontend; when alpine's tag moves to a rebuild, the report says
// outdated and the subscriber gets base.updated, noticed by the watcher's
// poll of the base's tag, which nothing but the subscription asked for.
func TestProvenanceNamesTheBase(t *testing.T) {
	stack.EachEngine(t, func(t *testing.T, engine string) {
		// The watcher's clock, moved on by a poll interval (the stack's is
		// an hour) when its poll is due.
		var ahead atomic.Int64
		watcherNow := func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
		s := stack.New(t, stack.Options{Engine: engine, Registry: true, Notify: true, AllowPrivateWebhooks: true, Server: &server.Options{}, WatcherNow: watcherNow})
		host := s.Registry.Host
		plats := []supplyfix.Platform{{OS: "linux", Architecture: "amd64", Layers: 2}, {OS: "linux", Architecture: "arm64", Layers: 2}}
		alpine := supplyfix.Push(t, host+"/library/alpine:3.20", supplyfix.Options{Platforms: plats, SBOMPackages: 1})
		// The builder stage shares no layer with the runtime image.
		golang := supplyfix.Push(t, host+"/library/golang:1.23", supplyfix.Options{Platforms: []supplyfix.Platform{
			{OS: "linux", Architecture: "amd64", Layers: 4}, {OS: "linux", Architecture: "arm64", Layers: 4}}, SBOMPackages: 1})
		var app []supplyfix.Platform
		for _, p := range plats {
			q := "?platform=" + strings.ReplaceAll(p.OS+"/"+p.Architecture, "/", "%2F")
			app = append(app, supplyfix.Platform{OS: p.OS, Architecture: p.Architecture, Layers: 1,
				Base: alpine.Images[p.OS+"/"+p.Architecture],
				Materials: []supplyfix.Material{
					{URI: "pkg:docker/docker/dockerfile@1.7", Digest: "sha256:" + strings.Repeat("d", 64)},
					{URI: "pkg:docker/" + host + "/library/golang@1.23" + q, Digest: golang.Index},
					{URI: "pkg:docker/" + host + "/library/alpine@3.20" + q, Digest: alpine.Index},
				}})
		}
		supplyfix.Push(t, host+"/acme/app:1", supplyfix.Options{Platforms: app, SBOMPackages: 3, Source: "https://github.com/acme/app", Revision: "abc"})

		parents := platformParents(t, s, host+"/acme/app:1")
		if len(parents) != 2 {
			t.Fatalf("%d platforms", len(parents))
		}
		for plat, p := range parents {
			if p == nil || p.Method != "provenance" || p.Repository != "library/alpine" || p.Registry != host ||
				p.Digest != alpine.Platforms[plat] || p.MatchedLayers != 2 || p.Outdated {
				t.Errorf("%s: parent %+v, want alpine's %s by provenance, 2 layers, current", plat, p, alpine.Platforms[plat])
				continue
			}
			if len(p.Tags) != 1 || p.Tags[0] != "3.20" {
				t.Errorf("%s: parent tags %v, want [3.20]", plat, p.Tags)
			}
		}

		rc := stack.NewReceiver(t)
		sub := s.Subscribe(t, rc, host+"/acme/app:1", "/app", "base.updated")
		rebuilt := supplyfix.Push(t, host+"/library/alpine:3.20", supplyfix.Options{Platforms: plats, SBOMPackages: 1})
		// Nobody asks for alpine, nor watches it: the watcher polls the
		// base's tag because a subscribed image is built on it, once its
		// last check is a poll interval old.
		ahead.Store(int64(2 * time.Hour))
		if err := s.Watcher.Poll(t.Context()); err != nil {
			t.Fatal(err)
		}

		for plat, p := range platformParents(t, s, host+"/acme/app:1") {
			if p == nil || p.Method != "provenance" || !p.Outdated || p.CurrentDigest != rebuilt.Index {
				t.Errorf("%s after the rebuild: parent %+v, want outdated at %s", plat, p, rebuilt.Index)
			}
		}
		if n := s.DeliveryCount(t, sub, "base.updated"); n != 1 {
			t.Errorf("%d base.updated deliveries, want 1", n)
		}
		msg := rc.WaitPayloads(t, sub.Secret, "/app", "base.updated", 1)[0]
		b, _ := msg["data"].(map[string]any)["base"].(map[string]any)
		if b["repository"] != "library/alpine" || b["digest"] != rebuilt.Index || b["previousDigest"] != alpine.Index {
			t.Errorf("data.base = %v, want library/alpine from %s to %s", b, alpine.Index, rebuilt.Index)
		}
	})
}
