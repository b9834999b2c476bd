package server

import (
	"crypto/subtle"
	"io"
	"net/http"

	"github.com/gorilla/mux"

	"imagebadger/analysis"
	"imagebadger/notify"
)

// maxHookBody bounds an inbound hook's body. A distribution registry batches
// events into envelopes of a few KiB; Docker Hub's are smaller.
const maxHookBody = 1 << 20

// hookRoutes registers the inbound hooks that trigger refreshes.
func (s *Server) hookRoutes() {
	if s.watcher == nil {
		return
	}
	s.router.Handle("/hooks/registry", s.handle("hook_registry", s.registryHook)).Methods(http.MethodPost)
	if s.subs != nil {
		s.router.Handle("/hooks/dockerhub/{token}", s.handle("hook_dockerhub", s.dockerHubHookHandler)).Methods(http.MethodPost)
	}
}

// hookAnswer is the 202 body of an inbound hook: what will be refreshed.
type hookAnswer struct {
	Refreshing []string `json:"refreshing"`
}

// registryHook answers POST /hooks/registry: a distribution registry's
// notification envelope, authenticated with --hook-token. Each manifest push
// queues a refresh of the pushed tag (or digest); the answer does not wait
// for it, so the registry's notification queue is never held up by a slow
// registry read.
func (s *Server) registryHook(w http.ResponseWriter, r *http.Request) error {
	if s.hookToken == "" {
		return errNoRoute // disabled without --hook-token
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
		return invalidRequest("the body could not be read or is larger than 1 MiB")
	}
	pushes, err := notify.ParseRegistryNotification(body)
	if err != nil {
		return subscriptionError(err)
	}
	return s.queueRefreshes(w, r, pushes)
}

// dockerHubHookHandler answers POST /hooks/dockerhub/{token}: a Docker Hub
// push webhook for the repository the token was made for.
func (s *Server) dockerHubHookHandler(w http.ResponseWriter, r *http.Request) error {
	repo, err := s.subs.DockerHubRepository(r.Context(), mux.Vars(r)["token"])
	if err != nil {
		return subscriptionError(err)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxHookBody))
	if err != nil {
		return invalidRequest("the body could not be read or is larger than 1 MiB")
	}
	ref, err := notify.ParseDockerHubPush(body)
	if err != nil {
		return subscriptionError(err)
	}
	if ref.Repository != repo {
		return &analysis.Error{Kind: errUnauthorized, Message: "this hook token is for another repository"}
	}
	return s.queueRefreshes(w, r, []notify.Push{{Ref: ref}})
}

func (s *Server) queueRefreshes(w http.ResponseWriter, r *http.Request, pushes []notify.Push) error {
	out := hookAnswer{Refreshing: []string{}}
	for _, p := range pushes {
		if s.watcher.Refresh(p.Ref, p.Digest) {
			out.Refreshing = append(out.Refreshing, p.Ref.String())
		} else {
			s.log.WarnContext(r.Context(), "hook: refresh queue full; the next poll will catch up", "image", p.Ref.String())
		}
	}
	writeJSON(w, http.StatusAccepted, out)
	return nil
}
