// Package apispec checks real HTTP answers against the OpenAPI document of
// the JSON API (docs/openapi.yaml, itself the machine-readable form of
// docs/API.md), so that a handler and the document cannot drift apart
// unnoticed.
//
// Check validates one exchange; Handler wraps a server handler (for
// httptest servers) and Transport wraps an http.RoundTripper (for end-to-end
// tests against a built binary), both checking every request of the JSON API
// and passing every other request through untouched.
//
// References and repositories in paths hold slashes, a colon and an @, which
// OpenAPI path templating cannot match, so this package finds routes itself:
// a {reference} or {repository} parameter matches .+, any other parameter
// [^/]+, and templates with more literal characters are tried first, so that
// /api/v1/images/{reference}/refresh wins over /api/v1/images/{reference}.
//
// Rules beyond kin-openapi's own checks:
//   - a request that matches no path of the document fails, unless it was
//     answered 404 with the NotFound response of the document (JSON error
//     not_found), as docs/API.md has every unknown route under /api, /v1 and
//     /hooks answer;
//   - a method a path does not list fails, unless it was answered 405 with
//     the MethodNotAllowed response of the document (JSON error
//     method_not_allowed and an Allow header), which every path answers;
//   - a request that does not satisfy the document fails only when it was not
//     refused with a 4xx answer: tests send malformed requests on purpose, and
//     the 4xx answer is still checked against the document;
//   - request bodies are validated only when they are JSON; authentication is
//     not checked (any credentials are accepted);
//   - a status the operation does not list fails, and so does a body on an
//     answer the document gives no content.
package apispec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/imagebadger/imagebadger/docs"
)

// maxRequestBody bounds how much of a request body Handler and Transport
// keep for validation; a longer body still reaches the server whole, only
// its validation is skipped (the hooks' limit is 1 MiB).
const maxRequestBody = 8 << 20

// The distribution registry's notification envelopes are JSON; kin-openapi
// only knows application/json and a few others by name.
func init() {
	for _, ct := range []string{
		"application/vnd.docker.distribution.events.v1+json",
		"application/vnd.docker.distribution.events.v2+json",
	} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.JSONBodyDecoder)
	}
}

// spec is the loaded document and its routes, in matching order.
type spec struct {
	doc    *openapi3.T
	routes []route
	// notAllowed and notFound are operations whose only response is the
	// document's MethodNotAllowed (405) or NotFound (404), for answers to a
	// method a path does not list or to a path the document does not have.
	notAllowed, notFound *openapi3.Operation
}

// route is one path template of the document.
type route struct {
	template string
	item     *openapi3.PathItem
	re       *regexp.Regexp
	names    []string
	literals int
}

var (
	loadOnce   sync.Once
	loadedSpec *spec
	loadErr    error
)

// load parses and validates docs.OpenAPI once.
func load() (*spec, error) {
	loadOnce.Do(func() { loadedSpec, loadErr = parse(docs.OpenAPI) })
	return loadedSpec, loadErr
}

func parse(data []byte) (*spec, error) {
	ctx := context.Background()
	doc, err := openapi3.NewLoader().LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("docs/openapi.yaml does not load: %w", err)
	}
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("docs/openapi.yaml is not a valid OpenAPI document: %w", err)
	}
	s := &spec{doc: doc}
	for _, template := range doc.Paths.InMatchingOrder() {
		r, err := compileTemplate(template)
		if err != nil {
			return nil, err
		}
		r.item = doc.Paths.Value(template)
		s.routes = append(s.routes, r)
	}
	sort.SliceStable(s.routes, func(i, j int) bool {
		a, b := s.routes[i], s.routes[j]
		if a.literals != b.literals {
			return a.literals > b.literals
		}
		return a.template < b.template
	})
	for _, c := range []struct {
		name   string
		status int
		op     **openapi3.Operation
	}{
		{"MethodNotAllowed", http.StatusMethodNotAllowed, &s.notAllowed},
		{"NotFound", http.StatusNotFound, &s.notFound},
	} {
		var ref *openapi3.ResponseRef
		if doc.Components != nil {
			ref = doc.Components.Responses[c.name]
		}
		if ref == nil || ref.Value == nil {
			return nil, fmt.Errorf("docs/openapi.yaml has no %s response component", c.name)
		}
		*c.op = &openapi3.Operation{Responses: openapi3.NewResponses(openapi3.WithStatus(c.status, ref))}
	}
	return s, nil
}

