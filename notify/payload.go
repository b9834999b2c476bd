package notify

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/store"
	"github.com/imagebadger/imagebadger/tagfilter"
)

// Builder turns the changes of the change log into the events of
// docs/API.md, and makes the pings of new subscriptions. It does no I/O:
// the fan-out gives it each change described (a change), with the images
// the change set makes outdated.
type Builder struct {
	baseURL string
}

// NewBuilder returns a Builder whose links point at baseURL, the service's
// public URL (--base-url).
func NewBuilder(baseURL string) *Builder {
	return &Builder{baseURL: strings.TrimRight(baseURL, "/")}
}

// payload is the body of every delivery: the Standard Webhooks envelope
// (type, timestamp, data) plus text, which Slack-compatible incoming
// webhooks display as is, and title, its headline, which the chat formats
// show in bold.
type payload struct {
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
	Title     string `json:"title,omitempty"`
	Text      string `json:"text"`
	Data      any    `json:"data"`
}

// imageData names an image in a payload. Digest and PreviousDigest are
// pointers so a tag seen for the first time gives previousDigest null, and
// a deleted one digest null.
type imageData struct {
	Registry       string  `json:"registry"`
	Repository     string  `json:"repository"`
	Tag            string  `json:"tag"`
	Reference      string  `json:"reference"`
	Digest         *string `json:"digest"`
	PreviousDigest *string `json:"previousDigest"`
	URL            string  `json:"url"`
	// DiffURL is this service's page of the diff from PreviousDigest to
	// Digest, when both are known.
	DiffURL string `json:"diffUrl,omitempty"`
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

type tagDeleted struct {
	Image imageData `json:"image"`
}

type ping struct {
	Subscription string `json:"subscription"`
	Image        string `json:"image"`
}

// events are the events of one described change c of change set set:
// an image.updated for the tag, subscribed to by the tag and by its
// repository, carrying the diff of the move and its platforms; for a tag
// seen for the first time that parses as a version, a version.released
// candidate for the repository's subscribers (the fan-out keeps it for those
// to whom it is a release); and for every image of outdated one base.updated
// for the subscribers of each of its tags and one for its repository's
// subscribers. A move that changes no platform image (an index that only
// gained attestations) is no news to anyone and gives no image.updated.
// Each event's key names its set and subject, so the events of a set made
// again (after a crash) are the ones stored the first time.
func (b *Builder) events(set int64, c change, outdated []images.OutdatedImage) ([]event, error) {
	var events []event
	ref := c.Repo.WithTag(c.Tag)
	var changes *changesData
	if d := c.Diff; d != nil && c.Previous != "" {
		changes = &changesData{Platform: d.Platform, Shared: d.Shared, Removed: d.Removed, Added: d.Added,
			SizeDelta: d.SizeDelta, LayerCountDelta: d.LayerCountDelta, Metadata: d.Metadata, CompareURL: d.CompareURL}
	}
	if c.PlatformsChanged {
		img := b.imageData(ref, c.Current, c.Previous)
		for _, p := range c.Platforms {
			img.Platforms = append(img.Platforms, platformData{Platform: p.Platform, Digest: nonEmpty(p.Digest),
				PreviousDigest: nonEmpty(p.Previous), Changed: p.Changed()})
		}
		data := imageUpdated{Image: img, Changes: changes}
		title, text := b.imageUpdatedText(img, changes)
		ev, err := b.event(eventKey(set, TypeImageUpdated, ref.String()), TypeImageUpdated, ref, c.At, title, text, data)
		if err != nil {
			return nil, err
		}
		ev.coalesceKey = TypeImageUpdated + " " + ref.String()
		events = append(events, ev)
		if c.Previous == "" && tagfilter.IsVersion(c.Tag) {
			title, text := b.releasedText(img)
			rel, err := b.event(eventKey(set, TypeVersionReleased, ref.String()), TypeVersionReleased, ref, c.At, title, text, data)
			if err != nil {
				return nil, err
			}
			rel.audience, rel.release = audienceRepository, true
			events = append(events, rel)
		}
	}
	for _, o := range outdated {
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
		// The key's parts are joined by spaces, which no reference or tag
		// holds.
		subject := o.Child.WithDigest(o.Digest).String() + " " + o.Base.WithDigest(o.BaseDigest).String()
		for _, t := range o.Tags {
			cref := o.Child.WithTag(t)
			img := b.imageData(cref, o.Digest, "")
			img.OutdatedPlatforms = o.Platforms
			ev, err := b.baseEvent(eventKey(set, TypeBaseUpdated, "tag:"+t+" "+subject), cref, img, base, changes, c.At, audienceTag)
			if err != nil {
				return nil, err
			}
			events = append(events, ev)
		}
		cref := o.Child.WithTag(analysis.LongestTag(o.Tags))
		img := b.imageData(cref, o.Digest, "")
		img.Tags, img.OutdatedPlatforms = o.Tags, o.Platforms
		ev, err := b.baseEvent(eventKey(set, TypeBaseUpdated, "repository "+subject), cref, img, base, changes, c.At, audienceRepository)
		if err != nil {
			return nil, err
		}
		ev.Tag, ev.tags = "", o.Tags
		events = append(events, ev)
	}
	return events, nil
}

// eventKey is the key of an event of change set set about subject.
func eventKey(set int64, typ, subject string) string {
	return fmt.Sprintf("set:%d %s %s", set, typ, subject)
}

// baseEvent is one base.updated: img is outdated, its base having moved.
// changes is the base's move, for the text.
func (b *Builder) baseEvent(key string, cref analysis.Reference, img, base imageData, changes *changesData, at time.Time, aud audience) (event, error) {
	title, text := b.baseUpdatedText(img, base, changes)
	ev, err := b.event(key, TypeBaseUpdated, cref, at, title, text, baseUpdated{Image: img, Base: base})
	ev.audience = aud
	ev.coalesceKey = TypeBaseUpdated + " " + cref.String()
	return ev, err
}

// deletionEvent is the tag.deleted of a tag the registry no longer has,
// for the subscribers of the tag and of its repository who asked for it.
// data.image.digest is null; previousDigest is where the tag last pointed.
func (b *Builder) deletionEvent(set int64, c store.TagChange) (event, error) {
	ref := analysis.Reference{Repository: analysis.Repository{Registry: c.Registry, Name: c.Repository}, Tag: c.Tag}
	img := b.imageData(ref, "", c.Previous)
	title := display(ref) + " was deleted"
	text := fmt.Sprintf("%s: the registry no longer has it; it pointed at %s %s", title, analysis.ShortDigest(c.Previous), img.URL)
	return b.event(eventKey(set, TypeTagDeleted, ref.String()), TypeTagDeleted, ref, c.At, title, text, tagDeleted{Image: img})
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
		Title:     "imagebadger subscription " + sub.ID,
		Text:      fmt.Sprintf("imagebadger will tell this webhook when %s changes (subscription %s)", name, sub.ID),
		Data:      ping{Subscription: sub.ID, Image: name},
	})
}

