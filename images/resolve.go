package images

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/store"
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
// database, say) and asks nothing. polling marks a background poll's
// requests (ReadOptions.Polling); concurrent callers share the first one's.
func (s *Service) resolve(ctx context.Context, ref analysis.Reference, refresh, polling bool) (resolved, error) {
	key := ref.String()
	if refresh {
		key += "\x00refresh"
	}
	v, err, _ := s.flight.Do(key, func() (any, error) {
		// The first caller's cancellation must not fail the others.
		return s.resolveOnce(context.WithoutCancel(ctx), ref, refresh, polling)
	})
	if err != nil {
		return resolved{}, err
	}
	return v.(resolved), nil
}

func (s *Service) resolveOnce(ctx context.Context, ref analysis.Reference, refresh, polling bool) (resolved, error) {
	checked := s.opts.Now()
	if ref.Digest != "" {
		rep, err := s.reportVia(ctx, ref.Repository, ref.Digest, polling)
		if err != nil {
			return resolved{}, err
		}
		if err := s.store.RecordImage(ctx, ref.Repository, analysis.Descriptor{Digest: rep.Digest, MediaType: rep.MediaType}, checked); err != nil {
			return resolved{}, err
		}
		return resolved{rep: rep, checked: checked}, s.indexReport(ctx, ref.Repository, rep)
	}
	if !refresh {
		st, err := s.store.ReloadTag(ctx, ref.Repository, ref.Tag)
		gone, deleted := analysis.DeletedTag(err)
		switch {
		case err == nil && checked.Sub(st.Checked) < s.opts.FreshFor:
			rep, err := s.report(ctx, ref.Repository, st.Digest)
			return resolved{rep: rep, checked: st.Checked}, err
		case deleted && checked.Sub(gone.Checked) < s.opts.FreshFor:
			return resolved{}, err
		case err != nil && !errors.Is(err, analysis.ErrNotFound):
			return resolved{}, err
		}
		// The registry must be asked: share the refreshing resolution in
		// flight (a listing's check of the same tag), if any.
		return s.resolve(ctx, ref, true, polling)
	}
	l, err := s.lookup(ctx, ref, lookupMode{read: !polling, polling: polling})
	if err != nil {
		return resolved{}, err
	}
	if l.rep == nil {
		return resolved{}, s.recordGone(ctx, ref, l)
	}
	moved, err := s.recordTag(ctx, ref, l.previous, l.rep, l.at)
	if err != nil {
		return resolved{}, err
	}
	return resolved{rep: l.rep, checked: l.at, moved: moved}, nil
}

// lookedUp is what the registry says of a tag now, with what the store held
// for it before: where it pointed (previous, "" for none) and whether it was
// recorded as deleted. rep is nil when the registry no longer has the tag.
type lookedUp struct {
	previous string
	deleted  *analysis.TagDeleted
	rep      *analysis.Report
	at       time.Time
	// notFound is the registry's answer when rep is nil.
	notFound error
}

// lookup asks the registry where ref's tag points (one HEAD), fetches and
// stores what it has never seen, and indexes the image's platforms, without
// recording the tag: content and platforms first, so that when the move is
// recorded its consequences are known. A registry answering "not found" is
// not an error here: it is the tag's deletion, for the caller to record.
//
// Concurrent lookups of one tag (a refresh and a listing's check of it)
// share one registry request; each caller then records what was found, and
// the compare-and-set of the record makes the second a mere check.
//
// mode.read says the caller is a read that wants the report now, not a
// check of a listing or a poll: a tag never seen is then fetched with one
// GET (see lookupOnce). Either finds the same, so the first caller's way is
// shared, as is its mode.polling (ReadOptions.Polling).
func (s *Service) lookup(ctx context.Context, ref analysis.Reference, mode lookupMode) (lookedUp, error) {
	v, err, _ := s.flight.Do("lookup\x00"+ref.String(), func() (any, error) {
		return s.lookupOnce(context.WithoutCancel(ctx), ref, mode)
	})
	if err != nil {
		return lookedUp{}, err
	}
	return v.(lookedUp), nil
}

// lookupMode is how a lookup asks the registry.
type lookupMode struct {
	read, polling bool
}

