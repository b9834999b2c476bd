package registry

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// PollReserve is the share of a registry's known rate-limit budget that
// background polling leaves to the reads people ask for: a poll is refused
// once no more than this share remains.
const PollReserve = 0.2

// pollProbeEvery is how often, while a budget is low, one poll HEAD may go
// through anyway: on Docker Hub a HEAD is not counted and its answer says
// whether the budget has come back, which nothing else would tell a service
// that has stopped asking.
const pollProbeEvery = time.Minute

// Budget is what a registry last said of its rate limit, in the
// RateLimit-Limit and RateLimit-Remaining headers of its answers (Docker
// Hub's form is "100;w=21600": 100 pulls per 21,600 seconds).
type Budget struct {
	// Registry is the registry's name as references write it (docker.io).
	Registry string
	// Limit and Remaining are the headers' leading numbers.
	Limit, Remaining int
	// Window is the w= parameter, zero when absent.
	Window time.Duration
	// Observed is when the answer carrying them arrived.
	Observed time.Time
}

// Low reports whether no more than PollReserve of the budget is left: the
// point where polling stops and pages warn.
func (b Budget) Low() bool {
	return b.Limit > 0 && float64(b.Remaining) <= PollReserve*float64(b.Limit)
}

// maxBudgets bounds how many registries' budgets are remembered; past it
// the one observed longest ago is forgotten.
const maxBudgets = 1024

// budgets keeps the latest Budget of each registry that sends one.
type budgets struct {
	mu sync.Mutex
	by map[string]Budget
	// probed is when a poll last went through a low budget, per registry.
	probed map[string]time.Time
}

func newBudgets() *budgets {
	return &budgets{by: map[string]Budget{}, probed: map[string]time.Time{}}
}

// observe records the rate-limit headers of one answer, if it has them.
func (bs *budgets) observe(registry string, h http.Header, now time.Time) {
	limit, window := parseRateLimit(h.Get("RateLimit-Limit"))
	remaining, _ := parseRateLimit(h.Get("RateLimit-Remaining"))
	if limit < 0 || remaining < 0 {
		return
	}
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if _, ok := bs.by[registry]; !ok && len(bs.by) >= maxBudgets {
		oldest := ""
		for k, b := range bs.by {
			if oldest == "" || b.Observed.Before(bs.by[oldest].Observed) {
				oldest = k
			}
		}
		delete(bs.by, oldest)
		delete(bs.probed, oldest)
	}
	bs.by[registry] = Budget{Registry: registry, Limit: limit, Remaining: min(remaining, limit), Window: window, Observed: now}
}

// allowPoll reports whether a background poll may send req to registry now:
// yes while the budget is unknown or above the reserve; while it is low,
// only a HEAD once per pollProbeEvery, and never a GET.
func (bs *budgets) allowPoll(registry, method string, now time.Time) (Budget, bool) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	b, ok := bs.by[registry]
	if !ok || !b.Low() {
		return b, true
	}
	if b.Window > 0 && now.Sub(b.Observed) >= b.Window {
		// A whole window has passed since: whatever was spent is back.
		delete(bs.by, registry)
		return b, true
	}
	if method == http.MethodHead && now.Sub(bs.probed[registry]) >= pollProbeEvery && now.Sub(b.Observed) >= pollProbeEvery {
		bs.probed[registry] = now
		return b, true
	}
	return b, false
}

// list returns every known budget, sorted by registry.
func (bs *budgets) list() []Budget {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	out := make([]Budget, 0, len(bs.by))
	for _, b := range bs.by {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b Budget) int { return strings.Compare(a.Registry, b.Registry) })
	return out
}

func (bs *budgets) get(registry string) (Budget, bool) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	b, ok := bs.by[registry]
	return b, ok
}

// parseRateLimit reads "100;w=21600" (or "100"): the number, and the
// window when given; -1 when the value is absent or malformed.
func parseRateLimit(v string) (int, time.Duration) {
	v = strings.TrimSpace(v)
	if v == "" {
		return -1, 0
	}
	num, params, _ := strings.Cut(v, ";")
	n, err := strconv.Atoi(strings.TrimSpace(num))
	if err != nil || n < 0 || n > 1<<30 {
		return -1, 0
	}
	var window time.Duration
	for _, p := range strings.Split(params, ";") {
		k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || !strings.EqualFold(k, "w") {
			continue
		}
		if s, err := strconv.Atoi(val); err == nil && s > 0 && s <= 366*24*3600 {
			window = time.Duration(s) * time.Second
		}
	}
	return n, window
}
