package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/contents"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/store"
)

// Client errors raised by the server itself.
var (
	errNoRoute        = fmt.Errorf("no such page: %w", analysis.ErrNotFound)
	errInvalidRequest = errors.New("invalid request")
	errUnauthorized   = errors.New("unauthorized")
	errTooLarge       = errors.New("request too large")
	errExists         = errors.New("already exists")
	errMethod         = errors.New("method not allowed")
	errCrossOrigin    = errors.New("cross-origin request refused")
)

// tooLargeError makes an error that answers 413 request_too_large.
func tooLargeError(limit int64) error {
	return &analysis.Error{Kind: errTooLarge, Message: fmt.Sprintf("the body is larger than the %s this route accepts", byteSize(limit))}
}

// byteSize writes a power-of-two limit the way the contract does (64 KiB, 1 MiB).
func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// invalidRequest makes an error that answers 400 invalid_request with msg.
func invalidRequest(msg string) error {
	return &analysis.Error{Kind: errInvalidRequest, Message: msg}
}

// apiError is the JSON error body of docs/API.md.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// statusOf maps an error kind to its code and status; it is the only place
// that does.
func statusOf(err error) (code string, status int) {
	switch {
	case errors.Is(err, analysis.ErrInvalidReference):
		return "invalid_reference", http.StatusBadRequest
	case errors.Is(err, errInvalidRequest), errors.Is(err, analysis.ErrInvalidRequest):
		return "invalid_request", http.StatusBadRequest
	case errors.Is(err, errUnauthorized):
		return "unauthorized", http.StatusUnauthorized
	case errors.Is(err, auth.ErrForbidden):
		return "forbidden", http.StatusForbidden
	case errors.Is(err, errExists):
		return "subscription_exists", http.StatusConflict
	case errors.Is(err, errTooLarge):
		return "request_too_large", http.StatusRequestEntityTooLarge
	case errors.Is(err, errMethod):
		return "method_not_allowed", http.StatusMethodNotAllowed
	case errors.Is(err, errCrossOrigin):
		return "cross_origin", http.StatusForbidden
	case errors.Is(err, contents.ErrNotAnalyzed):
		return "not_analyzed", http.StatusNotFound
	case errors.Is(err, contents.ErrBusy), errors.Is(err, images.ErrBusy):
		return "unavailable", http.StatusServiceUnavailable
	case errors.Is(err, images.ErrForbidden):
		return "forbidden", http.StatusForbidden
	case errors.Is(err, analysis.ErrNotFound):
		return "not_found", http.StatusNotFound
	case errors.Is(err, analysis.ErrForbidden):
		return "registry_forbidden", http.StatusForbidden
	case errors.Is(err, analysis.ErrUnauthorized):
		return "registry_unauthorized", http.StatusForbidden
	case errors.Is(err, analysis.ErrRateLimited):
		return "rate_limited", http.StatusTooManyRequests
	case errors.Is(err, analysis.ErrTimeout):
		return "registry_timeout", http.StatusGatewayTimeout
	case errors.Is(err, analysis.ErrUpstream):
		return "registry_error", http.StatusBadGateway
	case errors.Is(err, store.ErrUnavailable):
		return "unavailable", http.StatusServiceUnavailable
	case errors.Is(err, context.Canceled):
		return "canceled", 499
	}
	return "internal", http.StatusInternalServerError
}

// publicMessage is the message of err that r's viewer is shown: its public
// message, except that a registry's refusal for want of credentials says
// whether this service holds some only to a signed-in person or a token
// holder; anyone else reads one text for both cases (the detail is in the
// log line of the refused request).
func (s *Server) publicMessage(r *http.Request, err error) (string, bool) {
	if c, ok := analysis.CredentialsRefusedIn(err); ok {
		if v := s.viewer(r); !v.SignedIn() && v.Scope == "" {
			return c.Anonymous(), true
		}
	}
	return analysis.PublicMessage(err)
}

// writeError answers with the JSON error shape. The message shown is the
// error's public message; anything else is logged, never shown.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code, status := statusOf(err)
	msg, ok := s.publicMessage(r, err)
	if !ok {
		msg = http.StatusText(status)
		switch code {
		case "not_found":
			msg = "not found"
		case "unavailable":
			msg = "the service's database does not answer; nothing was changed, try again shortly"
		}
	}
	if status >= 500 {
		s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", loggedPath(r), "client", clientAddr(r), "code", code, "err", err)
	} else {
		s.log.InfoContext(r.Context(), "request refused", "method", r.Method, "path", loggedPath(r), "client", clientAddr(r), "code", code, "err", err)
	}
	var ae *analysis.Error
	if errors.As(err, &ae) && ae.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(ae.RetryAfter.Seconds()+0.999)))
	} else if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "60")
	}
	var body apiError
	body.Error.Code, body.Error.Message = code, msg
	if status == 499 {
		return // the client is gone
	}
	if !isMachineRequest(r) {
		s.writeErrorPage(w, r, err, status, msg)
		return
	}
	if err := writeJSON(w, status, body); err != nil {
		s.log.ErrorContext(r.Context(), "write error answer", "err", err)
	}
}
