package images

import (
	"container/list"
	"sync"

	"imagebadger/analysis"
)

// reportCache keeps the most recently used reports by image, bounded in
// entries. Reports of an image by digest never change, so entries are never
// stale, only evicted.
type reportCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // front is most recent; values are *cacheEntry
	items map[string]*list.Element
}

type cacheEntry struct {
	key string
	rep *analysis.Report
}

func newReportCache(max int) *reportCache {
	return &reportCache{max: max, order: list.New(), items: map[string]*list.Element{}}
}

func (c *reportCache) get(key string) (*analysis.Report, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[key]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*cacheEntry).rep, true
}

func (c *reportCache) put(key string, rep *analysis.Report) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[key]; ok {
		c.order.MoveToFront(e)
		return
	}
	c.items[key] = c.order.PushFront(&cacheEntry{key, rep})
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*cacheEntry).key)
	}
}
