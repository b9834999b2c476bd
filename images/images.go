// Package images is the read flow of DESIGN.md shared by the pages, the JSON
// API, the badges and the command line: resolve a reference (a HEAD at most),
// fetch only content never seen, record what was learnt, find parents, and
// assemble the report from the store.
package images

import (
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"imagebadger/analysis"
	"imagebadger/store"
)

// Config holds a Service's collaborators.
type Config struct {
	Client *analysis.Client
	Store  *store.Store
	// FreshFor is how long a stored tag resolution is trusted without asking
	// the registry again (the poll interval).
	FreshFor time.Duration
	// Events, when set, turns each tag move into events stored with it.
	Events EventBuilder
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service answers image reports.
type Service struct {
	inspector *analysis.Inspector
	client    *analysis.Client
	store     *store.Store
	freshFor  time.Duration
	events    EventBuilder
	now       func() time.Time
	flight    singleflight.Group
	index     *analysis.ParentIndex
	reports   *reportCache
	answers   *answerMemo

	mu       sync.Mutex
	recorded map[string]bool           // top-level images whose platforms are stored
	links    map[store.ParentLink]bool // parent links already stored
}

// New returns a Service. Call LoadIndex before serving so parents found in
// earlier runs are known.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{
		inspector: analysis.NewInspector(cfg.Client, cfg.Store),
		client:    cfg.Client,
		store:     cfg.Store,
		freshFor:  cfg.FreshFor,
		events:    cfg.Events,
		now:       cfg.Now,
		index:     analysis.NewParentIndex(),
		reports:   newReportCache(4096),
		answers:   newAnswerMemo(4096),
		recorded:  map[string]bool{},
		links:     map[store.ParentLink]bool{},
	}
}

// Image returns the report for ref. With refresh, a tag is re-resolved
// against the registry (one HEAD) even if its stored resolution is fresh.
// Concurrent calls for the same reference share one resolution.
func (s *Service) Image(ctx context.Context, ref analysis.Reference, refresh bool) (*analysis.Report, error) {
	r, err := s.resolve(ctx, ref, refresh)
	if err != nil {
		return nil, err
	}
	rep, _, err := s.finish(ctx, ref, r.rep, r.checked)
	return rep, err
}

// Check re-resolves ref's tag and records what it finds (a move with its
// events), without assembling an answer: what a tag listing or a poll needs,
// at a fraction of the cost of Image, which also finds parents and tags.
func (s *Service) Check(ctx context.Context, ref analysis.Reference) error {
	r, err := s.resolve(ctx, ref, true)
	if err != nil || !r.moved {
		return err
	}
	// A tag new or moved points at an image whose parents may never have been
	// looked for: record them, so a later move of its base finds it as a child.
	_, err = s.attachParents(ctx, ref.Repository, r.rep.Clone())
	return err
}

// resolved is the shared, digest-level report a reference resolved to, and
// when its tag was last checked.
type resolved struct {
	rep     *analysis.Report
	checked time.Time
	moved   bool // the tag was seen for the first time, or moved
}

// resolve shares one resolution among concurrent callers for a reference.
func (s *Service) resolve(ctx context.Context, ref analysis.Reference, refresh bool) (resolved, error) {
	key := ref.String()
	if refresh {
		key += "\x00refresh"
	}
	v, err, _ := s.flight.Do(key, func() (any, error) {
		// The first caller's cancellation must not fail the others.
		return s.resolveOnce(context.WithoutCancel(ctx), ref, refresh)
	})
	if err != nil {
		return resolved{}, err
	}
	return v.(resolved), nil
}

func (s *Service) resolveOnce(ctx context.Context, ref analysis.Reference, refresh bool) (resolved, error) {
	var (
		rep     *analysis.Report
		err     error
		moved   bool
		checked = s.now()
	)
	switch {
	case ref.Digest != "":
		if rep, err = s.cachedReport(ctx, ref); err != nil {
			return resolved{}, err
		}
		if err := s.store.RecordImage(ctx, ref.Repository, analysis.Descriptor{Digest: rep.Digest, MediaType: rep.MediaType}, checked); err != nil {
			return resolved{}, err
		}
	default:
		st, serr := s.store.Tag(ctx, ref.Repository, ref.Tag)
		if serr != nil && !errors.Is(serr, analysis.ErrNotFound) {
			return resolved{}, serr
		}
		if serr == nil && !refresh && checked.Sub(st.Checked) < s.freshFor {
			checked = st.Checked
			if rep, err = s.cachedReport(ctx, ref.Repository.WithDigest(st.Digest)); err != nil {
				return resolved{}, err
			}
			break
		}
		desc, body, err := s.client.Resolve(ctx, ref)
		if err != nil {
			return resolved{}, err
		}
		if body != nil {
			if err := s.store.PutManifest(ctx, desc.Digest, desc.MediaType, body); err != nil {
				return resolved{}, err
			}
		}
		if rep, err = s.cachedReport(ctx, ref.Repository.WithDigest(desc.Digest)); err != nil {
			return resolved{}, err
		}
		// Content and platforms first: a tag is recorded only once its image
		// could be reported and indexed, so a move's consequences are known.
		if err := s.indexReport(ctx, ref.Repository, rep); err != nil {
			return resolved{}, err
		}
		if moved, err = s.recordTag(ctx, ref, st.Digest, rep, checked); err != nil {
			return resolved{}, err
		}
	}
	if err := s.indexReport(ctx, ref.Repository, rep); err != nil {
		return resolved{}, err
	}
	return resolved{rep: rep, checked: checked, moved: moved}, nil
}

