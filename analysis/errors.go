package analysis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// The kinds of failure the rest of the service distinguishes. Every error that
// leaves this package wraps exactly one of them, so the HTTP layer can choose a
// status code with errors.Is without knowing anything about registries.
var (
	ErrInvalidReference   = errors.New("invalid reference")
	ErrNotFound           = errors.New("not found")
	ErrForbidden          = errors.New("registry address refused by policy")
	ErrUnauthorized       = errors.New("registry requires credentials")
	ErrRateLimited        = errors.New("registry rate limit reached")
	ErrUpstream           = errors.New("registry error")
	ErrTimeout            = errors.New("registry timeout")
	errManifestTooLarge   = errors.New("manifest too large")
	errUnsupportedContent = errors.New("unsupported content")
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

func newError(kind error, cause error, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...), Err: cause}
}

// forbidder is implemented by netguard's refusal error; declared here so that
// analysis does not depend on the dialer that enforces the policy.
type forbidder interface{ Forbidden() bool }

// classify turns an error from go-containerregistry or the network into one of
// this package's kinds. what names the operation for the user ("manifest
// acme/app:1.0").
func classify(err error, registry, what string) error {
	if err == nil {
		return nil
	}
	var done *Error
	if errors.As(err, &done) {
		return err
	}
	var f forbidder
	if errors.As(err, &f) && f.Forbidden() {
		return newError(ErrForbidden, err, "the address of registry %s is refused by this service's network policy", registry)
	}
	// go-containerregistry refuses, before any dial, a redirect from a
	// registry to a private or link-local IP literal; it says so only in
	// text. The network policy refuses the rest at dial time (above).
	if strings.Contains(err.Error(), "SSRF protection") {
		return newError(ErrForbidden, err, "registry %s redirected to an address refused by this service's network policy", registry)
	}
	if errors.Is(err, errManifestTooLarge) {
		return newError(ErrUpstream, err, "registry %s sent a %s larger than the %d MiB limit", registry, what, maxManifestBytes>>20)
	}
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		return newError(ErrTimeout, err, "registry %s did not answer in time for %s", registry, what)
	}
	var rl *rateLimitError
	if errors.As(err, &rl) {
		e := newError(ErrRateLimited, err, "registry %s is rate limiting this service; try again later", registry)
		e.RetryAfter = rl.retryAfter
		return e
	}
	var te *transport.Error
	if errors.As(err, &te) {
		for _, d := range te.Errors {
			switch d.Code {
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
				return newError(ErrNotFound, err, "%s not found on %s", what, registry)
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return newError(ErrUnauthorized, err, "registry %s requires credentials for %s", registry, what)
			case transport.TooManyRequestsErrorCode:
				return newError(ErrRateLimited, err, "registry %s is rate limiting this service; try again later", registry)
			}
		}
		switch te.StatusCode {
		case http.StatusNotFound:
			return newError(ErrNotFound, err, "%s not found on %s", what, registry)
		case http.StatusUnauthorized, http.StatusForbidden:
			return newError(ErrUnauthorized, err, "registry %s requires credentials for %s", registry, what)
		case http.StatusTooManyRequests:
			return newError(ErrRateLimited, err, "registry %s is rate limiting this service; try again later", registry)
		}
		return newError(ErrUpstream, err, "registry %s answered %d for %s", registry, te.StatusCode, what)
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return newError(ErrUpstream, err, "registry %s cannot be reached", registry)
	}
	return newError(ErrUpstream, err, "reading %s from %s failed", what, registry)
}

// ParseRetryAfter reads a Retry-After header in either of its two forms
// (seconds, or an HTTP date), as registries and webhook receivers send it;
// 0 when absent, malformed or past.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
