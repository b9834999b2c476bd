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
	Registry       string   `json:"registry"`
	Repository     string   `json:"repository"`
	Tag            string   `json:"tag"`
	Reference      string   `json:"reference"`
	Digest         string   `json:"digest"`
	PreviousDigest *string  `json:"previousDigest"`
	URL            string   `json:"url"`
	Platforms      []string `json:"platforms,omitempty"`
}

type imageUpdated struct {
	Image imageData `json:"image"`
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
// subscribed to by the tag and by its repository, and a base.updated event
// for every known child image the move makes outdated, subscribed to by the
// child. A move that changes no platform image (an index that only gained
// attestations) is no news to anyone and gives no event.
func (b *Builder) Events(c images.Change) ([]store.Event, error) {
	if !c.PlatformsChanged {
		return nil, nil
	}
	ref := c.Repo.WithTag(c.Tag)
	img := b.imageData(ref, c.Current, c.Previous)
	var text string
	if c.Previous == "" {
		text = fmt.Sprintf("%s appeared: %s %s", display(ref), analysis.ShortDigest(c.Current), img.URL)
	} else {
		text = fmt.Sprintf("%s changed: %s → %s %s", display(ref), analysis.ShortDigest(c.Previous), analysis.ShortDigest(c.Current), img.URL)
	}
	ev, err := b.event(TypeImageUpdated, ref, c.At, text, imageUpdated{Image: img})
	if err != nil {
		return nil, err
	}
	events := []store.Event{ev}

	// One event per child reference, with every platform it is outdated on.
	type child struct {
		o         images.OutdatedChild
		platforms []string
	}
	var order []string
	children := map[string]*child{}
	for _, o := range c.Outdated {
		key := o.Child.String() + "\x00" + o.ChildDigest + "\x00" + o.BuiltOn
		ch, ok := children[key]
		if !ok {
			ch = &child{o: o}
			children[key] = ch
			order = append(order, key)
		}
		if o.Platform != "" {
			ch.platforms = append(ch.platforms, o.Platform)
		}
	}
	for _, key := range order {
		ch := children[key]
		cref := ch.o.Child.Repository.WithTag(ch.o.Child.Tag)
		if cref.Tag == "" {
			// Only tags can be subscribed to; a child known by digest alone
			// has no subscriber to tell.
			continue
		}
		childImg := b.imageData(cref, ch.o.ChildDigest, "")
		childImg.PreviousDigest = nil
		childImg.Platforms = ch.platforms
		base := b.imageData(ref, c.Current, ch.o.BuiltOn)
		text := fmt.Sprintf("%s is outdated: its base %s moved from %s to %s %s",
			display(cref), display(ref), analysis.ShortDigest(ch.o.BuiltOn), analysis.ShortDigest(c.Current), childImg.URL)
		ev, err := b.event(TypeBaseUpdated, cref, c.At, text, baseUpdated{Image: childImg, Base: base})
		if err != nil {
			return nil, err
		}
		events = append(events, ev)
	}
	return events, nil
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
