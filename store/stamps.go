package store

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/imagebadger/imagebadger/analysis"
)

// Change stamps are the one rule by which every in-memory cache of the
// service is kept true (docs/DESIGN.md, "Caches"). A scope is what a change can
// affect: one repository's tags (RepositoryScope), or the set of known
// platform images that parents are chosen from (IndexScope). Every write
// that changes a scope takes the next number of one global sequence, in the
// transaction that makes the change, and records it as the scope's stamp in
// the change_stamps table; once the transaction has committed, the store's
// in-memory copy follows.
//
// What is made from a scope remembers the stamp the scope had before it was
// read; it is current exactly while the stamp is unchanged. Content
// addressed by digest needs no stamp at all. Because the sequence is global
// and only grows, "what changed since N" is one query, which is how another
// process sharing the database catches up (the PostgreSQL store publishes
// each new stamp with NOTIFY as well).

// Scope names what a change stamp versions.
type Scope string

// IndexScope is the set of known platform images: a new one may become the
// parent of any image, so every answer that chose a parent depends on it.
const IndexScope Scope = "index"

// RepositoryScope is the scope of repo's tags: where they point, which exist.
func RepositoryScope(repo analysis.Repository) Scope { return Scope("repo:" + repo.String()) }

// Stamp is a scope's version as of the read: 0 for a scope never changed.
type Stamp uint64

// stamps is the in-memory copy of the change_stamps table. It holds every
// scope that changed since the database was created (one entry per
// repository ever changed), read once at Open.
type stamps struct {
	// next gives out stamps. It is advanced when a stamp is taken, before
	// the transaction commits, so two transactions never share one (a
	// rolled-back transaction leaves a gap, which is harmless).
	next atomic.Uint64
	mu   sync.RWMutex
	by   map[Scope]Stamp
	// watchers are told of stamps learnt from other processes.
	watchers []func(Scope, Stamp)
	// logged are told of every new stamp of ChangeLogScope, this
	// process's and others'.
	logged []func()
}

// changeLogged calls the logged listeners.
func (s *stamps) changeLogged() {
	s.mu.RLock()
	logged := s.logged
	s.mu.RUnlock()
	for _, fn := range logged {
		fn()
	}
}

func (s *stamps) get(scope Scope) Stamp {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.by[scope]
}

// learn records stamps committed by this or another process; an older
// stamp than the one known never replaces it.
func (s *stamps) learn(scope Scope, st Stamp) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st > s.by[scope] {
		s.by[scope] = st
	}
	for {
		n := s.next.Load()
		if n >= uint64(st) || s.next.CompareAndSwap(n, uint64(st)) {
			return
		}
	}
}

// catchUp learns the stamps newer than since, committed by any process,
// and returns the highest it read.
func (s *Store) catchUp(ctx context.Context, since Stamp) (Stamp, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT scope, stamp FROM change_stamps WHERE stamp > ?`, int64(since))
	if err != nil {
		return 0, fmt.Errorf("store: catch up change stamps: %w", err)
	}
	defer rows.Close()
	high := since
	for rows.Next() {
		var scope string
		var st int64
		if err := rows.Scan(&scope, &st); err != nil {
			return 0, fmt.Errorf("store: catch up change stamps: %w", err)
		}
		s.learnExternal(Scope(scope), Stamp(st))
		high = max(high, Stamp(st))
	}
	return high, rows.Err()
}

// learnExternal learns a stamp committed by another process (or read back
// from the database) and tells the store's watchers when it is news.
func (s *Store) learnExternal(scope Scope, st Stamp) {
	if s.stamps.get(scope) >= st {
		return
	}
	s.stamps.learn(scope, st)
	s.stamps.mu.RLock()
	watchers := s.stamps.watchers
	s.stamps.mu.RUnlock()
	for _, w := range watchers {
		w(scope, st)
	}
	if scope == ChangeLogScope {
		s.stamps.changeLogged()
	}
}

// OnExternalChange registers fn to be told of every change another process
// sharing the database commits, after the store's own caches have followed
// it: the parent index of images learns other processes' new platform
// images this way. fn must not block.
func (s *Store) OnExternalChange(fn func(Scope, Stamp)) {
	s.stamps.mu.Lock()
	defer s.stamps.mu.Unlock()
	s.stamps.watchers = append(s.stamps.watchers, fn)
}

// OnChangeLogged registers fn to be called whenever changes are logged: by
// this process once their transaction has committed, by another sharing
// the database once its stamp is learnt. notify's fan-out is woken this way.
// fn must not block.
func (s *Store) OnChangeLogged(fn func()) {
	s.stamps.mu.Lock()
	defer s.stamps.mu.Unlock()
	s.stamps.logged = append(s.stamps.logged, fn)
}

// Stamp returns scope's current change stamp. Caches read it before they
// read what they keep, and keep it with what they made.
func (s *Store) Stamp(scope Scope) Stamp { return s.stamps.get(scope) }

// loadStamps reads the change_stamps table into memory at Open.
func (s *Store) loadStamps(ctx context.Context) error {
	rows, err := s.write.QueryContext(ctx, `SELECT scope, stamp FROM change_stamps`)
	if err != nil {
		return fmt.Errorf("store: load change stamps: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var scope string
		var st int64
		if err := rows.Scan(&scope, &st); err != nil {
			return fmt.Errorf("store: load change stamps: %w", err)
		}
		s.stamps.learn(Scope(scope), Stamp(st))
	}
	return rows.Err()
}

// bump gives each scope the next stamp of the sequence inside tx, scopes in
// a fixed order (PostgreSQL locks each scope's row until the commit, so
// every transaction takes them in the same order). Once tx has committed,
// pass what it returns to publish.
func (s *Store) bump(ctx context.Context, t *tx, scopes ...Scope) (map[Scope]Stamp, error) {
	sorted := slices.Clone(scopes)
	slices.Sort(sorted)
	return s.engine.bump(ctx, s, t, slices.Compact(sorted))
}

// publish makes committed stamps current in memory, and tells the
// listeners of the change log when it grew.
func (s *Store) publish(given map[Scope]Stamp) {
	for sc, st := range given {
		s.stamps.learn(sc, st)
	}
	if _, ok := given[ChangeLogScope]; ok {
		s.stamps.changeLogged()
	}
}
