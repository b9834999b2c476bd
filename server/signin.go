package server

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/store"
	"github.com/imagebadger/imagebadger/templates"
)

// maxTokenBody bounds the JSON body of POST /api/v1/tokens, as every JSON
// body is bounded.
const maxTokenBody = 64 << 10

// signInRoutes registers sign-in, sign-out, the token pages and the token
// and badge-token API. They exist whether or not sign-in is configured, so
// that a link to them explains rather than 404s.
func (s *Server) signInRoutes() {
	r := s.router
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.renderError(w, r, http.StatusForbidden, "Request refused",
			"This form was sent from another site, so it was refused. Use the form on this site instead.")
	}))
	api := s.apiCrossOrigin()
	r.Handle("/signin", s.handle("page_signin", s.signInPage)).Methods(http.MethodGet, http.MethodHead)
	r.Handle(auth.CallbackPath, s.handle("page_signin_callback", s.signInCallback)).Methods(http.MethodGet)
	r.Handle("/signout", cop.Handler(s.handle("page_signout", s.signOut))).Methods(http.MethodPost)
	r.Handle("/settings/tokens", s.handle("page_tokens", s.tokensPage)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/settings/tokens", cop.Handler(s.handle("page_token_create", s.tokenCreatePage))).Methods(http.MethodPost)
	r.Handle("/settings/tokens/{id}/revoke", cop.Handler(s.handle("page_token_revoke", s.tokenRevokePage))).Methods(http.MethodPost)
	r.Handle("/api/v1/tokens", api.Handler(s.handle("api_token_create", s.apiCreateToken))).Methods(http.MethodPost)
	r.Handle("/api/v1/tokens", s.handle("api_tokens", s.apiTokens)).Methods(http.MethodGet)
	r.Handle("/api/v1/tokens/{id}", api.Handler(s.handle("api_token_revoke", s.apiRevokeToken))).Methods(http.MethodDelete)
	r.Handle("/api/v1/repositories/{repository:.+}/badge-token", s.handle("api_badge_token", s.apiBadgeToken)).Methods(http.MethodGet)
	r.Handle("/api/v1/repositories/{repository:.+}/badge-token", api.Handler(s.handle("api_badge_token_new", s.apiNewBadgeToken))).Methods(http.MethodPost)
}

// apiTokenRoutes puts the API token check around every route under /api
// and /v1 (see apiTokens), except the subscription routes that take a
// subscription's own token in the same header. Wrapping each route once,
// at start, keeps the check off the pages and badges.
func (s *Server) apiTokenRoutes() {
	_ = s.router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		h := route.GetHandler()
		tmpl, _ := route.GetPathTemplate()
		if h == nil || tmpl == "/api/v1/subscriptions/{id}" || tmpl == "/api/v1/openapi.yaml" ||
			!(strings.HasPrefix(tmpl, "/api/") || strings.HasPrefix(tmpl, "/v1/")) {
			return nil
		}
		if q, ok := h.(quietRoute); ok {
			route.Handler(quiet(s.apiTokenChecked(tmpl, q.Handler)))
		} else {
			route.Handler(s.apiTokenChecked(tmpl, h))
		}
		return nil
	})
}

