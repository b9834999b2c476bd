package notify

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"imagebadger/analysis"
	"imagebadger/images"
	"imagebadger/store"
)

// Builder turns tag moves into the events of docs/API.md. It implements
// images.EventBuilder, so events are computed inside the transaction that
// records the move and stored with it. It does no I/O.
type Builder struct {
	baseURL string
}

// NewBuilder returns a Builder whose links point at baseURL, the service's
// public URL (--base-url).
func NewBuilder(baseURL string) *Builder {
	return &Builder{baseURL: strings.TrimRight(baseURL, "/")}
}

var _ images.EventBuilder = (*Builder)(nil)

// payload is the body of every delivery: the Standard Webhooks envelope
// (type, timestamp, data) plus text, which Slack-compatible incoming
// webhooks display as is.
type payload struct {
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
	Text      string `json:"text"`
	Data      any    `json:"data"`
}

// imageData names an image in a payload. PreviousDigest is a pointer so a
// tag seen for the first time gives null rather than "".
type imageData struct {
	Registry       string  `json:"registry"`
	Repository     string  `json:"repository"`
	Tag            string  `json:"tag"`
	Reference      string  `json:"reference"`
	Digest         string  `json:"digest"`
	PreviousDigest *string `json:"previousDigest"`
	URL            string  `json:"url"`
	// Tags are, for a repository-wide subscription's base.updated, the
	// subscribed tags of the image; for the base, its tags that moved.
	Tags []string `json:"tags,omitempty"`
	// Platforms says, for image.updated, which platform images changed.
	Platforms []platformData `json:"platforms,omitempty"`
	// OutdatedPlatforms are, for base.updated, the platforms of the image
	// whose base moved on.
	OutdatedPlatforms []string `json:"outdatedPlatforms,omitempty"`
}

// platformData is one platform of a moved tag: its platform image before
// and after (null where the platform was added or dropped).
type platformData struct {
	Platform       string  `json:"platform"`
	Digest         *string `json:"digest"`
	PreviousDigest *string `json:"previousDigest"`
	Changed        bool    `json:"changed"`
}

type imageUpdated struct {
	Image   imageData    `json:"image"`
	Changes *changesData `json:"changes,omitempty"`
}

// changesData is the diff of a move as docs/API.md's data.changes has it:
// the diff API's answer for the compared platform, without the sides and
// parents (data.image names the sides).
type changesData struct {
	Platform        string                `json:"platform"`
	Shared          analysis.Shared       `json:"shared"`
	Removed         []analysis.DiffLayer  `json:"removed"`
	Added           []analysis.DiffLayer  `json:"added"`
	SizeDelta       int64                 `json:"sizeDelta"`
	LayerCountDelta int                   `json:"layerCountDelta"`
	Metadata        analysis.MetadataDiff `json:"metadata"`
	CompareURL      string                `json:"compareUrl,omitempty"`
}

type baseUpdated struct {
	Image imageData `json:"image"`
	Base  imageData `json:"base"`
}

type ping struct {
	Subscription string `json:"subscription"`
	Image        string `json:"image"`
}

