package notify

// The delivery formats of docs/API.md. Each is a small encoder from one
// stored event (its Standard Webhooks payload) to one HTTP request, and the
// worker sends what it makes like any delivery: signed, through the
// netguard transport, within the per-receiver bound, recorded in the
// delivery log, retried. They are written by hand on purpose: the
// notification libraries for these services dial on their own, which would
// bypass netguard, the per-receiver bound and the delivery log.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/store"
)

// Delivery formats.
const (
	FormatStandard    = store.FormatStandard
	FormatSlack       = "slack"
	FormatDiscord     = "discord"
	FormatTeams       = "teams"
	FormatNtfy        = "ntfy"
	FormatGitHub      = "github"
	FormatGitLab      = "gitlab"
	FormatMicroBadger = "microbadger"
)

// Formats lists the delivery formats, the default first.
func Formats() []string {
	return []string{FormatStandard, FormatSlack, FormatDiscord, FormatTeams, FormatNtfy, FormatGitHub, FormatGitLab, FormatMicroBadger}
}

// FormatURLHint is the URL shape a format's receiver expects, for the form
// and for the error that refuses another; "" where any URL will do.
func FormatURLHint(format string) string {
	switch format {
	case FormatGitHub:
		return "https://api.github.com/repos/OWNER/REPO/dispatches"
	case FormatGitLab:
		return "https://gitlab.example.com/api/v4/projects/ID/trigger/pipeline?ref=BRANCH"
	}
	return ""
}

// FormatDescription says in a few words where a format goes, with the URL
// its receiver gives, for the form.
func FormatDescription(format string) string {
	switch format {
	case FormatStandard:
		return "Standard Webhooks JSON, for your own receiver"
	case FormatSlack:
		return "a Slack incoming webhook (https://hooks.slack.com/services/…); Mattermost and Rocket.Chat incoming webhooks too"
	case FormatDiscord:
		return "a Discord channel webhook (https://discord.com/api/webhooks/ID/TOKEN)"
	case FormatTeams:
		return "a Microsoft Teams workflow's \"When a Teams webhook request is received\" URL"
	case FormatNtfy:
		return "an ntfy topic (https://ntfy.sh/TOPIC); an access token goes in a header"
	case FormatGitHub:
		return "a GitHub repository_dispatch (" + FormatURLHint(FormatGitHub) + "); add the header Authorization: Bearer TOKEN"
	case FormatGitLab:
		return "a GitLab pipeline trigger (" + FormatURLHint(FormatGitLab) + "); add the trigger token as the header token"
	case FormatMicroBadger:
		return "MicroBadger's own notification body, for receivers written against it"
	}
	return ""
}

// outgoing is what an encoder makes of one delivery: the body and its
// type, and the format's own headers (ntfy's Title, GitHub's Accept).
type outgoing struct {
	body        []byte
	contentType string
	header      http.Header
	// form, for GitLab, takes the trigger token from the subscription's
	// headers into the body.
	form url.Values
}

// message is the stored Standard Webhooks payload as the encoders read it.
type message struct {
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
	Title     string `json:"title"`
	Text      string `json:"text"`
	Data      struct {
		Image   *imageData
		Base    *imageData
		Changes *changesData
	} `json:"-"`
	// data is the payload's data as it is, for the formats that pass it on.
	data map[string]json.RawMessage
}

func parseMessage(raw []byte) (*message, error) {
	var m message
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("notify: stored payload: %w", err)
	}
	var env struct {
		Data map[string]json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, fmt.Errorf("notify: stored payload: %w", err)
	}
	m.data = env.Data
	// image and base are objects in the events; a ping's image is the
	// subscribed name, a string, which no format needs.
	for k, into := range map[string]any{"image": &m.Data.Image, "base": &m.Data.Base, "changes": &m.Data.Changes} {
		if v := bytes.TrimSpace(env.Data[k]); len(v) > 0 && v[0] == '{' {
			if err := json.Unmarshal(v, into); err != nil {
				return nil, fmt.Errorf("notify: stored payload: data.%s: %w", k, err)
			}
		}
	}
	if m.Title == "" {
		m.Title = m.Type
	}
	return &m, nil
}

// links are the pages a message points at: the image's, and the diff of
// the change when there is one.
func (m *message) links() (image, diff string) {
	if m.Data.Image != nil {
		image, diff = m.Data.Image.URL, m.Data.Image.DiffURL
	}
	if m.Data.Base != nil && m.Data.Base.DiffURL != "" {
		diff = m.Data.Base.DiffURL
	}
	return image, diff
}

