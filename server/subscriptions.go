package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/notify"
	"github.com/imagebadger/imagebadger/store"
	"github.com/imagebadger/imagebadger/tagfilter"
	"github.com/imagebadger/imagebadger/templates"
)

// maxSubscriptionBody bounds a subscription request; real ones are tiny.
const maxSubscriptionBody = 64 << 10

// subscriptionRoutes registers the webhook subscription API and pages. The
// form posts and the API's state-changing routes are refused when a
// browser says they come from another site (net/http.CrossOriginProtection);
// scripts, which say nothing of the kind, pass. The routes that take a
// subscription's token are rate-limited by wrong tokens (tokenGuarded).
func (s *Server) subscriptionRoutes() {
	if s.subs == nil {
		return
	}
	r := s.router
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.renderError(w, r, http.StatusForbidden, "Request refused",
			"This form was sent from another site, so it was refused. Use the form on this site instead.")
	}))
	api := s.apiCrossOrigin()
	r.Handle("/api/v1/subscriptions", api.Handler(s.handle("api_subscription_create", s.apiCreateSubscription))).Methods(http.MethodPost)
	r.Handle("/api/v1/subscriptions/{id}", s.tokenGuarded("api_subscription", s.handle("api_subscription", s.apiSubscription))).Methods(http.MethodGet)
	r.Handle("/api/v1/subscriptions/{id}", api.Handler(s.tokenGuarded("api_subscription_delete",
		s.handle("api_subscription_delete", s.apiDeleteSubscription)))).Methods(http.MethodDelete)

	r.Handle("/subscriptions/new", s.handle("page_subscription_new", s.subscriptionNewPage)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/subscriptions", cop.Handler(s.handle("page_subscription_create", s.subscriptionCreatePage))).Methods(http.MethodPost)
	r.Handle("/subscriptions/{id}/delete", cop.Handler(s.tokenGuarded("page_subscription_delete",
		s.handle("page_subscription_delete", s.subscriptionDeletePage)))).Methods(http.MethodPost)
	r.Handle("/subscriptions/{id}", s.tokenGuarded("page_subscription", s.handle("page_subscription", s.subscriptionPage))).Methods(http.MethodGet, http.MethodHead)
}

// subscriptionJSON is a subscription in API answers. Secret, Token and
// Manage appear only in the answer that creates it.
type subscriptionJSON struct {
	ID           string    `json:"id"`
	Image        string    `json:"image"`
	URL          string    `json:"url"`
	Events       []string  `json:"events"`
	Status       string    `json:"status"`
	StatusReason string    `json:"statusReason,omitempty"`
	Secret       string    `json:"secret,omitempty"`
	Token        string    `json:"token,omitempty"`
	Manage       string    `json:"manage,omitempty"`
	CreatedAt    time.Time `json:"createdAt"`
	Format       string    `json:"format"`
	// Headers are the names of the extra headers; their values are never
	// shown once stored.
	Headers    []string        `json:"headers"`
	Tags       *tagFilterJSON  `json:"tags,omitempty"`
	Coalesce   string          `json:"coalesce"`
	Deliveries *[]deliveryJSON `json:"deliveries,omitempty"`
}

// tagFilterJSON is the tags field of docs/API.md.
type tagFilterJSON struct {
	Include string `json:"include,omitempty"`
	Exclude string `json:"exclude,omitempty"`
	Semver  string `json:"semver,omitempty"`
}

// deliveryJSON is one delivery in a subscription's answer. StatusCode is
// null when the last attempt got no answer (or none was made yet); At is
// the last attempt, or the delivery's creation before any.
type deliveryJSON struct {
	ID            string     `json:"id"`
	Event         string     `json:"event"`
	Type          string     `json:"type"`
	Attempt       int        `json:"attempt"`
	Status        string     `json:"status"`
	StatusCode    *int       `json:"statusCode"`
	Error         string     `json:"error"`
	At            time.Time  `json:"at"`
	NextAttemptAt *time.Time `json:"nextAttemptAt,omitempty"`
	// HeldUntil is, for a delivery held to coalesce, the end of its window;
	// Coalesced how many events it carries (when more than one); Note says
	// both in words for the delivery log.
	HeldUntil *time.Time `json:"heldUntil,omitempty"`
	Coalesced int        `json:"coalesced,omitempty"`
	Note      string     `json:"note,omitempty"`
}

