package stack

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

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/imagebadger/imagebadger/analysis"
)

// What the tests of the whole service do with it: push images to the
// stack's registry, subscribe through the API, receive the webhooks on a
// real receiver that verifies their signatures with the Standard Webhooks
// reference library, and read the outbox as a subscription's API shows it.

// Receiver is a webhook receiver on loopback that keeps every request it
// gets and answers 200; while Down is set it answers 503 and keeps nothing,
// as a receiver that is down.
type Receiver struct {
	*httptest.Server
	Down atomic.Bool
	mu   sync.Mutex
	msgs []Message
}

// Message is one request a Receiver got.
type Message struct {
	Path   string
	Header http.Header
	Body   []byte
}

// NewReceiver starts a Receiver, closed when the test ends.
func NewReceiver(tb testing.TB) *Receiver {
	tb.Helper()
	rc := &Receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if rc.Down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		rc.mu.Lock()
		rc.msgs = append(rc.msgs, Message{r.URL.Path, r.Header.Clone(), b})
		rc.mu.Unlock()
	}))
	tb.Cleanup(rc.Close)
	return rc
}

// Messages returns the requests so far, in the order they came.
func (rc *Receiver) Messages() []Message {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]Message(nil), rc.msgs...)
}

// Payloads returns the payloads of type typ the receiver got on path
// ("" for any), each verified with secret.
func (rc *Receiver) Payloads(tb testing.TB, secret, path, typ string) []map[string]any {
	tb.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		tb.Fatal(err)
	}
	var out []map[string]any
	for _, m := range rc.Messages() {
		var p map[string]any
		if (path != "" && m.Path != path) || json.Unmarshal(m.Body, &p) != nil || p["type"] != typ {
			continue
		}
		if err := wh.Verify(m.Body, m.Header); err != nil {
			tb.Errorf("%s to %s: %v", typ, m.Path, err)
		}
		out = append(out, p)
	}
	return out
}

// WaitPayloads waits (bounded: 10 s) until the receiver has at least n
// payloads of type typ on path ("" for any) and returns them.
func (rc *Receiver) WaitPayloads(tb testing.TB, secret, path, typ string, n int) []map[string]any {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := rc.Payloads(tb, secret, path, typ)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d %s webhooks to %s within 10 s, want %d", len(got), typ, path, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Wait is WaitPayloads on any path, failing unless exactly n arrive.
func (rc *Receiver) Wait(tb testing.TB, secret, typ string, n int) []map[string]any {
	tb.Helper()
	got := rc.WaitPayloads(tb, secret, "", typ, n)
	if len(got) != n {
		tb.Fatalf("got %d %s webhooks, want %d", len(got), typ, n)
	}
	return got
}

// Subscription is the subscription API's answer.
type Subscription struct {
	ID         string     `json:"id"`
	Image      string     `json:"image"`
	URL        string     `json:"url"`
	Events     []string   `json:"events"`
	Status     string     `json:"status"`
	Secret     string     `json:"secret"`
	Token      string     `json:"token"`
	CreatedAt  string     `json:"createdAt"`
	Deliveries []Delivery `json:"deliveries"`
	Error      *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Delivery is one delivery of a subscription, as its API lists it.
type Delivery struct {
	ID         string `json:"id"`
	Event      string `json:"event"`
	Type       string `json:"type"`
	Attempt    int    `json:"attempt"`
	Status     string `json:"status"`
	StatusCode *int   `json:"statusCode"`
	Error      string `json:"error"`
	At         string `json:"at"`
}

// Call sends a request to the subscription API (a JSON body, or a string
// sent as it is) with token as its bearer token, and decodes the answer.
func Call(tb testing.TB, method, url, token string, body any) (int, http.Header, Subscription) {
	tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var a Subscription
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &a); err != nil {
			tb.Fatalf("%s %s: %v in %q", method, url, err, raw)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			tb.Errorf("%s %s: Content-Type %q", method, url, ct)
		}
	}
	return resp.StatusCode, resp.Header, a
}

