package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/notify"
	"github.com/imagebadger/imagebadger/store"
)

// These tests send one base rebuild through the outbox to a subscription
// of every format and read each request as its receiver would: with the
// receiver's own library or documented limits, never by comparing with
// what the encoder is expected to print.

var appRepo = analysis.Repository{Registry: "127.0.0.1:5000", Name: "acme/app"}

// captured is one request a capturing receiver got.
type captured struct {
	path   string
	header http.Header
	body   []byte
}

type capture struct {
	*httptest.Server
	mu   sync.Mutex
	got  []captured
	code int
}

func newCapture(t *testing.T, code int) *capture {
	c := &capture{code: code}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		c.mu.Lock()
		c.got = append(c.got, captured{path: r.URL.RequestURI(), header: r.Header.Clone(), body: body})
		c.mu.Unlock()
		w.WriteHeader(c.code)
	}))
	t.Cleanup(c.Close)
	return c
}

// at returns the event (not the ping) that path got.
func (c *capture) at(t *testing.T, path string) captured {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, g := range c.got {
		if g.path == path && !isPing(g) {
			return g
		}
	}
	t.Fatalf("no request to %s (got %d requests)", path, len(c.got))
	return captured{}
}

// rebuild is the base rebuild every format is shown: acme/base:3.20 moved
// to an image with 2 new layers, 4.1 MB more, and acme/app:2.3, built on
// the old one, is now outdated.
func rebuild() (notify.Change, []images.OutdatedImage) {
	c := change("3.20", dOld, dNew, t0)
	c.Diff = &analysis.Diff{Platform: "linux/amd64", Shared: analysis.Shared{LayerCount: 1, Size: 3_000_000},
		Removed: []analysis.DiffLayer{{Digest: "sha256:r1", DiffID: "sha256:rd1", Size: 1_000_000, CreatedBy: "RUN apk add old"}},
		Added: []analysis.DiffLayer{{Digest: "sha256:a1", DiffID: "sha256:ad1", Size: 3_000_000, CreatedBy: "RUN apk add new"},
			{Digest: "sha256:a2", DiffID: "sha256:ad2", Size: 2_100_000, CreatedBy: "COPY x /x"}},
		SizeDelta: 4_100_000, LayerCountDelta: 1}
	return c, []images.OutdatedImage{{Child: appRepo, Digest: "sha256:c1", Tags: []string{"2.3"}, Platforms: []string{"linux/amd64"},
		Base: repo, BaseDigest: dNew, BaseTags: []string{"3.20"}, BuiltOn: dOld}}
}

// sendFormats subscribes one subscription per format to acme/app:2.3's
// base.updated (and one standard one to acme/base:3.20's image.updated),
// records the rebuild and sends everything; it returns the receiver.
func sendFormats(t *testing.T, headers map[string][]store.Header) (*capture, map[string]string) {
	t.Helper()
	c, outdated := rebuild()
	return sendFormatsOf(t, headers, c, outdated)
}