// apiTokenChecked answers 401 unauthorized for a request to an API route
// whose Authorization header is not a valid API token (wrong, revoked,
// expired, or not a Bearer ib_… token at all), before next sees it. Wrong
// tokens count against the client's TokenFailures as the hooks' do, and a
// client that has used them up is answered 429 before its token is
// looked at, right or wrong.
func (s *Server) apiTokenChecked(route string, next http.Handler) http.Handler {
	refuse := s.tokenGuarded(route, s.handle(route, func(w http.ResponseWriter, r *http.Request) error {
		return s.tokenError(r)
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			next.ServeHTTP(w, r)
			return
		}
		if ex, _ := s.tokenFailures.Exhausted(clientAddr(r), time.Now()); ex || s.tokenError(r) != nil {
			refuse.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// tokenError is why r's Authorization header is not a valid API token, or
// nil when it is.
func (s *Server) tokenError(r *http.Request) error {
	if s.auth == nil {
		return &analysis.Error{Kind: errUnauthorized, Message: "this service has no API tokens: no sign-in is configured"}
	}
	if !strings.HasPrefix(bearer(r), auth.TokenPrefix) {
		return &analysis.Error{Kind: errUnauthorized, Message: "the Authorization header takes an API token: Bearer ib_…"}
	}
	_, err := s.auth.Viewer(r)
	return authError(err)
}

// requestViewer is who r comes from: the API token, the proxy's header or
// the session (see auth.Auth.Viewer); anonymous without sign-in
// configured, and for credentials that do not hold (an API route has
// answered 401 for those before this is asked).
func (s *Server) requestViewer(r *http.Request) auth.Viewer {
	if s.auth == nil {
		return auth.Viewer{}
	}
	if h := r.Header.Get("Authorization"); h != "" && !strings.HasPrefix(bearer(r), auth.TokenPrefix) {
		// Another route's token (a subscription's): not a viewer's.
		r = r.Clone(r.Context())
		r.Header.Del("Authorization")
	}
	v, err := s.auth.Viewer(r)
	if err != nil {
		if !errors.Is(err, auth.ErrUnauthorized) {
			s.log.WarnContext(r.Context(), "who is asking", "err", err)
		}
		return auth.Viewer{}
	}
	return v
}

// authError turns auth's errors into the service's kinds with a message
// fit to show.
func authError(err error) error {
	if err == nil {
		return nil
	}
	msg := strings.TrimPrefix(err.Error(), "auth: ")
	switch {
	case errors.Is(err, auth.ErrUnauthorized):
		return &analysis.Error{Kind: errUnauthorized, Message: msg, Err: err}
	case errors.Is(err, auth.ErrForbidden):
		return &analysis.Error{Kind: auth.ErrForbidden, Message: msg, Err: err}
	case errors.Is(err, auth.ErrInvalid):
		return &analysis.Error{Kind: errInvalidRequest, Message: msg, Err: err}
	case errors.Is(err, store.ErrUnknownCredential):
		return &analysis.Error{Kind: analysis.ErrNotFound, Message: "no such token", Err: err}
	}
	return err
}

// person is the signed-in person r comes from, or the error of a request
// that needs one: 401 without credentials, 403 with a token (a token
// cannot do what only a person may).
func (s *Server) person(r *http.Request) (string, error) {
	v := s.requestViewer(r)
	switch {
	case v.Person != "":
		return v.Person, nil
	case v.Scope != "":
		return "", &analysis.Error{Kind: auth.ErrForbidden, Message: "a token cannot do this; sign in as a person"}
	}
	return "", &analysis.Error{Kind: errUnauthorized, Message: "sign in first (" + s.pages.baseURL + "/signin)"}
}

func (s *Server) meta(title string) templates.Meta {
	return templates.Meta{Title: title, BaseURL: s.pages.baseURL, NoHeaderSearch: true, Version: s.pages.version}
}

// signInPage starts the OpenID flow, or explains how to sign in here.
func (s *Server) signInPage(w http.ResponseWriter, r *http.Request) error {
	ret := auth.LocalPath(r.URL.Query().Get("return"))
	if s.auth != nil && s.auth.OIDCConfigured() {
		to, err := s.auth.BeginSignIn(w, r, ret)
		if err != nil {
			s.log.ErrorContext(r.Context(), "begin sign-in", "err", err)
			s.renderError(w, r, http.StatusBadGateway, "Sign-in unavailable", "The sign-in provider could not be reached. Try again shortly.")
			return nil
		}
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, to, http.StatusFound)
		return nil
	}
	if s.auth != nil && s.auth.ProxyConfigured() && s.requestViewer(r).SignedIn() {
		http.Redirect(w, r, ret, http.StatusFound)
		return nil
	}
	return s.render(w, r, http.StatusOK, templates.SignIn(templates.SignInPage{Meta: s.meta("Sign in"),
		Proxy: s.auth != nil && s.auth.ProxyConfigured()}))
}

// signInCallback finishes the OpenID flow: back to where the person was,
// signed in; 403 for someone --oidc-allowed does not name.
func (s *Server) signInCallback(w http.ResponseWriter, r *http.Request) error {
	if s.auth == nil || !s.auth.OIDCConfigured() {
		return s.signInPage(w, r)
	}
	to, err := s.auth.FinishSignIn(w, r)
	switch {
	case errors.Is(err, auth.ErrForbidden):
		s.renderError(w, r, http.StatusForbidden, "Not allowed here", strings.TrimPrefix(err.Error(), "auth: forbidden: ")+".")
		return nil
	case errors.Is(err, auth.ErrInvalid), errors.Is(err, auth.ErrUnauthorized):
		s.log.InfoContext(r.Context(), "sign-in failed", "err", err)
		s.renderError(w, r, http.StatusBadRequest, "Sign-in failed", "The sign-in did not complete. Sign in again from the start.")
		return nil
	case err != nil:
		return err
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}

// signOut ends the session everywhere and goes home.
func (s *Server) signOut(w http.ResponseWriter, r *http.Request) error {
	if s.auth != nil {
		if err := s.auth.SignOut(w, r); err != nil {
			return err
		}
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
	return nil
}

// tokenRows is ts as the page lists them.
func (s *Server) tokenRows(ts []store.APIToken) []templates.TokenRow {
	now := time.Now()
	out := make([]templates.TokenRow, 0, len(ts))
	for _, t := range ts {
		row := templates.TokenRow{ID: t.ID, Name: t.Name, Scope: t.Scope, Created: t.Created.Format("2006-01-02 15:04 MST"),
			Expires: "never", Status: tokenStatus(t, now)}
		if !t.Expires.IsZero() {
			row.Expires = t.Expires.Format("2006-01-02 15:04 MST")
		}
		out = append(out, row)
	}
	return out
}

func tokenStatus(t store.APIToken, now time.Time) string {
	switch {
	case !t.Revoked.IsZero():
		return "revoked"
	case !t.Expires.IsZero() && !now.Before(t.Expires):
		return "expired"
	}
	return "active"
}

// pagePerson is the signed-in person of a page request; without one it
// sends the browser to sign in (and back) and reports false.
func (s *Server) pagePerson(w http.ResponseWriter, r *http.Request, back string) (string, bool) {
	v := s.requestViewer(r)
	if v.Person != "" {
		return v.Person, true
	}
	http.Redirect(w, r, "/signin?return="+back, http.StatusSeeOther)
	return "", false
}

func (s *Server) renderTokens(w http.ResponseWriter, r *http.Request, status int, person string, page templates.TokensPage) error {
	ts, err := s.auth.Tokens(r.Context(), person)
	if err != nil {
		return err
	}
	page.Meta, page.Person, page.Tokens = s.meta("API tokens"), person, s.tokenRows(ts)
	w.Header().Set("Cache-Control", "no-store")
	return s.render(w, r, status, templates.Tokens(page))
}

// tokensPage is /settings/tokens.
func (s *Server) tokensPage(w http.ResponseWriter, r *http.Request) error {
	if s.auth == nil {
		return s.signInPage(w, r)
	}
	person, ok := s.pagePerson(w, r, "/settings/tokens")
	if !ok {
		return nil
	}
	return s.renderTokens(w, r, http.StatusOK, person, templates.TokensPage{})
}

// tokenCreatePage makes a token from the form and shows it, once.
func (s *Server) tokenCreatePage(w http.ResponseWriter, r *http.Request) error {
	if s.auth == nil {
		return s.signInPage(w, r)
	}
	person, ok := s.pagePerson(w, r, "/settings/tokens")
	if !ok {
		return nil
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenBody)
	if err := r.ParseForm(); err != nil {
		return invalidRequest("the form could not be read")
	}
	var expires time.Time
	if e := r.PostForm.Get("expires"); e != "" {
		d, err := time.Parse("2006-01-02", e)
		if err != nil {
			return s.renderTokens(w, r, http.StatusBadRequest, person, templates.TokensPage{Error: "The expiry is not a date."})
		}
		expires = d.Add(24 * time.Hour) // the end of the day named
	}
	nt, err := s.auth.CreateToken(r.Context(), person, r.PostForm.Get("name"), auth.Scope(r.PostForm.Get("scope")), expires)
	if errors.Is(err, auth.ErrInvalid) {
		return s.renderTokens(w, r, http.StatusBadRequest, person, templates.TokensPage{Error: strings.TrimPrefix(err.Error(), "auth: create token: invalid request: ")})
	}
	if err != nil {
		return err
	}
	return s.renderTokens(w, r, http.StatusCreated, person, templates.TokensPage{New: nt.Token, NewName: nt.Name})
}

// tokenRevokePage revokes one of the person's tokens and shows the list.
func (s *Server) tokenRevokePage(w http.ResponseWriter, r *http.Request) error {
	if s.auth == nil {
		return s.signInPage(w, r)
	}
	person, ok := s.pagePerson(w, r, "/settings/tokens")
	if !ok {
		return nil
	}
	if err := s.auth.RevokeToken(r.Context(), person, mux.Vars(r)["id"]); err != nil && !errors.Is(err, store.ErrUnknownCredential) {
		return err
	}
	http.Redirect(w, r, "/settings/tokens", http.StatusSeeOther)
	return nil
}

// tokenJSON is a token in API answers; Token only in the creating one.
type tokenJSON struct {
	ID        string     `json:"id"`
	Token     string     `json:"token,omitempty"`
	Name      string     `json:"name"`
	Scope     string     `json:"scope"`
	CreatedAt time.Time  `json:"createdAt"`
	ExpiresAt *time.Time `json:"expiresAt"`
	RevokedAt *time.Time `json:"revokedAt,omitempty"`
}

func tokenOut(t store.APIToken) tokenJSON {
	out := tokenJSON{ID: t.ID, Name: t.Name, Scope: t.Scope, CreatedAt: t.Created}
	if !t.Expires.IsZero() {
		e := t.Expires
		out.ExpiresAt = &e
	}
	if !t.Revoked.IsZero() {
		rv := t.Revoked
		out.RevokedAt = &rv
	}
	return out
}

// tokenRequest is the body of POST /api/v1/tokens.
type tokenRequest struct {
	Name      string     `json:"name"`
	Scope     string     `json:"scope"`
	ExpiresAt *time.Time `json:"expiresAt"`
}

// apiCreateToken is POST /api/v1/tokens: 201 with the token, shown once.
func (s *Server) apiCreateToken(w http.ResponseWriter, r *http.Request) error {
	person, err := s.person(r)
	if err != nil {
		return err
	}
	var req tokenRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxTokenBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return tooLargeError(maxTokenBody)
		}
		return invalidRequest(`the body must be a JSON object: {"name", "scope": "read"|"write", "expiresAt"?}`)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalidRequest("the body must be one JSON object, with nothing after it")
	}
	var expires time.Time
	if req.ExpiresAt != nil {
		expires = *req.ExpiresAt
	}
	nt, err := s.auth.CreateToken(r.Context(), person, req.Name, auth.Scope(req.Scope), expires)
	if err != nil {
		return authError(err)
	}
	out := tokenOut(nt.APIToken)
	out.Token = nt.Token
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", "/api/v1/tokens/"+nt.ID)
	return writeJSON(w, http.StatusCreated, out)
}

// apiTokens is GET /api/v1/tokens: the person's tokens, without secrets.
func (s *Server) apiTokens(w http.ResponseWriter, r *http.Request) error {
	person, err := s.person(r)
	if err != nil {
		return err
	}
	ts, err := s.auth.Tokens(r.Context(), person)
	if err != nil {
		return err
	}
	out := struct {
		Tokens []tokenJSON `json:"tokens"`
	}{Tokens: []tokenJSON{}}
	for _, t := range ts {
		out.Tokens = append(out.Tokens, tokenOut(t))
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusOK, out)
}

// apiRevokeToken is DELETE /api/v1/tokens/{id}: 204.
func (s *Server) apiRevokeToken(w http.ResponseWriter, r *http.Request) error {
	person, err := s.person(r)
	if err != nil {
		return err
	}
	if err := s.auth.RevokeToken(r.Context(), person, mux.Vars(r)["id"]); err != nil {
		return authError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// badgeTokenRepository is the repository of a badge-token route, for a
// viewer who may see private repositories: 401 for anyone else.
func (s *Server) badgeTokenRepository(r *http.Request, write bool) (analysis.Repository, error) {
	v := s.requestViewer(r)
	switch {
	case s.auth == nil:
		return analysis.Repository{}, &analysis.Error{Kind: errUnauthorized, Message: "no sign-in is configured, so no one has badge tokens"}
	case !v.SignedIn() && v.Scope == "":
		return analysis.Repository{}, &analysis.Error{Kind: errUnauthorized, Message: "sign in, or send an API token, to see badge tokens"}
	case write && !v.MayWritePrivate():
		return analysis.Repository{}, &analysis.Error{Kind: auth.ErrForbidden, Message: "a read token cannot make a new badge token; use a write token"}
	}
	return analysis.ParseRepository(mux.Vars(r)["repository"])
}

// apiBadgeToken is GET /api/v1/repositories/{repository}/badge-token.
func (s *Server) apiBadgeToken(w http.ResponseWriter, r *http.Request) error {
	repo, err := s.badgeTokenRepository(r, false)
	if err != nil {
		return err
	}
	tok, err := s.auth.BadgeToken(r.Context(), repo.Registry, repo.Name)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusOK, map[string]string{"token": tok})
}

// apiNewBadgeToken is POST /api/v1/repositories/{repository}/badge-token:
// a new token, the old one retired.
func (s *Server) apiNewBadgeToken(w http.ResponseWriter, r *http.Request) error {
	repo, err := s.badgeTokenRepository(r, true)
	if err != nil {
		return err
	}
	tok, err := s.auth.NewBadgeToken(r.Context(), repo.Registry, repo.Name)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusOK, map[string]string{"token": tok})
}

// pageBadgeToken is the badge token of repo for the image page: for a
// signed-in person and a private repository only, else empty.
func (s *Server) pageBadgeToken(r *http.Request, repo analysis.Repository) (string, error) {
	if s.auth == nil || !s.viewer(r).SignedIn() {
		return "", nil
	}
	v, _, err := s.store.Visibility(r.Context(), repo)
	if err != nil || v != analysis.VisibilityPrivate {
		return "", err
	}
	return s.auth.BadgeToken(r.Context(), repo.Registry, repo.Name)
}

// badgePrivateCacheControl is the Cache-Control of a badge answered to a
// request with credentials: it may show a private image, so only the
// browser that asked may keep it, never a shared cache.
const badgePrivateCacheControl = "private, max-age=60"

// badgeCache is the Cache-Control of a badge decided with cache: made
// private for a request that carries credentials (a badge token in the
// URL is not one: the URL itself is what caches keep it under).
func (s *Server) badgeCache(r *http.Request, cache string) string {
	if cache == badgeCacheControl && s.auth != nil && s.auth.Carries(r) {
		return badgePrivateCacheControl
	}
	return cache
}
