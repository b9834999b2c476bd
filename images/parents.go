package images

import (
	"context"
	"errors"
	"slices"
	"strings"

	"imagebadger/analysis"
	"imagebadger/store"
)

// Annotation keys that name an image's base explicitly (OCI image spec).
const (
	annotationBaseName   = "org.opencontainers.image.base.name"
	annotationBaseDigest = "org.opencontainers.image.base.digest"
)

// indexReport makes the platform images of rep known as parent candidates,
// in the store and in the in-memory index, once per top-level image. Every
// top-level image is recorded, even when its platform images are already
// indexed through another one (an index rebuilt for arm64 only keeps its
// amd64 manifest), because "which images contain this platform image"
// decides whether a parent's tag has really moved away.
func (s *Service) indexReport(ctx context.Context, repo analysis.Repository, rep *analysis.Report) error {
	key := reportKey(repo, rep.Digest)
	if s.indexed.Contains(key) {
		return nil
	}
	var add []store.PlatformImage
	for _, p := range rep.Platforms {
		if len(p.DiffIDs) == 0 {
			continue
		}
		chain := analysis.ChainIDs(p.DiffIDs)
		add = append(add, store.PlatformImage{
			Repo: repo, Digest: rep.Digest, PlatformDigest: p.Digest, Platform: p.Platform,
			ChainID: chain[len(chain)-1], LayerCount: len(chain), FirstSeen: s.opts.Now(),
		})
	}
	if len(add) > 0 {
		// The in-memory index first: once the store's index stamp moves,
		// an answer made again must find the new candidates.
		for _, p := range add {
			s.index.Add(repo, p.PlatformDigest, p.ChainID, p.LayerCount, p.FirstSeen.UnixMilli())
		}
		if err := s.store.RecordPlatforms(ctx, add); err != nil {
			return err
		}
	}
	s.indexed.Add(key, struct{}{})
	return nil
}

// attachParents fills the parent of each platform image of rep, recording in
// deps every scope it read to do so, and stores each parent link found.
func (s *Service) attachParents(ctx context.Context, repo analysis.Repository, rep *analysis.Report, deps *reads) (*analysis.Report, error) {
	for i := range rep.Platforms {
		p := &rep.Platforms[i]
		found, err := s.parentOf(ctx, repo, p, deps)
		if err != nil {
			return nil, err
		}
		p.Parent = found.parent
		if found.parent == nil {
			continue
		}
		link := store.ParentLink{
			Child: repo, ChildDigest: rep.Digest, PlatformDigest: p.Digest, Platform: p.Platform,
			Parent: found.repo, ParentPlatform: found.parent.Digest, Method: found.parent.Method,
		}
		if s.linked.Contains(link) {
			continue
		}
		if err := s.store.RecordParent(ctx, link, s.opts.Now()); err != nil {
			return nil, err
		}
		s.linked.Add(link, struct{}{})
	}
	return rep, nil
}

// parentFound is what parentOf found: the parent (nil for none) and its
// repository.
type parentFound struct {
	parent *analysis.Parent
	repo   analysis.Repository
}

// parentOf finds the parent of one platform image: named by annotations when
// the image says, else by the longest layer prefix among known images of
// other repositories.
func (s *Service) parentOf(ctx context.Context, repo analysis.Repository, p *analysis.Platform, deps *reads) (parentFound, error) {
	chain := analysis.ChainIDs(p.DiffIDs)
	if name := p.Annotations[annotationBaseName]; name != "" {
		if ref, err := analysis.ParseReference(name); err == nil && ref.Repository != repo {
			deps.addRepository(ref.Repository)
			parent, err := s.annotatedParent(ctx, ref, p.Annotations[annotationBaseDigest], p.Platform, chain)
			return parentFound{parent, ref.Repository}, err
		}
	}
	if len(chain) == 0 {
		return parentFound{}, nil
	}
	// Any image indexed later may be a longer prefix: the answer depends on
	// the index as it stands, other processes' images included.
	deps.add(store.IndexScope)
	if err := s.catchUpIndex(ctx); err != nil {
		return parentFound{}, err
	}
	cands := s.index.Lookup(repo, chain)
	if len(cands) == 0 {
		return parentFound{}, nil
	}
	// The choice among candidates counts their tags, so every candidate's
	// repository is read.
	for _, c := range cands {
		deps.addRepository(c.Repository)
	}
	var found parentFound
	best, err := s.pick(ctx, cands)
	if err != nil {
		return parentFound{}, err
	}
	tops, err := s.store.ImagesContaining(ctx, best.Repository, best.Digest)
	if err != nil {
		return parentFound{}, err
	}
	found.repo = best.Repository
	found.parent = &analysis.Parent{
		Registry: best.Repository.Registry, Repository: best.Repository.Name,
		Digest: best.Digest, LayerCount: best.Layers, Method: "layers",
	}
	if err := s.outdated(ctx, best.Repository, tops, p.Platform, chain, found.parent); err != nil {
		return parentFound{}, err
	}
	return found, nil
}

