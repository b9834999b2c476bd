package notify

import (
	"fmt"
	"strings"

	"github.com/imagebadger/imagebadger/analysis"
)

// The texts of the events say what changed in a person's words, with the
// links to follow: "acme/base:3.20 was rebuilt: 2 layers changed, +4.1 MB;
// acme/app:2.3 is built on it and is now outdated". Every format shows
// them (the chat formats as their message, the CI formats as a variable),
// so they are made once, with the event.

// imageUpdatedText is the title and text of an image.updated.
func (b *Builder) imageUpdatedText(img imageData, ch *changesData) (title, text string) {
	name := displayData(img)
	if img.PreviousDigest == nil {
		title = name + " appeared"
		return title, fmt.Sprintf("%s: %s %s", title, short(img.Digest), img.URL)
	}
	title = name + " moved to a new image"
	text = title
	if w := changeWords(ch); w != "" {
		text += ": " + w
	}
	text += fmt.Sprintf(" (%s → %s) %s", short(img.PreviousDigest), short(img.Digest), img.URL)
	if img.DiffURL != "" {
		text += " diff: " + img.DiffURL
	}
	return title, text
}

// releasedText is the title and text of a version.released.
func (b *Builder) releasedText(img imageData) (title, text string) {
	title = fmt.Sprintf("%s %s was released", shortRepo(img), img.Tag)
	return title, fmt.Sprintf("%s: %s is new (%s) %s", title, displayData(img), short(img.Digest), img.URL)
}

// baseUpdatedText is the title and text of a base.updated: the base was
// rebuilt (with what changed in it), and the subscribed image, built on
// it, is now outdated.
func (b *Builder) baseUpdatedText(img, base imageData, ch *changesData) (title, text string) {
	title = displayData(base) + " was rebuilt"
	text = title
	if w := changeWords(ch); w != "" {
		text += ": " + w
	}
	text += fmt.Sprintf("; %s is built on it and is now outdated (%s → %s) %s", displayData(img),
		short(base.PreviousDigest), short(base.Digest), img.URL)
	if base.DiffURL != "" {
		text += " diff: " + base.DiffURL
	}
	return title, text
}

// changeWords says what a diff changed: layers, size and version, as in
// "2 layers changed, +4.1 MB, version 2.2.7 → 2.3.1"; "" when nothing is
// known.
func changeWords(ch *changesData) string {
	if ch == nil {
		return ""
	}
	var parts []string
	switch n := max(len(ch.Added), len(ch.Removed)); n {
	case 0:
		parts = append(parts, "same layers")
	case 1:
		parts = append(parts, "1 layer changed")
	default:
		parts = append(parts, fmt.Sprintf("%d layers changed", n))
	}
	switch {
	case ch.SizeDelta > 0:
		parts = append(parts, "+"+analysis.HumanSize(ch.SizeDelta))
	case ch.SizeDelta < 0:
		parts = append(parts, "−"+analysis.HumanSize(-ch.SizeDelta))
	}
	if v := ch.Metadata.Version; v != nil && v.From != nil && v.To != nil {
		parts = append(parts, fmt.Sprintf("version %s → %s", *v.From, *v.To))
	}
	return strings.Join(parts, ", ")
}

// displayData names an image of a payload as people write it.
func displayData(d imageData) string {
	return display(analysis.Reference{Repository: analysis.Repository{Registry: d.Registry, Name: d.Repository}, Tag: d.Tag})
}

func shortRepo(d imageData) string {
	return analysis.Repository{Registry: d.Registry, Name: d.Repository}.Short()
}

func short(d *string) string {
	if d == nil {
		return "none"
	}
	return analysis.ShortDigest(*d)
}
