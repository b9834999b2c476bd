package server_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/internal/demo"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/internal/testing/testenv"
	"github.com/imagebadger/imagebadger/netguard"
	"github.com/imagebadger/imagebadger/registry"
	"github.com/imagebadger/imagebadger/server"
	"github.com/imagebadger/imagebadger/store"
)

// These tests reproduce the event defects of issue 13 through the whole
// service (registry, store, images, notify's builder and worker, the API):
// what counts is the outbox (the deliveries each subscription got, as its
// API shows them) and the verified webhooks a real receiver got.

// registryEnvelope is a distribution notification of pushes of tags of repo,
// as the registry at host sends it.
func registryEnvelope(host, repo string, digest string, tags ...string) string {
	var evs []string
	for i, tg := range tags {
		evs = append(evs, fmt.Sprintf(`{"id":"e%d","action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json",
			"digest":%q,"repository":%q,"url":"http://%s/v2/%s/manifests/%s","tag":%q},"request":{"host":%q}}`,
			i, digest, repo, host, repo, digest, tg, host))
	}
	return `{"events":[` + strings.Join(evs, ",") + `]}`
}

func strs(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// TestBaseRebuildMovingSeveralTagsGivesOneBaseUpdatedPerImage: a base
// rebuild moves four tags of the parent (1.4.2, 1.4, 1, latest) to one new
// digest. Each subscription on the child gets one base.updated for the
// child image, not one per moved base tag, and a repository-wide one gets
// one for the image, not one per child tag and base tag; whichever way the
// moves are noticed (the tag listing, one refresh per tag, or the
// registry's notifications, checked concurrently by the watcher).
func TestBaseRebuildMovingSeveralTagsGivesOneBaseUpdatedPerImage(t *testing.T) {
	baseTags := []string{"1.4.2", "1.4", "1", "latest"}
	appTags := []string{"2.3.1", "2.3", "2"}
	for _, how := range []string{"listing", "refresh", "hook"} {
		t.Run(how, func(t *testing.T) {
			s := stack.New(t, stack.Options{Registry: true, Notify: true, Watcher: true, AllowPrivateWebhooks: true, Server: &server.Config{HookToken: "hook-s3cret"}})
			runtimeRepo, appRepo := s.Registry.Host+"/acme/runtime", s.Registry.Host+"/acme/app"
			base := stack.Image(t, nil, 3, nil)
			for _, tg := range baseTags {
				stack.PushImage(t, base, runtimeRepo+":"+tg)
			}
			app := stack.Image(t, base, 2, nil)
			for _, tg := range appTags {
				stack.PushImage(t, app, appRepo+":"+tg)
			}
			s.ListTags(t, runtimeRepo)
			s.ListTags(t, appRepo)
			if p := s.ParentOf(t, appRepo+":2.3.1"); p == nil || p.Repository != "acme/runtime" || p.Outdated {
				t.Fatalf("test setup: app's parent %+v, want the current acme/runtime", p)
			}
			rc := stack.NewReceiver(t)
			tagSub := s.Subscribe(t, rc, appRepo+":2.3.1", "/tag", "base.updated")
			repoSub := s.Subscribe(t, rc, appRepo, "/repo", "base.updated")

			rebuilt := stack.Image(t, nil, 3, nil)
			newBase := must(rebuilt.Digest()).String()
			for _, tg := range baseTags {
				stack.PushImage(t, rebuilt, runtimeRepo+":"+tg)
			}
			switch how {
			case "listing":
				s.ListTags(t, runtimeRepo)
			case "refresh":
				for _, tg := range baseTags {
					if code, _, _ := stack.Call(t, "POST", s.URL+"/api/v1/images/"+runtimeRepo+":"+tg+"/refresh", "", nil); code != 200 {
						t.Fatalf("refresh %s: %d", tg, code)
					}
				}
			case "hook":
				code, body := hookPost(t, s.URL+"/hooks/registry", "hook-s3cret", "application/vnd.docker.distribution.events.v1+json",
					registryEnvelope(s.Registry.Host, "acme/runtime", newBase, baseTags...))
				if code != http.StatusAccepted {
					t.Fatalf("hook: %d %v", code, body)
				}
				// The watcher checks the four tags concurrently; wait until it
				// has recorded every move.
				deadline := time.Now().Add(10 * time.Second)
				for {
					moved := 0
					for _, tg := range baseTags {
						if st, err := s.Store.Tag(t.Context(), must(analysis.ParseRepository(runtimeRepo)), tg); err == nil && st.Digest == newBase {
							moved++
						}
					}
					if moved == len(baseTags) {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("%d of the 4 hooked tags recorded as moved within 10 s", moved)
					}
					time.Sleep(10 * time.Millisecond)
				}
			}

			// The report, the one definition: the child is outdated now.
			if p := s.ParentOf(t, appRepo+":2.3.1"); p == nil || !p.Outdated || p.CurrentDigest != newBase {
				t.Errorf("after the rebuild: app's parent %+v, want outdated at %s", p, newBase)
			}
			// Every delivery is in the outbox once the moves are told.
			if n := s.DeliveryCount(t, tagSub, "base.updated"); n != 1 {
				t.Errorf("the subscription to app:2.3.1 has %d base.updated deliveries, want 1", n)
			}
			if n := s.DeliveryCount(t, repoSub, "base.updated"); n != 1 {
				t.Errorf("the repository-wide subscription has %d base.updated deliveries, want 1 (one image)", n)
			}
			tagMsg := rc.WaitPayloads(t, tagSub.Secret, "/tag", "base.updated", 1)[0]
			repoMsg := rc.WaitPayloads(t, repoSub.Secret, "/repo", "base.updated", 1)[0]
			for name, p := range map[string]map[string]any{"tag": tagMsg, "repository-wide": repoMsg} {
				data, _ := p["data"].(map[string]any)
				img, _ := data["image"].(map[string]any)
				b, _ := data["base"].(map[string]any)
				if img["digest"] != must(app.Digest()).String() || img["repository"] != "acme/app" {
					t.Errorf("%s: data.image = %v", name, img)
				}
				if b["digest"] != newBase || b["previousDigest"] != must(base.Digest()).String() || b["repository"] != "acme/runtime" {
					t.Errorf("%s: data.base = %v", name, b)
				}
				got := strs(b["tags"])
				if how == "listing" {
					// Sorted as the pages sort tags: latest first.
					if want := []string{"latest", "1", "1.4", "1.4.2"}; !cmp.Equal(got, want) {
						t.Errorf("%s: data.base.tags = %v, want all four moved tags %v", name, got, want)
					}
				} else if len(got) == 0 || !slices.Contains(got, b["tag"].(string)) {
					t.Errorf("%s: data.base.tags = %v, want the moved tags, data.base.tag (%v) among them", name, got, b["tag"])
				}
				for _, tg := range got {
					if !slices.Contains(baseTags, tg) {
						t.Errorf("%s: data.base.tags holds %q, which did not move", name, tg)
					}
				}
			}
			if img := tagMsg["data"].(map[string]any)["image"].(map[string]any); img["tag"] != "2.3.1" {
				t.Errorf("tag subscription: data.image.tag = %v, want 2.3.1", img["tag"])
			}
			img := repoMsg["data"].(map[string]any)["image"].(map[string]any)
			if got := strs(img["tags"]); !cmp.Equal(got, []string{"2", "2.3", "2.3.1"}) {
				t.Errorf("repository-wide subscription: data.image.tags = %v, want the image's three tags", got)
			}
		})
	}
}

// relabel returns img with one more label and nothing else changed: the
// same layers, a new config, so a new digest.
func relabel(t *testing.T, img v1.Image, key, value string) v1.Image {
	t.Helper()
	cf := must(img.ConfigFile()).DeepCopy()
	labels := map[string]string{}
	for k, v := range cf.Config.Labels {
		labels[k] = v
	}
	labels[key] = value
	cf.Config.Labels = labels
	return must(mutate.ConfigFile(img, cf))
}

// TestLabelOnlyRebuildOfOneParentTagIsNotOutdated is the demo's case: the
// runtime's 1.4.2 is rebuilt with a new label only (same layers, new config)
// while its other tags (1.4, 1, latest) stay on the old build. The app built
// on it is not outdated: the report, the badge and the events say so alike,
// however the move is noticed.
func TestLabelOnlyRebuildOfOneParentTagIsNotOutdated(t *testing.T) {
	for _, how := range []string{"refresh", "listing"} {
		t.Run(how, func(t *testing.T) {
			s := stack.New(t, stack.Options{Registry: true, Notify: true, AllowPrivateWebhooks: true, Server: &server.Config{}})
			runtimeRepo, appRepo := s.Registry.Host+"/acme/runtime", s.Registry.Host+"/acme/app"
			runtime := stack.Image(t, nil, 3, map[string]string{"org.opencontainers.image.version": "1.4.2"})
			for _, tg := range []string{"1.4.2", "1.4", "1", "latest"} {
				stack.PushImage(t, runtime, runtimeRepo+":"+tg)
			}
			app := stack.Image(t, runtime, 2, nil)
			stack.PushImage(t, app, appRepo+":2.3.1", appRepo+":2.3")
			s.ListTags(t, runtimeRepo)
			s.ListTags(t, appRepo)
			rc := stack.NewReceiver(t)
			tagSub := s.Subscribe(t, rc, appRepo+":2.3.1", "/tag", "base.updated")
			repoSub := s.Subscribe(t, rc, appRepo, "/repo", "base.updated")

			relabelled := relabel(t, runtime, "org.opencontainers.image.revision", "rebuilt-with-a-label")
			if err := crane.Push(relabelled, runtimeRepo+":1.4.2"); err != nil {
				t.Fatal(err)
			}
			if how == "refresh" {
				if code, _, _ := stack.Call(t, "POST", s.URL+"/api/v1/images/"+runtimeRepo+":1.4.2/refresh", "", nil); code != 200 {
					t.Fatalf("refresh: %d", code)
				}
			} else {
				s.ListTags(t, runtimeRepo)
			}
			if p := s.ParentOf(t, appRepo+":2.3.1"); p == nil || p.Outdated {
				t.Errorf("report: app's parent %+v, want not outdated (same layers)", p)
			}
			if b := getBadge(t, s.URL+"/badges/base/"+appRepo+":2.3.1.svg", nil); strings.Contains(string(b.body), "outdated") {
				t.Errorf("badge says outdated: %s", b.body)
			}
			if n := s.DeliveryCount(t, tagSub, "base.updated"); n != 0 {
				t.Errorf("the subscription to app:2.3.1 got %d base.updated, want none", n)
			}
			if n := s.DeliveryCount(t, repoSub, "base.updated"); n != 0 {
				t.Errorf("the repository-wide subscription got %d base.updated, want none", n)
			}
		})
	}
}

// TestDemoLabelOnlyRebuildIsNotOutdated reproduces the report on the
// demo family itself: after the seeding, acme/runtime:1.4.2 (a two-platform
// index) is rebuilt with a new label and pushed to 1.4.2 alone; 1.4, 1 and
// latest stay on the old build. Noticed by a refresh and by the watched
// listing, as `imagebadger demo` would, the move must give app:2.3.1's
// subscribers no base.updated, and the report must say not outdated on
// every platform.
//
// Two rebuilds: every platform image relabelled into a new index, and
// `crane mutate --label`, which is what a person tries first and which
// pushes the linux/amd64 image alone (crane mutate flattens an index). The
// second left the arm64 platform with a 1.4.2 that has no arm64 image at
// all: nothing newer to build on, so not outdated either.
func TestDemoLabelOnlyRebuildIsNotOutdated(t *testing.T) {
	for _, how := range []string{"relabelled index", "crane mutate"} {
		t.Run(how, func(t *testing.T) {
			ctx := t.Context()
			reg, err := demo.StartRegistry()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { reg.Close() })
			st := stack.OpenStore(t, stack.SQLite)
			client, err := registry.New(registry.Options{Transport: netguard.New(true).Transport(), Timeout: 10 * time.Second, Keychain: authn.NewMultiKeychain()})
			if err != nil {
				t.Fatal(err)
			}
			if err := reg.Seed(ctx, st, client); err != nil {
				t.Fatal(err)
			}
			s := stack.New(t, stack.Options{Store: st, Notify: true})
			svc := s.Images
			if _, err := svc.LoadIndex(ctx); err != nil {
				t.Fatal(err)
			}
			appRef := must(analysis.ParseReference(reg.Ref(demo.App + ":2.3.1")))
			subs := map[string]string{"sub_tag": "2.3.1", "sub_repo": ""}
			for id, tag := range subs {
				if _, err := st.CreateSubscription(ctx, store.Subscription{ID: id, Repo: appRef.Repository, Tag: tag, URL: "http://127.0.0.1:1/",
					Events: []string{"image.updated", "base.updated"}, Secret: "whsec_x", TokenHash: "h", Status: store.SubscriptionActive, CreatedAt: time.Now()},
					store.NewDelivery{}); err != nil {
					t.Fatal(err)
				}
			}

			target := reg.Ref(demo.Runtime + ":1.4.2")
			if how == "crane mutate" {
				testenv.Crane(t, "mutate", target, "--label", "org.opencontainers.image.revision=relabelled", "--tag", target)
			} else {
				old := must(remote.Index(must(name.ParseReference(target))))
				im := must(old.IndexManifest())
				idx := mutate.IndexMediaType(empty.Index, im.MediaType)
				for _, d := range im.Manifests {
					img := must(old.Image(d.Digest))
					idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: relabel(t, img, "org.opencontainers.image.revision", "relabelled"),
						Descriptor: v1.Descriptor{Platform: d.Platform, Annotations: d.Annotations}})
				}
				if err := remote.WriteIndex(must(name.ParseReference(target)), idx); err != nil {
					t.Fatal(err)
				}
			}
			runtimeRepo := must(analysis.ParseRepository(reg.Ref(demo.Runtime)))
			if err := svc.Check(ctx, runtimeRepo.WithTag("1.4.2"), images.ReadOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Tags(ctx, runtimeRepo, images.ReadOptions{Refresh: true}); err != nil {
				t.Fatal(err)
			}
			s.Settle(t)
			a, err := svc.Read(ctx, appRef, images.ReadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range a.Report.Platforms {
				if p.Parent == nil || p.Parent.Outdated {
					t.Errorf("%s: parent %+v, want not outdated", p.Platform, p.Parent)
				}
			}
			for id := range subs {
				ds, err := st.Deliveries(ctx, id, 50)
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range ds {
					if d.Type == "base.updated" {
						t.Errorf("%s got a base.updated after a label-only rebuild of one runtime tag", id)
					}
				}
			}
		})
	}
}

