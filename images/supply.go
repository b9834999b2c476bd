package images

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/store"
)

// lookSupply asks the registry what signs and attests each platform image of
// rep and records it. Signatures come after the image, so every lookup for
// a read (a first read, a refresh) and every move a poll finds looks again;
// a listing's or a poll's check that finds a tag where it was does not. The
// supply chain is an extra: a
// failure is logged and the read goes on without it.
func (s *Service) lookSupply(ctx context.Context, repo analysis.Repository, rep *analysis.Report, polling bool) {
	_, _, _ = s.flight.Do("supply\x00"+reportKey(repo, rep.Digest), func() (any, error) {
		ctx := context.WithoutCancel(ctx)
		at := s.opts.Now()
		_, inspector := s.reader(polling)
		found, err := inspector.SupplyChain(ctx, repo, rep.Digest)
		if err != nil {
			s.opts.Logger.Info("supply chain unavailable", "image", repo.WithDigest(rep.Digest).String(), "err", err)
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
		for _, p := range rep.Platforms {
			if sc := found[p.Digest]; sc != nil && sc.Provenance != nil {
				s.learnMaterials(ctx, p.Platform, sc.Provenance, polling)
			}
		}
		return nil, nil
	})
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
