package notify_test

// The whole story of a notification, from a push to the registry to the
// webhook a receiver verifies: the service built by internal/testing/stack
// (registry, store, images, the fan-out, the worker, the API) on each
// engine, judged by the outbox (each subscription's deliveries, as its API
// lists them) and by what a real receiver gets. The expectations are
// docs/API.md's.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/internal/demo"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/internal/testing/testenv"
	"github.com/imagebadger/imagebadger/netguard"
	"github.com/imagebadger/imagebadger/registry"
	"github.com/imagebadger/imagebadger/server"
	"github.com/imagebadger/imagebadger/store"
)

func TestMain(m *testing.M) { stack.Main(m) }

// body is what GET url answers.
func body(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// must is v, or a panic: for test data that cannot fail.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestBaseRebuildMovingSeveralTagsGivesOneBaseUpdatedPerImage: a base
// rebuild moves four tags of the parent (1.4.2, 1.4, 1, latest) to one new
// digest. Each subscription on the child gets one base.updated for the
// child image, not one per moved base tag, and a repository-wide one gets
// one for the image, not one per child tag and base tag; whichever way the
// moves are noticed (the tag listing, one refresh per tag, or the
// registry's notifications, checked concurrently by the watcher).
func TestBaseRebuildMovingSeveralTagsGivesOneBaseUpdatedPerImage(t *testing.T) {
	stack.EachEngine(t, func(t *testing.T, engine string) {
		baseTags := []string{"1.4.2", "1.4", "1", "latest"}
		appTags := []string{"2.3.1", "2.3", "2"}
		for _, how := range []string{"listing", "refresh", "hook"} {
			t.Run(how, func(t *testing.T) {
				s := stack.New(t, stack.Options{Engine: engine, Registry: true, Notify: true, Watcher: true, AllowPrivateWebhooks: true, Server: &server.Options{HookToken: "hook-s3cret"}})
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
					code, body := stack.PostHook(t, s.URL+"/hooks/registry", "hook-s3cret", "application/vnd.docker.distribution.events.v1+json",
						stack.RegistryNotification(s.Registry.Host, "acme/runtime", newBase, baseTags...))
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
	})
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
	stack.EachEngine(t, func(t *testing.T, engine string) {
		for _, how := range []string{"refresh", "listing"} {
			t.Run(how, func(t *testing.T) {
				s := stack.New(t, stack.Options{Engine: engine, Registry: true, Notify: true, AllowPrivateWebhooks: true, Server: &server.Options{}})
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
				if b := body(t, s.URL+"/badges/base/"+appRepo+":2.3.1.svg"); strings.Contains(b, "outdated") {
					t.Errorf("badge says outdated: %s", b)
				}
				if n := s.DeliveryCount(t, tagSub, "base.updated"); n != 0 {
					t.Errorf("the subscription to app:2.3.1 got %d base.updated, want none", n)
				}
				if n := s.DeliveryCount(t, repoSub, "base.updated"); n != 0 {
					t.Errorf("the repository-wide subscription got %d base.updated, want none", n)
				}
			})
		}
	})
}

// TestDemoLabelOnlyRebuildIsNotOutdated: a label-only rebuild, on the demo
// family itself: after the seeding, acme/runtime:1.4.2 (a two-platform
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
	stack.EachEngine(t, func(t *testing.T, engine string) {
		for _, how := range []string{"relabelled index", "crane mutate"} {
			t.Run(how, func(t *testing.T) {
				ctx := t.Context()
				reg, err := demo.StartRegistry()
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { reg.Close() })
				st := stack.OpenStore(t, engine)
				client, err := registry.New(registry.Options{Transport: netguard.New(true).Transport(), Timeout: 10 * time.Second, Keychain: authn.NewMultiKeychain()})
				if err != nil {
					t.Fatal(err)
				}
				if err := reg.Seed(ctx, st, client); err != nil {
					t.Fatal(err)
				}
				s := stack.New(t, stack.Options{Engine: engine, Store: st, Notify: true})
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
				if _, err := svc.Tags(ctx, auth.Viewer{}, runtimeRepo, images.ReadOptions{Refresh: true}); err != nil {
					t.Fatal(err)
				}
				s.Settle(t)
				a, err := svc.Read(ctx, auth.Viewer{}, appRef, images.ReadOptions{})
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
	})
}

// TestImageUpdatedCarriesTheDiffOfTheMove: a subscriber of a tag gets, with
// its image.updated, the diff of the move (data.changes) and which
// platforms changed (data.image.platforms); the expectations are crane's
// reading of the two images pushed.
func TestImageUpdatedCarriesTheDiffOfTheMove(t *testing.T) {
	stack.EachEngine(t, func(t *testing.T, engine string) {
		s := stack.New(t, stack.Options{Engine: engine, Registry: true, Notify: true, AllowPrivateWebhooks: true, Server: &server.Options{}})
		ref := s.Registry.Host + "/acme/app:2"
		base := stack.Image(t, nil, 2, nil)
		old := stack.Image(t, base, 1, map[string]string{"org.opencontainers.image.version": "2.2.7"})
		stack.PushImage(t, old, ref)
		rc := stack.NewReceiver(t)
		sub := s.Subscribe(t, rc, ref, "/app", "image.updated")
		_, oldDiffIDs, _ := stack.CraneLayers(t, ref)

		moved := stack.Image(t, base, 2, map[string]string{"org.opencontainers.image.version": "2.3.1"})
		stack.PushImage(t, moved, ref)
		if code, _, _ := stack.Call(t, "POST", s.URL+"/api/v1/images/"+ref+"/refresh", "", nil); code != 200 {
			t.Fatalf("refresh: %d", code)
		}
		digests, diffIDs, sizes := stack.CraneLayers(t, ref)
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
	})
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

// deliveredTags returns the tags of the subscription's deliveries of typ,
// read from the payloads the receiver got on path.
func deliveredTags(t *testing.T, rc *stack.Receiver, sub stack.Subscription, path, typ string) []string {
	t.Helper()
	var out []string
	for _, p := range rc.Payloads(t, sub.Secret, path, typ) {
		img := p["data"].(map[string]any)["image"].(map[string]any)
		out = append(out, img["tag"].(string))
	}
	slices.Sort(out)
	return out
}

// TestTagFiltersFollowOnlyTheirTags: a repository-wide subscription with
// tags.semver "~1.4" gets image.updated for 1.4.3 and nothing for 1.5.0 or
// 2.0.0, which the poll never asks the registry about; a pre-release
// reaches a subscription whose constraint admits pre-releases, unless its
// exclude drops it.
func TestTagFiltersFollowOnlyTheirTags(t *testing.T) {
	stack.EachEngine(t, func(t *testing.T, engine string) {
		var ahead atomic.Int64
		s := stack.New(t, stack.Options{Engine: engine, Registry: true, Notify: true, AllowPrivateWebhooks: true, WatcherNow: func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }, Server: &server.Options{}})
		rc := stack.NewReceiver(t)
		lib := s.Registry.Host + "/acme/lib"
		stack.Push(t, lib+":1.4.0")
		minor, _ := s.Create(t, map[string]any{"image": lib, "url": rc.URL + "/minor", "events": []string{"image.updated"},
			"tags": map[string]any{"semver": "~1.4"}}, 201)
		rc.Wait(t, minor.Secret, "webhook.ping", 1)
		s.Registry.Requests() // forget the subscription's own listing
		for _, tag := range []string{"1.4.3", "1.5.0", "2.0.0"} {
			stack.Push(t, lib+":"+tag)
		}
		s.Registry.Requests()
		ahead.Add(int64(2 * time.Hour)) // the repository is due again
		if err := s.Watcher.Poll(t.Context()); err != nil {
			t.Fatal(err)
		}
		asked := s.Registry.Requests("/manifests/")
		if !slices.ContainsFunc(asked, func(r string) bool { return strings.HasSuffix(r, "/manifests/1.4.3") }) {
			t.Errorf("the poll did not check 1.4.3: %v", asked)
		}
		for _, r := range asked {
			if strings.HasSuffix(r, "/1.5.0") || strings.HasSuffix(r, "/2.0.0") {
				t.Errorf("the poll asked the registry about a tag nobody follows: %s", r)
			}
		}
		s.WaitOutbox(t, minor)
		if got := deliveredTags(t, rc, minor, "/minor", "image.updated"); !slices.Equal(got, []string{"1.4.3"}) {
			t.Errorf("~1.4 got image.updated for %v, want only 1.4.3", got)
		}

		pre := s.Registry.Host + "/acme/pre"
		stack.Push(t, pre+":1.4.0")
		admits, _ := s.Create(t, map[string]any{"image": pre, "url": rc.URL + "/pre", "events": []string{"image.updated"},
			"tags": map[string]any{"semver": ">=1.4.0-0"}}, 201)
		noRC, _ := s.Create(t, map[string]any{"image": pre, "url": rc.URL + "/norc", "events": []string{"image.updated"},
			"tags": map[string]any{"semver": ">=1.4.0-0", "exclude": "-rc"}}, 201)
		noPre, _ := s.Create(t, map[string]any{"image": pre, "url": rc.URL + "/nopre", "events": []string{"image.updated"},
			"tags": map[string]any{"semver": "~1.4"}}, 201)
		stack.Push(t, pre+":1.4.4-rc1")
		s.Refresh(t, pre+":1.4.4-rc1")
		stack.Push(t, pre+":1.4.4")
		s.Refresh(t, pre+":1.4.4")
		for _, sub := range []stack.Subscription{admits, noRC, noPre} {
			s.WaitOutbox(t, sub)
		}
		if got := deliveredTags(t, rc, admits, "/pre", "image.updated"); !slices.Equal(got, []string{"1.4.4", "1.4.4-rc1"}) {
			t.Errorf(">=1.4.0-0 got %v, want the release candidate and the release", got)
		}
		for path, sub := range map[string]stack.Subscription{"/norc": noRC, "/nopre": noPre} {
			if got := deliveredTags(t, rc, sub, path, "image.updated"); !slices.Equal(got, []string{"1.4.4"}) {
				t.Errorf("%s got %v, want only 1.4.4", path, got)
			}
		}
	})
}

// TestVersionReleased: version.released fires for 2.1.0 after 2.0.0 and not
// for 1.9.9 pushed later, nor for a version tag that moves (that is
// image.updated); a pre-release only when the constraint admits it; only a
// repository-wide subscription may ask for it.
func TestVersionReleased(t *testing.T) {
	stack.EachEngine(t, func(t *testing.T, engine string) {
		s := stack.New(t, stack.Options{Engine: engine, Registry: true, Notify: true, AllowPrivateWebhooks: true, Server: &server.Options{}})
		rc := stack.NewReceiver(t)
		app := s.Registry.Host + "/acme/rel"
		stack.Push(t, app+":2.0.0")
		plain, _ := s.Create(t, map[string]any{"image": app, "url": rc.URL + "/plain", "events": []string{"version.released", "image.updated"}}, 201)
		pre, _ := s.Create(t, map[string]any{"image": app, "url": rc.URL + "/pre", "events": []string{"version.released"},
			"tags": map[string]any{"semver": ">=2.0.0-0"}}, 201)
		for _, tag := range []string{"2.1.0", "1.9.9", "2.2.0-rc1", "latest"} {
			stack.Push(t, app+":"+tag)
			s.Refresh(t, app+":"+tag)
		}
		stack.Push(t, app+":2.1.0") // moves: a rebuild of 2.1.0, not a release
		s.Refresh(t, app+":2.1.0")
		s.WaitOutbox(t, plain)
		s.WaitOutbox(t, pre)
		if got := deliveredTags(t, rc, plain, "/plain", "version.released"); !slices.Equal(got, []string{"2.1.0"}) {
			t.Errorf("version.released for %v, want only 2.1.0", got)
		}
		if got := deliveredTags(t, rc, plain, "/plain", "image.updated"); len(got) != 5 {
			t.Errorf("image.updated for %v, want the four new tags and the move", got)
		}
		if got := deliveredTags(t, rc, pre, "/pre", "version.released"); !slices.Equal(got, []string{"2.1.0", "2.2.0-rc1"}) {
			t.Errorf("with a constraint admitting pre-releases: version.released for %v, want 2.1.0 and 2.2.0-rc1", got)
		}
		_, m := s.Create(t, map[string]any{"image": app + ":2.1.0", "url": rc.URL + "/tag", "events": []string{"version.released"}}, 400)
		if e, _ := m["error"].(map[string]any); e == nil || e["code"] != "invalid_request" || !strings.Contains(fmt.Sprint(e["message"]), "version.released") {
			t.Errorf("a tag subscription asking version.released: %v", m)
		}
	})
}

// index pushes to ref an index of the given platform images.
func index(t *testing.T, ref string, imgs map[string]v1.Image) string {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	names := make([]string, 0, len(imgs))
	for p := range imgs {
		names = append(names, p)
	}
	slices.Sort(names)
	for _, p := range names {
		os, arch, _ := strings.Cut(p, "/")
		img := imgs[p]
		cf := must(img.ConfigFile()).DeepCopy()
		cf.OS, cf.Architecture = os, arch
		img = must(mutate.ConfigFile(img, cf))
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: os, Architecture: arch}}})
	}
	stack.PushIndex(t, ref, idx)
	return must(idx.Digest()).String()
}

// TestCoalescingAnIndexPushedPlatformByPlatform: a multi-platform image
// pushed one platform at a time moves its tag twice; a subscription with a
// coalescing window gets one delivery at the window's end, from the first
// previous digest to the last digest (held meanwhile, as its delivery log
// says), and one without gets two.
func TestCoalescingAnIndexPushedPlatformByPlatform(t *testing.T) {
	stack.EachEngine(t, func(t *testing.T, engine string) {
		s := stack.New(t, stack.Options{Engine: engine, Registry: true, Notify: true, AllowPrivateWebhooks: true, Server: &server.Options{}})
		rc := stack.NewReceiver(t)
		ref := s.Registry.Host + "/acme/multi:1.0"
		start := index(t, ref, map[string]v1.Image{"linux/amd64": stack.Image(t, nil, 1, nil)})
		held, _ := s.Create(t, map[string]any{"image": ref, "url": rc.URL + "/held", "events": []string{"image.updated"}, "coalesce": "3s"}, 201)
		each, _ := s.Create(t, map[string]any{"image": ref, "url": rc.URL + "/each", "events": []string{"image.updated"}, "coalesce": "0s"}, 201)
		amd := stack.Image(t, nil, 2, nil)
		index(t, ref, map[string]v1.Image{"linux/amd64": amd})
		s.Refresh(t, ref)
		end := index(t, ref, map[string]v1.Image{"linux/amd64": amd, "linux/arm64": stack.Image(t, nil, 3, nil)})
		s.Refresh(t, ref)
		s.Settle(t)

		// Within the window: one delivery, held, and the log says until when.
		var got map[string]any
		code := getJSONAuth(t, s.URL+"/api/v1/subscriptions/"+held.ID, held.Token, &got)
		ds, _ := got["deliveries"].([]any)
		var events []map[string]any
		for _, d := range ds {
			if d := d.(map[string]any); d["type"] == "image.updated" {
				events = append(events, d)
			}
		}
		if code != 200 || len(events) != 1 || events[0]["heldUntil"] == nil || !strings.HasPrefix(fmt.Sprint(events[0]["note"]), "held until ") ||
			events[0]["coalesced"] != 2.0 {
			t.Errorf("within the window, image.updated deliveries %v, want one held, coalescing 2", events)
		}
		now := rc.Wait(t, each.Secret, "image.updated", 2)
		if len(now) != 2 {
			t.Fatalf("coalesce 0s: %d deliveries", len(now))
		}
		// At the window's end: one delivery, from the start to the end.
		rc.WaitPayloads(t, held.Secret, "/held", "image.updated", 1)
		time.Sleep(200 * time.Millisecond)
		if msgs := rc.Payloads(t, held.Secret, "/held", "image.updated"); len(msgs) != 1 {
			t.Fatalf("coalescing: %d deliveries, want 1", len(msgs))
		}
		msgs := rc.Payloads(t, held.Secret, "/held", "image.updated")
		img := msgs[0]["data"].(map[string]any)["image"].(map[string]any)
		if img["previousDigest"] != start || img["digest"] != end {
			t.Errorf("coalesced from %v to %v, want %s to %s", img["previousDigest"], img["digest"], start, end)
		}
		changed := map[string]bool{}
		for _, p := range img["platforms"].([]any) {
			p := p.(map[string]any)
			changed[p["platform"].(string)] = p["changed"].(bool)
		}
		if !changed["linux/amd64"] || !changed["linux/arm64"] || len(changed) != 2 {
			t.Errorf("platforms %v, want amd64 and arm64 both changed", img["platforms"])
		}
	})
}

// TestEventsWhilePendingArriveAfterRecovery: a subscription whose ping
// failed stays pending; a move meanwhile is queued (not dropped) and not
// sent while the receiver is down, then
// arrives once the ping's retry is answered, after it.
func TestEventsWhilePendingArriveAfterRecovery(t *testing.T) {
	stack.EachEngine(t, func(t *testing.T, engine string) {
		s := stack.New(t, stack.Options{Engine: engine, Registry: true, Notify: true, AllowPrivateWebhooks: true, Server: &server.Options{}})
		rc := stack.NewReceiver(t)
		rc.Down.Store(true)
		ref := s.Registry.Host + "/acme/base:1.0"
		stack.Push(t, ref)
		sub, _ := s.Create(t, map[string]any{"image": ref, "url": rc.URL + "/hook"}, 201)
		if sub.Status != "pending" {
			t.Fatalf("status %s, want pending (the receiver is down)", sub.Status)
		}
		moved := stack.Push(t, ref)
		s.Refresh(t, ref)
		s.Settle(t)
		_, _, got := stack.Call(t, "GET", s.URL+"/api/v1/subscriptions/"+sub.ID, sub.Token, nil)
		if len(got.Deliveries) != 2 || got.Deliveries[0].Type != "image.updated" || got.Deliveries[0].Attempt != 0 {
			t.Fatalf("deliveries %+v, want the queued image.updated, not yet attempted, and the ping", got.Deliveries)
		}
		rc.Down.Store(false) // the ping's retry is due 5 s after its first attempt
		msgs := rc.WaitPayloads(t, sub.Secret, "/hook", "image.updated", 1)
		if img := msgs[0]["data"].(map[string]any)["image"].(map[string]any); img["digest"] != moved {
			t.Errorf("delivered %v, want the move to %s", img["digest"], moved)
		}
		if first := rc.Messages()[0]; !bytes.Contains(first.Body, []byte(`"webhook.ping"`)) {
			t.Errorf("the first request the receiver got was %s, want the ping", first.Body)
		}
		_, _, got = stack.Call(t, "GET", s.URL+"/api/v1/subscriptions/"+sub.ID, sub.Token, nil)
		if got.Status != "active" {
			t.Errorf("status %s after the ping was delivered", got.Status)
		}
	})
}

func getJSONAuth(t *testing.T, u, token string, v any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode
}