// annotatedParent builds the parent an image names in its annotations. The
// named image may be unknown to this service; what is known is filled in.
func (s *Service) annotatedParent(ctx context.Context, ref analysis.Reference, digest, platform string, chain []string) (*analysis.Parent, error) {
	if digest == "" {
		digest = ref.Digest
	}
	parent := &analysis.Parent{Registry: ref.Registry, Repository: ref.Name, Digest: digest, Method: "annotation", Tags: []string{}}
	var tops []string
	if digest != "" {
		tops = []string{digest}
		// The annotation may name an index: report the platform image in it.
		if pi, err := s.store.PlatformOf(ctx, ref.Repository, digest, platform); err == nil {
			parent.Digest, parent.LayerCount = pi.PlatformDigest, pi.LayerCount
		} else if !errors.Is(err, analysis.ErrNotFound) {
			return nil, err
		}
	}
	if err := s.outdated(ctx, ref.Repository, tops, platform, chain, parent); err != nil {
		return nil, err
	}
	if ref.Tag != "" && !slices.Contains(parent.Tags, ref.Tag) {
		parent.Tags = append(parent.Tags, ref.Tag)
		analysis.SortTags(parent.Tags)
		if len(tops) > 0 {
			// The named tag counts as one that pointed at the parent.
			if err := s.checkTag(ctx, ref.Repository, ref.Tag, tops, platform, chain, parent); err != nil {
				return nil, err
			}
			if err := s.movedTags(ctx, ref.Repository, parent); err != nil {
				return nil, err
			}
		}
	}
	return parent, nil
}

// outdated fills parent.Tags with the tags that pointed at one of tops (the
// top-level images containing the parent), and marks the parent outdated
// when one of them now points at an image whose layers for platform are no
// longer a prefix of the child's (chain); MovedTags then lists the parent's
// tags that point where that one does.
func (s *Service) outdated(ctx context.Context, repo analysis.Repository, tops []string, platform string, chain []string, parent *analysis.Parent) error {
	tags, err := s.store.TagsEverAt(ctx, repo, tops)
	if err != nil {
		return err
	}
	analysis.SortTags(tags)
	parent.Tags = tags
	for _, t := range tags {
		if err := s.checkTag(ctx, repo, t, tops, platform, chain, parent); err != nil {
			return err
		}
		if parent.Outdated {
			break
		}
	}
	return s.movedTags(ctx, repo, parent)
}

// movedTags fills parent.MovedTags once the parent is outdated.
func (s *Service) movedTags(ctx context.Context, repo analysis.Repository, parent *analysis.Parent) error {
	if !parent.Outdated || parent.CurrentDigest == "" {
		return nil
	}
	now, err := s.store.TagDigests(ctx, repo, parent.Tags)
	if err != nil {
		return err
	}
	parent.MovedTags = nil
	for _, t := range parent.Tags {
		if now[t] == parent.CurrentDigest {
			parent.MovedTags = append(parent.MovedTags, t)
		}
	}
	return nil
}

func (s *Service) checkTag(ctx context.Context, repo analysis.Repository, tag string, tops []string, platform string, chain []string, parent *analysis.Parent) error {
	now, err := s.store.TagDigests(ctx, repo, []string{tag})
	if err != nil {
		return err
	}
	cur, ok := now[tag]
	if !ok || slices.Contains(tops, cur) {
		return nil
	}
	pi, err := s.store.PlatformOf(ctx, repo, cur, platform)
	if err != nil && !errors.Is(err, analysis.ErrNotFound) {
		return err
	}
	if err == nil && isPrefix(pi, chain) {
		return nil
	}
	parent.Outdated, parent.CurrentDigest = true, cur
	return nil
}