// sendFormatsOf is sendFormats for the base move c, which makes outdated
// outdated.
func sendFormatsOf(t *testing.T, headers map[string][]store.Header, c notify.Change, outdated []images.OutdatedImage) (*capture, map[string]string) {
	t.Helper()
	st := openStore(t)
	rc := newCapture(t, http.StatusNoContent) // GitHub's answer to a dispatch
	secrets := map[string]string{}
	for _, f := range notify.Formats() {
		path := "/" + f
		switch f {
		case notify.FormatGitHub:
			path = "/repos/acme/app/dispatches"
		case notify.FormatGitLab:
			path = "/api/v4/projects/42/trigger/pipeline?ref=main"
		}
		sub := store.Subscription{ID: "sub_" + f, Repo: appRepo, Tag: "2.3", URL: rc.URL + path, Events: []string{notify.TypeBaseUpdated},
			Secret: notify.NewSecret(), TokenHash: "h", Status: store.SubscriptionActive, CreatedAt: t0, Format: f, Headers: headers[f]}
		// Its ping too: every format must carry one.
		body, err := notify.NewBuilder("http://imagebadger.test").PingPayload(sub, t0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.CreateSubscription(context.Background(), sub, store.NewDelivery{WebhookID: "msg_ping_" + f, Type: notify.TypePing, Payload: body}); err != nil {
			t.Fatal(err)
		}
		secrets[path] = sub.Secret
	}
	b := notify.NewBuilder("http://imagebadger.test")
	if _, err := recordTag(st, repo, "3.20", dNew, t0); err != nil {
		t.Fatal(err)
	}
	evs, err := b.Events(c, outdated)
	if err != nil {
		t.Fatal(err)
	}
	tell(t, st, evs)
	w := notify.NewWorker(notify.WorkerOptions{Store: st, Transport: loopbackTransport(), Now: func() time.Time { return t0 }})
	if n, err := w.RunOnce(context.Background()); err != nil || n != 2*len(notify.Formats()) {
		t.Fatalf("sent %d (%v), want a ping and an event per format", n, err)
	}
	for _, f := range notify.Formats() {
		ds, _ := st.Deliveries(context.Background(), "sub_"+f, 10)
		if len(ds) != 2 || ds[0].Status != store.DeliveryDelivered || ds[1].Status != store.DeliveryDelivered {
			t.Errorf("%s: deliveries %+v, want the ping and the event delivered (a 204 is success)", f, ds)
		}
	}
	return rc, secrets
}

// verifySigned checks the Standard Webhooks headers every format carries,
// with the specification's reference library, over the body as sent.
func verifySigned(t *testing.T, g captured, secret string) {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(g.body, g.header); err != nil {
		t.Errorf("%s: signature does not verify: %v", g.path, err)
	}
}

// The words a person reads, whatever the format.
const (
	wordsRebuilt  = "127.0.0.1:5000/acme/base:3.20 was rebuilt: 2 layers changed, +4.1 MB"
	wordsOutdated = "127.0.0.1:5000/acme/app:2.3 is built on it and is now outdated"
	imagePage     = "http://imagebadger.test/images/127.0.0.1:5000/acme/app:2.3"
	diffPage      = "http://imagebadger.test/diff?from=127.0.0.1:5000/acme/base@" + dOld + "&to=127.0.0.1:5000/acme/base@" + dNew
)

func TestFormatsSignedAndInPersonsWords(t *testing.T) {
	rc, secrets := sendFormats(t, nil)
	for path, secret := range secrets {
		g := rc.at(t, path)
		verifySigned(t, g, secret)
		// Every format says what changed, in words, somewhere a person sees.
		body := string(g.body)
		if strings.HasPrefix(g.header.Get("Content-Type"), "application/x-www-form-urlencoded") {
			q, _ := url.ParseQuery(body)
			body = q.Get("variables[IMAGEBADGER_TEXT]")
		}
		if !strings.Contains(body, "2 layers changed, +4.1 MB") || !strings.Contains(body, "is now outdated") {
			t.Errorf("%s: the body does not say what changed in words: %s", path, g.body)
		}
	}
}

// TestSlackBlocks reads the slack body with slack-go's own types (as Slack
// defines Block Kit): a text for notifications and for Mattermost and
// Rocket.Chat, and blocks that decode and validate, within Slack's limits
// (header text 150 characters, section text 3,000, at most 50 blocks),
// the links in mrkdwn's <url|label> form.
func TestSlackBlocks(t *testing.T) {
	rc, _ := sendFormats(t, nil)
	g := rc.at(t, "/slack")
	if ct := g.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var msg slack.WebhookMessage
	if err := json.Unmarshal(g.body, &msg); err != nil {
		t.Fatalf("slack-go cannot read the body: %v\n%s", err, g.body)
	}
	if !strings.Contains(msg.Text, wordsRebuilt) || !strings.Contains(msg.Text, wordsOutdated) || !strings.Contains(msg.Text, imagePage) {
		t.Errorf("text %q does not say what changed with the image page", msg.Text)
	}
	if msg.Blocks == nil || len(msg.Blocks.BlockSet) == 0 || len(msg.Blocks.BlockSet) > 50 {
		t.Fatalf("blocks %+v", msg.Blocks)
	}
	var sawHeader, sawSection, sawLinks bool
	for _, b := range msg.Blocks.BlockSet {
		switch b := b.(type) {
		case *slack.HeaderBlock:
			sawHeader = true
			if b.Text == nil || b.Text.Type != slack.PlainTextType || utf8.RuneCountInString(b.Text.Text) > 150 || b.Text.Validate() != nil {
				t.Errorf("header block %+v", b.Text)
			}
		case *slack.SectionBlock:
			sawSection = true
			if b.Text == nil || b.Text.Type != slack.MarkdownType || utf8.RuneCountInString(b.Text.Text) > 3000 || b.Text.Validate() != nil {
				t.Errorf("section block %+v", b.Text)
			} else if !strings.Contains(b.Text.Text, "2 layers changed, +4.1 MB") || !strings.Contains(b.Text.Text, "is now outdated") {
				t.Errorf("section text %q", b.Text.Text)
			}
		case *slack.ContextBlock:
			for _, e := range b.ContextElements.Elements {
				if tb, ok := e.(*slack.TextBlockObject); ok && strings.Contains(tb.Text, "<"+imagePage+"|") &&
					strings.Contains(tb.Text, "<"+strings.ReplaceAll(diffPage, "&", "&amp;")+"|") {
					sawLinks = true
				}
			}
		default:
			t.Errorf("unexpected block %T", b)
		}
	}
	if !sawHeader || !sawSection || !sawLinks {
		t.Errorf("header %v, section %v, links to the image page and the diff %v", sawHeader, sawSection, sawLinks)
	}
}

// TestDiscordLimits checks the discord body against Discord's documented
// limits for an execute-webhook message: content at most 2,000
// characters, at most 10 embeds, each title 256, description 4,096, 25
// fields of name 256 and value 1,024, 6,000 characters in all.
func TestDiscordLimits(t *testing.T) {
	rc, _ := sendFormats(t, nil)
	g := rc.at(t, "/discord")
	var msg struct {
		Content string `json:"content"`
		Embeds  []struct {
			Title, Description, URL string
			Fields                  []struct{ Name, Value string }
		} `json:"embeds"`
		AllowedMentions *struct {
			Parse []string `json:"parse"`
		} `json:"allowed_mentions"`
	}
	if err := json.Unmarshal(g.body, &msg); err != nil {
		t.Fatal(err)
	}
	n := utf8.RuneCountInString
	if msg.Content == "" || n(msg.Content) > 2000 {
		t.Errorf("content of %d characters", n(msg.Content))
	}
	if len(msg.Embeds) == 0 || len(msg.Embeds) > 10 {
		t.Fatalf("%d embeds", len(msg.Embeds))
	}
	for _, e := range msg.Embeds {
		total := n(e.Title) + n(e.Description)
		if e.Title == "" || n(e.Title) > 256 || n(e.Description) > 4096 || len(e.Fields) > 25 {
			t.Errorf("embed %+v out of limits", e)
		}
		for _, f := range e.Fields {
			total += n(f.Name) + n(f.Value)
			if f.Name == "" || f.Value == "" || n(f.Name) > 256 || n(f.Value) > 1024 {
				t.Errorf("field %+v out of limits", f)
			}
		}
		if total > 6000 {
			t.Errorf("embed of %d characters", total)
		}
		if e.URL != imagePage {
			t.Errorf("embed url %q, want the image page", e.URL)
		}
		if !strings.Contains(e.Description, "2 layers changed, +4.1 MB") {
			t.Errorf("description %q", e.Description)
		}
	}
	if msg.AllowedMentions == nil || len(msg.AllowedMentions.Parse) != 0 {
		t.Error("mentions are not turned off: a tag name could ping a channel")
	}
	if !strings.Contains(string(g.body), diffPage[:40]) {
		t.Error("no link to the diff")
	}
}

// TestTeamsAdaptiveCard has Microsoft's adaptivecards package (installed by
// make deps) parse and validate the card of the teams message, and checks
// the workflow message around it.
func TestTeamsAdaptiveCard(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is needed for the Adaptive Card check (make deps)")
	}
	dir := filepath.Join("testdata", "teams")
	rc, _ := sendFormats(t, nil)
	g := rc.at(t, "/teams")
	check := func(body []byte) (map[string]any, error) {
		cmd := exec.Command(node, "check.js")
		cmd.Dir = dir
		cmd.Stdin = bytes.NewReader(body)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		runErr := cmd.Run()
		var report map[string]any
		if err := json.Unmarshal(out.Bytes(), &report); err != nil {
			t.Fatalf("check.js: %v; stdout %q stderr %q (run make deps?)", err, out.String(), errOut.String())
		}
		return report, runErr
	}
	report, err := check(g.body)
	if err != nil {
		t.Fatalf("the adaptivecards package refuses the card: %v %v\n%s", err, report["problems"], g.body)
	}
	texts, _ := json.Marshal(report["texts"])
	urls, _ := json.Marshal(report["urls"])
	if !strings.Contains(string(texts), "was rebuilt") || !strings.Contains(string(texts), "2 layers changed, +4.1 MB") {
		t.Errorf("card texts %s", texts)
	}
	if !strings.Contains(string(urls), imagePage) || !strings.Contains(string(urls), "/diff?from=") {
		t.Errorf("card links %s, want the image page and the diff", urls)
	}
	// The check can fail: a card with an element the library does not know.
	bad := bytes.Replace(g.body, []byte(`"FactSet"`), []byte(`"FactSheet"`), 1)
	if _, err := check(bad); err == nil {
		t.Error("the check accepted a card with an unknown element")
	}
}

