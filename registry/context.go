package registry

import "context"

// requestKey carries, on the context of every request the client makes, which
// registry the request is on behalf of. go-containerregistry passes the
// caller's context down to every hop (the ping, the token realm, redirects), so
// the transports below it can tell a registry's own requests from those it
// sent elsewhere, and count budgets per registry as people name them.
type requestKey struct{}

type requestInfo struct {
	// registry is the name in references ("docker.io", "ghcr.io").
	registry string
	// host is the host:port actually dialled for it (an Endpoints mapping,
	// or go-containerregistry's own, index.docker.io for docker.io).
	host string
	// poll marks a background poll, which must leave the last part of a
	// known rate-limit budget to reads people asked for.
	poll bool
	// maxBody, when set, bounds this request's response bodies instead of
	// the manifest limit: a layer blob's declared size.
	maxBody int64
	// absent is a tag the caller knows the repository lacks (from its tag
	// list): a manifest request for it is answered 404 without asking the
	// registry. go-containerregistry reads the referrers fallback tag after
	// a referrers API that is missing; when the listing shows no such tag,
	// that request would only cost a round trip.
	absent string
	// fellBack, when set, is told that the absent tag was asked for: the
	// referrers API was missing and go-containerregistry fell back to it.
	fellBack *bool
	// listing, on a tag listing's requests, watches its pages (listGuard).
	listing *listGuard
}

func withRequest(ctx context.Context, info requestInfo) context.Context {
	return context.WithValue(ctx, requestKey{}, info)
}

func requestOf(ctx context.Context) (requestInfo, bool) {
	info, ok := ctx.Value(requestKey{}).(requestInfo)
	return info, ok
}
