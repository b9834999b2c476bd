package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/notify"
	"github.com/imagebadger/imagebadger/store"
)

// hostileLabel is a version label as an attacker who controls an image's
// labels writes it: Slack's channel-wide mention and a Slack link with a
// label of its choosing, the mentions of Mattermost, Rocket.Chat and
// Discord, and a Markdown link for Teams and Discord.
const hostileLabel = "<!channel> <https://evil.test/login|Re-authenticate here> @here @channel @all @everyone [login](https://evil.test) **urgent**"

// hostileRebuild is the base rebuild of every format's tests, its version
// label moving from 1.0 to hostileLabel.
func hostileRebuild(t *testing.T) *capture {
	t.Helper()
	c, outdated := rebuild()
	from, to := "1.0", hostileLabel
	c.Diff.Metadata.Version = &analysis.ValueChange{From: &from, To: &to}
	rc, _ := sendFormatsOf(t, nil, c, outdated)
	return rc
}

// TestSlackEscapesRegistryText reads the slack body with slack-go's types,
// as Slack, Mattermost and Rocket.Chat read it, and checks it against
// Slack's "Escaping text" rules: no text holds a control sequence (<…>)
// but the service's own links in the context block, the label's are
// written &lt; … &gt;, and no word of it mentions the channel.
func TestSlackEscapesRegistryText(t *testing.T) {
	g := hostileRebuild(t).at(t, "/slack")
	var msg slack.WebhookMessage
	if err := json.Unmarshal(g.body, &msg); err != nil {
		t.Fatalf("slack-go cannot read the body: %v\n%s", err, g.body)
	}
	texts := map[string]string{"text": msg.Text}
	var links []string
	for _, b := range msg.Blocks.BlockSet {
		switch b := b.(type) {
		case *slack.HeaderBlock:
			texts["header"] = b.Text.Text
		case *slack.SectionBlock:
			texts["section"] = b.Text.Text
		case *slack.ContextBlock:
			for _, e := range b.ContextElements.Elements {
				if tb, ok := e.(*slack.TextBlockObject); ok {
					links = append(links, tb.Text)
				}
			}
		}
	}
	if !strings.Contains(texts["section"], "version 1.0") || !strings.Contains(texts["text"], "version 1.0") {
		t.Fatalf("the label's change is not in the message: %q", texts)
	}
	for where, s := range texts {
		if strings.ContainsAny(s, "<>") {
			t.Errorf("%s holds a control sequence of Slack's: %q", where, s)
		}
		for _, mention := range []string{"@here", "@channel", "@all", "@everyone"} {
			if strings.Contains(s, mention) {
				t.Errorf("%s holds the mention %s: %q", where, mention, s)
			}
		}
	}
	want := "&lt;!channel&gt; &lt;https://evil.test/login|Re-authenticate here&gt; @\u200bhere @\u200bchannel @\u200ball @\u200beveryone [login](https://evil.test)"
	for _, where := range []string{"text", "section"} {
		if !strings.Contains(texts[where], want) {
			t.Errorf("%s %q does not show the label escaped as %q", where, texts[where], want)
		}
	}
	// The service's own links stay links.
	seq := regexp.MustCompile(`<[^>]*>`)
	n := 0
	for _, l := range links {
		for _, s := range seq.FindAllString(l, -1) {
			n++
			if !strings.HasPrefix(s, "<http://imagebadger.test/") || !(strings.HasSuffix(s, "|Image page>") || strings.HasSuffix(s, "|What changed>")) {
				t.Errorf("context link %q is not one of the service's", s)
			}
		}
	}
	if n != 2 {
		t.Errorf("%d links in the context block %q, want the image page and the diff", n, links)
	}
	if !strings.Contains(texts["text"], imagePage) {
		t.Errorf("text %q lost the image page", texts["text"])
	}
}

// unescaped finds a Markdown link, emphasis or code not preceded by a
// backslash: CommonMark's reading of a literal character.
var unescaped = regexp.MustCompile("(^|[^\\\\])[\\[\\]()*_`~]")

// TestDiscordEscapesRegistryText checks the discord body against
// Discord's Markdown: the label's link and emphasis are backslash-escaped
// in the content, the embed's description and its fields, its mentions
// made plain words (and allowed_mentions parses none), while the
// service's own diff link stays a link.
func TestDiscordEscapesRegistryText(t *testing.T) {
	g := hostileRebuild(t).at(t, "/discord")
	var msg struct {
		Content string `json:"content"`
		Embeds  []struct {
			Title, Description, URL string
			Fields                  []struct{ Name, Value string }
		} `json:"embeds"`
		AllowedMentions struct {
			Parse []string `json:"parse"`
		} `json:"allowed_mentions"`
	}
	if err := json.Unmarshal(g.body, &msg); err != nil || len(msg.Embeds) != 1 {
		t.Fatalf("body %s: %v", g.body, err)
	}
	e := msg.Embeds[0]
	want := `\<!channel\> \<https://evil.test/login\|Re-authenticate here\> @` + "\u200b" + `here @` + "\u200b" + `channel @` + "\u200b" + `all @` + "\u200b" + `everyone \[login\]\(https://evil.test\) \*\*urgent\*\*`
	for where, s := range map[string]string{"content": msg.Content, "description": e.Description} {
		if !strings.Contains(s, want) {
			t.Errorf("%s %q does not hold the label escaped as %q", where, s, want)
		}
		if strings.Contains(s, "[login](") || strings.Contains(s, "@everyone") || strings.Contains(s, "@here") {
			t.Errorf("%s %q holds the label's link or mention", where, s)
		}
	}
	// Outside the service's own URLs, no character is read as Markdown.
	rest := msg.Content
	for _, u := range []string{diffPage, imagePage} {
		rest = strings.ReplaceAll(rest, u, "")
	}
	if m := unescaped.FindString(rest); m != "" {
		t.Errorf("content %q has Markdown %q outside the service's links", msg.Content, m)
	}
	if m := unescaped.FindString(e.Description); m != "" {
		t.Errorf("description %q has Markdown %q", e.Description, m)
	}
	var diffField string
	for _, f := range e.Fields {
		if f.Name == "What changed" {
			diffField = f.Value
		}
	}
	if diffField != "[the diff]("+diffPage+")" {
		t.Errorf("the diff field %q is not the service's link to %s", diffField, diffPage)
	}
	if !strings.Contains(msg.Content, imagePage) || e.URL != imagePage {
		t.Errorf("content %q / embed url %q lost the image page", msg.Content, e.URL)
	}
	if msg.AllowedMentions.Parse == nil || len(msg.AllowedMentions.Parse) != 0 {
		t.Errorf("allowed_mentions.parse %v, want []", msg.AllowedMentions.Parse)
	}
}