var templateParam = regexp.MustCompile(`\{([^{}/]+)\}`)

// compileTemplate turns a path template into the regexp that matches it.
func compileTemplate(template string) (route, error) {
	r := route{template: template}
	// MicroBadger's routes (/v1 and the /images refresh hook) accept a
	// trailing slash, as docs/API.md says.
	trailingSlash := strings.HasPrefix(template, "/v1/") || strings.HasPrefix(template, "/images/")
	var b strings.Builder
	b.WriteString("^")
	last := 0
	matches := templateParam.FindAllStringSubmatchIndex(template, -1)
	for i, m := range matches {
		lit := template[last:m[0]]
		b.WriteString(regexp.QuoteMeta(lit))
		r.literals += len(lit)
		name := template[m[2]:m[3]]
		r.names = append(r.names, name)
		switch {
		case name != "reference" && name != "repository":
			b.WriteString("([^/]+)")
		case trailingSlash && i == len(matches)-1 && m[1] == len(template):
			// Last in the path: leave an optional trailing slash out of it.
			b.WriteString("(.+?)")
		default:
			b.WriteString("(.+)")
		}
		last = m[1]
	}
	lit := template[last:]
	b.WriteString(regexp.QuoteMeta(lit))
	r.literals += len(lit)
	if trailingSlash {
		b.WriteString("/?")
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return route{}, fmt.Errorf("path %s: %w", template, err)
	}
	r.re = re
	return r, nil
}

// methodNotAllowedError is routers.ErrMethodNotAllowed with the path that
// matched and the methods it lists.
type methodNotAllowedError struct {
	template string
	item     *openapi3.PathItem
	allowed  []string
}

func (e *methodNotAllowedError) Error() string {
	return fmt.Sprintf("%s documents only %s", e.template, strings.Join(e.allowed, ", "))
}

func (e *methodNotAllowedError) Unwrap() error { return routers.ErrMethodNotAllowed }

// FindRoute implements routers.Router with the matching rules of the package
// comment: the first template, in matching order, whose path matches and
// which has an operation for the method; like the server's router, a
// template that matches the path but not the method lets later ones try.
func (s *spec) FindRoute(req *http.Request) (*routers.Route, map[string]string, error) {
	path := req.URL.Path
	var notAllowed *methodNotAllowedError
	for _, r := range s.routes {
		m := r.re.FindStringSubmatch(path)
		if m == nil {
			continue
		}
		op := r.item.GetOperation(req.Method)
		if op == nil {
			if notAllowed == nil {
				notAllowed = &methodNotAllowedError{template: r.template, item: r.item}
			}
			for method := range r.item.Operations() {
				if !slices.Contains(notAllowed.allowed, method) {
					notAllowed.allowed = append(notAllowed.allowed, method)
				}
			}
			continue
		}
		params := make(map[string]string, len(r.names))
		for i, name := range r.names {
			params[name] = m[i+1]
		}
		return &routers.Route{
			Spec:      s.doc,
			Path:      r.template,
			PathItem:  r.item,
			Method:    req.Method,
			Operation: op,
		}, params, nil
	}
	if notAllowed != nil {
		slices.Sort(notAllowed.allowed)
		return nil, nil, notAllowed
	}
	return nil, nil, routers.ErrPathNotFound
}

var _ routers.Router = (*spec)(nil)

// Check fails t when the exchange does not match the document: the request
// matches no documented operation or does not satisfy it, or the answer
// (status, headers, body) is not one the operation documents. JSON bodies are
// validated against their schemas; text, YAML and SVG bodies only by content
// type. The request body is read from req.GetBody when it is set, else from
// req.Body, which is then put back.
func Check(t testing.TB, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	reqBody, ok := requestBody(req)
	if err := check(req, reqBody, ok, status, header, body); err != nil {
		t.Errorf("%v", err)
	}
}

