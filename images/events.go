package images

import (
	"time"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/store"
)

// Change describes one observed move of a tag, with what the service knows
// about its consequences. It is handed to the EventBuilder before the store
// transaction that records the move, which stores what the builder made.
type Change struct {
	Repo analysis.Repository
	Tag  string
	// Previous is the digest the tag pointed at before ("" for a tag seen the
	// first time); Current where it points now.
	Previous, Current string
	At                time.Time
	// Report is the report of Current (platforms, layers, metadata).
	Report *analysis.Report
	// PreviousReport is the report of Previous; nil for a new tag, or when
	// the previous image's content cannot be read any more.
	PreviousReport *analysis.Report
	// PlatformsChanged is false when every platform image of Current was
	// already in Previous (an index that only gained attestations, or was
	// re-pushed with other annotations): such a move is no news to anyone.
	PlatformsChanged bool
	// Platforms says, platform by platform, where the tag's platform images
	// were and are (a platform the new image dropped included).
	Platforms []PlatformChange
	// Diff is the diff of the move for the platform a badge would show
	// (linux/amd64, else the only one); nil for a new tag or when the two
	// images have no platform in common.
	Diff *analysis.Diff
	// Outdated lists the known images this move (with the moves recorded
	// with it) makes outdated.
	Outdated []OutdatedImage
}

// PlatformChange is one platform of a move: its platform image before and
// after (either empty when the platform was added or dropped).
type PlatformChange struct {
	Platform         string
	Digest, Previous string
}

// Changed reports whether the platform's image is another one.
func (p PlatformChange) Changed() bool { return p.Digest != p.Previous }

// OutdatedImage is an image whose report turns outdated with a move: its
// parent is an image of Base that one of Base's tags pointed at, and that
// tag now points at BaseDigest, whose layers are no longer a prefix of the
// image's.
type OutdatedImage struct {
	// Child and Digest name the image (its top-level digest); Tags are its
	// tags now, sorted (empty when it is known by digest alone).
	Child  analysis.Repository
	Digest string
	Tags   []string
	// Platforms are the platforms that became outdated.
	Platforms []string
	// Base is the parent's repository; BaseDigest where its moved tags point
	// now, BaseTags the parent's tags that point there; BuiltOn is the
	// parent's top-level image the child was built on (where the moved tag
	// pointed before).
	Base       analysis.Repository
	BaseDigest string
	BaseTags   []string
	BuiltOn    string
}

// EventBuilder turns a tag move into the events to store with it (the notify
// package implements it). It does no I/O.
type EventBuilder interface {
	Events(c Change) ([]store.Event, error)
}

// Deletion is a tag recorded as deleted: the registry no longer has it.
type Deletion struct {
	Repo analysis.Repository
	Tag  string
	// Previous is where the tag last pointed.
	Previous string
	At       time.Time
}

// DeletionEventBuilder is an EventBuilder that also describes deletions
// (the notify package's does: tag.deleted); the events are stored in the
// transaction that records the deletion.
type DeletionEventBuilder interface {
	DeletionEvents(d Deletion) ([]store.Event, error)
}
