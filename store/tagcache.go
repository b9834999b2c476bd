package store

import (
	"fmt"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/imagebadger/imagebadger/analysis"
)

// tagCache keeps rows of the tags table in memory for Tag, the read every
// plain image read and badge makes, so that a busy page costs no query at
// all between changes.
//
// It follows the one cache rule (see stamps.go): an entry is kept with the
// stamp its repository had before the row was read, and answers only while
// that stamp is unchanged. A move, a new tag or a deleted tag bumps the
// stamp, so whatever was read before it misses and reads the database
// again. Writers of this store also put what they committed (write
// through), with the stamp their transaction gave or, for a check that
// moved nothing, the stamp read before it; a reader racing a writer can
// only ever leave an entry whose stamp is already out of date.
type tagCache struct {
	items *lru.Cache[tagKey, tagEntry]
}

type tagKey struct{ registry, repository, tag string }

type tagEntry struct {
	stamp Stamp
	state TagState
	// missing marks a tag without a row: never known, or deleted (gone).
	missing bool
	gone    *analysis.TagDeleted
}

// answer is what Tag answers for the entry.
func (e tagEntry) answer(repo analysis.Repository, tag string) (TagState, error) {
	switch {
	case e.gone != nil:
		return TagState{}, analysis.NewTagDeleted(*e.gone)
	case e.missing:
		return TagState{}, fmt.Errorf("store: tag %s:%s: %w", repo, tag, analysis.ErrNotFound)
	}
	return e.state, nil
}

// tagCacheSize bounds the rows kept (about 200 bytes each).
const tagCacheSize = 100_000

func newTagCache(size int) *tagCache {
	c, err := lru.New[tagKey, tagEntry](size)
	if err != nil {
		panic(err) // only for a size below 1
	}
	return &tagCache{items: c}
}

func keyOf(repo analysis.Repository, tag string) tagKey {
	return tagKey{repo.Registry, repo.Name, tag}
}

// get returns the cached entry while it is current at stamp.
func (c *tagCache) get(k tagKey, current Stamp) (tagEntry, bool) {
	e, ok := c.items.Get(k)
	if !ok || e.stamp != current {
		return tagEntry{}, false
	}
	return e, true
}

// put keeps an entry as of stamp.
func (c *tagCache) put(k tagKey, e tagEntry, stamp Stamp) {
	e.stamp = stamp
	c.items.Add(k, e)
}
