package analysis

import (
	"errors"
	"fmt"
	"time"
)

// The kinds of failure the rest of the service distinguishes. Every error that
// the service reports wraps exactly one of them, so the HTTP layer can choose a
// status code with errors.Is without knowing anything about registries.
var (
	ErrInvalidReference = errors.New("invalid reference")
	ErrNotFound         = errors.New("not found")
	ErrForbidden        = errors.New("registry address refused by policy")
	ErrUnauthorized     = errors.New("registry requires credentials")
	ErrRateLimited      = errors.New("registry rate limit reached")
	ErrUpstream         = errors.New("registry error")
	ErrTimeout          = errors.New("registry timeout")
	// ErrInvalidRequest is a request that cannot be answered as asked (a
	// platform one of two compared images lacks, a search term too short).
	ErrInvalidRequest = errors.New("invalid request")
	// ErrUnreachable marks a registry that could not be connected to at
	// all; it comes with ErrUpstream.
	ErrUnreachable = errors.New("registry unreachable")
	// ErrUnsupportedContent marks a manifest this service cannot read (a
	// Docker schema 1 manifest, a Helm chart); it comes with ErrUpstream.
	ErrUnsupportedContent = errors.New("unsupported content")
)

// Error carries a kind, a message written for the person who asked, and the
// underlying cause, which is for logs only: it may name URLs and internals.
type Error struct {
	Kind    error
	Message string
	// RetryAfter is set for ErrRateLimited when the registry said how long to wait.
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Message
	}
	return e.Message + ": " + e.Err.Error()
}

// Unwrap exposes both the kind and the cause to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// PublicMessage returns the message of the first *Error in err's chain, which is
// safe to show to a user; ok is false when err carries no such message.
func PublicMessage(err error) (msg string, ok bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Message, true
	}
	return "", false
}

// Errorf returns an *Error of kind whose public message is the formatted
// text; cause, which may be nil, is kept for logs.
func Errorf(kind error, cause error, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...), Err: cause}
}

// TagDeleted describes a tag that its registry no longer has, as this
// service recorded it: a read of it answers not found, saying when it was
// removed and where it last pointed, without asking the registry each time.
type TagDeleted struct {
	// Ref is the deleted tag.
	Ref Reference
	// Digest is where the tag pointed when it was last seen.
	Digest string
	// At is when the deletion was noticed.
	At time.Time
	// Checked is when the registry was last asked about the tag.
	Checked time.Time
}

// Error says what happened, in words a person reads.
func (e *TagDeleted) Error() string {
	return fmt.Sprintf("%s was removed from its registry (noticed %s); it last pointed at %s",
		e.Ref, e.At.UTC().Format("2 Jan 2006 15:04 UTC"), e.Digest)
}

// NewTagDeleted returns the error a read of a deleted tag answers: of kind
// ErrNotFound, with TagDeleted's text as its public message and d itself
// reachable with errors.As, so pages and badges can say "removed".
func NewTagDeleted(d TagDeleted) error {
	return &Error{Kind: ErrNotFound, Message: d.Error(), Err: &d}
}

// DeletedTag returns the TagDeleted in err's chain, if any.
func DeletedTag(err error) (*TagDeleted, bool) {
	var d *TagDeleted
	if errors.As(err, &d) {
		return d, true
	}
	return nil, false
}

// MissingPart says which part of a reference a registry does not have.
type MissingPart int

// The parts a registry can be missing.
const (
	// MissingUnclear: the registry said "not found" without saying what
	// (an answer to HEAD has no body).
	MissingUnclear MissingPart = iota
	// MissingRepository: the registry has no such repository.
	MissingRepository
	// MissingImage: the repository exists, but not the tag or digest.
	MissingImage
)

// Missing is a registry's "not found" for a reference, with what it lacks:
// a person's next step differs (check the repository's name, or pick one of
// its tags), so the command line and the pages each suggest theirs.
type Missing struct {
	Ref  Reference
	Part MissingPart
	// Err is the registry's answer, for logs.
	Err error
}

// Error says what is missing, in words a person reads.
func (m *Missing) Error() string {
	repo := m.Ref.Repository.String()
	switch {
	case m.Part == MissingRepository:
		return "repository " + repo + " does not exist"
	case m.Part == MissingImage && m.Ref.Digest != "":
		return "repository " + repo + " has no image " + ShortDigest(m.Ref.Digest)
	case m.Part == MissingImage:
		return "repository " + repo + " has no tag " + m.Ref.Tag
	}
	return "image " + m.Ref.String() + " not found on " + m.Ref.Registry
}

// Unwrap exposes the registry's answer.
func (m *Missing) Unwrap() error { return m.Err }

// NewMissing returns the error a read of something a registry lacks
// answers: of kind ErrNotFound, with Missing's text as its public message
// and m itself reachable with MissingIn.
func NewMissing(m Missing) error {
	return &Error{Kind: ErrNotFound, Message: m.Error(), Err: &m}
}

// MissingIn returns the Missing in err's chain, if any.
func MissingIn(err error) (*Missing, bool) {
	var m *Missing
	if errors.As(err, &m) {
		return m, true
	}
	return nil, false
}

// CredentialsRefused is a registry's refusal of a read for want of
// credentials, kept beside the message that tells the operator what to do
// (give credentials, or check the ones held). Whether the service holds
// credentials for a registry says which registries it can read; that is
// the operator's and signed-in people's to know, so anyone else is shown
// Anonymous, the same whichever the case.
type CredentialsRefused struct {
	// Registry is the registry that refused, What what was asked of it
	// ("image registry.example/app:1").
	Registry, What string
	// Held is whether the service had credentials for the registry, which
	// the registry refused.
	Held bool
	// Err is the registry's answer, for logs.
	Err error
}

// Anonymous is the refusal in words that do not say whether the service
// had credentials: the message for callers who may not know.
func (c *CredentialsRefused) Anonymous() string {
	return "registry " + c.Registry + " refused access to " + c.What +
		": it needs credentials this service could not use for it. Whoever runs this service finds the detail in its log"
}

// Error is the registry's answer, as logs show it.
func (c *CredentialsRefused) Error() string {
	if c.Err == nil {
		return "registry " + c.Registry + " refused " + c.What
	}
	return c.Err.Error()
}

// Unwrap exposes the registry's answer.
func (c *CredentialsRefused) Unwrap() error { return c.Err }

// CredentialsRefusedIn returns the CredentialsRefused in err's chain, if any.
func CredentialsRefusedIn(err error) (*CredentialsRefused, bool) {
	var c *CredentialsRefused
	if errors.As(err, &c) {
		return c, true
	}
	return nil, false
}