// Create posts a subscription request as a script would and returns its
// answer, decoded and as a map; want is the status expected.
func (s *Stack) Create(tb testing.TB, body map[string]any, want int) (Subscription, map[string]any) {
	tb.Helper()
	raw, _ := json.Marshal(body)
	resp, err := http.Post(s.URL+"/api/v1/subscriptions", "application/json", bytes.NewReader(raw))
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var a Subscription
	var m map[string]any
	_ = json.Unmarshal(b, &a)
	_ = json.Unmarshal(b, &m)
	if resp.StatusCode != want {
		tb.Fatalf("create %v: %d %s, want %d", body, resp.StatusCode, b, want)
	}
	return a, m
}

// Subscribe subscribes to image's events (the defaults when none) with
// delivery to rc's path, and waits for the ping.
func (s *Stack) Subscribe(tb testing.TB, rc *Receiver, image, path string, events ...string) Subscription {
	tb.Helper()
	body := map[string]any{"image": image, "url": rc.URL + path}
	if len(events) > 0 {
		body["events"] = events
	}
	sub, _ := s.Create(tb, body, http.StatusCreated)
	if sub.Status != "active" {
		tb.Fatalf("subscribe %s: %+v, want active", image, sub)
	}
	rc.WaitPayloads(tb, sub.Secret, path, "webhook.ping", 1)
	return sub
}

// DeliveryCount counts the subscription's deliveries of type typ, as its
// API lists them once the fan-out has told what is logged: every row of
// the outbox, sent or not.
func (s *Stack) DeliveryCount(tb testing.TB, sub Subscription, typ string) int {
	tb.Helper()
	s.Settle(tb)
	code, _, got := Call(tb, "GET", s.URL+"/api/v1/subscriptions/"+sub.ID, sub.Token, nil)
	if code != 200 {
		tb.Fatalf("GET subscription %s: %d", sub.ID, code)
	}
	n := 0
	for _, d := range got.Deliveries {
		if d.Type == typ {
			n++
		}
	}
	return n
}

// WaitOutbox waits (bounded: 10 s) until the fan-out has told what is
// logged and the subscription's deliveries are all delivered.
func (s *Stack) WaitOutbox(tb testing.TB, sub Subscription) {
	tb.Helper()
	s.Settle(tb)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, got := Call(tb, "GET", s.URL+"/api/v1/subscriptions/"+sub.ID, sub.Token, nil)
		pending := 0
		for _, d := range got.Deliveries {
			if d.Status == "pending" {
				pending++
			}
		}
		if pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d deliveries of %s still pending after 10 s", pending, sub.ID)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Refresh asks the API to re-resolve ref, as a script after a push would.
func (s *Stack) Refresh(tb testing.TB, ref string) {
	tb.Helper()
	resp, err := http.Post(s.URL+"/api/v1/images/"+ref+"/refresh", "", nil)
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		tb.Fatalf("refresh %s: %s", ref, resp.Status)
	}
}

// ListTags lists a repository's tags from the registry, through the API.
func (s *Stack) ListTags(tb testing.TB, repo string) {
	tb.Helper()
	resp, err := http.Get(s.URL + "/api/v1/repositories/" + repo + "/tags?refresh=1")
	if err != nil {
		tb.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		tb.Fatalf("list %s: %d %s", repo, resp.StatusCode, body)
	}
}

// ParentOf reads ref's report through the API and returns its first
// platform's parent.
func (s *Stack) ParentOf(tb testing.TB, ref string) *analysis.Parent {
	tb.Helper()
	resp, err := http.Get(s.URL + "/api/v1/images/" + ref)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var rep analysis.Report
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil || resp.StatusCode != 200 || len(rep.Platforms) == 0 {
		tb.Fatalf("report of %s: %d %v", ref, resp.StatusCode, err)
	}
	return rep.Platforms[0].Parent
}