// TestTeamsEscapesRegistryText has Microsoft's adaptivecards package read
// the teams card made of the hostile label (it must still validate), and
// checks that the card's texts, which Teams renders as Markdown, hold the
// label's link and emphasis backslash-escaped, while the card's links are
// the service's pages.
func TestTeamsEscapesRegistryText(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is needed for the Adaptive Card check (make deps)")
	}
	g := hostileRebuild(t).at(t, "/teams")
	cmd := exec.Command(node, "check.js")
	cmd.Dir = filepath.Join("testdata", "teams")
	cmd.Stdin = bytes.NewReader(g.body)
	var out bytes.Buffer
	cmd.Stdout = &out
	runErr := cmd.Run()
	var report struct {
		Problems []string
		Texts    []string
		URLs     []string
	}
	if err := json.Unmarshal(out.Bytes(), &report); err != nil {
		t.Fatalf("check.js: %v: %q", err, out.String())
	}
	if runErr != nil {
		t.Fatalf("the adaptivecards package refuses the card: %v\n%s", report.Problems, g.body)
	}
	want := `<!channel> <https://evil.test/login|Re-authenticate here> @` + "\u200b" + `here @` + "\u200b" + `channel @` + "\u200b" + `all @` + "\u200b" + `everyone \[login\]\(https://evil.test\) \*\*urgent\*\*`
	found := false
	for _, s := range report.Texts {
		if strings.Contains(s, want) {
			found = true
		}
		if m := unescaped.FindString(s); m != "" {
			t.Errorf("card text %q has Markdown %q", s, m)
		}
	}
	if !found {
		t.Errorf("no card text holds the label escaped as %q: %q", want, report.Texts)
	}
	if len(report.URLs) != 2 || report.URLs[0] != imagePage || report.URLs[1] != diffPage {
		t.Errorf("card links %q, want the image page and the diff", report.URLs)
	}
}

// TestNtfyTagWithLineBreak: a tag holding CR/LF and a comma (as a registry
// may list one) gives a delivered ntfy request, its Click and Actions
// headers valid (the URL percent-encoded), rather than a request net/http
// refuses to send on every retry.
func TestNtfyTagWithLineBreak(t *testing.T) {
	st := openStore(t)
	rc := newCapture(t, http.StatusOK)
	tag := "1.0\r\nX-Evil: 1, view"
	sub := store.Subscription{ID: "sub_ntfy", Repo: repo, Tag: tag, URL: rc.URL + "/ntfy", Events: []string{notify.TypeImageUpdated},
		Secret: notify.NewSecret(), TokenHash: "h", Status: store.SubscriptionActive, CreatedAt: t0, Format: notify.FormatNtfy}
	if _, err := st.CreateSubscription(context.Background(), sub, store.NewDelivery{}); err != nil {
		t.Fatal(err)
	}
	moveTag(t, st, tag, dOld, t0)
	moveTag(t, st, tag, dNew, t0.Add(time.Second))
	w := notify.NewWorker(notify.WorkerOptions{Store: st, Transport: loopbackTransport(), Now: func() time.Time { return t0.Add(time.Minute) }})
	if _, err := w.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	ds, _ := st.Deliveries(context.Background(), sub.ID, 10)
	if len(ds) != 2 {
		t.Fatalf("deliveries %+v, want the tag's appearance and its move", ds)
	}
	for _, d := range ds {
		if d.Status != store.DeliveryDelivered {
			t.Errorf("delivery %s: %s (%s)", d.WebhookID, d.Status, d.LastError)
		}
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, g := range rc.got {
		if g.header.Get("X-Evil") != "" {
			t.Errorf("the tag set a header: %v", g.header)
		}
		click := g.header.Get("Click")
		if !strings.Contains(click, "1.0%0D%0AX-Evil:%201%2C%20view") {
			t.Errorf("Click %q, want the tag percent-encoded", click)
		}
		if a := g.header.Get("Actions"); a != "" && len(strings.Split(a, ", ")) != 3 {
			t.Errorf("Actions %q is not one view action", a)
		}
	}
}
