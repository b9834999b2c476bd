package analysis

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
)

// TagList is a repository's tags grouped by the digest they point at, the
// answer of GET /api/v1/repositories/{repository}/tags.
type TagList struct {
	Registry   string     `json:"registry"`
	Repository string     `json:"repository"`
	TagCount   int        `json:"tagCount"`
	CheckedAt  time.Time  `json:"checkedAt"`
	Groups     []TagGroup `json:"groups"`
}

// TagGroup is the set of tags that name one image.
type TagGroup struct {
	Digest    string   `json:"digest"`
	MediaType string   `json:"mediaType"`
	Tags      []string `json:"tags"`
	Platforms []string `json:"platforms"`
	// Created is the newest creation time among the platform images, used
	// to order groups newest first. Not in the JSON contract, but useful.
	Created *time.Time `json:"created,omitempty"`
}

// maxTags bounds how many tags of one repository are listed.
const maxTags = 10000

// ListTags lists every tag of repo, following the registry's pagination.
func (c *Client) ListTags(ctx context.Context, repo Repository) ([]string, error) {
	what := "tags of " + repo.Name
	var opts []name.Option
	if c.insecure[repo.Registry] {
		opts = append(opts, name.Insecure)
	}
	r, err := name.NewRepository(repo.String(), opts...)
	if err != nil {
		return nil, newError(ErrInvalidReference, err, "%s is not a valid repository", repo)
	}
	// Each page gets the request deadline; the whole listing gets one per
	// page it could plausibly need.
	ctx, cancel := context.WithTimeout(ctx, c.timeout*time.Duration(1+maxTags/listPageSize))
	defer cancel()
	lister, err := c.puller.Lister(ctx, r)
	if err != nil {
		return nil, classify(err, repo.Registry, what)
	}
	var tags []string
	for lister.HasNext() && len(tags) < maxTags {
		pctx, pcancel := context.WithTimeout(ctx, c.timeout)
		page, err := lister.Next(pctx)
		pcancel()
		if err != nil {
			return nil, classify(err, repo.Registry, what)
		}
		tags = append(tags, page.Tags...)
	}
	if len(tags) > maxTags {
		tags = tags[:maxTags]
	}
	slices.Sort(tags)
	return slices.Compact(tags), nil
}

// listPageSize is the page size asked of registries (n=1000).
const listPageSize = 1000

// SortTags orders tags the way people scan them: "latest" first, then
// longer (more specific) versions before shorter ones, then alphabetically.
func SortTags(tags []string) {
	slices.SortFunc(tags, func(a, b string) int {
		switch {
		case a == b:
			return 0
		case a == "latest":
			return -1
		case b == "latest":
			return 1
		}
		return strings.Compare(a, b)
	})
}

// LatestVersion is MicroBadger's "version" of an image: the longest tag
// other than latest among those sharing its digest ("2.7.13-slim" over
// "2-slim"), ties to the greatest ("3.20" over "3.19"). The version badge,
// the base badge and the MicroBadger-compatible API all use it.
func LatestVersion(tags []string) string {
	best := ""
	for _, t := range tags {
		if t == "latest" {
			continue
		}
		if len(t) > len(best) || (len(t) == len(best) && t > best) {
			best = t
		}
	}
	return best
}