func (b *Builder) event(key, typ string, ref analysis.Reference, at time.Time, title, text string, data any) (event, error) {
	body, err := json.Marshal(payload{Type: typ, Timestamp: timestamp(at), Title: title, Text: text, Data: data})
	if err != nil {
		return event{}, fmt.Errorf("notify: %s payload of %s: %w", typ, ref, err)
	}
	return event{OutboxEvent: store.OutboxEvent{
		Key:        key,
		ID:         newID("msg_"),
		Type:       typ,
		Registry:   ref.Registry,
		Repository: ref.Name,
		Tag:        ref.Tag,
		Payload:    body,
		At:         at,
	}}, nil
}

func (b *Builder) imageData(ref analysis.Reference, digest, previous string) imageData {
	d := imageData{
		Registry:       ref.Registry,
		Repository:     ref.Name,
		Tag:            ref.Tag,
		Reference:      ref.String(),
		Digest:         nonEmpty(digest),
		PreviousDigest: nonEmpty(previous),
		URL:            b.ImageURL(ref),
	}
	if digest != "" && previous != "" {
		d.DiffURL = b.DiffURL(ref.Repository, previous, digest)
	}
	return d
}

// DiffURL is the page of the diff of two images of repo on this service.
func (b *Builder) DiffURL(repo analysis.Repository, from, to string) string {
	// A reference holds only characters a query may carry as they are
	// (RFC 3986 allows ":", "/" and "@" there); escaping them would only
	// make the link harder to read.
	q := strings.NewReplacer("%", "%25", "&", "%26", "#", "%23", "+", "%2B", " ", "%20")
	return b.baseURL + "/diff?from=" + q.Replace(repo.WithDigest(from).String()) + "&to=" + q.Replace(repo.WithDigest(to).String())
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
