package badge

import (
	"container/list"
	"sync"
)

// Key identifies a rendered badge: the kind, the platform image it describes
// (digest and platform) and everything else its texts depend on, which the
// Badge itself carries (tags for a version from tags, the parent's tag and
// outdated state for a base). Equal keys always render to equal bytes.
type Key struct {
	Kind     Kind
	Digest   string
	Platform string
	Badge    Badge
}

// Cache keeps rendered badges in memory, least recently used first out, so
// that a popular badge is drawn once and then served as stored bytes.
type Cache struct {
	mu    sync.Mutex
	max   int
	order *list.List // front is most recent; values are *entry
	items map[Key]*list.Element
}

type entry struct {
	key Key
	r   Rendered
}

// NewCache returns a Cache holding at most max badges (at least 1). A badge
// is about 1.2 kB, so 4096 entries take about 5 MB.
func NewCache(max int) *Cache {
	if max < 1 {
		max = 1
	}
	return &Cache{max: max, order: list.New(), items: make(map[Key]*list.Element)}
}

// Get returns the badge of k, rendering and storing it if it is not cached.
// Rendering happens outside the lock; two concurrent misses of one key both
// render, which is cheaper than making either wait.
func (c *Cache) Get(k Key) Rendered {
	c.mu.Lock()
	if e, ok := c.items[k]; ok {
		c.order.MoveToFront(e)
		r := e.Value.(*entry).r
		c.mu.Unlock()
		return r
	}
	c.mu.Unlock()
	r := Render(k.Badge)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*entry).r
	}
	c.items[k] = c.order.PushFront(&entry{key: k, r: r})
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*entry).key)
	}
	return r
}

// Len returns the number of badges held.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