// requestBody returns the body of req without consuming it; ok is false when
// it cannot be read.
func requestBody(req *http.Request) (body []byte, ok bool) {
	if req.GetBody != nil {
		rc, err := req.GetBody()
		if err != nil {
			return nil, false
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		return b, err == nil
	}
	if req.Body == nil || req.Body == http.NoBody {
		return nil, true
	}
	b, err := io.ReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(b))
	return b, err == nil
}

// check validates one exchange. reqBodyOK false skips the validation of the
// request body (it was too long to keep, or could not be read).
func check(req *http.Request, reqBody []byte, reqBodyOK bool, status int, header http.Header, body []byte) error {
	s, err := load()
	if err != nil {
		return fmt.Errorf("apispec: %v", err)
	}
	ctx := context.Background()
	where := req.Method + " " + req.URL.Path
	if header == nil {
		header = http.Header{}
	}

	route, params, err := s.FindRoute(req)
	var notAllowed *methodNotAllowedError
	switch {
	case errors.As(err, &notAllowed):
		if status != http.StatusMethodNotAllowed {
			return fmt.Errorf("apispec: %s answered %d: the method is not documented: %v", where, status, err)
		}
		route = &routers.Route{Spec: s.doc, Path: notAllowed.template, PathItem: notAllowed.item, Method: req.Method, Operation: s.notAllowed}
	case err != nil && status == http.StatusNotFound:
		// Every path under /api, /v1 and /hooks that does not exist
		// answers the JSON not_found error.
		route = &routers.Route{Spec: s.doc, Path: "(no such path)", PathItem: &openapi3.PathItem{}, Method: req.Method, Operation: s.notFound}
	case err != nil:
		return fmt.Errorf("apispec: %s answered %d: no documented operation: %v", where, status, err)
	}
	where = fmt.Sprintf("%s (route %s %s)", where, req.Method, route.Path)

	r := req.Clone(ctx)
	r.Body, r.GetBody, r.ContentLength = http.NoBody, nil, 0
	if len(reqBody) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(reqBody))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(reqBody)), nil }
		r.ContentLength = int64(len(reqBody))
	}
	opts := &openapi3filter.Options{
		ExcludeRequestBody:    !reqBodyOK || !isJSON(req.Header.Get("Content-Type")),
		IncludeResponseStatus: true,
		MultiError:            true,
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
		SkipSettingDefaults:   true,
	}
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: opts}
	if route.Operation != s.notAllowed && route.Operation != s.notFound {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil && (status < 400 || status > 499) {
			return fmt.Errorf("apispec: %s answered %d, but the request does not match the document: %v", where, status, err)
		}
	}

	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 status,
		Header:                 header,
		Options:                opts,
	}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		return fmt.Errorf("apispec: %s answered %d: %v", where, status, err)
	}
	if req.Method != http.MethodHead && len(body) > 0 {
		if ref := route.Operation.Responses.Status(status); ref != nil && ref.Value != nil && len(ref.Value.Content) == 0 {
			return fmt.Errorf("apispec: %s answered %d with a %d-byte body, but the document gives that answer no content", where, status, len(body))
		}
	}
	return nil
}

// isJSON reports whether a Content-Type is JSON (application/json or a
// +json type).
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// checked reports whether a request belongs to the JSON API: the routes
// under /api/, /v1/ and /hooks/, /healthz and /readyz, and the
// MicroBadger-style refresh hook POST /images/{repository}/{token}, which is
// not the image page's HTML forms POST /images/{reference}/refresh and
// /images/{reference}/contents.
func checked(method, path string) bool {
	switch {
	case strings.HasPrefix(path, "/api/"), strings.HasPrefix(path, "/v1/"), strings.HasPrefix(path, "/hooks/"):
		return true
	case path == "/healthz", path == "/readyz":
		return true
	case method == http.MethodPost && strings.HasPrefix(path, "/images/"):
		rest := strings.TrimSuffix(strings.TrimPrefix(path, "/images/"), "/")
		return strings.Contains(rest, "/") && !strings.HasSuffix(rest, "/refresh") && !strings.HasSuffix(rest, "/contents")
	}
	return false
}