// detail is the text without the title and links: what changed.
func (m *message) detail() string {
	t := m.Text
	if rest, ok := strings.CutPrefix(t, m.Title); ok {
		t = strings.TrimLeft(rest, ":; ")
	}
	// The links are shown as links by every chat format.
	for _, u := range []string{" diff: ", " http://", " https://"} {
		if i := strings.Index(t, u); i >= 0 {
			t = t[:i]
		}
	}
	if t == "" {
		return m.Title
	}
	return strings.ToUpper(t[:1]) + t[1:]
}

// encode makes the request of format for the stored payload raw, with the
// subscription's headers (some of which a format may take into its body).
func encode(format string, raw []byte, headers []store.Header) (outgoing, []store.Header, error) {
	if format == "" || format == FormatStandard {
		return outgoing{body: raw, contentType: "application/json"}, headers, nil
	}
	m, err := parseMessage(raw)
	if err != nil {
		return outgoing{}, nil, err
	}
	var out outgoing
	switch format {
	case FormatSlack:
		out, err = encodeSlack(m)
	case FormatDiscord:
		out, err = encodeDiscord(m)
	case FormatTeams:
		out, err = encodeTeams(m)
	case FormatNtfy:
		out, err = encodeNtfy(m)
	case FormatGitHub:
		out, err = encodeGitHub(m)
	case FormatGitLab:
		return encodeGitLab(m, headers)
	case FormatMicroBadger:
		out, err = encodeMicroBadger(m)
	default:
		return outgoing{}, nil, fmt.Errorf("notify: unknown format %q", format)
	}
	return out, headers, err
}

func jsonOut(v any) (outgoing, error) {
	b, err := json.Marshal(v)
	return outgoing{body: b, contentType: "application/json"}, err
}

// cut shortens s to at most n characters (runes), marking the cut.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// digestOf is a payload digest for people: short, or "none".
func digestOf(d *string) string { return short(d) }

// subject is the image a message is about, for formats that name one.
func (m *message) subject() *imageData {
	if m.Data.Image != nil {
		return m.Data.Image
	}
	return &imageData{}
}

// Slack: {"text"} plus Block Kit blocks (https://api.slack.com/block-kit).
// text is what notifications and Mattermost and Rocket.Chat (which ignore
// blocks) show; the blocks are a header (plain_text, at most 150
// characters), a section (mrkdwn, at most 3,000) and a context with the
// links. Every text is escaped as Slack's "Escaping text" says (slackText),
// so the only control sequences are the links written here.
func encodeSlack(m *message) (outgoing, error) {
	type text struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	type block struct {
		Type     string `json:"type"`
		Text     *text  `json:"text,omitempty"`
		Elements []text `json:"elements,omitempty"`
	}
	blocks := []block{
		{Type: "header", Text: &text{Type: "plain_text", Text: fit(m.Title, 150, slackText)}},
		{Type: "section", Text: &text{Type: "mrkdwn", Text: fit(m.detail(), 3000, slackText)}},
	}
	image, diff := m.links()
	var links []string
	if image != "" {
		links = append(links, "<"+slackLink(image)+"|Image page>")
	}
	if diff != "" {
		links = append(links, "<"+slackLink(diff)+"|What changed>")
	}
	if len(links) > 0 {
		blocks = append(blocks, block{Type: "context", Elements: []text{{Type: "mrkdwn", Text: strings.Join(links, " · ")}}})
	}
	return jsonOut(struct {
		Text   string  `json:"text"`
		Blocks []block `json:"blocks"`
	}{fit(m.Text, 3000, func(s string) string { return chatText(s, m.linkURLs(), slackText, slackLink) }), blocks})
}

// slackLink is one of the service's URLs in Slack's text.
func slackLink(u string) string { return slackEscape(linkSafe(u)) }

