// Package faultreg is a registry that misbehaves on purpose, for tests: it
// wraps go-containerregistry's in-process registry and, for requests that
// match a rule, answers slowly, resets the connection mid-body, rate-limits,
// fails, truncates or pads its answers, serves content that does not match
// its digest, or redirects to an address no client should follow.
package faultreg

import (
	"bytes"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

// Fault is one kind of misbehaviour.
type Fault int

// The faults a Rule can inject.
const (
	// Slow waits Delay before answering normally.
	Slow Fault = iota + 1
	// ResetMidBody sends the headers and half the body, then drops the connection.
	ResetMidBody
	// RateLimit answers 429 with Retry-After: RetryAfter seconds.
	RateLimit
	// ServerError answers 500.
	ServerError
	// Truncate declares the full Content-Length but sends half the body.
	Truncate
	// Oversize appends Pad bytes of whitespace to the body (valid JSON stays valid).
	Oversize
	// WrongDigest serves the body with one byte changed, same length.
	WrongDigest
	// RedirectTo answers 307 to Location.
	RedirectTo
)

// Rule applies a Fault to requests with Method (empty: any) whose path
// contains PathContains, for the first Times matches (0: always).
type Rule struct {
	Method       string
	PathContains string
	Fault        Fault
	Delay        time.Duration
	RetryAfter   int
	Pad          int
	Location     string
	Times        int
}

// Registry is the misbehaving registry.
type Registry struct {
	*httptest.Server
	// Host is "127.0.0.1:PORT".
	Host  string
	mu    sync.Mutex
	rules []*ruleState
	inner http.Handler
}

type ruleState struct {
	Rule
	used int
}

// New starts a registry that behaves until rules are added.
func New() *Registry {
	r := &Registry{inner: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	r.Host = strings.TrimPrefix(r.URL, "http://")
	return r
}

// Add installs rules; the first matching rule applies.
func (r *Registry) Add(rules ...Rule) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rule := range rules {
		r.rules = append(r.rules, &ruleState{Rule: rule})
	}
}

// Reset removes every rule.
func (r *Registry) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rules = nil
}

func (r *Registry) match(req *http.Request) *Rule {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.rules {
		if (s.Method == "" || s.Method == req.Method) && strings.Contains(req.URL.Path, s.PathContains) && (s.Times == 0 || s.used < s.Times) {
			s.used++
			rule := s.Rule
			return &rule
		}
	}
	return nil
}

func (r *Registry) serve(w http.ResponseWriter, req *http.Request) {
	rule := r.match(req)
	if rule == nil {
		r.inner.ServeHTTP(w, req)
		return
	}
	switch rule.Fault {
	case Slow:
		select {
		case <-time.After(rule.Delay):
		case <-req.Context().Done():
			return
		}
		r.inner.ServeHTTP(w, req)
	case RateLimit:
		w.Header().Set("Retry-After", strconv.Itoa(rule.RetryAfter))
		w.WriteHeader(http.StatusTooManyRequests)
		w.Write([]byte(`{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}`))
	case ServerError:
		w.WriteHeader(http.StatusInternalServerError)
	case RedirectTo:
		http.Redirect(w, req, rule.Location, http.StatusTemporaryRedirect)
	default:
		rec := httptest.NewRecorder()
		r.inner.ServeHTTP(rec, req)
		body := rec.Body.Bytes()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		switch rule.Fault {
		case ResetMidBody, Truncate:
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(rec.Code)
			w.Write(body[:len(body)/2])
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
			if rule.Fault == ResetMidBody {
				if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
					conn.Close()
				}
			}
			// Truncate: the handler returns short of Content-Length; net/http
			// closes the connection, which the client sees as an early EOF.
		case Oversize:
			body = append(body, bytes.Repeat([]byte(" "), rule.Pad)...)
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(rec.Code)
			w.Write(body)
		case WrongDigest:
			if len(body) > 0 {
				body = append([]byte(nil), body...)
				i := bytes.LastIndexByte(body, '}')
				if i < 0 {
					i = len(body) - 1
				}
				body[i] ^= 0x20 // same length, different bytes
			}
			w.WriteHeader(rec.Code)
			w.Write(body)
		}
	}
}
