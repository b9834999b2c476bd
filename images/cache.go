package images

import (
	"container/list"
	"slices"
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
// their outdated state included) by reference, for plain reads. An answer
// depends on the tags of a few repositories: its own, and those its parent
// was chosen from and checked against. A tag move or a forgotten tag in one
// repository retires only the answers that read it; a newly indexed image or
// a new parent link may change any image's parent and retires every answer.
// So a busy repository whose tags move every second does not make every
// other image's answer be assembled again, and between changes a read costs
// one query (where the tag points) instead of a dozen.
//
// Changes are stamped from one counter. An answer remembers the counter as
// it was before it was assembled, so a change during the assembly (whose
// stamp is later) retires it too.
type answerMemo struct {
	clock atomic.Uint64
	mu    sync.Mutex
	max   int
	items map[string]memoEntry
	// all is the stamp of the last change that retires every answer; repos
	// holds each repository's last change, by Repository.String().
	all   uint64
	repos map[string]uint64
}

type memoEntry struct {
	digest string
	since  uint64   // the counter before the answer was assembled
	deps   []string // repositories whose tags the answer read
	rep    *analysis.Report
}

func newAnswerMemo(max int) *answerMemo {
	return &answerMemo{max: max, items: map[string]memoEntry{}, repos: map[string]uint64{}}
}

// start is read before an answer is assembled and given to put.
func (m *answerMemo) start() uint64 { return m.clock.Load() }

// changed retires every answer.
func (m *answerMemo) changed() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.all = m.clock.Add(1)
}

// changedRepo retires the answers that read repo's tags.
func (m *answerMemo) changedRepo(repo analysis.Repository) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.repos) >= m.max {
		// Forgetting stamps would revive answers; retire them all instead.
		clear(m.repos)
		m.all = m.clock.Add(1)
		return
	}
	m.repos[repo.String()] = m.clock.Add(1)
}

// get returns the answer for key while it is current, and the counter it
// was assembled after.
func (m *answerMemo) get(key, digest string) (rep *analysis.Report, since uint64, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.items[key]
	if !ok || e.digest != digest || m.all > e.since {
		return nil, 0, false
	}
	for _, d := range e.deps {
		if m.repos[d] > e.since {
			return nil, 0, false
		}
	}
	return e.rep, e.since, true
}

func (m *answerMemo) put(key, digest string, since uint64, deps []analysis.Repository, rep *analysis.Report) {
	names := make([]string, 0, len(deps))
	for _, d := range deps {
		if n := d.String(); !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.items) >= m.max {
		clear(m.items)
	}
	m.items[key] = memoEntry{digest: digest, since: since, deps: names, rep: rep}
}
