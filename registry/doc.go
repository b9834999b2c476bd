// Package registry is everything that talks to registries: a client built
// on go-containerregistry's remote package that resolves a tag with one
// HEAD, fetches manifests, indexes and configs by digest (each verified
// against its digest and bounded in size), lists tags across pages, and
// answers Docker Hub's web API for repository facts and bulk listings.
//
// It is where the network's rules are kept, so no caller has to remember
// them: every dial goes through the transport it is given (netguard's, which
// refuses forbidden addresses at connect time, token realms and redirects
// included); credentials come from the Docker config; each registry host has
// a bound on requests in flight; a 429 and its Retry-After, and the rate-limit
// budgets registries announce, hold every further request to that registry
// rather than retrying into it; and a Polling client leaves the last part of
// a known budget to the reads people ask for. Errors are classified into
// analysis's kinds with messages that say what to do (the flag that allows a
// private registry, the missing credentials, whether the repository or the
// tag is missing, why a registry cannot be reached).
//
// The Inspector assembles a digest-level analysis.Report from what a
// Content store already holds and what it must fetch, so that content
// addressed by digest is fetched once, ever.
package registry
