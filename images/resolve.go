package images

import (
	"context"
	"errors"
	"fmt"
	"time"

	"imagebadger/analysis"
	"imagebadger/store"
)

// resolved is the digest-level report a reference resolved to, and when its
// tag was last checked.
type resolved struct {
	rep     *analysis.Report
	checked time.Time
	moved   bool // the tag was seen for the first time, or moved
}

// resolve shares one resolution among concurrent callers for a reference.
// With refresh the registry is asked (one HEAD); without, only when the
// tag is unknown or its stored check is older than FreshFor, so a background
// refresh finds a check made meanwhile (by another process sharing the
// database, say) and asks nothing.
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
	checked := s.opts.Now()
	if ref.Digest != "" {
		rep, err := s.report(ctx, ref.Repository, ref.Digest)
		if err != nil {
			return resolved{}, err
		}
		if err := s.store.RecordImage(ctx, ref.Repository, analysis.Descriptor{Digest: rep.Digest, MediaType: rep.MediaType}, checked); err != nil {
			return resolved{}, err
		}
		return resolved{rep: rep, checked: checked}, s.indexReport(ctx, ref.Repository, rep)
	}
	st, err := s.store.ReloadTag(ctx, ref.Repository, ref.Tag)
	if err != nil && !errors.Is(err, analysis.ErrNotFound) {
		return resolved{}, err
	}
	if !refresh {
		if err == nil && checked.Sub(st.Checked) < s.opts.FreshFor {
			rep, err := s.report(ctx, ref.Repository, st.Digest)
			return resolved{rep: rep, checked: st.Checked}, err
		}
		// The registry must be asked: share the refreshing resolution in
		// flight (a listing's check of the same tag), if any.
		return s.resolve(ctx, ref, true)
	}
	desc, body, err := s.client.Resolve(ctx, ref)
	if err != nil {
		return resolved{}, err
	}
	s.refreshFacts(ctx, ref.Repository)
	if body != nil {
		if err := s.store.PutManifest(ctx, desc.Digest, desc.MediaType, body); err != nil {
			return resolved{}, err
		}
	}
	rep, err := s.report(ctx, ref.Repository, desc.Digest)
	if err != nil {
		return resolved{}, err
	}
	// Content and platforms first: a tag is recorded only once its image
	// could be reported and indexed, so a move's consequences are known.
	if err := s.indexReport(ctx, ref.Repository, rep); err != nil {
		return resolved{}, err
	}
	moved, err := s.recordTag(ctx, ref, st.Digest, rep, checked)
	if err != nil {
		return resolved{}, err
	}
	return resolved{rep: rep, checked: checked, moved: moved}, nil
}

// maxRecordTries bounds how often a tag record is retried when another
// writer keeps moving the tag in between.
const maxRecordTries = 3

// recordTag records that ref's tag points at rep.Digest, as a
// compare-and-set from previous (where the store held it when it was read):
// a move's events are described from previous and stored with it, and when
// another writer moved the tag meanwhile they are described again from
// where it points now.
func (s *Service) recordTag(ctx context.Context, ref analysis.Reference, previous string, rep *analysis.Report, at time.Time) (moved bool, err error) {
	desc := analysis.Descriptor{Digest: rep.Digest, MediaType: rep.MediaType}
	for range maxRecordTries {
		var events []store.Event
		if s.opts.Events != nil && previous != rep.Digest {
			c, err := s.change(ctx, ref, previous, rep, at)
			if err != nil {
				return false, err
			}
			if events, err = s.opts.Events.Events(c); err != nil {
				return false, fmt.Errorf("images: events of %s: %w", ref, err)
			}
		}
		check, err := s.store.RecordTag(ctx, store.TagRecord{Repo: ref.Repository, Tag: ref.Tag, Previous: previous, To: desc, At: at, Events: events})
		if errors.Is(err, store.ErrTagMoved) {
			previous = check.Previous
			continue
		}
		return check.Moved, err
	}
	return false, fmt.Errorf("images: record %s: the tag kept moving while it was recorded", ref)
}

// change prepares the description of a move from previous to rep.
func (s *Service) change(ctx context.Context, ref analysis.Reference, previous string, rep *analysis.Report, at time.Time) (Change, error) {
	c := Change{Repo: ref.Repository, Tag: ref.Tag, Previous: previous, Current: rep.Digest, At: at, Report: rep, PlatformsChanged: true}
	if previous == "" {
		return c, nil
	}
	if prev, err := s.report(ctx, ref.Repository, previous); err == nil {
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
