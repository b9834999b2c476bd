package e2e_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/imagebadger/imagebadger/internal/testing/testenv"
)

// holdingReceiver answers pings at once and holds the first request of
// every other kind until released, so a test can kill the sender while
// the delivery is on its way; later requests are answered with code.
type holdingReceiver struct {
	*httptest.Server
	mu      sync.Mutex
	msgs    []whMessage
	held    chan struct{} // closed when the first event request arrived
	release chan struct{}
	once    sync.Once
	code    int
}

func newHoldingReceiver(t *testing.T, code int) *holdingReceiver {
	rc := &holdingReceiver{held: make(chan struct{}), release: make(chan struct{}), code: code}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ping := bytes.Contains(body, []byte("webhook.ping")) || bytes.Contains(body, []byte("will tell this webhook"))
		first := false
		if !ping {
			rc.once.Do(func() { first = true })
		}
		rc.mu.Lock()
		rc.msgs = append(rc.msgs, whMessage{path: r.URL.Path, header: r.Header.Clone(), body: body, status: rc.code, at: time.Now()})
		rc.mu.Unlock()
		if first {
			close(rc.held)
			select {
			case <-rc.release:
			case <-time.After(2 * time.Minute):
			}
			return
		}
		w.WriteHeader(rc.code)
	}))
	t.Cleanup(func() {
		rc.letGo()
		rc.Close()
	})
	return rc
}

func (rc *holdingReceiver) letGo() {
	select {
	case <-rc.release:
	default:
		close(rc.release)
	}
}

// events returns the non-ping requests, in arrival order.
func (rc *holdingReceiver) events() []whMessage {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []whMessage
	for _, m := range rc.msgs {
		if !bytes.Contains(m.body, []byte("webhook.ping")) && !bytes.Contains(m.body, []byte("will tell this webhook")) {
			out = append(out, m)
		}
	}
	return out
}