// Push pushes a new random image of two layers to ref and returns its
// digest.
func Push(tb testing.TB, ref string) string {
	tb.Helper()
	img, err := random.Image(256, 2)
	if err != nil {
		tb.Fatal(err)
	}
	PushImage(tb, img, ref)
	d, _ := img.Digest()
	return d.String()
}

// PushImage pushes img under every one of refs.
func PushImage(tb testing.TB, img v1.Image, refs ...string) {
	tb.Helper()
	for _, r := range refs {
		if err := crane.Push(img, r); err != nil {
			tb.Fatal(err)
		}
	}
}

// Image builds a linux/amd64 OCI image of n random layers on parent (nil
// for none), each with a Dockerfile-like command, and the given labels: a
// member of a family of images, as a build FROM parent makes.
func Image(tb testing.TB, parent v1.Image, n int, labels map[string]string) v1.Image {
	tb.Helper()
	if parent == nil {
		parent = mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	}
	var adds []mutate.Addendum
	for i := range n {
		l, err := random.Layer(int64(200+i*37), types.OCILayer)
		if err != nil {
			tb.Fatal(err)
		}
		adds = append(adds, mutate.Addendum{Layer: l, History: v1.History{
			CreatedBy: fmt.Sprintf("RUN /bin/sh -c apt-get install -y --no-install-recommends package-%02d libpackage-%02d-dev && rm -rf /var/lib/apt/lists/* # buildkit", i, i),
			Created:   v1.Time{Time: time.Date(2026, 11, 20, 10, i, 0, 0, time.UTC)},
		}})
	}
	img, err := mutate.Append(parent, adds...)
	if err != nil {
		tb.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		tb.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Labels = labels
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		tb.Fatal(err)
	}
	return img
}

// PostHook posts body to an inbound hook at target with token as its
// bearer token and decodes the JSON answer.
func PostHook(tb testing.TB, target, token, contentType, body string) (int, map[string]any) {
	tb.Helper()
	req, _ := http.NewRequest("POST", target, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out); err != nil {
		tb.Fatalf("POST %s: %v in %q", target, err, b)
	}
	return resp.StatusCode, out
}

// RegistryNotification is a distribution registry's notification of pushes
// of tags of repo to digest, as the registry at host sends it to
// /hooks/registry.
func RegistryNotification(host, repo string, digest string, tags ...string) string {
	var evs []string
	for i, tg := range tags {
		evs = append(evs, fmt.Sprintf(`{"id":"e%d","action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json",
			"digest":%q,"repository":%q,"url":"http://%s/v2/%s/manifests/%s","tag":%q},"request":{"host":%q}}`,
			i, digest, repo, host, repo, digest, tg, host))
	}
	return `{"events":[` + strings.Join(evs, ",") + `]}`
}

// CraneLayers is what crane, an independent reader, reports of the layers
// of the image at ref: their digests, diffIDs and sizes.
func CraneLayers(tb testing.TB, ref string) (digests, diffIDs []string, sizes []int64) {
	tb.Helper()
	raw, err := crane.Manifest(ref)
	if err != nil {
		tb.Fatal(err)
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		tb.Fatal(err)
	}
	if raw, err = crane.Config(ref); err != nil {
		tb.Fatal(err)
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		tb.Fatal(err)
	}
	for _, l := range m.Layers {
		digests = append(digests, l.Digest.String())
		sizes = append(sizes, l.Size)
	}
	for _, d := range cf.RootFS.DiffIDs {
		diffIDs = append(diffIDs, d.String())
	}
	return digests, diffIDs, sizes
}

// PushIndex pushes the index idx (and its images) to ref.
func PushIndex(tb testing.TB, ref string, idx v1.ImageIndex) {
	tb.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		tb.Fatal(err)
	}
	if err := remote.WriteIndex(r, idx); err != nil {
		tb.Fatal(err)
	}
}
