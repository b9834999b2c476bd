package images

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/registry"
	"github.com/imagebadger/imagebadger/store"
)

// lookSupply asks the registry what signs and attests each platform image of
// digest in repo and records it. Signatures come after the image, so every
// lookup for a read (a first read, a refresh) and every move a poll finds
// looks again; a listing's or a poll's check that finds a tag where it was
// does not. The supply chain is an extra: a failure is logged and the read
// goes on without it.
//
// The look needs only the top manifest, which must already be in the
// store, so it starts at once and runs beside the reading of the report
// (the platform manifests and configs): its requests (the tag list, the
// referrers) then cost a read no round trip of its own. What it finds
// about provenance materials needs the report's platforms, so the returned
// finish waits for the look and then learns the materials of rep; call it
// exactly once, with nil when the report could not be read (which stops the
// look).
func (s *Service) lookSupply(ctx context.Context, repo analysis.Repository, digest string, polling bool) (finish func(rep *analysis.Report)) {
	// The look outlives a caller that gives up, but not a report that
	// failed: an image this service will not read needs no supply chain.
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	var found map[string]*registry.Supply
	go func() {
		defer close(done)
		v, err, _ := s.flight.Do("supply\x00"+reportKey(repo, digest), func() (any, error) {
			return s.findSupply(ctx, repo, digest, polling)
		})
		if err == nil {
			found = v.(map[string]*registry.Supply)
		}
	}()
	return func(rep *analysis.Report) {
		defer cancel()
		if rep == nil {
			cancel()
		}
		<-done
		if rep == nil {
			return
		}
		for _, p := range rep.Platforms {
			if sc := found[p.Digest]; sc != nil && sc.Provenance != nil {
				s.learnMaterials(ctx, p.Platform, sc.Provenance, polling)
			}
		}
	}
}

// findSupply is one look of lookSupply: what the registry holds, recorded
// per platform image digest.
func (s *Service) findSupply(ctx context.Context, repo analysis.Repository, digest string, polling bool) (map[string]*registry.Supply, error) {
	at := s.opts.Now()
	_, inspector := s.reader(polling)
	found, err := inspector.SupplyChain(ctx, repo, digest)
	if err != nil {
		s.opts.Logger.Info("supply chain unavailable", "image", repo.WithDigest(digest).String(), "err", err)
		return nil, err
	}
	for d, sc := range found {
		body, err := json.Marshal(sc.SupplyChain)
		if err != nil {
			return nil, err
		}
		if _, err := s.store.RecordSupplyChain(ctx, repo, d, store.SupplyRecord{Body: body, SBOMDigest: sc.SBOMDigest, Checked: at}); err != nil {
			s.opts.Logger.Warn("supply chain not recorded", "image", repo.WithDigest(d).String(), "err", err)
			return nil, err
		}
	}
	return found, nil
}

// attachSupply sets each platform's supplyChain from what the last look
// found; a platform never looked at keeps null.
func (s *Service) attachSupply(ctx context.Context, repo analysis.Repository, rep *analysis.Report) error {
	for i := range rep.Platforms {
		p := &rep.Platforms[i]
		r, err := s.store.SupplyChain(ctx, repo, p.Digest)
		if errors.Is(err, analysis.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		var sc analysis.SupplyChain
		if err := json.Unmarshal(r.Body, &sc); err != nil {
			return fmt.Errorf("images: supply chain of %s: %w", repo.WithDigest(p.Digest), err)
		}
		p.SupplyChain = &sc
	}
	return nil
}

// SBOMPage is one page of an image's SBOM packages.
type SBOMPage struct {
	Format   string             `json:"format"`
	Packages []analysis.Package `json:"packages"`
	// Next is the cursor of the next page, "" on the last.
	Next string `json:"next"`
}

// SBOMPageSize is how many packages one page holds.
const SBOMPageSize = 500

// SBOM answers a page of the SBOM packages of ref's platform image (see
// analysis.Report.Select), those whose name or purl contain q (ignoring
// case) when q is given, from cursor on (an offset into the matches, as
// Next gave it). It reads the image through Read, so it is known, visible
// and as fresh as any read, and passes the one visibility check: to a
// viewer who may not see a private repository it answers as for one that
// does not exist. An image without an SBOM is not found.
func (s *Service) SBOM(ctx context.Context, viewer auth.Viewer, ref analysis.Reference, platform, q, cursor string, how ReadOptions) (SBOMPage, error) {
	a, err := s.Read(ctx, viewer, ref, how)
	if err != nil {
		return SBOMPage{}, err
	}
	p, ok := a.Report.Select(platform)
	if !ok {
		return SBOMPage{}, analysis.Errorf(analysis.ErrNotFound, nil, "%s has no platform %s", ref, platform)
	}
	r, err := s.store.SupplyChain(ctx, ref.Repository, p.Digest)
	if err != nil && !errors.Is(err, analysis.ErrNotFound) {
		return SBOMPage{}, err
	}
	if err != nil || r.SBOMDigest == "" {
		return SBOMPage{}, analysis.Errorf(analysis.ErrNotFound, err, "no SBOM is known for %s (%s)", ref, p.Platform)
	}
	sb, err := s.inspector.SBOM(ctx, r.SBOMDigest)
	if err != nil {
		return SBOMPage{}, err
	}
	start := 0
	if cursor != "" {
		if _, err := fmt.Sscanf(cursor, "%d", &start); err != nil || start < 0 {
			return SBOMPage{}, analysis.Errorf(analysis.ErrInvalidRequest, err, "cursor %q is not one this service gave", cursor)
		}
	}
	q = strings.ToLower(q)
	page := SBOMPage{Format: sb.Format, Packages: []analysis.Package{}}
	seen := 0
	for _, pkg := range sb.Packages {
		if q != "" && !strings.Contains(strings.ToLower(pkg.Name), q) && !strings.Contains(strings.ToLower(pkg.Purl), q) {
			continue
		}
		seen++
		if seen <= start {
			continue
		}
		if len(page.Packages) == SBOMPageSize {
			page.Next = fmt.Sprint(start + SBOMPageSize)
			break
		}
		page.Packages = append(page.Packages, pkg)
	}
	return page, nil
}
