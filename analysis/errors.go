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