func subscriptionOut(sub store.Subscription) subscriptionJSON {
	out := subscriptionJSON{
		ID:           sub.ID,
		Image:        notify.SubjectName(sub),
		URL:          sub.URL,
		Events:       sub.Events,
		Status:       sub.Status,
		StatusReason: sub.StatusReason,
		CreatedAt:    sub.CreatedAt.UTC().Truncate(time.Second),
		Format:       sub.Format,
		Headers:      sub.HeaderNames(),
		Coalesce:     sub.Coalesce.String(),
	}
	if out.Format == "" {
		out.Format = store.FormatStandard
	}
	if !sub.Tags.IsZero() {
		out.Tags = &tagFilterJSON{Include: sub.Tags.Include, Exclude: sub.Tags.Exclude, Semver: sub.Tags.Semver}
	}
	return out
}

// deliveryNote is the delivery log's word on a coalescing delivery: held
// until its window ends, or how many moves it carried.
func deliveryNote(d store.Delivery) string {
	switch {
	case !d.HeldUntil.IsZero() && d.Coalesced > 1:
		return fmt.Sprintf("held until %s to coalesce (%d events so far)", d.HeldUntil.UTC().Format("15:04:05 UTC"), d.Coalesced)
	case !d.HeldUntil.IsZero():
		return "held until " + d.HeldUntil.UTC().Format("15:04:05 UTC") + " to coalesce"
	case d.Coalesced > 1:
		return fmt.Sprintf("%d events coalesced into one", d.Coalesced)
	}
	return ""
}

func deliveryOut(d store.Delivery) deliveryJSON {
	out := deliveryJSON{
		ID:      "dlv_" + strconv.FormatInt(d.ID, 10),
		Event:   d.WebhookID,
		Type:    d.Type,
		Attempt: d.Attempts,
		Status:  d.Status,
		Error:   d.LastError,
		At:      d.CreatedAt.UTC(),
	}
	if d.LastStatusCode != 0 {
		code := d.LastStatusCode
		out.StatusCode = &code
	}
	if !d.LastAttemptAt.IsZero() {
		out.At = d.LastAttemptAt.UTC()
	}
	if d.Status == store.DeliveryPending {
		next := d.NextAttemptAt.UTC()
		out.NextAttemptAt = &next
	}
	if !d.HeldUntil.IsZero() {
		held := d.HeldUntil.UTC()
		out.HeldUntil = &held
	}
	if d.Coalesced > 1 {
		out.Coalesced = d.Coalesced
	}
	out.Note = deliveryNote(d)
	return out
}

// subscriptionRequest is the body of POST /api/v1/subscriptions.
type subscriptionRequest struct {
	Image    string            `json:"image"`
	URL      string            `json:"url"`
	Events   []string          `json:"events"`
	Format   string            `json:"format"`
	Headers  map[string]string `json:"headers"`
	Tags     *tagFilterJSON    `json:"tags"`
	Coalesce string            `json:"coalesce"`
}

// createRequest is what notify needs of a request, the client included.
func (req subscriptionRequest) createRequest(client string) notify.CreateRequest {
	c := notify.CreateRequest{Image: req.Image, URL: req.URL, Events: req.Events, Format: req.Format,
		Coalesce: req.Coalesce, Client: client}
	names := make([]string, 0, len(req.Headers))
	for k := range req.Headers {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		c.Headers = append(c.Headers, store.Header{Name: k, Value: req.Headers[k]})
	}
	if req.Tags != nil {
		c.Tags = tagfilter.Spec{Include: req.Tags.Include, Exclude: req.Tags.Exclude, Semver: req.Tags.Semver}
	}
	return c
}

// apiCreateSubscription answers POST /api/v1/subscriptions with 201 and the
// new subscription, secret and token included.
func (s *Server) apiCreateSubscription(w http.ResponseWriter, r *http.Request) error {
	var req subscriptionRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSubscriptionBody))
	if err := dec.Decode(&req); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return tooLargeError(maxSubscriptionBody)
		}
		return invalidRequest("the body must be a JSON object with image and url (and events, format, headers, tags, coalesce)")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalidRequest("the body must be one JSON object, with nothing after it")
	}
	c, err := s.subs.Create(r.Context(), s.authorized(r, req.createRequest(clientAddr(r))))
	var exists *notify.ExistsError
	if errors.As(err, &exists) {
		w.Header().Set("Location", "/api/v1/subscriptions/"+exists.ID)
	}
	if err != nil {
		return subscriptionError(err)
	}
	out := subscriptionOut(c.Subscription)
	out.Secret, out.Token = c.Secret, c.Token
	out.Manage = s.pages.baseURL + manageHref(c.ID, c.Token)
	w.Header().Set("Location", "/api/v1/subscriptions/"+c.ID)
	w.Header().Set("Cache-Control", "no-store") // the secret and the token
	return writeJSON(w, http.StatusCreated, out)
}

