// Package faultreg is the registry for tests: go-containerregistry's
// in-process registry behind an httptest server, which records every request
// it receives and can misbehave on purpose.
//
// Requests, Peek and WaitRequests tell what a client asked, as "METHOD /path"
// entries, so a test can assert how many requests the code under test made.
//
// For requests that match a rule it holds them until Release (to prove that
// an answer did not wait on the registry, or to keep work in flight), answers
// slowly or trickles its answers a byte at a time, resets the connection
// mid-body, rate-limits, fails, truncates or pads its answers, serves content
// that does not match its digest, redirects to an address no client should
// follow, pages tag lists by Link headers, links a tag list to itself, or
// serves tag list pages of its own making (any tags, any Link).
//
// Start ties a registry to a test's lifetime; Close releases held requests
// before it shuts the server down.
package faultreg

import (
	"bytes"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
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
	// Hold makes the request wait until Release (or Reset, or Close), or
	// until its context ends, then answers normally.
	Hold
	// ErrorPage answers Status (200 when zero) with an HTML page, as a
	// proxy or a registry's web front does where an API is missing.
	ErrorPage
	// RequireBasicAuth answers 401 with a Basic challenge, as a registry
	// with `auth: htpasswd` does, unless the request carries Username and
	// Password; with them it answers normally. The registry's ping (GET
	// /v2/) then asks for credentials too, whatever PathContains says, so
	// that clients holding some send them; repositories the rule does not
	// match stay open to anonymous clients.
	RequireBasicAuth
	// Trickle sends the status and headers at once, then the body one byte
	// per Delay, as a registry at the end of a saturated link does, until
	// the body ends or the client gives up; Release, Reset and Close send
	// the rest at once. An answer without a body (a HEAD) goes at once.
	Trickle
	// PageTags answers a tag list (GET /v2/NAME/tags/list) Page tags at a
	// time (fewer when the request's n asks for fewer), in order, after the
	// request's last, with a Link header to the next page while tags
	// remain, as distribution's registry pages a list.
	PageTags
	// LinkSelf answers a tag list normally but with a Link header naming
	// the request's own URL as the next page: a client that follows Link
	// without noticing a repeat asks for the same page again and again.
	LinkSelf
	// TagPage answers a tag list request with a page of its own: Tags, and
	// Link (when not empty) as the Link header naming the next page, so a
	// test can serve any pagination, good or hostile.
	TagPage
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
	Status       int
	Times        int
	// Page is PageTags' page size (default 100).
	Page int
	// Username and Password are what RequireBasicAuth accepts.
	Username, Password string
	// Tags and Link are the page TagPage serves.
	Tags []string
	Link string
}

// Registry is the test registry. Its Close also releases held requests.
type Registry struct {
	*httptest.Server
	// Host is "127.0.0.1:PORT".
	Host    string
	mu      sync.Mutex
	rules   []*ruleState
	inner   http.Handler
	reqs    []request     // received since the last Requests
	arrived chan struct{} // closed when a request is recorded; nil: nobody waits
	release chan struct{} // closed by Release; nil: nothing held
}

type request struct {
	method, path string
	anonymous    bool // without an Authorization header
}

type ruleState struct {
	Rule
	used int
}

// Options configures NewWith.
type Options struct {
	// Referrers turns on the OCI referrers API, which the registry lacks
	// otherwise (as distribution 2.8 does).
	Referrers bool
}

// New starts a registry that behaves until rules are added.
func New() *Registry { return NewWith(Options{}) }

// NewWith is New with options.
func NewWith(o Options) *Registry {
	r := &Registry{inner: registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithReferrersSupport(o.Referrers))}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	r.Host = strings.TrimPrefix(r.URL, "http://")
	return r
}

// Start is New for a test: the registry is closed when tb ends.
func Start(tb testing.TB) *Registry { return StartWith(tb, Options{}) }

// StartWith is NewWith for a test.
func StartWith(tb testing.TB, o Options) *Registry {
	r := NewWith(o)
	tb.Cleanup(r.Close)
	return r
}

// Close lets held requests go on, then shuts the server down as
// httptest.Server.Close does.
func (r *Registry) Close() {
	r.Release()
	r.Server.Close()
}

// Add installs rules; the first matching rule applies.
func (r *Registry) Add(rules ...Rule) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rule := range rules {
		r.rules = append(r.rules, &ruleState{Rule: rule})
	}
}

// Reset removes every rule and lets held requests go on.
func (r *Registry) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rules = nil
	r.releaseLocked()
}

// Release lets every held request go on (and sends the rest of every
// trickling answer at once) and removes the Hold rules, so that no request
// is held until Hold rules are added again. Other rules stay.
func (r *Registry) Release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	rules := r.rules[:0]
	for _, s := range r.rules {
		if s.Fault != Hold {
			rules = append(rules, s)
		}
	}
	clear(r.rules[len(rules):])
	r.rules = rules
	r.releaseLocked()
}

func (r *Registry) releaseLocked() {
	if r.release != nil {
		close(r.release)
		r.release = nil
	}
}

// Requests returns and forgets the requests received so far, in the order
// they arrived, as "METHOD /path". Given paths, it returns only the requests
// whose path contains one of them (and forgets the others as well).
func (r *Registry) Requests(paths ...string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	got := r.listLocked(paths)
	r.reqs = nil
	return got
}

