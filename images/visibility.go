package images

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/store"
)

// Policy says who is shown the private repositories: those the registry
// refused to serve anonymously, which the service reads with the operator's
// credentials.
type Policy string

// The policies of --private-images.
const (
	// PrivateToSignedIn shows private repositories only to viewers who may
	// see them (auth.Viewer.MaySeePrivate); to anyone else they answer as
	// repositories that do not exist.
	PrivateToSignedIn Policy = "signed-in"
	// PrivateToEveryone shows them to everyone, for an instance that the
	// network alone protects.
	PrivateToEveryone Policy = "everyone"
)

// DefaultPrivateImages is the policy of a zero Options.PrivateImages.
const DefaultPrivateImages = PrivateToSignedIn

// ParsePolicy reads a --private-images value.
func ParsePolicy(s string) (Policy, error) {
	switch p := Policy(s); p {
	case PrivateToSignedIn, PrivateToEveryone:
		return p, nil
	}
	return "", fmt.Errorf("%q is not a policy: use %s or %s", s, PrivateToSignedIn, PrivateToEveryone)
}

// Policy is who is shown private repositories (Options.PrivateImages).
func (s *Service) Policy() Policy { return s.opts.PrivateImages }

// ErrForbidden: the viewer may see the private repository but not change
// what the service keeps of it (a read token subscribing or refreshing).
var ErrForbidden = errors.New("images: not allowed for this viewer")

// System returns the service as the service itself reads: the polls, the
// fan-out and deliveries, which act on what a permitted viewer set up
// (a subscription made by someone who could see the image) and tell only
// the subscriber. Its reads pass no visibility check; nothing a visitor
// asks may go through it.
func (s *Service) System() System { return System{s: s} }

// System is the service's own reader (see Service.System).
type System struct{ s *Service }

// Read is Service.Read for the service's own work.
func (y System) Read(ctx context.Context, ref analysis.Reference, how ReadOptions) (Answer, error) {
	return y.s.read(ctx, ref, how)
}

// Tags is Service.Tags for the service's own work.
func (y System) Tags(ctx context.Context, repo analysis.Repository, how ReadOptions) (*analysis.TagList, error) {
	return y.s.tags(ctx, repo, how)
}

// Diff is Service.Diff for the service's own work.
func (y System) Diff(ctx context.Context, from, to analysis.Reference, platform string, how ReadOptions) (Compared, error) {
	return y.s.diff(ctx, from, to, platform, how)
}

// Check is Service.Check.
func (y System) Check(ctx context.Context, ref analysis.Reference, how ReadOptions) error {
	return y.s.Check(ctx, ref, how)
}

// verdictEntry is a kept visibility verdict, current while the
// repository's stamp is the one it was read under (a new verdict bumps it).
type verdictEntry struct {
	v     analysis.Visibility
	scope store.Scope
	stamp store.Stamp
}

// verdict returns repo's visibility: the kept or stored verdict; when there
// is none and learn is set (the caller read something of the repository
// with the service's credentials), or the stored one is older than
// notBefore (a refresh people asked for), the registry is asked, once per
// repository at a time (see registry.Client.Visibility), and the answer
// recorded. ref is what the anonymous attempt reads. A kept verdict costs
// no allocation, for every read of a kept answer asks for one.
func (s *Service) verdict(ctx context.Context, ref analysis.Reference, learn bool, notBefore time.Time) (analysis.Visibility, error) {
	repo := ref.Repository
	if notBefore.IsZero() {
		if e, ok := s.verdicts.Get(repo); ok && e.stamp == s.store.Stamp(e.scope) && (e.v != analysis.VisibilityUnknown || !learn) {
			return e.v, nil
		}
		scope := store.RepositoryScope(repo)
		stamp := s.store.Stamp(scope)
		v, _, err := s.store.Visibility(ctx, repo)
		if err != nil {
			return "", err
		}
		s.verdicts.Add(repo, verdictEntry{v: v, scope: scope, stamp: stamp})
		if v != analysis.VisibilityUnknown || !learn {
			return v, nil
		}
	}
	got, err, _ := s.flight.Do("visibility\x00"+repo.String(), func() (any, error) {
		ctx := context.WithoutCancel(ctx)
		v, at, err := s.store.Visibility(ctx, repo)
		if err != nil {
			return analysis.VisibilityUnknown, err
		}
		if v != analysis.VisibilityUnknown && (notBefore.IsZero() || !at.Before(notBefore)) {
			return v, nil // found meanwhile, by another caller or process
		}
		checked := s.opts.Now()
		v, err = s.client.Visibility(ctx, ref)
		if err != nil {
			return analysis.VisibilityUnknown, err
		}
		if _, err := s.store.RecordVisibility(ctx, repo, v, checked); err != nil {
			return analysis.VisibilityUnknown, err
		}
		return v, nil
	})
	if err != nil {
		return analysis.VisibilityUnknown, fmt.Errorf("images: visibility of %s: %w", repo, err)
	}
	return got.(analysis.Visibility), nil
}

