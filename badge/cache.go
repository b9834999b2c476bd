package badge

import (
	lru "github.com/hashicorp/golang-lru/v2"
)

// Key identifies a rendered badge: the kind, the platform image it describes
// (digest and platform) and everything else its texts depend on, which the
// Badge itself carries (tags for a version from tags, the parent's tag and
// outdated state for a base). Equal keys always render to equal bytes, so a
// kept badge is never out of date: it is retired only by the bound.
type Key struct {
	Kind     Kind
	Digest   string
	Platform string
	Badge    Badge
}

// Cache keeps rendered badges in memory, least recently used first out
// (hashicorp/golang-lru, as every cache of the service), so that a popular
// badge is drawn once and then served as stored bytes.
type Cache struct {
	kept *lru.Cache[Key, Rendered]
}

// NewCache returns a Cache holding at most size badges (at least 1). A badge
// is about 1.2 kB, so 4096 entries take about 5 MB.
func NewCache(size int) *Cache {
	kept, err := lru.New[Key, Rendered](max(1, size))
	if err != nil {
		panic(err) // only for a size below 1
	}
	return &Cache{kept: kept}
}

// Get returns the badge of k, rendering and storing it if it is not cached.
// Two concurrent misses of one key both render, which is cheaper than making
// either wait.
func (c *Cache) Get(k Key) Rendered {
	if r, ok := c.kept.Get(k); ok {
		return r
	}
	r := Render(k.Badge)
	c.kept.Add(k, r)
	return r
}

// Len returns the number of badges held.
func (c *Cache) Len() int { return c.kept.Len() }