// recentItems reads the home page's "Recently changed" entries: each one's
// tags (the chips) and its whole text.
func recentItems(t *testing.T, s *stack.Stack) (tags [][]string, texts []string) {
	t.Helper()
	a := pageGet(t, s, "/")
	if a.status != 200 {
		t.Fatalf("home: %d", a.status)
	}
	a.testid("recent-item").Each(func(_ int, it *goquery.Selection) {
		var ts []string
		it.Find(`[data-testid="recent-tags"] a`).Each(func(_ int, c *goquery.Selection) { ts = append(ts, strings.TrimSpace(c.Text())) })
		tags = append(tags, ts)
		texts = append(texts, strings.Join(strings.Fields(it.Text()), " "))
	})
	return tags, texts
}

// TestCopyOfOneTagOntoAnotherShowsThatMoveAlone: after `crane copy app:2.2
// app:2.3`, "Recently changed" shows exactly that move (2.3, from where it
// pointed to 2.2's image) on top, and the entries before it are what they
// were: the feed lists recorded changes, not a regrouping of where the tags
// point today.
func TestCopyOfOneTagOntoAnotherShowsThatMoveAlone(t *testing.T) {
	s := stack.New(t, stack.Options{Registry: true, Watch: []string{"acme/base"}, Server: &server.Config{BaseURL: "https://badger.example"}})
	appRepo := s.Registry.Host + "/acme/app"
	v22 := stack.Image(t, nil, 2, nil)
	v23 := stack.Image(t, nil, 2, nil)
	stack.PushImage(t, v22, appRepo+":2.2", appRepo+":2.2.7")
	stack.PushImage(t, v23, appRepo+":2.3", appRepo+":2.3.1")
	if a := pageGet(t, s, "/api/v1/repositories/"+appRepo+"/tags?refresh=1"); a.status != 200 {
		t.Fatalf("list: %d", a.status)
	}
	beforeTags, beforeTexts := recentItems(t, s)
	if len(beforeTags) == 0 {
		t.Fatal("nothing recently changed after the first listing")
	}

	if err := crane.Copy(appRepo+":2.2", appRepo+":2.3"); err != nil {
		t.Fatal(err)
	}
	if a := pageGet(t, s, "/api/v1/repositories/"+appRepo+"/tags?refresh=1"); a.status != 200 {
		t.Fatalf("list: %d", a.status)
	}
	tags, texts := recentItems(t, s)
	if len(tags) == 0 {
		t.Fatal("nothing recently changed")
	}
	if !cmp.Equal(tags[0], []string{"2.3"}) {
		t.Errorf("top entry's tags = %v, want [2.3]: only 2.3 moved", tags[0])
	}
	from, to := analysis.ShortDigest(must(v23.Digest()).String()), analysis.ShortDigest(must(v22.Digest()).String())
	if i, j := strings.Index(texts[0], from), strings.Index(texts[0], to); i < 0 || j < 0 || i > j {
		t.Errorf("top entry %q does not say it moved from %s to %s", texts[0], from, to)
	}
	if diff := cmp.Diff(beforeTags, tags[1:]); diff != "" {
		t.Errorf("older entries' tags changed (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(beforeTexts, texts[1:]); diff != "" {
		t.Errorf("older entries changed (-before +after):\n%s", diff)
	}
}

// TestImageUpdatedCarriesTheDiffOfTheMove: a subscriber of a tag gets, with
// its image.updated, the diff of the move (data.changes) and which
// platforms changed (data.image.platforms); the expectations are crane's
// reading of the two images pushed.
func TestImageUpdatedCarriesTheDiffOfTheMove(t *testing.T) {
	s := stack.New(t, stack.Options{Registry: true, Notify: true, AllowPrivateWebhooks: true, Server: &server.Config{}})
	ref := s.Registry.Host + "/acme/app:2"
	base := stack.Image(t, nil, 2, nil)
	old := stack.Image(t, base, 1, map[string]string{"org.opencontainers.image.version": "2.2.7"})
	stack.PushImage(t, old, ref)
	rc := stack.NewReceiver(t)
	sub := s.Subscribe(t, rc, ref, "/app", "image.updated")
	_, oldDiffIDs, _ := craneLayers(t, ref)

	moved := stack.Image(t, base, 2, map[string]string{"org.opencontainers.image.version": "2.3.1"})
	stack.PushImage(t, moved, ref)
	if code, _, _ := stack.Call(t, "POST", s.URL+"/api/v1/images/"+ref+"/refresh", "", nil); code != 200 {
		t.Fatalf("refresh: %d", code)
	}
	digests, diffIDs, sizes := craneLayers(t, ref)
	p := rc.WaitPayloads(t, sub.Secret, "/app", "image.updated", 1)[0]
	data := p["data"].(map[string]any)
	changes, ok := data["changes"].(map[string]any)
	if !ok {
		t.Fatalf("image.updated without data.changes: %v", data)
	}
	if sh := changes["shared"].(map[string]any); sh["layerCount"] != 2.0 || sh["size"] != float64(sizes[0]+sizes[1]) {
		t.Errorf("shared %v, want the base's 2 layers of %d bytes", sh, sizes[0]+sizes[1])
	}
	added := changes["added"].([]any)
	if len(added) != 2 || added[0].(map[string]any)["diffId"] != diffIDs[2] || added[1].(map[string]any)["digest"] != digests[3] {
		t.Errorf("added %v, want crane's layers 3 and 4", added)
	}
	if removed := changes["removed"].([]any); len(removed) != 1 || removed[0].(map[string]any)["diffId"] != oldDiffIDs[2] {
		t.Errorf("removed %v, want the old image's layer 3 (%s)", removed, oldDiffIDs[2])
	}
	if v := changes["metadata"].(map[string]any)["version"].(map[string]any); v["from"] != "2.2.7" || v["to"] != "2.3.1" {
		t.Errorf("metadata %v", changes["metadata"])
	}
	want := []any{map[string]any{"platform": "linux/amd64", "digest": must(moved.Digest()).String(), "previousDigest": must(old.Digest()).String(), "changed": true}}
	if diff := cmp.Diff(want, data["image"].(map[string]any)["platforms"]); diff != "" {
		t.Errorf("data.image.platforms (-want +got):\n%s", diff)
	}
}
