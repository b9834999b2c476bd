package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
)

// PlatformImage is one platform image of a known image, as the parent index needs it.
type PlatformImage struct {
	Repo           analysis.Repository
	Digest         string // top-level image
	PlatformDigest string
	Platform       string
	ChainID        string
	LayerCount     int
	FirstSeen      time.Time
}

// RecordPlatforms stores the platform images of one image; known rows are
// kept. When any row is new, the parent candidates have changed: the index
// scope's change stamp is bumped with them.
func (s *Store) RecordPlatforms(ctx context.Context, ps []PlatformImage) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: record platforms: %w", err)
	}
	defer tx.Rollback()
	added := false
	for _, p := range ps {
		res, err := tx.ExecContext(ctx, `INSERT INTO platform_images
			(registry, repository, digest, platform_digest, platform, chain_id, layer_count, first_seen_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (registry, repository, digest, platform_digest) DO NOTHING`,
			p.Repo.Registry, p.Repo.Name, p.Digest, p.PlatformDigest, p.Platform, p.ChainID, p.LayerCount, millis(p.FirstSeen))
		if err != nil {
			return fmt.Errorf("store: record platform %s@%s: %w", p.Repo, p.PlatformDigest, err)
		}
		if n, err := res.RowsAffected(); err == nil && n > 0 {
			added = true
		}
	}
	var given map[Scope]Stamp
	if added {
		if given, err = s.bump(ctx, tx, IndexScope); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: record platforms: %w", err)
	}
	s.publish(given)
	return nil
}