// Events implements images.EventBuilder: an image.updated event for the tag,
// subscribed to by the tag and by its repository, carrying the diff of the
// move and its platforms; and for every image the move makes outdated one
// base.updated for the subscribers of each of its tags and one for its
// repository's subscribers, each stored once per (image, new base digest)
// whichever way and however often the move is noticed. A move that changes
// no platform image (an index that only gained attestations) is no news to
// anyone and gives no image.updated.
func (b *Builder) Events(c images.Change) ([]store.Event, error) {
	var events []store.Event
	ref := c.Repo.WithTag(c.Tag)
	if c.PlatformsChanged {
		img := b.imageData(ref, c.Current, c.Previous)
		for _, p := range c.Platforms {
			img.Platforms = append(img.Platforms, platformData{Platform: p.Platform, Digest: nonEmpty(p.Digest),
				PreviousDigest: nonEmpty(p.Previous), Changed: p.Changed()})
		}
		var text string
		if c.Previous == "" {
			text = fmt.Sprintf("%s appeared: %s %s", display(ref), analysis.ShortDigest(c.Current), img.URL)
		} else {
			text = fmt.Sprintf("%s changed: %s → %s %s", display(ref), analysis.ShortDigest(c.Previous), analysis.ShortDigest(c.Current), img.URL)
		}
		data := imageUpdated{Image: img}
		if d := c.Diff; d != nil && c.Previous != "" {
			data.Changes = &changesData{Platform: d.Platform, Shared: d.Shared, Removed: d.Removed, Added: d.Added,
				SizeDelta: d.SizeDelta, LayerCountDelta: d.LayerCountDelta, Metadata: d.Metadata, CompareURL: d.CompareURL}
		}
		ev, err := b.event(TypeImageUpdated, ref, c.At, text, data)
		if err != nil {
			return nil, err
		}
		events = append(events, ev)
	}
	for _, o := range c.Outdated {
		if len(o.Tags) == 0 {
			// Only tags can be subscribed to; an image known by digest alone
			// has no subscriber to tell.
			continue
		}
		baseTag := analysis.LongestTag(o.BaseTags)
		if baseTag == "" {
			baseTag = c.Tag
		}
		baseRef := o.Base.WithTag(baseTag)
		base := b.imageData(baseRef, o.BaseDigest, o.BuiltOn)
		base.Tags = o.BaseTags
		key := "\x00" + o.Child.WithDigest(o.Digest).String() + "\x00" + o.Base.WithDigest(o.BaseDigest).String()
		for _, t := range o.Tags {
			cref := o.Child.WithTag(t)
			img := b.imageData(cref, o.Digest, "")
			img.OutdatedPlatforms = o.Platforms
			ev, err := b.baseEvent(cref, baseRef, img, base, c.At, store.AudienceTag, TypeBaseUpdated+"\x00tag:"+t+key)
			if err != nil {
				return nil, err
			}
			events = append(events, ev)
		}
		cref := o.Child.WithTag(analysis.LongestTag(o.Tags))
		img := b.imageData(cref, o.Digest, "")
		img.Tags, img.OutdatedPlatforms = o.Tags, o.Platforms
		ev, err := b.baseEvent(cref, baseRef, img, base, c.At, store.AudienceRepository, TypeBaseUpdated+"\x00repository"+key)
		if err != nil {
			return nil, err
		}
		ev.Tag = ""
		events = append(events, ev)
	}
	return events, nil
}

// baseEvent is one base.updated: img is outdated, its base having moved.
func (b *Builder) baseEvent(cref, baseRef analysis.Reference, img, base imageData, at time.Time, aud store.Audience, key string) (store.Event, error) {
	built := ""
	if base.PreviousDigest != nil {
		built = analysis.ShortDigest(*base.PreviousDigest)
	}
	text := fmt.Sprintf("%s is outdated: its base %s moved from %s to %s %s",
		display(cref), display(baseRef), built, analysis.ShortDigest(base.Digest), img.URL)
	ev, err := b.event(TypeBaseUpdated, cref, at, text, baseUpdated{Image: img, Base: base})
	ev.Audience, ev.DedupKey = aud, key
	return ev, err
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// PingPayload is the body of the webhook.ping sent when a subscription is
// created.
func (b *Builder) PingPayload(sub store.Subscription, at time.Time) ([]byte, error) {
	ref := sub.Reference()
	name := ref.Repository.String()
	if ref.Tag != "" {
		name = ref.String()
	}
	return json.Marshal(payload{
		Type:      TypePing,
		Timestamp: timestamp(at),
		Text:      fmt.Sprintf("imagebadger will tell this webhook when %s changes (subscription %s)", name, sub.ID),
		Data:      ping{Subscription: sub.ID, Image: name},
	})
}

func (b *Builder) event(typ string, ref analysis.Reference, at time.Time, text string, data any) (store.Event, error) {
	body, err := json.Marshal(payload{Type: typ, Timestamp: timestamp(at), Text: text, Data: data})
	if err != nil {
		return store.Event{}, fmt.Errorf("notify: %s payload of %s: %w", typ, ref, err)
	}
	return store.Event{
		ID:         newID("msg_"),
		Type:       typ,
		Registry:   ref.Registry,
		Repository: ref.Name,
		Tag:        ref.Tag,
		Payload:    body,
	}, nil
}

func (b *Builder) imageData(ref analysis.Reference, digest, previous string) imageData {
	d := imageData{
		Registry:   ref.Registry,
		Repository: ref.Name,
		Tag:        ref.Tag,
		Reference:  ref.String(),
		Digest:     digest,
		URL:        b.ImageURL(ref),
	}
	if previous != "" {
		d.PreviousDigest = &previous
	}
	return d
}

// ImageURL is the page of ref on this service.
func (b *Builder) ImageURL(ref analysis.Reference) string {
	return b.baseURL + "/images/" + ref.String()
}

// display names ref as people write it (docker.io and library/ left out).
func display(ref analysis.Reference) string {
	return ref.Repository.Short() + ":" + ref.Tag
}

// timestamp formats t as docs/API.md's payloads do (RFC 3339, UTC, seconds).
func timestamp(t time.Time) string {
	return t.UTC().Truncate(time.Second).Format(time.RFC3339)
}
