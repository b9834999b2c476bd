// Package images is the read flow of DESIGN.md shared by the pages, the JSON
// API, the badges and the command line: resolve a reference (a HEAD at most),
// fetch only content never seen, record what was learnt, and assemble the
// report from the store.
package images

import (
	"context"
	"errors"
	"time"

	"golang.org/x/sync/singleflight"

	"imagebadger/analysis"
	"imagebadger/store"
)

// Service answers image reports.
type Service struct {
	inspector *analysis.Inspector
	client    *analysis.Client
	store     *store.Store
	// freshFor is how long a stored tag resolution is trusted without asking
	// the registry again (the poll interval).
	freshFor time.Duration
	now      func() time.Time
	flight   singleflight.Group
}

// New returns a Service. freshFor is how long a tag resolution is reused
// before a plain read asks the registry again.
func New(client *analysis.Client, st *store.Store, freshFor time.Duration) *Service {
	return &Service{
		inspector: analysis.NewInspector(client, st),
		client:    client,
		store:     st,
		freshFor:  freshFor,
		now:       time.Now,
	}
}

// Image returns the report for ref. With refresh, a tag is re-resolved
// against the registry (one HEAD) even if its stored resolution is fresh.
// Concurrent calls for the same reference share one resolution.
func (s *Service) Image(ctx context.Context, ref analysis.Reference, refresh bool) (*analysis.Report, error) {
	key := ref.String()
	if refresh {
		key += "\x00refresh"
	}
	v, err, _ := s.flight.Do(key, func() (any, error) {
		// The first caller's cancellation must not fail the others.
		return s.image(context.WithoutCancel(ctx), ref, refresh)
	})
	if err != nil {
		return nil, err
	}
	return v.(*analysis.Report), nil
}

func (s *Service) image(ctx context.Context, ref analysis.Reference, refresh bool) (*analysis.Report, error) {
	var (
		rep     *analysis.Report
		err     error
		checked = s.now()
	)
	switch {
	case ref.Digest != "":
		var desc analysis.Descriptor
		if desc, err = s.describe(ctx, ref.Repository, ref.Digest); err != nil {
			return nil, err
		}
		if rep, err = s.inspector.Report(ctx, ref, desc, nil); err != nil {
			return nil, err
		}
		if err := s.store.RecordImage(ctx, ref.Repository, desc, checked); err != nil {
			return nil, err
		}
	default:
		st, serr := s.store.Tag(ctx, ref.Repository, ref.Tag)
		if serr != nil && !errors.Is(serr, analysis.ErrNotFound) {
			return nil, serr
		}
		if serr == nil && !refresh && checked.Sub(st.Checked) < s.freshFor {
			checked = st.Checked
			rep, err = s.inspector.Report(ctx, ref, analysis.Descriptor{Digest: st.Digest, MediaType: st.MediaType}, nil)
			if err != nil {
				return nil, err
			}
			break
		}
		desc, body, err := s.client.Resolve(ctx, ref)
		if err != nil {
			return nil, err
		}
		// Content first: a tag is recorded only once its image could be reported.
		if rep, err = s.inspector.Report(ctx, ref, desc, body); err != nil {
			return nil, err
		}
		if _, err := s.store.RecordTag(ctx, ref.Repository, ref.Tag, desc, checked); err != nil {
			return nil, err
		}
	}
	if rep.Tags, err = s.store.TagsAt(ctx, ref.Repository, rep.Digest); err != nil {
		return nil, err
	}
	rep.CheckedAt = checked.UTC().Truncate(time.Second)
	return rep, nil
}

// describe returns the media type of a manifest known by digest, from the
// store when it holds it (the Inspector then fetches nothing either).
func (s *Service) describe(ctx context.Context, repo analysis.Repository, digest string) (analysis.Descriptor, error) {
	mt, _, err := s.store.Manifest(ctx, digest)
	if errors.Is(err, analysis.ErrNotFound) {
		var body []byte
		if mt, body, err = s.client.Manifest(ctx, repo, digest); err == nil {
			err = s.store.PutManifest(ctx, digest, mt, body)
		}
	}
	if err != nil {
		return analysis.Descriptor{}, err
	}
	return analysis.Descriptor{Digest: digest, MediaType: mt}, nil
}
