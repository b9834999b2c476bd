package images

import (
	"container/list"
	"sync"
	"sync/atomic"

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

// answerMemo keeps finished answers (tags sharing the digest, parents and
// their outdated state included) by reference, for plain reads: what makes
// them change is a recorded tag move, a newly indexed image, a new parent
// link or a forgotten tag, and each of those bumps the generation, which
// retires every answer at once. Between such events a read costs one query
// (where the tag points) instead of a dozen.
type answerMemo struct {
	gen   atomic.Uint64
	mu    sync.Mutex
	max   int
	items map[string]memoEntry
}

type memoEntry struct {
	digest string
	gen    uint64
	rep    *analysis.Report
}

func newAnswerMemo(max int) *answerMemo {
	return &answerMemo{max: max, items: map[string]memoEntry{}}
}

// generation is read before an answer is computed, so an event during the
// computation retires that answer too.
func (m *answerMemo) generation() uint64 { return m.gen.Load() }

// changed retires every answer.
func (m *answerMemo) changed() { m.gen.Add(1) }

func (m *answerMemo) get(key, digest string, gen uint64) (*analysis.Report, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.items[key]
	if !ok || e.gen != gen || e.digest != digest {
		return nil, false
	}
	return e.rep, true
}

func (m *answerMemo) put(key, digest string, gen uint64, rep *analysis.Report) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.items) >= m.max {
		clear(m.items)
	}
	m.items[key] = memoEntry{digest: digest, gen: gen, rep: rep}
}