// isPrefix reports whether the platform image's layers are a prefix of the
// layer list whose ChainIDs are chain (equal included).
func isPrefix(pi store.PlatformImage, chain []string) bool {
	return pi.LayerCount >= 1 && pi.LayerCount <= len(chain) && chain[pi.LayerCount-1] == pi.ChainID
}

// pick breaks ties between parents of equal prefix: official library/
// repositories first, then the candidate with more tags, then the one seen
// first.
func (s *Service) pick(ctx context.Context, cands []analysis.ParentCandidate) (analysis.ParentCandidate, error) {
	if len(cands) == 1 {
		return cands[0], nil
	}
	tagCount := make([]int, len(cands))
	for i, c := range cands {
		tops, err := s.store.ImagesContaining(ctx, c.Repository, c.Digest)
		if err != nil {
			return analysis.ParentCandidate{}, err
		}
		for _, top := range tops {
			tags, err := s.store.TagsAt(ctx, c.Repository, top)
			if err != nil {
				return analysis.ParentCandidate{}, err
			}
			tagCount[i] += len(tags)
		}
	}
	best := 0
	for i := 1; i < len(cands); i++ {
		if better(cands[i], tagCount[i], cands[best], tagCount[best]) {
			best = i
		}
	}
	return cands[best], nil
}

func better(a analysis.ParentCandidate, aTags int, b analysis.ParentCandidate, bTags int) bool {
	aLib, bLib := isOfficial(a.Repository), isOfficial(b.Repository)
	if aLib != bLib {
		return aLib
	}
	if aTags != bTags {
		return aTags > bTags
	}
	if a.Seen != b.Seen {
		return a.Seen < b.Seen
	}
	return a.Repository.String() < b.Repository.String()
}

// isOfficial reports whether repo is an official image (Docker Hub's
// library/ namespace, or library/ on any registry that mirrors it).
func isOfficial(repo analysis.Repository) bool {
	return strings.HasPrefix(repo.Name, "library/")
}

// outdatedChildren lists the known children that a move of repo:tag from
// previous to rep makes outdated, for base.updated events.
func (s *Service) outdatedChildren(ctx context.Context, repo analysis.Repository, previous string, rep *analysis.Report) ([]OutdatedChild, error) {
	olds, err := s.store.PlatformsOf(ctx, repo, previous)
	if err != nil {
		return nil, err
	}
	var out []OutdatedChild
	seen := map[store.ParentLink]bool{}
	for _, old := range olds {
		// Children recorded against any image with the same layers count:
		// a relabelled base keeps the children of the image it relabels.
		same, err := s.store.SameLayers(ctx, repo, old.ChainID)
		if err != nil {
			return nil, err
		}
		var links []store.ParentLink
		for _, d := range same {
			ls, err := s.store.Children(ctx, repo, d)
			if err != nil {
				return nil, err
			}
			links = append(links, ls...)
		}
		for _, l := range links {
			key := l
			key.ParentPlatform, key.Method = "", ""
			if seen[key] {
				continue
			}
			seen[key] = true
			child, err := s.report(ctx, l.Child, l.ChildDigest)
			if err != nil {
				continue // content gone or unreadable: nothing to say about it
			}
			var chain []string
			for _, cp := range child.Platforms {
				if cp.Digest == l.PlatformDigest {
					chain = analysis.ChainIDs(cp.DiffIDs)
				}
			}
			if len(chain) == 0 || stillPrefix(rep, l.Platform, chain) {
				continue
			}
			tags, err := s.store.TagsAt(ctx, l.Child, l.ChildDigest)
			if err != nil {
				return nil, err
			}
			if len(tags) == 0 {
				out = append(out, OutdatedChild{Child: l.Child.WithDigest(l.ChildDigest), ChildDigest: l.ChildDigest, Platform: l.Platform, BuiltOn: previous})
			}
			for _, t := range tags {
				out = append(out, OutdatedChild{Child: l.Child.WithTag(t), ChildDigest: l.ChildDigest, Platform: l.Platform, BuiltOn: previous})
			}
		}
	}
	return out, nil
}

// stillPrefix reports whether rep's platform image for platform is still a
// prefix of the child's layers.
func stillPrefix(rep *analysis.Report, platform string, childChain []string) bool {
	for _, p := range rep.Platforms {
		if p.Platform != platform || len(p.DiffIDs) == 0 || len(p.DiffIDs) > len(childChain) {
			continue
		}
		c := analysis.ChainIDs(p.DiffIDs)
		if childChain[len(c)-1] == c[len(c)-1] {
			return true
		}
	}
	return false
}
