package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/imagebadger/imagebadger/internal/testing/testenv"
)

// whImage returns a linux/amd64 image of n random layers on top of base
// (nil for none), as `FROM base` and n RUN lines would make.
func whImage(t *testing.T, base v1.Image, n int) v1.Image {
	t.Helper()
	img := base
	if img == nil {
		img = must(random.Image(0, 0))
	}
	for range n {
		img = must(mutate.AppendLayers(img, must(random.Layer(700, types.DockerLayer))))
	}
	cf := must(img.ConfigFile()).DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	return must(mutate.ConfigFile(img, cf))
}

// whPush pushes img to ref and returns its digest.
func whPush(t *testing.T, ref string, img v1.Image) string {
	t.Helper()
	if err := remote.Write(must(name.ParseReference(ref)), img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return must(img.Digest()).String()
}

// whMessage is one webhook request a receiver got.
type whMessage struct {
	path   string
	header http.Header
	body   []byte
	status int
	at     time.Time
}

func (m whMessage) payload(t *testing.T) map[string]any {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal(m.body, &p); err != nil {
		t.Fatalf("webhook body %q: %v", m.body, err)
	}
	return p
}

// whReceiver is a real webhook receiver on loopback. Each subscription
// posts to its own path; the receiver verifies every request with the
// Standard Webhooks library and the secret registered for the path, and
// answers status(message) (200 when nil).
type whReceiver struct {
	*httptest.Server
	t       *testing.T
	mu      sync.Mutex
	secrets map[string]string
	msgs    []whMessage
	status  atomic.Pointer[func(typ string) int]
}

func newWHReceiver(t *testing.T) *whReceiver {
	t.Helper()
	rc := &whReceiver{t: t, secrets: map[string]string{}}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var p struct{ Type string }
		_ = json.Unmarshal(body, &p)
		status := http.StatusOK
		if f := rc.status.Load(); f != nil {
			status = (*f)(p.Type)
		}
		rc.mu.Lock()
		rc.msgs = append(rc.msgs, whMessage{path: r.URL.Path, header: r.Header.Clone(), body: body, status: status, at: time.Now()})
		rc.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *whReceiver) answer(f func(typ string) int) { rc.status.Store(&f) }

// wait returns the messages to path of type typ that the receiver answered
// with 2xx, once there are n, failing the test after timeout. Every one must
// verify with the path's secret.
func (rc *whReceiver) wait(path, typ string, n int, timeout time.Duration) []whMessage {
	rc.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var out []whMessage
		rc.mu.Lock()
		secret := rc.secrets[path]
		for _, m := range rc.msgs {
			if m.path != path || m.status >= 300 || !strings.Contains(string(m.body), `"type":"`+typ+`"`) {
				continue
			}
			out = append(out, m)
		}
		rc.mu.Unlock()
		if len(out) >= n {
			wh := must(standardwebhooks.NewWebhook(secret))
			for _, m := range out {
				if err := wh.Verify(m.body, m.header); err != nil {
					rc.t.Errorf("%s to %s does not verify: %v", typ, path, err)
				}
			}
			return out
		}
		if time.Now().After(deadline) {
			rc.t.Fatalf("%d %s webhooks to %s within %s, want %d", len(out), typ, path, timeout, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// failed returns the webhook-ids of the requests to path answered with an
// error.
func (rc *whReceiver) failed(path string) []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var ids []string
	for _, m := range rc.msgs {
		if m.path == path && m.status >= 300 {
			ids = append(ids, m.header.Get("webhook-id"))
		}
	}
	return ids
}

type whSubscription struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Secret string `json:"secret"`
	Token  string `json:"token"`
}

// subscribe creates a subscription through the API, delivering to the
// receiver's path, and registers its secret with the receiver.
func (rc *whReceiver) subscribe(t *testing.T, srv, image, path string, events ...string) whSubscription {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"image": image, "url": rc.URL + path, "events": events})
	resp, err := client(t).Post(srv+"/api/v1/subscriptions", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var sub whSubscription
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(raw, &sub) != nil || sub.Status != "active" {
		t.Fatalf("subscribe %s: %s %s", image, resp.Status, raw)
	}
	rc.mu.Lock()
	rc.secrets[path] = sub.Secret
	rc.mu.Unlock()
	rc.wait(path, "webhook.ping", 1, 10*time.Second)
	return sub
}

func imageData(t *testing.T, m whMessage, key string) map[string]any {
	t.Helper()
	d, _ := m.payload(t)["data"].(map[string]any)
	v, _ := d[key].(map[string]any)
	if v == nil {
		t.Fatalf("payload without data.%s: %s", key, m.body)
	}
	return v
}

func refresh(t *testing.T, srv, ref string) {
	t.Helper()
	resp, err := client(t).Post(srv+"/api/v1/images/"+ref+"/refresh", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("refresh %s: %s", ref, resp.Status)
	}
}

// notifying starts imagebadger on the database db ("" for a new SQLite file)
// with a hook token and a distribution registry configured to send its
// notifications to /hooks/registry.
func notifying(t *testing.T, db string, args ...string) (srv, reg string) {
	t.Helper()
	const token = "e2e-hook-token"
	s := testenv.ServeProcess(t, testenv.Binary(t), testenv.ServeOptions{DBPath: db, Args: append([]string{
		"--hook-token", token, "--allow-private-webhooks", "--poll-interval", "1h"}, args...)})
	reg = testenv.DistributionWithConfig(t, fmt.Sprintf(`notifications:
  endpoints:
    - name: imagebadger
      url: %s/hooks/registry
      headers:
        Authorization: [Bearer %s]
      timeout: 2s
      threshold: 3
      backoff: 500ms
`, s.URL, token))
	return s.URL, reg
}

// TestRegistryNotificationDeliversImageUpdated: the real registry notifies
// /hooks/registry of a push, and the subscriber of the tag gets a verified
// image.updated within 5 s, without any polling.
func TestRegistryNotificationDeliversImageUpdated(t *testing.T) {
	testenv.EachEngine(t, func(t *testing.T, db string) {
		srv, reg := notifying(t, db)
		rc := newWHReceiver(t)
		ref := reg + "/acme/base:1.0"
		old := whPush(t, ref, whImage(t, nil, 2))
		rc.subscribe(t, srv, ref, "/base", "image.updated")

		pushed := time.Now()
		moved := whPush(t, ref, whImage(t, nil, 2))
		msgs := rc.wait("/base", "image.updated", 1, 5*time.Second)
		if took := msgs[0].at.Sub(pushed); took > 5*time.Second {
			t.Errorf("delivered %s after the push, want within 5 s", took)
		}
		img := imageData(t, msgs[0], "image")
		if img["reference"] != ref || img["digest"] != moved || img["previousDigest"] != old {
			t.Errorf("image.updated data = %v, want %s from %s to %s", img, ref, old, moved)
		}
		// One move, one event: the registry's notification and a later refresh
		// of the same move give nothing more.
		refresh(t, srv, ref)
		time.Sleep(1500 * time.Millisecond)
		if n := len(rc.wait("/base", "image.updated", 1, time.Second)); n != 1 {
			t.Errorf("%d image.updated for one move", n)
		}
	})
}

// TestPollingAloneDetectsAMove: a registry without notifications, polled
// every second; the move is delivered within two poll intervals (plus the
// delivery itself).
func TestPollingAloneDetectsAMove(t *testing.T) {
	testenv.EachEngine(t, func(t *testing.T, db string) {
		reg := testenv.Distribution(t)
		srv := testenv.ServeProcess(t, testenv.Binary(t), testenv.ServeOptions{DBPath: db, Args: []string{"--allow-private-webhooks", "--poll-interval", "1s"}}).URL
		rc := newWHReceiver(t)
		ref := reg + "/acme/app:2"
		whPush(t, ref, whImage(t, nil, 1))
		rc.subscribe(t, srv, ref, "/app")

		pushed := time.Now()
		moved := whPush(t, ref, whImage(t, nil, 1))
		msgs := rc.wait("/app", "image.updated", 1, 10*time.Second)
		if took := msgs[0].at.Sub(pushed); took > 2*time.Second+time.Second {
			t.Errorf("polling delivered the move %s after the push, want within two 1 s intervals (+1 s to deliver)", took)
		}
		if img := imageData(t, msgs[0], "image"); img["digest"] != moved {
			t.Errorf("image.updated data = %v", img)
		}
	})
}

// TestDeliveriesSurviveACrash: deliveries pending against a receiver that
// answers 500, the process killed with SIGKILL, restarted on the same
// database, the receiver now answering 200: every delivery arrives, with
// its original webhook-id.
func TestDeliveriesSurviveACrash(t *testing.T) {
	testenv.EachEngine(t, func(t *testing.T, db string) {
		reg := testenv.Distribution(t)
		bin := testenv.Binary(t)
		args := []string{"--allow-private-webhooks", "--poll-interval", "1h"}
		first := testenv.ServeProcess(t, bin, testenv.ServeOptions{DBPath: db, Args: args})
		rc := newWHReceiver(t)
		rc.answer(func(typ string) int {
			if typ == "webhook.ping" {
				return 200
			}
			return 500
		})
		paths := map[string]string{"/a1": reg + "/acme/app:a", "/a2": reg + "/acme/app:a", "/b": reg + "/acme/app:b", "/c": reg + "/acme/app:c"}
		for path, ref := range paths {
			whPush(t, ref, whImage(t, nil, 1))
			rc.subscribe(t, first.URL, ref, path, "image.updated")
		}
		for _, tg := range []string{"a", "b"} {
			whPush(t, reg+"/acme/app:"+tg, whImage(t, nil, 1))
			refresh(t, first.URL, reg+"/acme/app:"+tg)
		}
		// Wait for every a/b delivery to be refused once.
		deadline := time.Now().Add(15 * time.Second)
		for _, path := range []string{"/a1", "/a2", "/b"} {
			for len(rc.failed(path)) == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("no failed attempt to %s", path)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		// A last move, recorded just before the crash: its delivery is stored
		// but most likely not attempted yet.
		whPush(t, reg+"/acme/app:c", whImage(t, nil, 1))
		refresh(t, first.URL, reg+"/acme/app:c")
		time.Sleep(200 * time.Millisecond) // let the failed attempts be recorded
		first.Kill()

		want := map[string]string{}
		for path := range paths {
			ids := rc.failed(path)
			if len(ids) == 0 {
				continue // /c's delivery may not have been attempted before the crash
			}
			for _, id := range ids[1:] {
				if id != ids[0] {
					t.Errorf("retries to %s changed webhook-id: %v", path, ids)
				}
			}
			want[path] = ids[0]
		}
		rc.answer(func(string) int { return 200 })
		second := testenv.ServeProcess(t, bin, testenv.ServeOptions{DBPath: first.DBPath, Args: args})
		for path := range paths {
			// Retries are due 5 s after the first attempt; a row leased by the
			// killed process waits for its lease (30 s) to expire.
			msgs := rc.wait(path, "image.updated", 1, 60*time.Second)
			if id := msgs[0].header.Get("webhook-id"); want[path] != "" && id != want[path] {
				t.Errorf("%s: delivered with webhook-id %s, first attempted as %s", path, id, want[path])
			}
		}
		if t.Failed() {
			t.Logf("second process output:\n%s", second.Output())
		}
	})
}

// TestBaseRebuildDeliversBaseUpdated: a child built on a base is known with
// its parent; a push of a rebuilt base (noticed through the registry's
// notification) makes the child outdated, and the child's subscriber gets
// one verified base.updated naming both images; a refresh of the base then
// answers its new digest. On both engines.
func TestBaseRebuildDeliversBaseUpdated(t *testing.T) {
	testenv.EachEngine(t, func(t *testing.T, db string) {
		srv, reg := notifying(t, db)
		rc := newWHReceiver(t)
		baseRef, appRef := reg+"/acme/runtime:3", reg+"/acme/app:1"
		base := whImage(t, nil, 2)
		oldBase := whPush(t, baseRef, base)
		getJSON(t, srv+"/api/v1/images/"+baseRef+"?refresh=1", &parentReport{})
		appDigest := whPush(t, appRef, whImage(t, base, 1))
		var rep parentReport
		getJSON(t, srv+"/api/v1/images/"+appRef+"?refresh=1", &rep)
		if len(rep.Platforms) != 1 || rep.Platforms[0].Parent == nil || rep.Platforms[0].Parent.Repository != "acme/runtime" {
			t.Fatalf("test setup: the app's parent is not known: %+v", rep)
		}
		rc.subscribe(t, srv, appRef, "/app", "base.updated")

		pushed := time.Now()
		newBase := whPush(t, baseRef, whImage(t, nil, 2))
		msgs := rc.wait("/app", "base.updated", 1, 10*time.Second)
		if took := msgs[0].at.Sub(pushed); took > 5*time.Second {
			t.Errorf("delivered %s after the base's push", took)
		}
		img, b := imageData(t, msgs[0], "image"), imageData(t, msgs[0], "base")
		if img["reference"] != appRef || img["digest"] != appDigest {
			t.Errorf("data.image = %v, want %s at %s", img, appRef, appDigest)
		}
		if b["reference"] != baseRef || b["digest"] != newBase || b["previousDigest"] != oldBase {
			t.Errorf("data.base = %v, want %s moved from %s to %s", b, baseRef, oldBase, newBase)
		}
		var now struct{ Digest string }
		if code := fetchJSON(t, "POST", srv+"/api/v1/images/"+baseRef+"/refresh", &now); code != 200 || now.Digest != newBase {
			t.Errorf("refresh of the moved base: %d %s, want 200 %s", code, now.Digest, newBase)
		}
		getJSON(t, srv+"/api/v1/images/"+appRef, &rep)
		if p := rep.Platforms[0].Parent; p == nil || !p.Outdated {
			t.Errorf("the child's parent after the base moved: %+v, want outdated", p)
		}
		time.Sleep(time.Second)
		if n := rc.count("/app", "base.updated"); n != 1 {
			t.Errorf("%d base.updated for one move of the base", n)
		}
	})
}

// parentReport is what the tests read of an image report's parents.
type parentReport struct {
	Platforms []struct {
		Parent *struct {
			Repository string `json:"repository"`
			Digest     string `json:"digest"`
			Outdated   bool   `json:"outdated"`
		} `json:"parent"`
	} `json:"platforms"`
}
