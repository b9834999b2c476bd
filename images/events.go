package images

import (
	"time"

	"imagebadger/analysis"
	"imagebadger/store"
)

// Change describes one observed move of a tag, with what the service knows
// about its consequences. It is handed to the EventBuilder inside the store
// transaction that records the move.
type Change struct {
	Repo analysis.Repository
	Tag  string
	// Previous is the digest the tag pointed at before ("" for a tag seen the
	// first time); Current where it points now.
	Previous, Current string
	At                time.Time
	// Report is the report of Current (platforms, layers, metadata).
	Report *analysis.Report
	// PlatformsChanged is false when every platform image of Current was
	// already in Previous (an index that only gained attestations, or was
	// re-pushed with other annotations): such a move is no news to anyone.
	PlatformsChanged bool
	// Outdated lists the known images built on the previous image of this tag
	// that this move makes outdated.
	Outdated []OutdatedChild
}

// OutdatedChild is an image whose parent (for one platform) was the image a
// tag pointed at before a move, and is no longer a prefix of what the tag
// points at now.
type OutdatedChild struct {
	// Child is the child image, at one of its tags.
	Child analysis.Reference
	// ChildDigest is the child's top-level digest.
	ChildDigest string
	// Platform is the platform whose parent moved ("linux/amd64").
	Platform string
	// BuiltOn is the top-level digest of the parent the child was built on.
	BuiltOn string
}

// EventBuilder turns a tag move into the events to store with it (the notify
// package implements it). It runs inside a transaction: no I/O.
type EventBuilder interface {
	Events(c Change) ([]store.Event, error)
}