// Peek is Requests without forgetting.
func (r *Registry) Peek(paths ...string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.listLocked(paths)
}

// WaitRequests waits until at least n requests that Peek(paths...) would
// return have arrived, or until timeout, and returns them without forgetting.
func (r *Registry) WaitRequests(n int, timeout time.Duration, paths ...string) []string {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		r.mu.Lock()
		got := r.listLocked(paths)
		if r.arrived == nil {
			r.arrived = make(chan struct{})
		}
		arrived := r.arrived
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-arrived:
		case <-timer.C:
			return got
		}
	}
}

// Anonymous is Peek of the requests that carried no Authorization header.
func (r *Registry) Anonymous(paths ...string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var got []string
	for _, q := range r.reqs {
		if q.anonymous && (len(paths) == 0 || slices.ContainsFunc(paths, func(p string) bool { return strings.Contains(q.path, p) })) {
			got = append(got, q.method+" "+q.path)
		}
	}
	return got
}

func (r *Registry) listLocked(paths []string) []string {
	var got []string
	for _, q := range r.reqs {
		if len(paths) == 0 || slices.ContainsFunc(paths, func(p string) bool { return strings.Contains(q.path, p) }) {
			got = append(got, q.method+" "+q.path)
		}
	}
	return got
}

// arrive records req and returns the rule that applies to it, if any, and
// for a Hold rule the channel that Release closes.
func (r *Registry) arrive(req *http.Request) (*Rule, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, request{req.Method, req.URL.Path, req.Header.Get("Authorization") == ""})
	if r.arrived != nil {
		close(r.arrived)
		r.arrived = nil
	}
	for _, s := range r.rules {
		if s.Fault == RequireBasicAuth && req.URL.Path == "/v2/" {
			rule := s.Rule
			return &rule, nil
		}
		if (s.Method == "" || s.Method == req.Method) && strings.Contains(req.URL.Path, s.PathContains) && (s.Times == 0 || s.used < s.Times) {
			s.used++
			rule := s.Rule
			if rule.Fault != Hold && rule.Fault != Trickle {
				return &rule, nil
			}
			if r.release == nil {
				r.release = make(chan struct{})
			}
			return &rule, r.release
		}
	}
	return nil, nil
}

func (r *Registry) serve(w http.ResponseWriter, req *http.Request) {
	rule, release := r.arrive(req)
	if rule == nil {
		r.inner.ServeHTTP(w, req)
		return
	}
	switch rule.Fault {
	case Hold:
		select {
		case <-release:
		case <-req.Context().Done():
			return
		}
		r.inner.ServeHTTP(w, req)
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
	case ErrorPage:
		status := rule.Status
		if status == 0 {
			status = http.StatusOK
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		w.Write([]byte("<!doctype html><title>Not here</title><p>This page does not exist.</p>"))
	case TagPage:
		repo := strings.TrimSuffix(strings.TrimPrefix(req.URL.Path, "/v2/"), "/tags/list")
		body, _ := json.Marshal(map[string]any{"name": repo, "tags": rule.Tags})
		if rule.Link != "" {
			w.Header().Set("Link", rule.Link)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	case RequireBasicAuth:
		if u, p, ok := req.BasicAuth(); ok && u == rule.Username && p == rule.Password {
			r.inner.ServeHTTP(w, req)
			return
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="faultreg"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
	case PageTags:
		r.pageTags(w, req, rule.Page)
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
		case LinkSelf:
			w.Header().Set("Link", "<"+req.URL.RequestURI()+`>; rel="next"`)
			w.WriteHeader(rec.Code)
			w.Write(body)
		case Trickle:
			w.WriteHeader(rec.Code)
			rc := http.NewResponseController(w)
			for i := range body {
				if _, err := w.Write(body[i : i+1]); err != nil {
					return
				}
				_ = rc.Flush()
				if i == len(body)-1 {
					break
				}
				select {
				case <-time.After(rule.Delay):
				case <-release:
					w.Write(body[i+1:])
					return
				case <-req.Context().Done():
					return
				}
			}
		}
	}
}

// defaultPage is PageTags' page size when the rule gives none.
const defaultPage = 100

// pageTags answers a tag list request one page at a time (see PageTags),
// from the whole list the inner registry gives.
func (r *Registry) pageTags(w http.ResponseWriter, req *http.Request, page int) {
	if page <= 0 {
		page = defaultPage
	}
	whole := req.Clone(req.Context())
	whole.URL.RawQuery = ""
	rec := httptest.NewRecorder()
	r.inner.ServeHTTP(rec, whole)
	var list struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &list) != nil {
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
		return
	}
	q := req.URL.Query()
	if n, err := strconv.Atoi(q.Get("n")); err == nil && n > 0 && n < page {
		page = n
	}
	slices.Sort(list.Tags)
	if last := q.Get("last"); last != "" {
		i, found := slices.BinarySearch(list.Tags, last)
		if found {
			i++
		}
		list.Tags = list.Tags[i:]
	}
	if len(list.Tags) > page {
		list.Tags = list.Tags[:page]
		next := url.Values{"n": {strconv.Itoa(page)}, "last": {list.Tags[page-1]}}
		w.Header().Set("Link", "<"+req.URL.Path+"?"+next.Encode()+`>; rel="next"`)
	}
	body, _ := json.Marshal(list)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}
