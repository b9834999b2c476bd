package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/server"
)

// TestSubscriptionFormOffersTheOptions: the form offers every format with
// the URL its receiver expects, header rows whose values are password
// fields, the tag filters, the coalescing window and the opt-in events
// (unticked).
func TestSubscriptionFormOffersTheOptions(t *testing.T) {
	s := stack.New(t, stack.Options{Registry: true, Notify: true, AllowPrivateWebhooks: true, Server: &server.Options{}})
	resp, err := http.Get(s.URL + "/subscriptions/new?image=" + s.Registry.Host + "/acme/base")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	doc, err := goquery.NewDocumentFromReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var formats []string
	doc.Find(`[data-testid="format"] option`).Each(func(_ int, o *goquery.Selection) { formats = append(formats, o.AttrOr("value", "")) })
	if strings.Join(formats, ",") != "standardwebhooks,slack,discord,teams,ntfy,github,gitlab,microbadger" {
		t.Errorf("formats offered: %v", formats)
	}
	hints := doc.Find(`[data-testid="format-hints"]`).Text()
	for _, want := range []string{"https://api.github.com/repos/OWNER/REPO/dispatches", "/api/v4/projects/ID/trigger/pipeline?ref=", "hooks.slack.com", "discord.com/api/webhooks"} {
		if !strings.Contains(hints, want) {
			t.Errorf("the format hints do not show %s", want)
		}
	}
	if n := doc.Find(`[data-testid="headers"] input[name="header_value"][type="password"]`).Length(); n != 3 {
		t.Errorf("%d password header value fields, want 3", n)
	}
	for _, id := range []string{"tags-include", "tags-exclude", "tags-semver", "coalesce"} {
		if doc.Find(`[data-testid="`+id+`"]`).Length() != 1 {
			t.Errorf("no %s field", id)
		}
	}
	for typ, ticked := range map[string]bool{"image.updated": true, "base.updated": true, "version.released": false, "tag.deleted": false} {
		box := doc.Find(`[data-testid="event-` + typ + `"]`)
		if _, checked := box.Attr("checked"); box.Length() != 1 || checked != ticked {
			t.Errorf("event %s: %d boxes, ticked %v, want ticked %v", typ, box.Length(), checked, ticked)
		}
	}
}