// TestNtfyHeaders checks the ntfy request against ntfy's publish API: a
// plain-text message of at most 4,096 bytes (its default limit), Title,
// Tags (comma-separated) and Click (a URL) headers, an Actions header of
// the form "view, label, url", every header value printable ASCII.
func TestNtfyHeaders(t *testing.T) {
	rc, _ := sendFormats(t, map[string][]store.Header{notify.FormatNtfy: {{Name: "Authorization", Value: "Bearer tk_secret"}}})
	g := rc.at(t, "/ntfy")
	if ct := g.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
	if len(g.body) == 0 || len(g.body) > 4096 || !utf8.Valid(g.body) {
		t.Errorf("message of %d bytes", len(g.body))
	}
	for _, h := range []string{"Title", "Tags", "Click", "Actions"} {
		v := g.header.Get(h)
		if v == "" {
			t.Errorf("no %s header", h)
		}
		for _, r := range v {
			if r < 0x20 || r > 0x7e {
				t.Errorf("%s %q is not printable ASCII", h, v)
				break
			}
		}
	}
	if u, err := url.Parse(g.header.Get("Click")); err != nil || u.Scheme != "http" || g.header.Get("Click") != imagePage {
		t.Errorf("Click %q, want the image page", g.header.Get("Click"))
	}
	if parts := strings.Split(g.header.Get("Actions"), ", "); len(parts) != 3 || parts[0] != "view" || !strings.HasPrefix(parts[2], "http://imagebadger.test/diff?") {
		t.Errorf("Actions %q", g.header.Get("Actions"))
	}
	for _, tag := range strings.Split(g.header.Get("Tags"), ",") {
		if tag == "" || strings.ContainsAny(tag, " ") {
			t.Errorf("Tags %q", g.header.Get("Tags"))
		}
	}
	if !strings.Contains(g.header.Get("Title"), "acme/base:3.20 was rebuilt") {
		t.Errorf("Title %q", g.header.Get("Title"))
	}
	if g.header.Get("Authorization") != "Bearer tk_secret" {
		t.Error("the access token header was not sent")
	}
}

