package registry

import (
	"context"
	"errors"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/imagebadger/imagebadger/analysis"
)

// Visibility tells whether what the service reads of ref's repository is
// open to anyone: it is, without a request, on a registry for which the
// keychain holds no credentials (the service reads it as anyone would).
// Otherwise one anonymous request asks, the manifest's HEAD for a tag or
// digest (a GET where the registry refuses HEAD), the first page of the tag
// list for a bare repository: served, the
// repository is public; refused (401, 403, or a registry that hides it
// with "not found", as some do for private repositories), private. Any
// other failure is an error: no verdict, so the caller keeps the
// repository hidden and asks again later.
func (c *Client) Visibility(ctx context.Context, ref analysis.Reference) (analysis.Visibility, error) {
	n, err := c.name(ref.Repository.WithTag("latest"))
	if err != nil {
		return "", analysis.Errorf(analysis.ErrInvalidReference, err, "%s is not a valid reference", ref)
	}
	if ref.Tag != "" || ref.Digest != "" {
		if n, err = c.name(ref); err != nil {
			return "", analysis.Errorf(analysis.ErrInvalidReference, err, "%s is not a valid reference", ref)
		}
	}
	auth, err := authn.Resolve(ctx, c.keychain, n.Context())
	if err != nil {
		return "", analysis.Errorf(analysis.ErrUpstream, err, "the credentials for registry %s could not be read", ref.Registry)
	}
	if auth == authn.Anonymous {
		return analysis.VisibilityPublic, nil
	}
	ctx, cancel := context.WithTimeout(c.tagged(ctx, ref.Registry, n), c.timeout)
	defer cancel()
	if ref.Tag != "" || ref.Digest != "" {
		_, err = c.anonymous.Head(ctx, n)
		if err != nil && !refusedAnonymously(err) && errors.Is(c.classify(ctx, err, n, ref.Registry, ref.String()), analysis.ErrUpstream) {
			// A registry that refuses HEAD on manifests (see Resolve) is
			// asked with GET.
			_, err = c.anonymous.Get(ctx, n)
		}
	} else {
		_, err = c.anonymous.Lister(ctx, n.Context())
	}
	if err == nil {
		return analysis.VisibilityPublic, nil
	}
	if refusedAnonymously(err) {
		return analysis.VisibilityPrivate, nil
	}
	return "", c.classify(ctx, err, n, ref.Registry, "an anonymous read of "+ref.String())
}

// refusedAnonymously reports whether err is a registry's refusal of a
// client without credentials: 401 or 403 (UNAUTHORIZED, DENIED), or "not
// found" for what the service found with its credentials.
func refusedAnonymously(err error) bool {
	var te *transport.Error
	if !errors.As(err, &te) {
		return false
	}
	switch te.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		return true
	}
	return hasCode(err, transport.UnauthorizedErrorCode) || hasCode(err, transport.DeniedErrorCode) ||
		hasCode(err, transport.NameUnknownErrorCode) || hasCode(err, transport.ManifestUnknownErrorCode)
}
