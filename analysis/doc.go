// Package analysis is imagebadger's domain: what an image is, as the
// service reports it, and the pure work done on it. It turns what a
// registry answered (manifests, indexes and configs as bytes) into a
// Report: per platform, the layers with their sizes and the command that
// made each, the labels and annotations read as version, source and the
// like (Label Schema, OCI and Docker alike), and the parent found by layer
// prefix. It also parses references as `docker pull` does, groups tags by
// digest, computes chain IDs and the parent index they are matched in,
// diffs two images, and says what a base check (is the image built on its
// base as it is now?) concludes.
//
// Everything here is a function of its arguments: no I/O, no clock, no
// global state, nothing of the network (a test holds it to net/http and the
// registry client staying out). That is what lets the service's read path,
// its notifications, the command line and the fuzz targets share one
// definition of a report, and what makes the package the place to start
// reading: registry fetches, images decides when, server shows.
//
// Errors carry a kind (ErrNotFound, ErrInvalidReference, ErrUpstream, …)
// checked with errors.Is, and a message fit for a person (PublicMessage);
// the server alone turns kinds into status codes.
package analysis