// apiSubscription answers GET /api/v1/subscriptions/{id}: the subscription
// and its latest deliveries, for the holder of its token.
func (s *Server) apiSubscription(w http.ResponseWriter, r *http.Request) error {
	sub, ds, err := s.subs.Get(r.Context(), mux.Vars(r)["id"], bearer(r))
	if err != nil {
		return subscriptionError(err)
	}
	out := subscriptionOut(sub)
	list := make([]deliveryJSON, len(ds))
	for i, d := range ds {
		list[i] = deliveryOut(d)
	}
	out.Deliveries = &list
	return writeJSON(w, http.StatusOK, out)
}

// apiDeleteSubscription answers DELETE /api/v1/subscriptions/{id} with 204.
func (s *Server) apiDeleteSubscription(w http.ResponseWriter, r *http.Request) error {
	if err := s.subs.Delete(r.Context(), mux.Vars(r)["id"], bearer(r)); err != nil {
		return subscriptionError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// subscriptionError turns notify's error kinds into the server's, keeping
// the public message.
func subscriptionError(err error) error {
	msg, _ := analysis.PublicMessage(err)
	switch {
	case errors.Is(err, notify.ErrInvalid):
		return invalidRequest(msg)
	case errors.Is(err, notify.ErrUnauthorized):
		return &analysis.Error{Kind: errUnauthorized, Message: msg}
	case errors.Is(err, notify.ErrExists):
		return &analysis.Error{Kind: errExists, Message: msg, Err: err}
	}
	return err
}

// bearer returns the token of an "Authorization: Bearer …" header.
func bearer(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

func manageHref(id, token string) string {
	return "/subscriptions/" + url.PathEscape(id) + "?token=" + url.QueryEscape(token)
}

// eventChoices lists the event checkboxes, ticking those in checked (the
// defaults, image.updated and base.updated, when checked is empty).
func eventChoices(checked []string) []templates.EventChoice {
	desc := map[string]string{
		notify.TypeImageUpdated:    "when the tag moves to another image",
		notify.TypeBaseUpdated:     "when the image's base is rebuilt and the image is now outdated",
		notify.TypeVersionReleased: "when a new version tag appears, higher than every other (a repository without a tag only)",
		notify.TypeTagDeleted:      "when a followed tag is deleted",
	}
	defaults := []string{notify.TypeImageUpdated, notify.TypeBaseUpdated}
	var out []templates.EventChoice
	for _, t := range notify.EventTypes() {
		ticked := slices.Contains(checked, t) || (len(checked) == 0 && slices.Contains(defaults, t))
		out = append(out, templates.EventChoice{Type: t, Description: desc[t], Checked: ticked})
	}
	return out
}

// formatChoices lists the formats, selecting format (the default when "").
func formatChoices(format string) []templates.FormatChoice {
	if format == "" {
		format = store.FormatStandard
	}
	var out []templates.FormatChoice
	for _, f := range notify.Formats() {
		out = append(out, templates.FormatChoice{Value: f, Description: notify.FormatDescription(f), Selected: f == format})
	}
	return out
}

// formRequest reads the subscription form: the API's fields under the
// form's names, the extra headers as header_name/header_value rows (rows
// without a name are left out).
func formRequest(r *http.Request) notify.CreateRequest {
	f := r.PostForm
	req := notify.CreateRequest{Image: f.Get("image"), URL: f.Get("url"), Events: f["events"], Format: f.Get("format"),
		Tags:     tagfilter.Spec{Include: f.Get("tags_include"), Exclude: f.Get("tags_exclude"), Semver: f.Get("tags_semver")},
		Coalesce: f.Get("coalesce"), Client: clientAddr(r)}
	names, values := f["header_name"], f["header_value"]
	for i, n := range names {
		if strings.TrimSpace(n) == "" {
			continue
		}
		v := ""
		if i < len(values) {
			v = values[i]
		}
		req.Headers = append(req.Headers, store.Header{Name: n, Value: v})
	}
	return req
}

// subscriptionNewPage answers /subscriptions/new?image=…: the form.
func (s *Server) subscriptionNewPage(w http.ResponseWriter, r *http.Request) error {
	form := templates.SubscriptionForm{
		Meta:    templates.Meta{Title: "Subscribe", BaseURL: s.pages.baseURL, Version: s.pages.version},
		Image:   r.URL.Query().Get("image"),
		Events:  eventChoices(nil),
		Formats: formatChoices(""),
	}
	form.DockerHubHook, form.DockerHubLater = s.dockerHubHook(r, form.Image)
	return s.render(w, r, http.StatusOK, templates.SubscriptionNew(form))
}

// dockerHubHook returns the Docker Hub webhook URL for image's repository
// when it is on Docker Hub and has one, and whether it is on Docker Hub
// without one yet (the token is made with the first subscription; showing
// the form writes nothing).
func (s *Server) dockerHubHook(r *http.Request, image string) (hook string, later bool) {
	if image == "" {
		return "", false
	}
	subject, err := notify.ParseSubject(image)
	if err != nil || subject.Registry != analysis.DockerHub {
		return "", false
	}
	tok, err := s.subs.HookToken(r.Context(), subject.Repository)
	if errors.Is(err, analysis.ErrNotFound) {
		return "", true
	}
	if err != nil {
		s.log.WarnContext(r.Context(), "docker hub hook token", "repository", subject.Repository.String(), "err", err)
		return "", false
	}
	return s.pages.baseURL + "/hooks/dockerhub/" + tok, false
}

// subscriptionCreatePage answers the form's POST /subscriptions: the secret
// and manage link once, or the form again with the reason it was refused.
func (s *Server) subscriptionCreatePage(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxSubscriptionBody)
	if err := r.ParseForm(); err != nil {
		return invalidRequest("the form could not be read")
	}
	req := formRequest(r)
	if len(req.Events) == 0 {
		// Unticking every box is a mistake, not a request for everything.
		return s.renderForm(w, r, req, http.StatusBadRequest, "Choose at least one event.")
	}
	c, err := s.subs.Create(r.Context(), s.authorized(r, req))
	if err != nil {
		err = subscriptionError(err)
		_, status := statusOf(err)
		if status >= 500 {
			return err
		}
		if c, ok := analysis.CredentialsRefusedIn(err); ok {
			// The form may show less than this; the log keeps all of it.
			s.log.InfoContext(r.Context(), "subscription refused", "registry", c.Registry, "client", clientAddr(r), "err", err)
		}
		msg, _ := s.publicMessage(r, err)
		if msg == "" {
			msg = http.StatusText(status)
		}
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "3600")
		}
		return s.renderForm(w, r, req, status, msg)
	}
	w.Header().Set("Cache-Control", "no-store") // the secret and the manage link
	page := templates.SubscriptionCreated{
		Meta:         templates.Meta{Title: "Subscribed", BaseURL: s.pages.baseURL, Version: s.pages.version},
		Subscription: subscriptionView(c.Subscription, s.pages.now()),
		Secret:       c.Secret,
		ManageHref:   manageHref(c.ID, c.Token),
	}
	page.DockerHubHook, _ = s.dockerHubHook(r, req.Image)
	return s.render(w, r, http.StatusCreated, templates.SubscriptionCreatedPage(page))
}

