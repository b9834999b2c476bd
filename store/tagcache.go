package store

import (
	"sync"

	"imagebadger/analysis"
)

// tagCache keeps rows of the tags table in memory for Tag, the read every
// plain image read and badge makes. Every write of the table goes through
// this Store (RecordTag, ForgetTags), which updates the cache after it
// commits, so between start-up and the first read of a tag the database is
// asked once and never again: a busy page then costs no query at all.
//
// Two rules keep it equal to the table. Writers hold writeMu from their
// transaction until the cache is updated, so writes to one tag land in the
// cache in the order they were committed. A reader that missed fills the
// cache only if no write happened since before its query (seq unchanged),
// so a row read before a commit never replaces what the commit wrote.
type tagCache struct {
	writeMu sync.Mutex // held by writers across commit and update

	mu    sync.Mutex
	seq   uint64 // counts updates by writers
	max   int
	items map[tagKey]TagState
}

type tagKey struct{ registry, repository, tag string }

func newTagCache(max int) *tagCache {
	return &tagCache{max: max, items: map[tagKey]TagState{}}
}

func keyOf(repo analysis.Repository, tag string) tagKey {
	return tagKey{repo.Registry, repo.Name, tag}
}

// get returns the cached state, or the sequence number to give fill after
// reading the row from the database.
func (c *tagCache) get(k tagKey) (st TagState, ok bool, seq uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok = c.items[k]
	return st, ok, c.seq
}

// fill caches a row read from the database, unless a writer has updated
// the cache since seq was read.
func (c *tagCache) fill(k tagKey, st TagState, seq uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seq != seq {
		return
	}
	c.bound()
	c.items[k] = st
}

// set records what a writer committed.
func (c *tagCache) set(k tagKey, st TagState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	c.bound()
	c.items[k] = st
}

// forget records that a writer deleted the rows.
func (c *tagCache) forget(ks []tagKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	for _, k := range ks {
		delete(c.items, k)
	}
}

// bound keeps the cache within max rows; forgetting rows is always safe, as
// a miss reads the database.
func (c *tagCache) bound() {
	if len(c.items) >= c.max {
		clear(c.items)
	}
}
