package server

import (
	"context"
	"crypto/subtle"
	"io"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/notify"
)

// maxHookBody bounds an inbound hook's body. A distribution registry batches
// events into envelopes of a few KiB; Docker Hub's are smaller.
const maxHookBody = 1 << 20

// hookRoutes registers the inbound hooks that trigger refreshes. The
// MicroBadger-style refresh hook shares its path with the image pages
// (POST /images/{reference}/refresh, registered before it, keeps its
// meaning: a hook token is never the word "refresh").
func (s *Server) hookRoutes() {
	if s.subs != nil {
		s.router.Handle("/images/{repository:.+}/{token}", s.tokenGuarded("hook_refresh", s.handle("hook_refresh", s.refreshHook))).Methods(http.MethodPost)
	}
	if s.watcher == nil {
		return
	}
	s.router.Handle("/hooks/registry", s.tokenGuarded("hook_registry", s.handle("hook_registry", s.registryHook))).Methods(http.MethodPost)
	if s.subs != nil {
		s.router.Handle("/hooks/dockerhub/{token}", s.tokenGuarded("hook_dockerhub", s.handle("hook_dockerhub", s.dockerHubHookHandler))).Methods(http.MethodPost)
	}
}

// hookAnswer is the 202 body of an inbound hook: what will be refreshed.
type hookAnswer struct {
	Refreshing []string `json:"refreshing"`
}

// registryHook answers POST /hooks/registry: a distribution registry's
// notification envelope, authenticated with --hook-token. Each manifest push
// queues a refresh of the pushed tag (or digest), and each delete a check of
// the tags it may have removed, so their deletion is recorded at once; the
// answer does not wait for either, so the registry's notification queue is
// never held up by a slow registry read.
func (s *Server) registryHook(w http.ResponseWriter, r *http.Request) error {
	if s.hookToken == "" {
		return &analysis.Error{Kind: analysis.ErrNotFound,
			Message: "the registry hook is disabled; start the service with --hook-token (IMAGEBADGER_HOOK_TOKEN) to enable it"}
	}
	if subtle.ConstantTimeCompare([]byte(bearer(r)), []byte(s.hookToken)) != 1 {
		return &analysis.Error{Kind: errUnauthorized, Message: "missing or wrong bearer token"}
	}
	if !notify.AcceptsEnvelope(r.Header.Get("Content-Type")) {
		return invalidRequest("the body must be a distribution notification envelope (" +
			notify.EnvelopeV1 + ", " + notify.EnvelopeV2 + " or application/json)")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxHookBody))
	if err != nil {
		return bodyError(err, maxHookBody)
	}
	pushes, skipped, err := notify.ParseRegistryNotification(body)
	if err != nil {
		return subscriptionError(err)
	}
	for _, k := range skipped {
		s.log.WarnContext(r.Context(), "hook: skipped an event whose tag is not a valid tag",
			"repository", analysis.QuoteTag(k.Repository), "tag", analysis.QuoteTag(k.Tag), "problem", k.Problem)
	}
	return s.queueRefreshes(w, r, pushes)
}

// dockerHubHookHandler answers POST /hooks/dockerhub/{token}: a Docker Hub
// push webhook for the repository the token was made for.
func (s *Server) dockerHubHookHandler(w http.ResponseWriter, r *http.Request) error {
	repo, err := s.subs.HookRepository(r.Context(), mux.Vars(r)["token"])
	if err != nil {
		return subscriptionError(err)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxHookBody))
	if err != nil {
		return bodyError(err, maxHookBody)
	}
	ref, err := notify.ParseDockerHubPush(body)
	if err != nil {
		s.log.WarnContext(r.Context(), "hook: refused a Docker Hub push", "repository", repo.String(), "err", err)
		return subscriptionError(err)
	}
	if ref.Repository != repo {
		return &analysis.Error{Kind: errUnauthorized, Message: "this hook token is for another repository"}
	}
	return s.queueRefreshes(w, r, []notify.Push{{Ref: ref}})
}

// queueRefreshes accepts a hook's refreshes, answering 202, unless the
// database does not answer: then a 503 makes the sender (a distribution
// registry retries until it is accepted) try again, instead of the service
// accepting a change it cannot record.
func (s *Server) queueRefreshes(w http.ResponseWriter, r *http.Request, pushes []notify.Push) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		return err
	}
	out := hookAnswer{Refreshing: []string{}}
	for _, p := range pushes {
		queue := s.watcher.Refresh
		if p.Deleted {
			queue = func(ref analysis.Reference, _ string) bool { return s.watcher.Deleted(ref) }
		}
		if queue(p.Ref, p.Digest) {
			out.Refreshing = append(out.Refreshing, p.Ref.String())
		} else {
			s.log.WarnContext(r.Context(), "hook: refresh queue full; the next poll will catch up", "image", p.Ref.String())
		}
	}
	return writeJSON(w, http.StatusAccepted, out)
}