func (s *Service) lookupOnce(ctx context.Context, ref analysis.Reference, mode lookupMode) (lookedUp, error) {
	if p := analysis.TagProblem(ref.Tag); ref.Digest == "" && p != "" {
		// Every tag reaching here was checked; this keeps a name outside
		// the grammar from ever being asked for or recorded.
		return lookedUp{}, analysis.Errorf(analysis.ErrInvalidReference, nil, "%s is not a valid tag: %s", analysis.QuoteTag(ref.Tag), p)
	}
	l := lookedUp{at: s.opts.Now()}
	st, err := s.store.ReloadTag(ctx, ref.Repository, ref.Tag)
	switch d, deleted := analysis.DeletedTag(err); {
	case err == nil:
		l.previous = st.Digest
	case deleted:
		l.deleted = d
	case !errors.Is(err, analysis.ErrNotFound):
		return lookedUp{}, err
	}
	client, _ := s.reader(mode.polling)
	resolve := client.Resolve
	if mode.read && l.previous == "" && l.deleted == nil && ref.Registry != analysis.DockerHub {
		// A read of a tag never seen wants its manifest, which one GET
		// gives with the digest: a round trip less than a HEAD and a GET.
		// Docker Hub counts a manifest GET as a pull and a HEAD as none,
		// so there the HEAD goes first, in case the digest is already
		// known from another tag; listings and polls always HEAD.
		resolve = client.Fetch
	}
	desc, body, err := resolve(ctx, ref)
	if errors.Is(err, analysis.ErrNotFound) {
		l.notFound = err
		return l, nil
	}
	if err != nil {
		return lookedUp{}, err
	}
	if err := s.learnVisibility(ctx, ref); err != nil {
		return lookedUp{}, err
	}
	s.refreshFacts(ctx, ref.Repository)
	if body != nil {
		if err := s.store.PutManifest(ctx, desc.Digest, desc.MediaType, body); err != nil {
			return lookedUp{}, err
		}
	}
	var supply func(*analysis.Report)
	wantSupply := mode.read || (l.previous != "" && l.previous != desc.Digest)
	if wantSupply && body != nil {
		// The manifest is stored: the supply chain's look runs beside the
		// report's reading (see lookSupply).
		supply = s.lookSupply(ctx, ref.Repository, desc.Digest, mode.polling)
	}
	l.rep, err = s.reportVia(ctx, ref.Repository, desc.Digest, mode.polling)
	if err == nil {
		err = s.indexReport(ctx, ref.Repository, l.rep)
	}
	if err == nil && wantSupply && supply == nil {
		supply = s.lookSupply(ctx, ref.Repository, desc.Digest, mode.polling)
	}
	if supply != nil {
		if err != nil {
			supply(nil)
		} else {
			supply(l.rep)
		}
	}
	if err != nil {
		return lookedUp{}, err
	}
	return l, nil
}

// recordGone records what a lookup that found no tag means: the deletion of
// a tag that was there, or another check of one already deleted. It
// returns the error a read of the tag answers (not found, with the
// deletion when there is one).
func (s *Service) recordGone(ctx context.Context, ref analysis.Reference, l lookedUp) error {
	previous := l.previous
	for range maxRecordTries {
		check, err := s.store.RecordDeletion(ctx, store.TagDeletion{Repo: ref.Repository, Tag: ref.Tag, Previous: previous, At: l.at})
		if errors.Is(err, store.ErrTagMoved) {
			previous = check.Previous
			continue
		}
		if err != nil {
			return err
		}
		if check.Moved || l.deleted != nil {
			// Answer as a read now would: the tag is deleted.
			_, err := s.store.Tag(ctx, ref.Repository, ref.Tag)
			if _, ok := analysis.DeletedTag(err); ok {
				return err
			}
		}
		return l.notFound
	}
	return fmt.Errorf("images: record deletion of %s: the tag kept moving while it was recorded", ref)
}

// maxRecordTries bounds how often a tag record is retried when another
// writer keeps moving the tag in between.
const maxRecordTries = 3

// recordTag records that ref's tag points at rep.Digest, as a
// compare-and-set from previous (where the store held it when it was read);
// when another writer moved the tag meanwhile, it is recorded again from
// where the tag points now.
func (s *Service) recordTag(ctx context.Context, ref analysis.Reference, previous string, rep *analysis.Report, at time.Time) (moved bool, err error) {
	desc := analysis.Descriptor{Digest: rep.Digest, MediaType: rep.MediaType}
	for range maxRecordTries {
		check, err := s.store.RecordTag(ctx, store.TagRecord{Repo: ref.Repository, Tag: ref.Tag, Previous: previous, To: desc, At: at})
		if errors.Is(err, store.ErrTagMoved) {
			previous = check.Previous
			continue
		}
		return check.Moved, err
	}
	return false, fmt.Errorf("images: record %s: the tag kept moving while it was recorded", ref)
}