// TestGitHubDispatch checks the github request against GitHub's
// repository_dispatch endpoint: a JSON body of event_type (at most 100
// characters) and client_payload (an object of at most 10 top-level
// properties) and nothing else, the API's Accept header, and the
// subscription's Authorization header; GitHub answers 204, which counts as
// delivered (sendFormats).
func TestGitHubDispatch(t *testing.T) {
	rc, _ := sendFormats(t, map[string][]store.Header{notify.FormatGitHub: {{Name: "Authorization", Value: "Bearer ghp_secret"}}})
	g := rc.at(t, "/repos/acme/app/dispatches")
	var body map[string]json.RawMessage
	if err := json.Unmarshal(g.body, &body); err != nil {
		t.Fatal(err)
	}
	if len(body) != 2 || body["event_type"] == nil || body["client_payload"] == nil {
		t.Fatalf("body keys %v, want event_type and client_payload", keys(body))
	}
	var eventType string
	var payload map[string]json.RawMessage
	if json.Unmarshal(body["event_type"], &eventType) != nil || json.Unmarshal(body["client_payload"], &payload) != nil {
		t.Fatalf("body %s", g.body)
	}
	if eventType != "imagebadger.base.updated" || len(eventType) > 100 {
		t.Errorf("event_type %q", eventType)
	}
	if len(payload) == 0 || len(payload) > 10 {
		t.Errorf("client_payload has %d top-level keys (%v), GitHub allows 10", len(payload), keys(payload))
	}
	var image struct{ Reference, Digest string }
	if err := json.Unmarshal(payload["image"], &image); err != nil || image.Reference != "127.0.0.1:5000/acme/app:2.3" {
		t.Errorf("client_payload.image %s", payload["image"])
	}
	if g.header.Get("Authorization") != "Bearer ghp_secret" || g.header.Get("Accept") != "application/vnd.github+json" {
		t.Errorf("headers %v", g.header)
	}
}

