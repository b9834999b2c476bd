package notify_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/crane"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/server"
	"github.com/imagebadger/imagebadger/store"
)

// The fan-out's rules, from a change in the log to a delivery row: what the
// registry's images are, how the service records them (images.Service, as
// a read, a poll or a hook does), and which subscriptions the fan-out then
// gives a delivery, each rule as docs/API.md states it. On both engines.

// fanOutEnv is a stack whose subscriptions deliver to one receiver, a path
// each.
type fanOutEnv struct {
	*stack.Stack
	rc   *stack.Receiver
	repo analysis.Repository
}

func newFanOutEnv(t *testing.T, engine string) *fanOutEnv {
	t.Helper()
	s := stack.New(t, stack.Options{Engine: engine, Registry: true, Notify: true, AllowPrivateWebhooks: true, Server: &server.Options{}})
	return &fanOutEnv{Stack: s, rc: stack.NewReceiver(t), repo: analysis.Repository{Registry: s.Registry.Host, Name: "acme/app"}}
}

// subscribe stores a subscription to e.repo (tag "" for all of it) as the
// API would, delivering to the receiver's path /id.
func (e *fanOutEnv) subscribe(t *testing.T, sub store.Subscription) {
	t.Helper()
	sub.Repo, sub.URL, sub.Secret, sub.TokenHash, sub.CreatedAt = e.repo, e.rc.URL+"/"+sub.ID, "whsec_c2VjcmV0c2VjcmV0c2VjcmV0", "h", time.Now()
	if sub.Status == "" {
		sub.Status = store.SubscriptionActive
	}
	if _, err := e.Store.CreateSubscription(context.Background(), sub, store.NewDelivery{}); err != nil {
		t.Fatal(err)
	}
}

// check records what the registry says of e.repo:tag, as a poll does.
func (e *fanOutEnv) check(t *testing.T, tag string) {
	t.Helper()
	err := e.Images.Check(context.Background(), e.repo.WithTag(tag), images.ReadOptions{Polling: true})
	if _, deleted := analysis.DeletedTag(err); err != nil && !deleted {
		t.Fatal(err)
	}
}

// heard returns, for each subscription, the tags of the events of typ it
// was sent (sorted; for an event about no one tag, "tags:" and its
// data.image.tags), once the fan-out has told everything and the worker sent it.
func (e *fanOutEnv) heard(t *testing.T, typ string, ids ...string) map[string][]string {
	t.Helper()
	e.Settle(t)
	out := map[string][]string{}
	for _, id := range ids {
		ds, err := e.Store.Deliveries(context.Background(), id, 100)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, d := range ds {
			if d.Type == typ {
				n++
			}
		}
		if n == 0 {
			continue
		}
		for _, p := range e.rc.WaitPayloads(t, "whsec_c2VjcmV0c2VjcmV0c2VjcmV0", "/"+id, typ, n) {
			img := p["data"].(map[string]any)["image"].(map[string]any)
			tag := img["tag"].(string)
			if tags := strs(img["tags"]); len(tags) > 0 {
				slices.Sort(tags)
				tag = "tags:" + strings.Join(tags, ",")
			}
			out[id] = append(out[id], tag)
		}
		slices.Sort(out[id])
	}
	return out
}

// TestFiltersDecideWhoHears: a repository-wide subscription with tag
// filters hears the events of the tags it follows; one without hears all;
// a repository-wide base.updated, about no one tag, reaches a filtered
// subscription when it follows one of the image's tags.
func TestFiltersDecideWhoHears(t *testing.T) {
	stack.EachEngine(t, func(t *testing.T, engine string) {
		e := newFanOutEnv(t, engine)
		e.subscribe(t, store.Subscription{ID: "sub_all", Events: []string{"image.updated", "base.updated"}})
		e.subscribe(t, store.Subscription{ID: "sub_minor", Events: []string{"image.updated", "base.updated"}, Tags: store.TagFilter{Semver: "~1.4"}})
		e.subscribe(t, store.Subscription{ID: "sub_norc", Events: []string{"image.updated"}, Tags: store.TagFilter{Exclude: "-rc"}})
		baseRef := e.Registry.Host + "/acme/base:1"
		base := stack.Image(t, nil, 2, nil)
		stack.PushImage(t, base, baseRef)
		e.Refresh(t, baseRef)
		stack.PushImage(t, stack.Image(t, base, 1, nil), e.repo.String()+":1.4.3", e.repo.String()+":latest")
		for _, tag := range []string{"1.5.0", "2.0.0", "1.4.4-rc1"} {
			stack.PushImage(t, stack.Image(t, nil, 1, nil), e.repo.String()+":"+tag)
		}
		for _, tag := range []string{"1.4.3", "latest", "1.5.0", "2.0.0", "1.4.4-rc1"} {
			e.check(t, tag)
		}
		if _, err := e.Images.Read(context.Background(), auth.Viewer{}, e.repo.WithTag("1.4.3"), images.ReadOptions{}); err != nil {
			t.Fatal(err) // the child's parent is known from here on
		}
		stack.PushImage(t, stack.Image(t, nil, 2, nil), baseRef) // rebuilt: 1.4.3 and latest are outdated
		e.Refresh(t, baseRef)
		want := map[string][]string{
			"sub_all":   {"1.4.3", "1.4.4-rc1", "1.5.0", "2.0.0", "latest"},
			"sub_minor": {"1.4.3"},
			"sub_norc":  {"1.4.3", "1.5.0", "2.0.0", "latest"},
		}
		if diff := cmp.Diff(want, e.heard(t, "image.updated", "sub_all", "sub_minor", "sub_norc")); diff != "" {
			t.Errorf("image.updated heard (-want +got):\n%s", diff)
		}
		want = map[string][]string{"sub_all": {"tags:1.4.3,latest"}, "sub_minor": {"tags:1.4.3,latest"}}
		if diff := cmp.Diff(want, e.heard(t, "base.updated", "sub_all", "sub_minor", "sub_norc")); diff != "" {
			t.Errorf("base.updated heard (-want +got):\n%s", diff)
		}
	})
}