func (s *Server) renderForm(w http.ResponseWriter, r *http.Request, req notify.CreateRequest, status int, msg string) error {
	// The header values are secrets: the form shows the names again, not
	// what was typed as values.
	var names []string
	for _, h := range req.Headers {
		names = append(names, h.Name)
	}
	form := templates.SubscriptionForm{
		Meta:        templates.Meta{Title: "Subscribe", BaseURL: s.pages.baseURL, Version: s.pages.version},
		Image:       req.Image,
		URL:         req.URL,
		Events:      eventChoices(req.Events),
		Error:       msg,
		Formats:     formatChoices(req.Format),
		HeaderNames: names,
		Include:     req.Tags.Include,
		Exclude:     req.Tags.Exclude,
		Semver:      req.Tags.Semver,
		Coalesce:    req.Coalesce,
	}
	return s.render(w, r, status, templates.SubscriptionNew(form))
}

// subscriptionPage answers /subscriptions/{id}?token=…: the subscription
// and its delivery log.
func (s *Server) subscriptionPage(w http.ResponseWriter, r *http.Request) error {
	id, token := mux.Vars(r)["id"], r.URL.Query().Get("token")
	// The page's URL holds the token and the page the delete form's copy:
	// no cache, shared or the browser's, keeps it.
	w.Header().Set("Cache-Control", "no-store")
	sub, ds, err := s.subs.Get(r.Context(), id, token)
	if err != nil {
		return s.subscriptionPageError(w, r, err)
	}
	now := s.pages.now()
	page := templates.SubscriptionPage{
		Meta:         templates.Meta{Title: "Subscription " + sub.ID, BaseURL: s.pages.baseURL, Version: s.pages.version},
		Subscription: subscriptionView(sub, now),
		Token:        token,
		DeleteAction: "/subscriptions/" + url.PathEscape(sub.ID) + "/delete",
	}
	for _, d := range ds {
		v := templates.DeliveryView{WebhookID: d.WebhookID, Type: d.Type, Status: d.Status, Attempts: d.Attempts,
			Error: d.LastError, At: templates.NewTimeView(d.LastAttemptAt, now)}
		if d.LastStatusCode != 0 {
			v.StatusCode = fmt.Sprint(d.LastStatusCode)
		}
		if d.Status == store.DeliveryPending {
			v.Next = templates.NewTimeView(d.NextAttemptAt, now)
		}
		v.Note = deliveryNote(d)
		page.Deliveries = append(page.Deliveries, v)
	}
	// The token is in this page's URL; render's Referrer-Policy
	// (strict-origin-when-cross-origin) keeps it from other sites.
	return s.render(w, r, http.StatusOK, templates.SubscriptionManage(page))
}

