package images

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/store"
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

// tagView is what parent detection reads of tags: where they point, which
// tags point at an image, which ever did. The plain view is the store as it
// stands. A view as of a position in the change log has one repository's
// tags as they stood right after the change at that position, read from
// the log in one statement (store.TagsAsOf), so changes committed meanwhile,
// by this process or another, cannot tear it. The fan-out judges a change
// set by two such views, before and after it (see OutdatedBy), with the same
// code that decides a report's parent and its outdated flag.
type tagView struct {
	st *store.Store
	// repo's tags as of upTo, when upTo > 0: tag → digest.
	repo analysis.Repository
	asOf map[string]string
	upTo int64
}

func plainView(st *store.Store) *tagView { return &tagView{st: st} }

// viewAsOf is the view of the store with repo's tags as they stood right
// after the change at position.
func (s *Service) viewAsOf(ctx context.Context, repo analysis.Repository, position int64) (*tagView, error) {
	asOf, err := s.store.TagsAsOf(ctx, repo, position)
	if err != nil {
		return nil, err
	}
	return &tagView{st: s.store, repo: repo, asOf: asOf, upTo: position}, nil
}

// over reports whether the view has repo's tags as of a position.
func (v *tagView) over(repo analysis.Repository) bool { return v.upTo > 0 && repo == v.repo }