// Discord: an execute-webhook body (https://discord.com/developers/docs/resources/webhook):
// content (at most 2,000 characters) and one embed (title at most 256,
// description 4,096, fields' names 256 and values 1,024); mentions are
// turned off (allowed_mentions), so no text of a registry's can ping
// anyone, and registry text is escaped (discordText) so that it makes no
// link or formatting of its own.
func encodeDiscord(m *message) (outgoing, error) {
	type field struct {
		Name   string `json:"name"`
		Value  string `json:"value"`
		Inline bool   `json:"inline"`
	}
	type embed struct {
		Title       string  `json:"title"`
		URL         string  `json:"url,omitempty"`
		Description string  `json:"description"`
		Timestamp   string  `json:"timestamp,omitempty"`
		Color       int     `json:"color"`
		Fields      []field `json:"fields,omitempty"`
	}
	image, diff := m.links()
	img := m.subject()
	if image != "" {
		image = linkSafe(image)
	}
	e := embed{Title: fit(m.Title, 256, discordText), URL: image, Description: fit(m.detail(), 4096, discordText), Timestamp: m.Timestamp, Color: 0x2f6fdb}
	if img.Reference != "" {
		e.Fields = append(e.Fields, field{Name: "Image", Value: fit(img.Reference, 1024, discordText), Inline: false})
	}
	if img.Digest != nil {
		e.Fields = append(e.Fields, field{Name: "Digest", Value: "`" + digestOf(img.Digest) + "`", Inline: true})
	}
	if img.PreviousDigest != nil {
		e.Fields = append(e.Fields, field{Name: "Previous", Value: "`" + digestOf(img.PreviousDigest) + "`", Inline: true})
	}
	if diff != "" {
		e.Fields = append(e.Fields, field{Name: "What changed", Value: cut("[the diff]("+linkSafe(diff)+")", 1024), Inline: false})
	}
	return jsonOut(struct {
		Content         string          `json:"content"`
		Embeds          []embed         `json:"embeds"`
		AllowedMentions map[string]any  `json:"allowed_mentions"`
		Extra           json.RawMessage `json:"-"`
	}{Content: fit(m.Text, 2000, func(s string) string { return chatText(s, m.linkURLs(), discordText, linkSafe) }), Embeds: []embed{e}, AllowedMentions: map[string]any{"parse": []string{}}})
}

// Teams: the message a Teams workflow ("When a Teams webhook request is
// received") posts, holding one Adaptive Card (version 1.4, what Teams
// renders): the title, what changed, the facts, and links to the pages.
// TextBlocks and facts render Markdown in Teams, so registry text in them
// is escaped (teamsText).
func encodeTeams(m *message) (outgoing, error) {
	img := m.subject()
	body := []map[string]any{
		{"type": "TextBlock", "text": teamsText(m.Title), "weight": "Bolder", "size": "Medium", "wrap": true},
		{"type": "TextBlock", "text": teamsText(m.detail()), "wrap": true},
	}
	var facts []map[string]any
	if img.Reference != "" {
		facts = append(facts, map[string]any{"title": "Image", "value": teamsText(img.Reference)})
	}
	if img.Digest != nil {
		facts = append(facts, map[string]any{"title": "Digest", "value": digestOf(img.Digest)})
	}
	if img.PreviousDigest != nil {
		facts = append(facts, map[string]any{"title": "Previous", "value": digestOf(img.PreviousDigest)})
	}
	if b := m.Data.Base; b != nil {
		facts = append(facts, map[string]any{"title": "Base", "value": teamsText(b.Reference)})
	}
	if len(facts) > 0 {
		body = append(body, map[string]any{"type": "FactSet", "facts": facts})
	}
	card := map[string]any{
		"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
		"type":    "AdaptiveCard",
		"version": "1.4",
		"body":    body,
	}
	image, diff := m.links()
	var actions []map[string]any
	if image != "" {
		actions = append(actions, map[string]any{"type": "Action.OpenUrl", "title": "Image page", "url": linkSafe(image)})
	}
	if diff != "" {
		actions = append(actions, map[string]any{"type": "Action.OpenUrl", "title": "What changed", "url": linkSafe(diff)})
	}
	if len(actions) > 0 {
		card["actions"] = actions
	}
	return jsonOut(map[string]any{
		"type": "message",
		"attachments": []map[string]any{{
			"contentType": "application/vnd.microsoft.card.adaptive",
			"contentUrl":  nil,
			"content":     card,
		}},
	})
}

// ntfy: a plain-text body (at most 4,096 bytes, ntfy's message limit) with
// the Title, Tags, Click and Actions headers (https://docs.ntfy.sh/publish/).
// Header values are kept to printable ASCII, which every HTTP stack
// carries as is; the links are linkSafe, so a tag holding a line break or
// a comma cannot break a header or an action.
func encodeNtfy(m *message) (outgoing, error) {
	h := http.Header{}
	h.Set("Title", asciiHeader(m.Title, 250))
	h.Set("Tags", "whale,"+strings.ReplaceAll(m.Type, ".", "-"))
	image, diff := m.links()
	if image != "" {
		h.Set("Click", linkSafe(image))
	}
	if diff != "" {
		h.Set("Actions", "view, What changed, "+linkSafe(diff))
	}
	body := m.Text
	for len(body) > 4096 {
		body = cut(body, utf8.RuneCountInString(body)-(len(body)-4096)/4-1)
	}
	return outgoing{body: []byte(body), contentType: "text/plain; charset=utf-8", header: h}, nil
}