// hiddenFrom reports whether viewer must be answered as if repo did not
// exist: it is private, the policy shows private repositories only to
// those who may see them, and viewer may not. A repository whose
// visibility is unknown has never been read; it is not hidden, for there
// is nothing of it to show.
func (s *Service) hiddenFrom(v analysis.Visibility, viewer auth.Viewer, repo analysis.Repository) bool {
	if v != analysis.VisibilityPrivate || s.opts.PrivateImages == PrivateToEveryone {
		return false
	}
	// The repository's name matters only to a badge token; it is not
	// made for every other read.
	name := ""
	if viewer.BadgeRepository != "" {
		name = repo.String()
	}
	return !viewer.MaySeePrivate(name)
}

// guard is the one visibility check every read passes, after the read:
// readErr is the read's outcome. A read that found something of the
// repository (an answer, or a tag recorded as deleted) learns the
// repository's visibility when it is not known yet; a failed one only
// consults what is known. notBefore, set for a refresh people asked for,
// asks the registry again. The error returned, when the viewer may not see
// the repository, is exactly what a read of a repository that does not
// exist answers (hidden); otherwise it is readErr, or the failure of the
// check itself.
func (s *Service) guard(ctx context.Context, viewer auth.Viewer, ref analysis.Reference, readErr error, notBefore time.Time) error {
	if s.opts.PrivateImages == PrivateToEveryone {
		return readErr
	}
	learn := readErr == nil
	if !learn {
		_, learn = analysis.DeletedTag(readErr)
	}
	if !learn {
		notBefore = time.Time{}
	}
	v, err := s.verdict(ctx, ref, learn, notBefore)
	if err != nil {
		if learn {
			// Not knowing whether it is private, show nothing.
			return err
		}
		return readErr
	}
	if s.hiddenFrom(v, viewer, ref.Repository) {
		return hidden(ref)
	}
	return readErr
}

// hidden is what a read of ref answers when ref's repository does not
// exist at its registry (see registry.Client.Fetch): a private repository
// is answered so to a viewer who may not see it, so that nothing, status or
// message, tells that it exists.
func hidden(ref analysis.Reference) error {
	return analysis.NewMissing(analysis.Missing{Ref: ref, Part: analysis.MissingRepository})
}

// mayWrite checks, before a write (a refresh, a subscription), that viewer
// may change what the service keeps of ref's repository: a viewer who may
// not see a private repository is answered as for one that does not exist,
// one who may see but not write (a read token) with ErrForbidden. A
// repository never read is not known to be private yet: the write goes on
// and the read after it decides.
func (s *Service) mayWrite(ctx context.Context, viewer auth.Viewer, ref analysis.Reference) error {
	if s.opts.PrivateImages == PrivateToEveryone {
		return nil
	}
	v, err := s.verdict(ctx, ref, false, time.Time{})
	if err != nil {
		return err
	}
	if v != analysis.VisibilityPrivate {
		return nil
	}
	if s.hiddenFrom(v, viewer, ref.Repository) {
		return hidden(ref)
	}
	if !viewer.MayWritePrivate() {
		return &analysis.Error{Kind: ErrForbidden, Message: "this token may read " + ref.Repository.String() + " but not change it: use a token with the write scope"}
	}
	return nil
}

// MayWrite is the check a write on ref's repository passes (mayWrite),
// for writes made outside images, such as a subscription: a repository
// never read is read first (its image, or its tag listing for a reference
// without tag or digest, waiting up to wait), so that its visibility is
// known and a private repository is never subscribed to by someone who may
// not see it. A failed read answers as Read would.
func (s *Service) MayWrite(ctx context.Context, viewer auth.Viewer, ref analysis.Reference, wait time.Duration) error {
	if s.opts.PrivateImages == PrivateToEveryone {
		return nil
	}
	v, err := s.verdict(ctx, ref, false, time.Time{})
	if err != nil {
		return err
	}
	if v == analysis.VisibilityUnknown {
		if ref.Tag == "" && ref.Digest == "" {
			_, err = s.Tags(ctx, viewer, ref.Repository, ReadOptions{Wait: wait})
		} else {
			_, err = s.Read(ctx, viewer, ref, ReadOptions{Wait: wait})
		}
		if err != nil {
			return err
		}
	}
	return s.mayWrite(ctx, viewer, ref)
}