// finish turns the shared, digest-level report into the answer for ref: its
// own copy with the reference, the tags now sharing the digest, the parents
// as they stand, and when the tag was checked. read lists the repositories
// whose tags the answer was made from (ref's own and its parents').
func (s *Service) finish(ctx context.Context, ref analysis.Reference, shared *analysis.Report, checked time.Time) (rep *analysis.Report, read []analysis.Repository, err error) {
	rep = shared.Clone()
	rep.Reference, rep.Tag = ref.String(), ref.Tag
	if rep.Tags, err = s.store.TagsAt(ctx, ref.Repository, rep.Digest); err != nil {
		return nil, nil, err
	}
	analysis.SortTags(rep.Tags)
	if read, err = s.attachParents(ctx, ref.Repository, rep); err != nil {
		return nil, nil, err
	}
	rep.CheckedAt = checked.UTC().Truncate(time.Second)
	return rep, append(read, ref.Repository), nil
}

// cachedReport returns the report of the image ref.Digest, assembled from
// the store (fetching only missing content) and kept in memory: content by
// digest never changes, so neither does this part of the report. The result
// is shared; callers clone before changing it.
func (s *Service) cachedReport(ctx context.Context, ref analysis.Reference) (*analysis.Report, error) {
	key := ref.Repository.WithDigest(ref.Digest).String()
	if rep, ok := s.reports.get(key); ok {
		return rep, nil
	}
	// Tags that share a digest are resolved concurrently; fetch it once.
	v, err, _ := s.flight.Do("report\x00"+key, func() (any, error) {
		return s.assemble(context.WithoutCancel(ctx), ref, key)
	})
	if err != nil {
		return nil, err
	}
	return v.(*analysis.Report), nil
}

func (s *Service) assemble(ctx context.Context, ref analysis.Reference, key string) (*analysis.Report, error) {
	if rep, ok := s.reports.get(key); ok {
		return rep, nil
	}
	mt, _, err := s.store.Manifest(ctx, ref.Digest)
	if errors.Is(err, analysis.ErrNotFound) {
		var body []byte
		if mt, body, err = s.client.Manifest(ctx, ref.Repository, ref.Digest); err == nil {
			err = s.store.PutManifest(ctx, ref.Digest, mt, body)
		}
	}
	if err != nil {
		return nil, err
	}
	rep, err := s.inspector.Report(ctx, ref.Repository.WithDigest(ref.Digest), analysis.Descriptor{Digest: ref.Digest, MediaType: mt}, nil)
	if err != nil {
		return nil, err
	}
	s.reports.put(key, rep)
	return rep, nil
}

// recordTag stores a resolution of ref's tag to rep.Digest; known is the
// digest the store held before (""), used to prepare the move's events
// outside the transaction.
func (s *Service) recordTag(ctx context.Context, ref analysis.Reference, known string, rep *analysis.Report, at time.Time) (moved bool, err error) {
	desc := analysis.Descriptor{Digest: rep.Digest, MediaType: rep.MediaType}
	var change *Change
	if s.events != nil && known != rep.Digest {
		c, err := s.change(ctx, ref, known, rep, at)
		if err != nil {
			return false, err
		}
		change = &c
	}
	events := func(previous string) ([]store.Event, error) {
		if change == nil {
			return nil, nil
		}
		if previous != change.Previous {
			// Another writer moved the tag in between; report the move as seen
			// from the store, conservatively as a change of platforms.
			change.Previous, change.PlatformsChanged, change.Outdated = previous, true, nil
		}
		return s.events.Events(*change)
	}
	check, err := s.store.RecordTag(ctx, ref.Repository, ref.Tag, desc, at, events)
	if check.Moved {
		s.answers.changedRepo(ref.Repository)
	}
	return check.Moved, err
}

// change prepares the description of a move from previous to rep.
func (s *Service) change(ctx context.Context, ref analysis.Reference, previous string, rep *analysis.Report, at time.Time) (Change, error) {
	c := Change{Repo: ref.Repository, Tag: ref.Tag, Previous: previous, Current: rep.Digest, At: at, Report: rep, PlatformsChanged: true}
	if previous == "" {
		return c, nil
	}
	if prev, err := s.cachedReport(ctx, ref.Repository.WithDigest(previous)); err == nil {
		old := make(map[string]bool, len(prev.Platforms))
		for _, p := range prev.Platforms {
			old[p.Digest] = true
		}
		c.PlatformsChanged = false
		for _, p := range rep.Platforms {
			if !old[p.Digest] {
				c.PlatformsChanged = true
			}
		}
	}
	outdated, err := s.outdatedChildren(ctx, ref.Repository, previous, rep)
	if err != nil {
		return Change{}, err
	}
	c.Outdated = outdated
	return c, nil
}
