package analysis

import (
	"slices"
	"strings"
	"time"
)

// TagList is a repository's tags grouped by the digest they point at, the
// answer of GET /api/v1/repositories/{repository}/tags.
type TagList struct {
	Registry   string     `json:"registry"`
	Repository string     `json:"repository"`
	TagCount   int        `json:"tagCount"`
	CheckedAt  time.Time  `json:"checkedAt"`
	Groups     []TagGroup `json:"groups"`
	// Complete is false when the last listing left tags of the registry
	// unrecorded (Incomplete says why): its pages were cut short, or the
	// repository has more tags than the service records.
	Complete   bool   `json:"complete"`
	Incomplete string `json:"incomplete,omitempty"`
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

// LongestTag is LatestVersion, or "latest" when that is the only tag: the
// name MicroBadger gave an image (its LatestVersion) and the base badge
// shows.
func LongestTag(tags []string) string {
	if best := LatestVersion(tags); best != "" {
		return best
	}
	if slices.Contains(tags, "latest") {
		return "latest"
	}
	return ""
}