// learnVisibility makes sure ref's repository, just read with the
// service's credentials, has a visibility verdict (asked once per
// repository), unless the policy shows private repositories to everyone.
func (s *Service) learnVisibility(ctx context.Context, ref analysis.Reference) error {
	if s.opts.PrivateImages == PrivateToEveryone {
		return nil
	}
	_, err := s.verdict(ctx, ref, true, time.Time{})
	return err
}

// withoutHiddenParents is a with what viewer may not see of other
// repositories left out: a public image built on a private one must not
// name it, neither as its parent (nor its tags, nor the base badge show
// it), whichever way the parent was found, nor among the image materials of
// its provenance (a private base named by the build). The kept answer is
// shared by every viewer, so a copy is made only when something is left
// out, and its Version says so: what was made from one answer never serves
// for the other.
func (s *Service) withoutHiddenParents(ctx context.Context, viewer auth.Viewer, a Answer) Answer {
	if s.opts.PrivateImages == PrivateToEveryone || a.Report == nil {
		return a
	}
	var out *analysis.Report
	copyReport := func() {
		if out == nil {
			c := *a.Report
			c.Platforms = slices.Clone(a.Report.Platforms)
			out = &c
		}
	}
	// A parent was read with the service's credentials: learn its
	// visibility if it is not known; not knowing it, leave it out. A
	// material's was learnt when it was read (see learnMaterials): one
	// still unknown could not be read, so nothing of it is known to hide,
	// and a read of a kept answer asks no registry for it.
	seen := func(repo analysis.Repository, learn bool) bool {
		v, err := s.verdict(ctx, analysis.Reference{Repository: repo}, learn, time.Time{})
		return err == nil && !s.hiddenFrom(v, viewer, repo)
	}
	for i, p := range a.Report.Platforms {
		if p.Parent != nil && !seen(analysis.Repository{Registry: p.Parent.Registry, Name: p.Parent.Repository}, true) {
			copyReport()
			out.Platforms[i].Parent = nil
		}
		if mats, ok := s.visibleMaterials(analysis.Repository{Registry: a.Report.Registry, Name: a.Report.Repository}, p.SupplyChain, func(r analysis.Repository) bool { return seen(r, false) }); !ok {
			copyReport()
			sc := *p.SupplyChain
			prov := *sc.Provenance
			prov.Materials = mats
			sc.Provenance = &prov
			out.Platforms[i].SupplyChain = &sc
		}
	}
	if out != nil {
		a.Report = out
		a.Version += "/without-hidden-parents"
	}
	return a
}

// privateBase reports whether a move of repo may be told only about its
// private children (see OutdatedBy): repo is private and the policy hides
// private repositories.
func (s *Service) privateBase(ctx context.Context, repo analysis.Repository) (bool, error) {
	if s.opts.PrivateImages == PrivateToEveryone {
		return false, nil
	}
	v, err := s.verdict(ctx, analysis.Reference{Repository: repo}, false, time.Time{})
	return v == analysis.VisibilityPrivate, err
}

// visibleMaterials returns the provenance materials of sc that name no
// image of another repository that seen refuses, and ok when that is all
// of them (nothing to leave out). Materials that are no image, and images
// of the report's own repository, are kept.
func (s *Service) visibleMaterials(own analysis.Repository, sc *analysis.SupplyChain, seen func(analysis.Repository) bool) (kept []analysis.Material, ok bool) {
	if sc == nil || sc.Provenance == nil {
		return nil, true
	}
	all := sc.Provenance.Materials
	cut := false
	for i, m := range all {
		im, isImage := analysis.ParseImageMaterial(m)
		hide := isImage && im.Ref.Repository != own && !seen(im.Ref.Repository)
		switch {
		case hide && !cut:
			kept, cut = append(make([]analysis.Material, 0, len(all)-1), all[:i]...), true
		case !hide && cut:
			kept = append(kept, m)
		}
	}
	if !cut {
		return nil, true
	}
	return kept, false
}
