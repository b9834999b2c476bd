package images

import (
	"context"
	"encoding/json"
	"errors"
	"slices"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/store"
)

// MaxProvenanceMaterials bounds the image materials of one provenance that
// are fetched to find the base: a build names a frontend, a few stages'
// images and its base.
const MaxProvenanceMaterials = 8

// imageMaterials returns the image materials of a provenance that may be
// p's base: at most MaxProvenanceMaterials, never a frontend, and only
// those built for p's platform when the material says.
func imageMaterials(prov *analysis.Provenance, platform string) []analysis.ImageMaterial {
	var out []analysis.ImageMaterial
	for _, m := range prov.Materials {
		im, ok := analysis.ParseImageMaterial(m)
		if !ok || analysis.IsFrontend(im.Ref.Repository) || (im.Platform != "" && im.Platform != platform) {
			continue
		}
		out = append(out, im)
		if len(out) == MaxProvenanceMaterials {
			break
		}
	}
	return out
}

// learnMaterials makes the image materials of what sc's provenance names
// known: each fetched by its digest and indexed, and the tag it was built
// from resolved now, so that whether the image is outdated can be told.
// Its visibility is learnt too, so that a private one is shown only to
// those who may see it. Failures are logged: a material that cannot be
// read is no parent.
func (s *Service) learnMaterials(ctx context.Context, platform string, prov *analysis.Provenance, polling bool) {
	for _, im := range imageMaterials(prov, platform) {
		repo := im.Ref.Repository
		rep, err := s.reportVia(ctx, repo, im.Ref.Digest, polling)
		if err == nil {
			err = s.store.RecordImage(ctx, repo, analysis.Descriptor{Digest: rep.Digest, MediaType: rep.MediaType}, s.opts.Now())
		}
		if err == nil {
			err = s.indexReport(ctx, repo, rep)
		}
		if err == nil {
			// Read with the service's credentials: whether it is private
			// decides who is shown it (see withoutHiddenParents).
			err = s.learnVisibility(ctx, im.Ref)
		}
		if err == nil && im.Ref.Tag != "" {
			err = s.checkMaterialTag(ctx, analysis.Reference{Repository: repo, Tag: im.Ref.Tag}, polling)
		}
		if err != nil {
			s.opts.Logger.Info("provenance material unavailable", "material", im.Ref.String(), "err", err)
		}
	}
}

// checkMaterialTag asks the registry where a material's tag points now and
// records it as any check does, unless the store checked it within
// FreshFor.
func (s *Service) checkMaterialTag(ctx context.Context, ref analysis.Reference, polling bool) error {
	if st, err := s.store.Tag(ctx, ref.Repository, ref.Tag); err == nil && s.opts.Now().Sub(st.Checked) < s.opts.FreshFor {
		return nil
	}
	l, err := s.lookup(ctx, ref, lookupMode{polling: polling})
	if err != nil {
		return err
	}
	if l.rep == nil {
		err := s.recordGone(ctx, ref, l)
		if errors.Is(err, analysis.ErrNotFound) {
			return nil
		}
		return err
	}
	_, err = s.recordTag(ctx, ref, l.previous, l.rep, l.at)
	return err
}

// storedProvenance returns the provenance last found for p, nil when none.
func (s *Service) storedProvenance(ctx context.Context, repo analysis.Repository, p *analysis.Platform) (*analysis.Provenance, error) {
	r, err := s.store.SupplyChain(ctx, repo, p.Digest)
	if errors.Is(err, analysis.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var sc analysis.SupplyChain
	if err := json.Unmarshal(r.Body, &sc); err != nil {
		return nil, err
	}
	return sc.Provenance, nil
}

// provenanceParent finds p's parent among its provenance's image
// materials: the one whose layers are the longest prefix of p's. Builder
// stages and frontends are never picked, their layers are no prefix. ok
// is false when the provenance names no such image (or there is none).
func (s *Service) provenanceParent(ctx context.Context, view *tagView, repo analysis.Repository, p *analysis.Platform, chain []string, deps *reads) (found parentFound, ok bool, err error) {
	if len(chain) == 0 {
		return parentFound{}, false, nil
	}
	prov, err := s.storedProvenance(ctx, repo, p)
	if err != nil || prov == nil {
		return parentFound{}, false, err
	}
	var best store.PlatformImage
	var bestRef analysis.Reference
	for _, im := range imageMaterials(prov, p.Platform) {
		if im.Ref.Repository == repo {
			continue
		}
		deps.addRepository(im.Ref.Repository)
		pi, err := s.store.PlatformOf(ctx, im.Ref.Repository, im.Ref.Digest, p.Platform)
		if errors.Is(err, analysis.ErrNotFound) {
			continue
		}
		if err != nil {
			return parentFound{}, false, err
		}
		if isPrefix(pi, chain) && pi.LayerCount > best.LayerCount {
			best, bestRef = pi, im.Ref
		}
	}
	if best.LayerCount == 0 {
		return parentFound{}, false, nil
	}
	tops, err := s.store.ImagesContaining(ctx, best.Repo, best.PlatformDigest)
	if err != nil {
		return parentFound{}, false, err
	}
	parent := &analysis.Parent{
		Registry: best.Repo.Registry, Repository: best.Repo.Name, Digest: best.PlatformDigest,
		LayerCount: best.LayerCount, MatchedLayers: best.LayerCount, Method: "provenance",
	}
	found = parentFound{parent: parent, repo: best.Repo, tops: tops}
	if err := s.outdated(ctx, view, best.Repo, tops, p.Platform, chain, parent); err != nil {
		return parentFound{}, false, err
	}
	// The tag the build named counts as one that pointed at the parent,
	// even when it had moved on before this service first saw it.
	if bestRef.Tag != "" && !slices.Contains(parent.Tags, bestRef.Tag) {
		parent.Tags = append(parent.Tags, bestRef.Tag)
		analysis.SortTags(parent.Tags)
		if !parent.Outdated {
			if err := s.checkTag(ctx, view, best.Repo, bestRef.Tag, tops, p.Platform, chain, parent); err != nil {
				return parentFound{}, false, err
			}
		}
		if err := s.movedTags(ctx, view, best.Repo, parent); err != nil {
			return parentFound{}, false, err
		}
	}
	return found, true, nil
}
