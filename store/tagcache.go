package store

import (
	lru "github.com/hashicorp/golang-lru/v2"

	"imagebadger/analysis"
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

// get returns the cached row while it is current at stamp.
func (c *tagCache) get(k tagKey, current Stamp) (TagState, bool) {
	e, ok := c.items.Get(k)
	if !ok || e.stamp != current {
		return TagState{}, false
	}
	return e.state, true
}

// put keeps a row as of stamp.
func (c *tagCache) put(k tagKey, st TagState, stamp Stamp) {
	c.items.Add(k, tagEntry{stamp: stamp, state: st})
}