// asciiHeader makes s a header value of printable ASCII, at most n bytes.
func asciiHeader(s string, n int) string {
	s = strings.NewReplacer("→", "->", "−", "-", "…", "...").Replace(s)
	var b strings.Builder
	for _, r := range s {
		if r >= 0x20 && r < 0x7f {
			b.WriteRune(r)
		} else {
			b.WriteByte('?')
		}
	}
	out := b.String()
	if len(out) > n {
		out = out[:n-3] + "..."
	}
	return out
}

// GitHub: a repository_dispatch
// (https://docs.github.com/en/rest/repos/repos#create-a-repository-dispatch-event):
// event_type (at most 100 characters) "imagebadger.{type}" and a
// client_payload of at most 10 top-level properties: the event's type,
// timestamp, title and text, and the keys of its data (image, base,
// changes, subscription: at most four). GitHub answers 204.
func encodeGitHub(m *message) (outgoing, error) {
	payload := map[string]any{"type": m.Type, "timestamp": m.Timestamp, "title": m.Title, "text": cut(m.Text, 1000)}
	for k, v := range m.data {
		if len(payload) == 10 {
			break
		}
		payload[k] = v
	}
	out, err := jsonOut(map[string]any{"event_type": "imagebadger." + m.Type, "client_payload": payload})
	out.header = http.Header{"Accept": {"application/vnd.github+json"}, "X-Github-Api-Version": {"2022-11-28"}}
	return out, err
}

// GitLab: a pipeline trigger
// (https://docs.gitlab.com/ci/triggers/#use-a-cicd-job): a form with the
// trigger token and the variables IMAGEBADGER_EVENT, IMAGEBADGER_IMAGE and
// IMAGEBADGER_DIGEST (and the previous digest, the base, the text); the
// ref comes in the URL's query. The token is taken from the
// subscription's header "token", so it is stored as a secret and never
// sent as a header.
func encodeGitLab(m *message, headers []store.Header) (outgoing, []store.Header, error) {
	form := url.Values{}
	var rest []store.Header
	for _, h := range headers {
		if strings.EqualFold(h.Name, "token") {
			form.Set("token", h.Value)
			continue
		}
		rest = append(rest, h)
	}
	img := m.subject()
	v := func(k, val string) { form.Set("variables["+k+"]", val) }
	v("IMAGEBADGER_EVENT", m.Type)
	v("IMAGEBADGER_IMAGE", img.Reference)
	v("IMAGEBADGER_DIGEST", deref(img.Digest))
	if img.PreviousDigest != nil {
		v("IMAGEBADGER_PREVIOUS_DIGEST", *img.PreviousDigest)
	}
	if b := m.Data.Base; b != nil {
		v("IMAGEBADGER_BASE_IMAGE", b.Reference)
		v("IMAGEBADGER_BASE_DIGEST", deref(b.Digest))
	}
	v("IMAGEBADGER_TEXT", cut(m.Text, 1000))
	return outgoing{body: []byte(form.Encode()), contentType: "application/x-www-form-urlencoded", form: form}, rest, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// MicroBadger: the body MicroBadger's notifications had
// (NotificationMessageChanges in microscaling/microbadger's
// database/interface.go): text, image_name, and the new, changed and
// deleted tags, each {"tag", "SHA"}.
func encodeMicroBadger(m *message) (outgoing, error) {
	type tag struct {
		Tag string `json:"tag"`
		SHA string `json:"SHA,omitempty"`
	}
	out := struct {
		Text        string `json:"text"`
		ImageName   string `json:"image_name"`
		NewTags     []tag  `json:"new_tags"`
		ChangedTags []tag  `json:"changed_tags"`
		DeletedTags []tag  `json:"deleted_tags"`
	}{Text: m.Text, NewTags: []tag{}, ChangedTags: []tag{}, DeletedTags: []tag{}}
	img := m.subject()
	if img.Repository != "" {
		out.ImageName = analysis.Repository{Registry: img.Registry, Name: img.Repository}.Short()
	}
	switch m.Type {
	case TypeImageUpdated, TypeVersionReleased:
		t := tag{Tag: img.Tag, SHA: deref(img.Digest)}
		if img.PreviousDigest == nil {
			out.NewTags = append(out.NewTags, t)
		} else {
			out.ChangedTags = append(out.ChangedTags, t)
		}
	case TypeTagDeleted:
		out.DeletedTags = append(out.DeletedTags, tag{Tag: img.Tag, SHA: deref(img.PreviousDigest)})
	}
	return jsonOut(out)
}
