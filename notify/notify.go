// Package notify decides who hears what, and tells them: the watcher that
// polls subscribed and watched tags and takes refresh requests from inbound
// hooks; the fan-out that reads the change log, works out each change's
// events and judges every subscription (tag filters, the release rule,
// coalescing); subscriptions; and the delivery worker that sends the
// outbox's rows signed as the Standard Webhooks specification says, with
// leases, retries and a record of every attempt.
//
// The flow (docs/DESIGN.md, "Change"): watcher tick or hook → images.Service
// re-resolves the tag and records a move with its row in the change log →
// the fan-out, woken by the commit, writes the events and deliveries with
// its place in the log → the worker claims due rows, signs, POSTs and
// records the attempt.
package notify

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
)

// Event types of docs/API.md.
const (
	TypeImageUpdated    = "image.updated"
	TypeBaseUpdated     = "base.updated"
	TypeVersionReleased = "version.released"
	TypeTagDeleted      = "tag.deleted"
	TypePing            = "webhook.ping"
)

// eventTypes returns the types a subscription gets when it names none. It
// is a function so that no caller can change the list for everyone.
func eventTypes() []string { return []string{TypeImageUpdated, TypeBaseUpdated} }

// EventTypes returns every type a subscription may ask for: the defaults
// and the opt-in ones.
func EventTypes() []string {
	return []string{TypeImageUpdated, TypeBaseUpdated, TypeVersionReleased, TypeTagDeleted}
}

// newID returns prefix followed by 128 random bits in lower-case base32:
// unguessable, so an id alone never grants access, and safe in URLs and
// headers.
func newID(prefix string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}