// TestGitLabTrigger checks the gitlab request against GitLab's pipeline
// trigger API: a form with token, and variables[KEY] fields; the ref in
// the URL's query. The trigger token, given as the subscription's header
// "token", goes in the form, not in a header.
func TestGitLabTrigger(t *testing.T) {
	rc, _ := sendFormats(t, map[string][]store.Header{notify.FormatGitLab: {{Name: "Token", Value: "glptt-secret"}}})
	g := rc.at(t, "/api/v4/projects/42/trigger/pipeline?ref=main")
	if ct := g.header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type %q", ct)
	}
	form, err := url.ParseQuery(string(g.body))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"token":                             "glptt-secret",
		"variables[IMAGEBADGER_EVENT]":      "base.updated",
		"variables[IMAGEBADGER_IMAGE]":      "127.0.0.1:5000/acme/app:2.3",
		"variables[IMAGEBADGER_DIGEST]":     "sha256:c1",
		"variables[IMAGEBADGER_BASE_IMAGE]": "127.0.0.1:5000/acme/base:3.20",
	}
	for k, v := range want {
		if form.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, form.Get(k), v)
		}
	}
	if g.header.Get("Token") != "" {
		t.Error("the trigger token was also sent as a header")
	}
}

// TestMicroBadgerBody reads the microbadger body with MicroBadger's own
// field names (NotificationMessageChanges in microscaling/microbadger's
// database/interface.go: text, image_name, new_tags, changed_tags,
// deleted_tags, each tag {"tag", "SHA"}).
func TestMicroBadgerBody(t *testing.T) {
	st := openStore(t)
	rc := newCapture(t, 200)
	sub := store.Subscription{ID: "sub_mb", Repo: repo, Tag: "", URL: rc.URL + "/mb", Events: []string{notify.TypeImageUpdated, notify.TypeTagDeleted},
		Secret: notify.NewSecret(), TokenHash: "h", Status: store.SubscriptionActive, CreatedAt: t0, Format: notify.FormatMicroBadger}
	if _, err := st.CreateSubscription(context.Background(), sub, store.NewDelivery{}); err != nil {
		t.Fatal(err)
	}
	b := notify.NewBuilder("http://imagebadger.test")
	moveTag(t, st, "3.20", dOld, t0)
	moveTag(t, st, "3.20", dNew, t0.Add(time.Second))
	deletion := store.TagDeletion{Repo: repo, Tag: "3.20", Previous: dNew, At: t0.Add(2 * time.Second)}
	if _, err := st.RecordDeletion(context.Background(), deletion); err != nil {
		t.Fatal(err)
	}
	ev, err := b.DeletionEvent(store.TagChange{Registry: repo.Registry, Repository: repo.Name, Tag: "3.20", Kind: store.ChangeDeleted,
		Previous: dNew, At: deletion.At})
	if err != nil {
		t.Fatal(err)
	}
	tell(t, st, []notify.Event{ev})
	w := notify.NewWorker(notify.WorkerOptions{Store: st, Transport: loopbackTransport(), Now: func() time.Time { return t0.Add(time.Minute) }})
	if _, err := w.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	type tag struct {
		Tag string `json:"tag"`
		SHA string `json:"SHA"`
	}
	type changes struct {
		Text        string `json:"text"`
		ImageName   string `json:"image_name"`
		NewTags     []tag  `json:"new_tags"`
		ChangedTags []tag  `json:"changed_tags"`
		DeletedTags []tag  `json:"deleted_tags"`
	}
	var got []changes
	rc.mu.Lock()
	for _, g := range rc.got {
		var c changes
		if err := json.Unmarshal(g.body, &c); err != nil {
			t.Fatal(err)
		}
		got = append(got, c)
	}
	rc.mu.Unlock()
	if len(got) != 3 {
		t.Fatalf("%d requests, want the new tag, its move and its deletion", len(got))
	}
	byKind := map[string]tag{}
	for _, c := range got {
		if c.ImageName != "127.0.0.1:5000/acme/base" || c.Text == "" {
			t.Errorf("image_name %q, text %q", c.ImageName, c.Text)
		}
		for kind, ts := range map[string][]tag{"new": c.NewTags, "changed": c.ChangedTags, "deleted": c.DeletedTags} {
			for _, x := range ts {
				byKind[kind] = x
			}
		}
	}
	if byKind["new"] != (tag{"3.20", dOld}) || byKind["changed"] != (tag{"3.20", dNew}) || byKind["deleted"] != (tag{"3.20", dNew}) {
		t.Errorf("tags by kind %+v", byKind)
	}
}

// isPing tells a ping from an event in any format: its type, where the
// format says it, or its words.
func isPing(g captured) bool {
	return bytes.Contains(g.body, []byte("webhook.ping")) || bytes.Contains(g.body, []byte("will tell this webhook")) ||
		strings.Contains(g.header.Get("Tags"), "webhook-ping")
}

// TestPingsInEveryFormat: the ping reaches every format's receiver, signed.
func TestPingsInEveryFormat(t *testing.T) {
	rc, secrets := sendFormats(t, nil)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for path, secret := range secrets {
		n := 0
		for _, g := range rc.got {
			if g.path == path && isPing(g) {
				n++
				verifySigned(t, g, secret)
			}
		}
		if n != 1 {
			t.Errorf("%s: %d pings", path, n)
		}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