// EachPlatform calls fn for every distinct platform image of every
// repository first seen at or after since (the zero time: all of them),
// earliest first, to build the parent index at start-up and to learn the
// images other processes sharing the database have recorded.
func (s *Store) EachPlatform(ctx context.Context, since time.Time, fn func(PlatformImage)) error {
	var from int64
	if !since.IsZero() {
		from = millis(since)
	}
	rows, err := s.read.QueryContext(ctx, `SELECT registry, repository, platform_digest, chain_id, layer_count, MIN(first_seen_at)
		FROM platform_images WHERE first_seen_at >= ?
		GROUP BY registry, repository, platform_digest, chain_id, layer_count ORDER BY MIN(first_seen_at)`, from)
	if err != nil {
		return fmt.Errorf("store: list platform images: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p PlatformImage
		var seen int64
		if err := rows.Scan(&p.Repo.Registry, &p.Repo.Name, &p.PlatformDigest, &p.ChainID, &p.LayerCount, &seen); err != nil {
			return fmt.Errorf("store: list platform images: %w", err)
		}
		p.FirstSeen = fromMillis(seen)
		fn(p)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: list platform images: %w", err)
	}
	return nil
}

// ImagesContaining returns the top-level images of repo that contain the
// platform image platformDigest (an index, or the manifest itself).
func (s *Store) ImagesContaining(ctx context.Context, repo analysis.Repository, platformDigest string) ([]string, error) {
	return s.strings(ctx, `SELECT DISTINCT digest FROM platform_images WHERE registry = ? AND repository = ? AND platform_digest = ? ORDER BY digest`,
		repo.Registry, repo.Name, platformDigest)
}

// PlatformOf returns the platform image of the top-level image digest for
// platform, or an error wrapping analysis.ErrNotFound.
func (s *Store) PlatformOf(ctx context.Context, repo analysis.Repository, digest, platform string) (PlatformImage, error) {
	p := PlatformImage{Repo: repo, Digest: digest, Platform: platform}
	var seen int64
	err := s.read.QueryRowContext(ctx, `SELECT platform_digest, chain_id, layer_count, first_seen_at FROM platform_images
		WHERE registry = ? AND repository = ? AND digest = ? AND platform = ? ORDER BY platform_digest LIMIT 1`,
		repo.Registry, repo.Name, digest, platform).Scan(&p.PlatformDigest, &p.ChainID, &p.LayerCount, &seen)
	if errors.Is(err, sql.ErrNoRows) {
		return PlatformImage{}, fmt.Errorf("store: %s platform of %s@%s: %w", platform, repo, digest, analysis.ErrNotFound)
	}
	if err != nil {
		return PlatformImage{}, fmt.Errorf("store: %s platform of %s@%s: %w", platform, repo, digest, err)
	}
	p.FirstSeen = fromMillis(seen)
	return p, nil
}

// TagsEverAt returns the tags of repo that ever pointed at one of digests,
// by the change log and the tags as they are, sorted. With upTo > 0 it is
// the log alone, up to and including the change at upTo (TagsAsOf has the
// tags as they stood then).
func (s *Store) TagsEverAt(ctx context.Context, repo analysis.Repository, digests []string, upTo int64) ([]string, error) {
	var out []string
	for _, d := range digests {
		q := `SELECT tag FROM tag_changes WHERE registry = ? AND repository = ? AND digest = ?
			UNION SELECT tag FROM tags WHERE registry = ? AND repository = ? AND digest = ?`
		args := []any{repo.Registry, repo.Name, d, repo.Registry, repo.Name, d}
		if upTo > 0 {
			q = `SELECT DISTINCT tag FROM tag_changes WHERE registry = ? AND repository = ? AND digest = ? AND id <= ?`
			args = []any{repo.Registry, repo.Name, d, upTo}
		}
		tags, err := s.strings(ctx, q, args...)
		if err != nil {
			return nil, err
		}
		out = append(out, tags...)
	}
	return sortedUnique(out), nil
}

// TagsAsOf returns where each of repo's tags pointed right after the change
// at position: for a tag changed up to there, its latest change; for one
// first changed after it, where that change found it; for one never
// changed (recorded before the log began), where it points. A tag deleted
// or not yet created then is left out. It is one statement, so one snapshot
// of the database, whatever other processes commit meanwhile.
func (s *Store) TagsAsOf(ctx context.Context, repo analysis.Repository, position int64) (map[string]string, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT tag, digest FROM (
			SELECT c.tag, c.digest FROM tag_changes c
			WHERE c.registry = ? AND c.repository = ? AND c.id = (SELECT MAX(c2.id) FROM tag_changes c2
				WHERE c2.registry = c.registry AND c2.repository = c.repository AND c2.tag = c.tag AND c2.id <= ?)
			UNION ALL
			SELECT c.tag, c.previous_digest FROM tag_changes c
			WHERE c.registry = ? AND c.repository = ? AND c.id > ? AND c.id = (SELECT MIN(c2.id) FROM tag_changes c2
				WHERE c2.registry = c.registry AND c2.repository = c.repository AND c2.tag = c.tag)
			UNION ALL
			SELECT t.tag, t.digest FROM tags t
			WHERE t.registry = ? AND t.repository = ? AND NOT EXISTS (SELECT 1 FROM tag_changes c
				WHERE c.registry = t.registry AND c.repository = t.repository AND c.tag = t.tag)
		) AS as_of WHERE digest IS NOT NULL`,
		repo.Registry, repo.Name, position, repo.Registry, repo.Name, position, repo.Registry, repo.Name)
	if err != nil {
		return nil, fmt.Errorf("store: tags of %s as of change %d: %w", repo, position, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var tag, digest string
		if err := rows.Scan(&tag, &digest); err != nil {
			return nil, fmt.Errorf("store: tags of %s as of change %d: %w", repo, position, err)
		}
		out[tag] = digest
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: tags of %s as of change %d: %w", repo, position, err)
	}
	return out, nil
}

// TagDigests returns where each given tag of repo points now; unknown tags are left out.
func (s *Store) TagDigests(ctx context.Context, repo analysis.Repository, tags []string) (map[string]string, error) {
	out := make(map[string]string, len(tags))
	for _, t := range tags {
		var d string
		err := s.read.QueryRowContext(ctx, `SELECT digest FROM tags WHERE registry = ? AND repository = ? AND tag = ?`,
			repo.Registry, repo.Name, t).Scan(&d)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("store: tag %s:%s: %w", repo, t, err)
		}
		out[t] = d
	}
	return out, nil
}

// ParentLink records the parent found for one child platform image.
type ParentLink struct {
	Child          analysis.Repository
	ChildDigest    string
	PlatformDigest string
	Platform       string
	Parent         analysis.Repository
	ParentPlatform string // the parent's platform manifest digest
	Method         string
}

// RecordParent stores (or replaces) the parent of a child platform image.
func (s *Store) RecordParent(ctx context.Context, l ParentLink, at time.Time) error {
	_, err := s.write.ExecContext(ctx, `INSERT INTO parents (registry, repository, digest, platform_digest, platform,
		parent_registry, parent_repository, parent_platform_digest, method, recorded_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (registry, repository, digest, platform_digest) DO UPDATE SET
		parent_registry = excluded.parent_registry, parent_repository = excluded.parent_repository,
		parent_platform_digest = excluded.parent_platform_digest, method = excluded.method, recorded_at = excluded.recorded_at`,
		l.Child.Registry, l.Child.Name, l.ChildDigest, l.PlatformDigest, l.Platform,
		l.Parent.Registry, l.Parent.Name, l.ParentPlatform, l.Method, millis(at))
	if err != nil {
		return fmt.Errorf("store: record parent of %s@%s: %w", l.Child, l.PlatformDigest, err)
	}
	return nil
}

// Children returns the recorded children of the parent platform image.
func (s *Store) Children(ctx context.Context, parent analysis.Repository, parentPlatformDigest string) ([]ParentLink, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT registry, repository, digest, platform_digest, platform, method FROM parents
		WHERE parent_registry = ? AND parent_repository = ? AND parent_platform_digest = ? ORDER BY registry, repository, digest`,
		parent.Registry, parent.Name, parentPlatformDigest)
	if err != nil {
		return nil, fmt.Errorf("store: children of %s@%s: %w", parent, parentPlatformDigest, err)
	}
	defer rows.Close()
	var out []ParentLink
	for rows.Next() {
		l := ParentLink{Parent: parent, ParentPlatform: parentPlatformDigest}
		if err := rows.Scan(&l.Child.Registry, &l.Child.Name, &l.ChildDigest, &l.PlatformDigest, &l.Platform, &l.Method); err != nil {
			return nil, fmt.Errorf("store: children of %s@%s: %w", parent, parentPlatformDigest, err)
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// PlatformsOf returns the platform images of a top-level image.
func (s *Store) PlatformsOf(ctx context.Context, repo analysis.Repository, digest string) ([]PlatformImage, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT platform_digest, platform, chain_id, layer_count, first_seen_at FROM platform_images
		WHERE registry = ? AND repository = ? AND digest = ? ORDER BY platform`, repo.Registry, repo.Name, digest)
	if err != nil {
		return nil, fmt.Errorf("store: platforms of %s@%s: %w", repo, digest, err)
	}
	defer rows.Close()
	var out []PlatformImage
	for rows.Next() {
		p := PlatformImage{Repo: repo, Digest: digest}
		var seen int64
		if err := rows.Scan(&p.PlatformDigest, &p.Platform, &p.ChainID, &p.LayerCount, &seen); err != nil {
			return nil, fmt.Errorf("store: platforms of %s@%s: %w", repo, digest, err)
		}
		p.FirstSeen = fromMillis(seen)
		out = append(out, p)
	}
	return out, rows.Err()
}

func (s *Store) strings(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: query: %w", err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("store: query: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: query: %w", err)
	}
	return out, nil
}

func sortedUnique(s []string) []string {
	seen := make(map[string]bool, len(s))
	out := make([]string, 0, len(s))
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out
}

// SameLayers returns the platform images of repo whose layer list has the
// given ChainID: images that differ only in their config (a relabel) and
// so share their children.
func (s *Store) SameLayers(ctx context.Context, repo analysis.Repository, chainID string) ([]string, error) {
	return s.strings(ctx, `SELECT DISTINCT platform_digest FROM platform_images WHERE registry = ? AND repository = ? AND chain_id = ? ORDER BY platform_digest`,
		repo.Registry, repo.Name, chainID)
}