// subscriptionDeletePage answers the delete button of a subscription's page.
func (s *Server) subscriptionDeletePage(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxSubscriptionBody)
	id := mux.Vars(r)["id"]
	if err := s.subs.Delete(r.Context(), id, r.PostFormValue("token")); err != nil {
		return s.subscriptionPageError(w, r, err)
	}
	page := templates.SubscriptionDeleted{Meta: templates.Meta{Title: "Subscription deleted", BaseURL: s.pages.baseURL, Version: s.pages.version}, ID: id}
	return s.render(w, r, http.StatusOK, templates.SubscriptionDeletedPage(page))
}

// subscriptionPageError answers a subscription page whose id or token is
// wrong with an error page that says so; other errors take the usual path.
func (s *Server) subscriptionPageError(w http.ResponseWriter, r *http.Request, err error) error {
	err = subscriptionError(err)
	msg, _ := analysis.PublicMessage(err)
	switch {
	case errors.Is(err, errUnauthorized):
		s.renderError(w, r, http.StatusUnauthorized, "Wrong or missing token",
			msg+". Use the manage link shown when the subscription was created.")
		return nil
	case errors.Is(err, analysis.ErrNotFound):
		s.renderError(w, r, http.StatusNotFound, "Subscription not found", "There is no such subscription; it may have been deleted.")
		return nil
	}
	return err
}

func subscriptionView(sub store.Subscription, now time.Time) templates.SubscriptionView {
	href := templates.RepositoryHref(sub.Repo.Short())
	if sub.Tag != "" {
		href = templates.ImageHref(templates.DisplayReference(sub.Repo.Registry, sub.Repo.Name, sub.Tag, ""))
	}
	v := templates.SubscriptionView{
		ID:          sub.ID,
		ImageHref:   href,
		Image:       notify.SubjectName(sub),
		URL:         sub.URL,
		Events:      sub.Events,
		Status:      sub.Status,
		Reason:      sub.StatusReason,
		Created:     templates.NewTimeView(sub.CreatedAt, now),
		Format:      sub.Format,
		HeaderNames: sub.HeaderNames(),
	}
	if v.Format == "" {
		v.Format = store.FormatStandard
	}
	var tags []string
	for _, p := range [][2]string{{"include", sub.Tags.Include}, {"exclude", sub.Tags.Exclude}, {"semver", sub.Tags.Semver}} {
		if p[1] != "" {
			tags = append(tags, p[0]+" "+p[1])
		}
	}
	v.Tags = strings.Join(tags, "; ")
	if sub.Coalesce > 0 {
		v.Coalesce = sub.Coalesce.String()
	}
	return v
}

// authorized gives a subscription request the visibility check of a write
// by the request's viewer: subscribing to a private repository needs a
// viewer who may change it. A signed-in viewer is also the subscriber, the
// same from any address.
func (s *Server) authorized(r *http.Request, req notify.CreateRequest) notify.CreateRequest {
	viewer := s.viewer(r)
	// A person is the same subscriber from any address, and so are the
	// API tokens they made.
	person := viewer.Person
	if person == "" {
		person = viewer.TokenOwner
	}
	req.Subscriber = notify.SubscriberPerson(person)
	req.Authorize = func(ctx context.Context, subject analysis.Reference) error {
		return s.images.MayWrite(ctx, viewer, subject, 0)
	}
	return req
}