func (rc *holdingReceiver) waitEvents(t *testing.T, n int, timeout time.Duration) []whMessage {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if got := rc.events(); len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d event requests within %s, want %d", len(rc.events()), timeout, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBaseRebuildReachesGitHubAndSlack: with the real distribution
// registry notifying the service, a push of a rebuilt base makes the
// child outdated, and its two subscribers get base.updated through the
// outbox: a github-format repository_dispatch (event_type
// imagebadger.base.updated, the subscription's Bearer header) to a receiver
// on GitHub's API path, and a slack message to another. The process is
// killed with SIGKILL while both deliveries are on their way; restarted on
// the same database, it sends them again, with their webhook-ids, and both
// arrive.
func TestBaseRebuildReachesGitHubAndSlack(t *testing.T) {
	testenv.EachEngine(t, func(t *testing.T, db string) {
		const token = "e2e-hook-token"
		bin := testenv.Binary(t)
		args := []string{"--hook-token", token, "--allow-private-webhooks", "--poll-interval", "1h"}
		first := testenv.ServeProcess(t, bin, testenv.ServeOptions{DBPath: db, Args: args})
		reg := testenv.DistributionWithConfig(t, `notifications:
  endpoints:
    - name: imagebadger
      url: `+first.URL+`/hooks/registry
      headers:
        Authorization: [Bearer `+token+`]
      timeout: 2s
      threshold: 3
      backoff: 500ms
`)
		baseRef, appRef := reg+"/acme/runtime:3", reg+"/acme/app:1"
		base := whImage(t, nil, 2)
		whPush(t, baseRef, base)
		var rep map[string]any
		getJSON(t, first.URL+"/api/v1/images/"+baseRef+"?refresh=1", &rep)
		whPush(t, appRef, whImage(t, base, 1))
		getJSON(t, first.URL+"/api/v1/images/"+appRef+"?refresh=1", &rep)

		gh := newHoldingReceiver(t, http.StatusNoContent) // GitHub answers a dispatch with 204
		sl := newHoldingReceiver(t, http.StatusOK)
		ghSub := createSub(t, first.URL, map[string]any{"image": appRef, "url": gh.URL + "/repos/acme/app/dispatches",
			"events": []string{"base.updated"}, "format": "github", "headers": map[string]string{"Authorization": "Bearer ghp_e2e"}})
		slSub := createSub(t, first.URL, map[string]any{"image": appRef, "url": sl.URL + "/services/T0/B0/x",
			"events": []string{"base.updated"}, "format": "slack"})

		whPush(t, baseRef, whImage(t, nil, 2)) // the rebuild; the registry tells the service
		for _, rc := range []*holdingReceiver{gh, sl} {
			select {
			case <-rc.held:
			case <-time.After(15 * time.Second):
				t.Fatal("the base.updated was not sent within 15 s of the push")
			}
		}
		first.Kill() // SIGKILL: the attempts in flight are never recorded
		gh.letGo()
		sl.letGo()
		heldGH, heldSL := gh.events()[0].header.Get("webhook-id"), sl.events()[0].header.Get("webhook-id")

		second := testenv.ServeProcess(t, bin, testenv.ServeOptions{DBPath: first.DBPath, Args: args})
		_ = second
		// The dead process's leases (attempt timeout + 15 s) expire, then the
		// deliveries are sent again.
		ghMsgs := gh.waitEvents(t, 2, 60*time.Second)
		slMsgs := sl.waitEvents(t, 2, 60*time.Second)

		g := ghMsgs[1]
		verify(t, ghSub.Secret, g)
		if g.header.Get("webhook-id") != heldGH || g.path != "/repos/acme/app/dispatches" {
			t.Errorf("github: webhook-id %s (held %s), path %s", g.header.Get("webhook-id"), heldGH, g.path)
		}
		if g.header.Get("Authorization") != "Bearer ghp_e2e" || g.header.Get("Accept") != "application/vnd.github+json" {
			t.Errorf("github headers: %v", g.header)
		}
		var dispatch struct {
			EventType     string                     `json:"event_type"`
			ClientPayload map[string]json.RawMessage `json:"client_payload"`
		}
		if err := json.Unmarshal(g.body, &dispatch); err != nil || dispatch.EventType != "imagebadger.base.updated" ||
			len(dispatch.ClientPayload) > 10 || !strings.Contains(string(dispatch.ClientPayload["image"]), appRef) {
			t.Errorf("repository_dispatch body %s (%v)", g.body, err)
		}

		m := slMsgs[1]
		verify(t, slSub.Secret, m)
		if m.header.Get("webhook-id") != heldSL {
			t.Errorf("slack: webhook-id %s, held %s", m.header.Get("webhook-id"), heldSL)
		}
		var msg slack.WebhookMessage
		if err := json.Unmarshal(m.body, &msg); err != nil || msg.Blocks == nil || len(msg.Blocks.BlockSet) == 0 {
			t.Fatalf("slack body %s (%v)", m.body, err)
		}
		if !strings.Contains(msg.Text, "acme/runtime:3 was rebuilt") || !strings.Contains(msg.Text, "acme/app:1 is built on it and is now outdated") {
			t.Errorf("slack text %q", msg.Text)
		}
		// Delivered once each, as the subscriptions' logs say once the
		// service has recorded the answers the receivers gave (a receiver
		// has the request before the service has its answer).
		for _, sub := range []whSubscription{ghSub, slSub} {
			var got struct {
				Deliveries []struct{ Type, Status string }
			}
			n, pending := 0, 0
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				getJSONAuth(t, second.URL+"/api/v1/subscriptions/"+sub.ID, sub.Token, &got)
				n, pending = 0, 0
				for _, d := range got.Deliveries {
					switch {
					case d.Type != "base.updated":
					case d.Status == "delivered":
						n++
					case d.Status == "pending":
						pending++
					}
				}
				if pending == 0 || time.Now().After(deadline) {
					break
				}
			}
			if n != 1 {
				t.Errorf("%s: %d base.updated delivered, want 1: %+v", sub.ID, n, got.Deliveries)
			}
		}
	})
}

func createSub(t *testing.T, srv string, body map[string]any) whSubscription {
	t.Helper()
	raw, _ := json.Marshal(body)
	resp, err := client(t).Post(srv+"/api/v1/subscriptions", "application/json", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var sub whSubscription
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(b, &sub) != nil || sub.Status != "active" {
		t.Fatalf("subscribe %v: %s %s", body, resp.Status, b)
	}
	return sub
}

func verify(t *testing.T, secret string, m whMessage) {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(m.body, m.header); err != nil {
		t.Errorf("%s: the signature does not verify: %v", m.path, err)
	}
}

func getJSONAuth(t *testing.T, u, token string, v any) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