// keepBody reads up to maxRequestBody bytes of body and returns them with a
// reader that gives the whole body as it was; complete is false when the
// body was longer (or failed), and then only the reader is of use.
func keepBody(body io.ReadCloser) (kept []byte, complete bool, replay io.ReadCloser) {
	if body == nil || body == http.NoBody {
		return nil, true, body
	}
	kept, err := io.ReadAll(io.LimitReader(body, maxRequestBody+1))
	complete = err == nil && len(kept) <= maxRequestBody
	var rest io.Reader = body
	if err != nil {
		rest = errReader{err}
	}
	replay = readCloser{io.MultiReader(bytes.NewReader(kept), rest), body}
	return kept, complete, replay
}

type readCloser struct {
	io.Reader
	io.Closer
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// Handler wraps a server handler so that every request of the JSON API (see
// checked) is answered as next answers it and then checked with Check.
// Requests to other paths pass through unchecked. What the client receives
// is not changed.
func Handler(t testing.TB, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !checked(r.Method, r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		kept, complete, replay := keepBody(r.Body)
		if replay != nil {
			r.Body = replay
		}
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		rec.snapshot(http.StatusOK, nil)
		if err := check(r, kept, complete, rec.status, rec.header, rec.body.Bytes()); err != nil {
			t.Errorf("%v", err)
		}
	})
}

// recorder passes an answer through to the client and keeps a copy of it.
type recorder struct {
	http.ResponseWriter
	status int
	header http.Header
	body   bytes.Buffer
}

// snapshot records the status and headers when the answer's header is
// written. Like net/http, a body written without a Content-Type gets a
// sniffed one.
func (w *recorder) snapshot(status int, first []byte) {
	if w.header != nil {
		return
	}
	w.status = status
	w.header = w.ResponseWriter.Header().Clone()
	if w.header == nil {
		w.header = http.Header{}
	}
	if _, ok := w.header["Content-Type"]; !ok && len(first) > 0 && w.header.Get("Transfer-Encoding") == "" {
		w.header.Set("Content-Type", http.DetectContentType(first))
	}
}

func (w *recorder) WriteHeader(status int) {
	if status >= 200 || status == http.StatusSwitchingProtocols {
		w.snapshot(status, nil)
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *recorder) Write(b []byte) (int, error) {
	w.snapshot(http.StatusOK, b)
	n, err := w.ResponseWriter.Write(b)
	w.body.Write(b[:n])
	return n, err
}

// Flush passes a flush through, as the wrapped writer would.
func (w *recorder) Flush() {
	w.snapshot(http.StatusOK, nil)
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the wrapped writer.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Transport wraps next so that every request of the JSON API (see checked)
// is sent as is, its answer read in full and checked with Check, and the
// response returned with an equivalent body. Other requests pass through
// unchecked.
func Transport(t testing.TB, next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &transport{t: t, next: next}
}

type transport struct {
	t    testing.TB
	next http.RoundTripper
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !checked(req.Method, req.URL.Path) {
		return tr.next.RoundTrip(req)
	}
	send := req
	var kept []byte
	complete := true
	switch {
	case req.GetBody != nil:
		kept, complete = requestBody(req)
	case req.Body != nil && req.Body != http.NoBody:
		// A RoundTripper must not change the request: send a copy whose
		// body gives the same bytes.
		var replay io.ReadCloser
		kept, complete, replay = keepBody(req.Body)
		send = req.Clone(req.Context())
		send.Body = replay
	}
	resp, err := tr.next.RoundTrip(send)
	if err != nil {
		return resp, err
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		// Give the caller what arrived and the same error; nothing to check.
		resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(data), errReader{err}))
		tr.t.Logf("apispec: %s %s: not checked, reading the answer failed: %v", req.Method, req.URL.Path, err)
		return resp, nil
	}
	resp.Body = io.NopCloser(bytes.NewReader(data))
	if err := check(req, kept, complete, resp.StatusCode, resp.Header, data); err != nil {
		tr.t.Errorf("%v", err)
	}
	return resp, nil
}