// TestReleasesAreHeardByThoseToWhomTheyAreNew: a new tag reaches a
// subscription as version.released only when it is higher than every
// version tag the repository had, as that subscription's filters count
// them; tags recorded together count, and of "2.1" and "2.1.0" pushed
// together the one written in full is the release. A pending subscription
// has the same deliveries queued, waiting for its ping.
func TestReleasesAreHeardByThoseToWhomTheyAreNew(t *testing.T) {
	stack.EachEngine(t, func(t *testing.T, engine string) {
		e := newFanOutEnv(t, engine)
		e.subscribe(t, store.Subscription{ID: "sub_all", Events: []string{"version.released"}})
		e.subscribe(t, store.Subscription{ID: "sub_minor", Events: []string{"version.released"}, Tags: store.TagFilter{Semver: "~1.4"}})
		e.subscribe(t, store.Subscription{ID: "sub_pending", Status: store.SubscriptionPending, Events: []string{"version.released"}})
		for _, tag := range []string{"1.4.2", "2.0.0", "1.4.3", "1.9.9"} {
			stack.PushImage(t, stack.Image(t, nil, 1, nil), e.repo.String()+":"+tag)
			e.check(t, tag)
		}
		stack.PushImage(t, stack.Image(t, nil, 1, nil), e.repo.String()+":2.1", e.repo.String()+":2.1.0")
		// One listing records both as one change set.
		if _, err := e.Images.Tags(context.Background(), auth.Viewer{}, e.repo, images.ReadOptions{Refresh: true, RegistryOnly: true}); err != nil {
			t.Fatal(err)
		}
		want := map[string][]string{"sub_all": {"1.4.2", "2.0.0", "2.1.0"}, "sub_minor": {"1.4.2", "1.4.3"}}
		if diff := cmp.Diff(want, e.heard(t, "version.released", "sub_all", "sub_minor")); diff != "" {
			t.Errorf("releases heard (-want +got):\n%s", diff)
		}
		ids := func(id string) []string {
			ds, err := e.Store.Deliveries(context.Background(), id, 100)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, d := range ds {
				out = append(out, d.WebhookID)
			}
			slices.Sort(out)
			return out
		}
		if diff := cmp.Diff(ids("sub_all"), ids("sub_pending")); diff != "" {
			t.Errorf("the pending subscription's queued releases differ from the active one's (-active +pending):\n%s", diff)
		}
	})
}

// TestDeletionIsToldToThoseWhoAsked: a tag the registry no longer has is
// told as tag.deleted once, to the subscriptions that asked for it; a check
// of the deleted tag again tells nothing more.
func TestDeletionIsToldToThoseWhoAsked(t *testing.T) {
	stack.EachEngine(t, func(t *testing.T, engine string) {
		e := newFanOutEnv(t, engine)
		e.subscribe(t, store.Subscription{ID: "sub_del", Tag: "1.0", Events: []string{"tag.deleted"}})
		e.subscribe(t, store.Subscription{ID: "sub_plain", Tag: "1.0", Events: []string{"image.updated", "base.updated"}})
		ref := e.repo.String() + ":1.0"
		img := stack.Image(t, nil, 1, nil)
		stack.PushImage(t, img, ref)
		e.check(t, "1.0")
		if err := crane.Delete(ref); err != nil {
			t.Fatal(err)
		}
		e.check(t, "1.0")
		e.check(t, "1.0")
		if diff := cmp.Diff(map[string][]string{"sub_del": {"1.0"}}, e.heard(t, "tag.deleted", "sub_del", "sub_plain")); diff != "" {
			t.Errorf("tag.deleted heard (-want +got):\n%s", diff)
		}
		p := e.rc.Payloads(t, "whsec_c2VjcmV0c2VjcmV0c2VjcmV0", "/sub_del", "tag.deleted")[0]
		if got := p["data"].(map[string]any)["image"].(map[string]any); got["digest"] != nil || got["previousDigest"] != must(img.Digest()).String() {
			t.Errorf("tag.deleted data.image = %v, want digest null and previousDigest %s", got, must(img.Digest()))
		}
	})
}