// tagsAt is store.TagsAt in the view.
func (v *tagView) tagsAt(ctx context.Context, repo analysis.Repository, digest string) ([]string, error) {
	if !v.over(repo) {
		return v.st.TagsAt(ctx, repo, digest)
	}
	var out []string
	for t, d := range v.asOf {
		if d == digest {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out, nil
}

// tagsEverAt is store.TagsEverAt in the view: the log up to the view's
// position, and the tags that point at one of digests as the view has them.
func (v *tagView) tagsEverAt(ctx context.Context, repo analysis.Repository, digests []string) ([]string, error) {
	if !v.over(repo) {
		return v.st.TagsEverAt(ctx, repo, digests, 0)
	}
	tags, err := v.st.TagsEverAt(ctx, repo, digests, v.upTo)
	if err != nil {
		return nil, err
	}
	for t, d := range v.asOf {
		if slices.Contains(digests, d) && !slices.Contains(tags, t) {
			tags = append(tags, t)
		}
	}
	slices.Sort(tags)
	return tags, nil
}

// tagDigests is store.TagDigests in the view.
func (v *tagView) tagDigests(ctx context.Context, repo analysis.Repository, tags []string) (map[string]string, error) {
	if !v.over(repo) {
		return v.st.TagDigests(ctx, repo, tags)
	}
	out := make(map[string]string, len(tags))
	for _, t := range tags {
		if d, ok := v.asOf[t]; ok {
			out[t] = d
		}
	}
	return out, nil
}

// attachParents fills the parent of each platform image of rep, recording in
// deps every scope it read to do so, and stores each parent link found.
func (s *Service) attachParents(ctx context.Context, repo analysis.Repository, rep *analysis.Report, deps *reads) (*analysis.Report, error) {
	view := plainView(s.store)
	for i := range rep.Platforms {
		p := &rep.Platforms[i]
		found, err := s.parentOf(ctx, view, repo, p, deps)
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

// parentFound is what parentOf found: the parent (nil for none), its
// repository, and the top-level images that contain it.
type parentFound struct {
	parent *analysis.Parent
	repo   analysis.Repository
	tops   []string
}

// parentOf finds the parent of one platform image, as the tags stand in
// view: named by annotations when the image says, else by its provenance's
// image materials, else by the longest layer prefix among known images of
// other repositories. It is the one definition
// of a report's parent and of its outdated flag.
func (s *Service) parentOf(ctx context.Context, view *tagView, repo analysis.Repository, p *analysis.Platform, deps *reads) (parentFound, error) {
	chain := analysis.ChainIDs(p.DiffIDs)
	if name := p.Annotations[annotationBaseName]; name != "" {
		if ref, err := analysis.ParseReference(name); err == nil && ref.Repository != repo {
			deps.addRepository(ref.Repository)
			return s.annotatedParent(ctx, view, ref, p.Annotations[annotationBaseDigest], p, chain)
		}
	}
	// The build's own record of what it used wins over a guess among the
	// images this service happens to know.
	if found, ok, err := s.provenanceParent(ctx, view, repo, p, chain, deps); err != nil || ok {
		return found, err
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
	best, err := s.pick(ctx, view, cands)
	if err != nil {
		return parentFound{}, err
	}
	tops, err := s.store.ImagesContaining(ctx, best.Repository, best.Digest)
	if err != nil {
		return parentFound{}, err
	}
	found := parentFound{repo: best.Repository, tops: tops, parent: &analysis.Parent{
		Registry: best.Repository.Registry, Repository: best.Repository.Name,
		Digest: best.Digest, LayerCount: best.Layers, MatchedLayers: best.Layers, Method: "layers",
	}}
	if err := s.outdated(ctx, view, best.Repository, tops, p.Platform, chain, found.parent); err != nil {
		return parentFound{}, err
	}
	return found, nil
}

// annotatedParent builds the parent an image names in its annotations. The
// named image may be unknown to this service; what is known is filled in.
func (s *Service) annotatedParent(ctx context.Context, view *tagView, ref analysis.Reference, digest string, p *analysis.Platform, chain []string) (parentFound, error) {
	if digest == "" {
		digest = ref.Digest
	}
	platform := p.Platform
	parent := &analysis.Parent{Registry: ref.Registry, Repository: ref.Name, Digest: digest, Method: "annotation", Tags: []string{}}
	found := parentFound{parent: parent, repo: ref.Repository}
	if digest != "" {
		found.tops = []string{digest}
		// The annotation may name an index: report the platform image in it.
		if pi, err := s.store.PlatformOf(ctx, ref.Repository, digest, platform); err == nil {
			parent.Digest, parent.LayerCount = pi.PlatformDigest, pi.LayerCount
			parent.MatchedLayers = s.matchedLayers(ctx, ref.Repository, digest, pi.PlatformDigest, p.DiffIDs)
		} else if !errors.Is(err, analysis.ErrNotFound) {
			return parentFound{}, err
		}
	}
	if err := s.outdated(ctx, view, ref.Repository, found.tops, platform, chain, parent); err != nil {
		return parentFound{}, err
	}
	if ref.Tag != "" && !slices.Contains(parent.Tags, ref.Tag) {
		parent.Tags = append(parent.Tags, ref.Tag)
		analysis.SortTags(parent.Tags)
		if len(found.tops) > 0 {
			// The named tag counts as one that pointed at the parent.
			if err := s.checkTag(ctx, view, ref.Repository, ref.Tag, found.tops, platform, chain, parent); err != nil {
				return parentFound{}, err
			}
			if err := s.movedTags(ctx, view, ref.Repository, parent); err != nil {
				return parentFound{}, err
			}
		}
	}
	return found, nil
}

// matchedLayers counts the leading layers (by diffID) that a child shares
// with the parent platform image parentDigest of the image top; 0 when the
// parent's layers are not known.
func (s *Service) matchedLayers(ctx context.Context, repo analysis.Repository, top, parentDigest string, child []string) int {
	rep, err := s.report(ctx, repo, top)
	if err != nil {
		return 0
	}
	for _, pp := range rep.Platforms {
		if pp.Digest == parentDigest {
			n := 0
			for n < len(pp.DiffIDs) && n < len(child) && pp.DiffIDs[n] == child[n] {
				n++
			}
			return n
		}
	}
	return 0
}

// outdated fills parent.Tags with the tags that pointed at one of tops (the
// top-level images containing the parent), and marks the parent outdated
// when one of them now points at an image whose layers for platform are no
// longer a prefix of the child's (chain); MovedTags then lists the parent's
// tags that point where that one does.
func (s *Service) outdated(ctx context.Context, view *tagView, repo analysis.Repository, tops []string, platform string, chain []string, parent *analysis.Parent) error {
	tags, err := view.tagsEverAt(ctx, repo, tops)
	if err != nil {
		return err
	}
	analysis.SortTags(tags)
	parent.Tags = tags
	for _, t := range tags {
		if err := s.checkTag(ctx, view, repo, t, tops, platform, chain, parent); err != nil {
			return err
		}
		if parent.Outdated {
			break
		}
	}
	return s.movedTags(ctx, view, repo, parent)
}

// movedTags fills parent.MovedTags once the parent is outdated.
func (s *Service) movedTags(ctx context.Context, view *tagView, repo analysis.Repository, parent *analysis.Parent) error {
	if !parent.Outdated || parent.CurrentDigest == "" {
		return nil
	}
	now, err := view.tagDigests(ctx, repo, parent.Tags)
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

// checkTag marks parent outdated when tag, which pointed at one of tops,
// now points at an image with an image for platform whose layers are not a
// prefix of the child's (chain). A tag that points nowhere (deleted), at one
// of tops, or at an image without an image for platform (a base now built
// for fewer platforms, or one whose layers are unknown) leaves the child
// current: there is nothing newer for it to be rebuilt on.
func (s *Service) checkTag(ctx context.Context, view *tagView, repo analysis.Repository, tag string, tops []string, platform string, chain []string, parent *analysis.Parent) error {
	now, err := view.tagDigests(ctx, repo, []string{tag})
	if err != nil {
		return err
	}
	cur, ok := now[tag]
	if !ok || slices.Contains(tops, cur) {
		return nil
	}
	pi, err := s.store.PlatformOf(ctx, repo, cur, platform)
	if errors.Is(err, analysis.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if isPrefix(pi, chain) {
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
func (s *Service) pick(ctx context.Context, view *tagView, cands []analysis.ParentCandidate) (analysis.ParentCandidate, error) {
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
			tags, err := view.tagsAt(ctx, c.Repository, top)
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

// OutdatedImage is an image whose report turns outdated with a change
// set: its parent is an image of Base that one of Base's tags pointed at,
// and that tag now points at BaseDigest, whose layers are no longer a
// prefix of the image's.
type OutdatedImage struct {
	// Child and Digest name the image (its top-level digest); Tags are its
	// tags now, sorted (empty when it is known by digest alone).
	Child  analysis.Repository
	Digest string
	Tags   []string
	// Platforms are the platforms that became outdated.
	Platforms []string
	// Base is the parent's repository; BaseDigest where its moved tags point
	// now, BaseTags the parent's tags that point there; BuiltOn is the
	// parent's top-level image the child was built on (where the moved tag
	// pointed before).
	Base       analysis.Repository
	BaseDigest string
	BaseTags   []string
	BuiltOn    string
}

// OutdatedBy lists the known images that a change set of one repository
// (store.NextChangeSet's) makes outdated: those whose report says outdated
// right after the set and did not right before it. Each candidate (a
// recorded child of an image a moved tag pointed at, or of one with the
// same layers) has its parent found and judged by parentOf twice, on views
// of the store as of the change log just before the set and at its end, so
// an event is sent exactly when the API, the page and the badge start
// saying "outdated", however long after the set the question is asked.
// Creations and deletions make nothing outdated: a tag that points nowhere
// leaves its children current.
func (s *Service) OutdatedBy(ctx context.Context, set []store.TagChange) ([]OutdatedImage, error) {
	if len(set) == 0 {
		return nil, nil
	}
	repo := analysis.Repository{Registry: set[0].Registry, Name: set[0].Repository}
	prevOf := map[string]string{}
	var previous []string
	for _, c := range set {
		if c.Kind != store.ChangeMoved {
			continue
		}
		prevOf[c.Tag] = c.Previous
		if !slices.Contains(previous, c.Previous) {
			previous = append(previous, c.Previous)
		}
	}
	if len(previous) == 0 {
		return nil, nil
	}
	links, err := s.candidateChildren(ctx, repo, previous)
	if err != nil || len(links) == 0 {
		return nil, err
	}
	quiet, err := s.privateBase(ctx, repo)
	if err != nil {
		return nil, err
	}
	before, err := s.viewAsOf(ctx, repo, set[0].ID-1)
	if err != nil {
		return nil, err
	}
	after, err := s.viewAsOf(ctx, repo, set[len(set)-1].ID)
	if err != nil {
		return nil, err
	}
	var out []OutdatedImage
	index := map[string]int{}
	for _, l := range links {
		if quiet {
			// base.updated names the base and its digests: subscribers of a
			// public child may be anyone, so a private base's move is told only
			// about children that are private too, whose subscribers had to
			// be allowed to see private images.
			if v, err := s.verdict(ctx, analysis.Reference{Repository: l.Child}, false, time.Time{}); err != nil {
				return nil, err
			} else if v != analysis.VisibilityPrivate {
				continue
			}
		}
		child, err := s.report(ctx, l.Child, l.ChildDigest)
		if err != nil {
			continue // content gone or unreadable: nothing to say about it
		}
		var p *analysis.Platform
		for i := range child.Platforms {
			if child.Platforms[i].Digest == l.PlatformDigest {
				p = &child.Platforms[i]
			}
		}
		if p == nil {
			continue
		}
		deps := newReads(s.store)
		was, err := s.parentOf(ctx, before, l.Child, p, deps)
		if err != nil {
			return nil, err
		}
		if was.parent != nil && was.parent.Outdated {
			continue
		}
		now, err := s.parentOf(ctx, after, l.Child, p, deps)
		if err != nil {
			return nil, err
		}
		if now.parent == nil || !now.parent.Outdated || now.repo != repo {
			continue
		}
		key := l.Child.WithDigest(l.ChildDigest).String() + " " + now.parent.CurrentDigest
		i, ok := index[key]
		if !ok {
			tags, err := s.store.TagsAt(ctx, l.Child, l.ChildDigest)
			if err != nil {
				return nil, err
			}
			analysis.SortTags(tags)
			o := OutdatedImage{Child: l.Child, Digest: l.ChildDigest, Tags: tags, Base: repo,
				BaseDigest: now.parent.CurrentDigest, BaseTags: now.parent.MovedTags}
			for _, t := range now.parent.MovedTags {
				if prev, moving := prevOf[t]; moving && prev != "" {
					o.BuiltOn = prev
					break
				}
			}
			if o.BuiltOn == "" && len(now.tops) > 0 {
				o.BuiltOn = now.tops[0]
			}
			i = len(out)
			index[key] = i
			out = append(out, o)
		}
		out[i].Platforms = append(out[i].Platforms, p.Platform)
	}
	return out, nil
}

// candidateChildren returns the recorded children of the images previous
// (the digests the moving tags pointed at): of their platform images, of
// the images with the same layers (a relabelled base keeps its children),
// and of the images themselves (an annotation may name an index). Each
// child platform image once.
func (s *Service) candidateChildren(ctx context.Context, repo analysis.Repository, previous []string) ([]store.ParentLink, error) {
	var out []store.ParentLink
	seen := map[store.ParentLink]bool{}
	add := func(ls []store.ParentLink) {
		for _, l := range ls {
			key := store.ParentLink{Child: l.Child, ChildDigest: l.ChildDigest, PlatformDigest: l.PlatformDigest}
			if !seen[key] {
				seen[key] = true
				out = append(out, l)
			}
		}
	}
	for _, prev := range previous {
		ls, err := s.store.Children(ctx, repo, prev)
		if err != nil {
			return nil, err
		}
		add(ls)
		olds, err := s.store.PlatformsOf(ctx, repo, prev)
		if err != nil {
			return nil, err
		}
		for _, old := range olds {
			same, err := s.store.SameLayers(ctx, repo, old.ChainID)
			if err != nil {
				return nil, err
			}
			for _, d := range same {
				ls, err := s.store.Children(ctx, repo, d)
				if err != nil {
					return nil, err
				}
				add(ls)
			}
		}
	}
	return out, nil
}
