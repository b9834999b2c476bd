// Package costlru is a least-recently-used cache bounded both in entries
// and in the summed cost of its entries (their size in bytes, as the
// caller estimates it). The service's caches of reports, answers and
// encoded responses hold values whose sizes differ by four orders of
// magnitude (a one-layer image against a 64-platform index), so a bound
// in entries alone bounds nothing in bytes. hashicorp/golang-lru, which
// the other caches use, has no notion of cost, and wrapping it cannot keep
// a running total exact (replacing a key's value calls no eviction hook);
// this one is a map and a list under one lock.
package costlru

import (
	"container/list"
	"sync"
)

// Cache is an LRU bounded by MaxEntries and MaxCost. It is safe for
// concurrent use.
type Cache[K comparable, V any] struct {
	mu         sync.Mutex
	maxEntries int
	maxCost    int64
	cost       int64
	order      *list.List // front: most recently used
	items      map[K]*list.Element
}

type entry[K comparable, V any] struct {
	key   K
	value V
	cost  int64
}

// New returns a Cache holding at most maxEntries entries whose costs sum to
// at most maxCost. Both must be positive.
func New[K comparable, V any](maxEntries int, maxCost int64) *Cache[K, V] {
	if maxEntries < 1 || maxCost < 1 {
		panic("costlru: bounds must be positive")
	}
	return &Cache[K, V]{maxEntries: maxEntries, maxCost: maxCost, order: list.New(), items: map[K]*list.Element{}}
}

// Add keeps value under key at cost, replacing what key held, and evicts
// the least recently used entries until both bounds hold again. A value
// that costs more than the whole budget is not kept (and key's previous
// value is dropped), since keeping it would evict everything else for one
// entry. It reports whether value was kept.
func (c *Cache[K, V]) Add(key K, value V, cost int64) bool {
	cost = max(cost, 1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.removeLocked(el)
	}
	if cost > c.maxCost {
		return false
	}
	c.items[key] = c.order.PushFront(&entry[K, V]{key: key, value: value, cost: cost})
	c.cost += cost
	for c.order.Len() > c.maxEntries || c.cost > c.maxCost {
		c.removeLocked(c.order.Back())
	}
	return true
}

// Get returns key's value and marks it most recently used.
func (c *Cache[K, V]) Get(key K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		var zero V
		return zero, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*entry[K, V]).value, true
}

// Peek returns key's value without marking it used.
func (c *Cache[K, V]) Peek(key K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		var zero V
		return zero, false
	}
	return el.Value.(*entry[K, V]).value, true
}

// Contains reports whether key is held, without marking it used.
func (c *Cache[K, V]) Contains(key K) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.items[key]
	return ok
}

// Remove drops key, if held.
func (c *Cache[K, V]) Remove(key K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.removeLocked(el)
	}
}

// Len returns the number of entries held.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// Cost returns the summed cost of the entries held.
func (c *Cache[K, V]) Cost() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cost
}

func (c *Cache[K, V]) removeLocked(el *list.Element) {
	e := c.order.Remove(el).(*entry[K, V])
	delete(c.items, e.key)
	c.cost -= e.cost
}
