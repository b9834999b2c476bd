package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
)

// TagState is what the store knows of one tag.
type TagState struct {
	Digest    string
	MediaType string
	FirstSeen time.Time
	// Changed is when the tag was last seen pointing somewhere new.
	Changed time.Time
	// Checked is when the registry was last asked.
	Checked time.Time
}

// Tag returns the stored state of repo:tag, or an error wrapping
// analysis.ErrNotFound when the tag was never resolved; for a tag recorded
// as deleted, that error also holds an analysis.TagDeleted (see
// analysis.DeletedTag) saying when and where it last pointed. Rows once read,
// deletions included, are answered from memory while the repository's change
// stamp is unchanged (see tagCache).
func (s *Store) Tag(ctx context.Context, repo analysis.Repository, tag string) (TagState, error) {
	k := keyOf(repo, tag)
	stamp := s.Stamp(RepositoryScope(repo))
	if e, ok := s.tags.get(k, stamp); ok {
		return e.answer(repo, tag)
	}
	return s.loadTag(ctx, repo, tag, stamp)
}

// ReloadTag is Tag read from the database whatever memory holds, for a
// caller about to ask the registry because the remembered check is old:
// another process may have checked the tag since.
func (s *Store) ReloadTag(ctx context.Context, repo analysis.Repository, tag string) (TagState, error) {
	return s.loadTag(ctx, repo, tag, s.Stamp(RepositoryScope(repo)))
}

func (s *Store) loadTag(ctx context.Context, repo analysis.Repository, tag string, stamp Stamp) (TagState, error) {
	var st TagState
	var first, changed, checked int64
	err := s.read.QueryRowContext(ctx, `SELECT digest, media_type, first_seen_at, changed_at, checked_at
		FROM tags WHERE registry = ? AND repository = ? AND tag = ?`, repo.Registry, repo.Name, tag).
		Scan(&st.Digest, &st.MediaType, &first, &changed, &checked)
	if errors.Is(err, sql.ErrNoRows) {
		return s.loadDeleted(ctx, repo, tag, stamp)
	}
	if err != nil {
		return TagState{}, fmt.Errorf("store: tag %s:%s: %w", repo, tag, err)
	}
	st.FirstSeen, st.Changed, st.Checked = fromMillis(first), fromMillis(changed), fromMillis(checked)
	s.tags.put(keyOf(repo, tag), tagEntry{state: st}, stamp)
	return st, nil
}

// loadDeleted answers a tag without a row in tags: deleted, or never known.
func (s *Store) loadDeleted(ctx context.Context, repo analysis.Repository, tag string, stamp Stamp) (TagState, error) {
	var digest string
	var at, checked int64
	err := s.read.QueryRowContext(ctx, `SELECT digest, deleted_at, checked_at FROM deleted_tags
		WHERE registry = ? AND repository = ? AND tag = ?`, repo.Registry, repo.Name, tag).Scan(&digest, &at, &checked)
	e := tagEntry{missing: true}
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return TagState{}, fmt.Errorf("store: tag %s:%s: %w", repo, tag, err)
	default:
		e.gone = &analysis.TagDeleted{Ref: repo.WithTag(tag), Digest: digest, At: fromMillis(at), Checked: fromMillis(checked)}
	}
	s.tags.put(keyOf(repo, tag), e, stamp)
	return e.answer(repo, tag)
}

// TagCheck is the outcome of recording a resolution of a tag.
type TagCheck struct {
	// Previous is the digest the tag pointed at before; empty for a new tag.
	Previous string
	// Moved is true when the tag is new or points somewhere new.
	Moved bool
}

// ErrTagMoved is RecordTag's answer when the tag no longer points where
// the caller saw it: another writer recorded a move in between. The
// TagCheck returned with it holds where the tag points now, so the caller
// can describe the move again from there and retry.
var ErrTagMoved = errors.New("store: the tag moved since it was read")

// TagRecord is one resolution of a tag to record.
type TagRecord struct {
	Repo analysis.Repository
	Tag  string
	// Previous is where the caller saw the tag point ("" when it believed
	// the tag new). The record is a compare-and-set: it is made only if
	// the store still holds Previous, else RecordTag answers ErrTagMoved.
	Previous string
	// To is where the registry says the tag points now.
	To analysis.Descriptor
	At time.Time
}

// RecordTag records that r.Repo:r.Tag resolved to r.To at r.At, and that the
// image is known in the repository. When the tag is new or moved, the change
// goes into the change log and the repository's change stamp is bumped, in
// the same transaction; that is all a move records (notify's fan-out tells
// subscribers from the log). It reports whether the tag moved. A tag
// recorded as deleted and seen again is new: its change is "created", from
// no previous digest.
func (s *Store) RecordTag(ctx context.Context, r TagRecord) (TagCheck, error) {
	checks, err := s.RecordTags(ctx, []TagRecord{r})
	if len(checks) == 0 {
		return TagCheck{}, err
	}
	return checks[0], err
}

// RecordTags is RecordTag for several tags of one repository in one
// transaction: every record is a compare-and-set, and when one fails the
// whole batch is refused with ErrTagMoved (the TagChecks then say where each
// tag points), so moves noticed together (a base rebuild moving four tags,
// seen by one listing) are recorded as one change set, told as one.
func (s *Store) RecordTags(ctx context.Context, rs []TagRecord) ([]TagCheck, error) {
	if len(rs) == 0 {
		return nil, nil
	}
	repo := rs[0].Repo
	scope := RepositoryScope(repo)
	before := s.Stamp(scope)
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("store: record tags of %s: %w", repo, err)
	}
	defer tx.Rollback()
	checks := make([]TagCheck, len(rs))
	states := make([]TagState, len(rs))
	var moved []int
	var refused error
	// The rows are locked (PostgreSQL: FOR UPDATE) in the order of their
	// tags, so that two batches of one repository never wait on each other
	// in a circle.
	order := make([]int, len(rs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return rs[order[a]].Tag < rs[order[b]].Tag })
	for _, i := range order {
		r := rs[i]
		if r.Repo != repo {
			return nil, fmt.Errorf("store: record tags of %s: %s is another repository", repo, r.Repo)
		}
		check, st, err := s.recordTagTx(ctx, tx, r)
		if errors.Is(err, ErrTagMoved) {
			refused = err
		} else if err != nil {
			return nil, err
		}
		checks[i], states[i] = check, st
		if check.Moved {
			moved = append(moved, i)
		}
	}
	if refused != nil {
		return checks, refused
	}
	slices.Sort(moved)
	var given map[Scope]Stamp
	stamp := before
	if len(moved) > 0 {
		// The stamps first: the change log's row lock orders the change IDs
		// by commit (see ChangeLogScope).
		if given, err = s.bump(ctx, tx, scope, ChangeLogScope); err != nil {
			return nil, err
		}
		stamp = given[scope]
		latest := rs[moved[0]].At
		var set int64
		for _, i := range moved {
			r := rs[i]
			kind, prev := ChangeMoved, any(checks[i].Previous)
			if checks[i].Previous == "" {
				kind, prev = ChangeCreated, nil
			}
			id, err := insertChange(ctx, tx, set, r.Repo, r.Tag, kind, r.To.Digest, prev, r.At)
			if err != nil {
				return nil, err
			}
			if set == 0 {
				set = id
			}
			if r.At.After(latest) {
				latest = r.At
			}
		}
		if err := s.knowRepository(ctx, tx, repo, latest); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("store: record tags of %s: %w", repo, err)
	}
	s.publish(given)
	for i, r := range rs {
		s.tags.put(keyOf(r.Repo, r.Tag), tagEntry{state: states[i]}, stamp)
	}
	return checks, nil
}

// recordTagTx writes one TagRecord's row inside tx and returns what it found
// and what the row holds now; the history and events are the caller's.
func (s *Store) recordTagTx(ctx context.Context, tx *tx, r TagRecord) (TagCheck, TagState, error) {
	var prev, prevType string
	var first, changed int64
	err := tx.QueryRowContext(ctx, `SELECT digest, media_type, first_seen_at, changed_at FROM tags WHERE registry = ? AND repository = ? AND tag = ?`+
		s.engine.forUpdate(false), r.Repo.Registry, r.Repo.Name, r.Tag).Scan(&prev, &prevType, &first, &changed)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return TagCheck{}, TagState{}, fmt.Errorf("store: record tag %s:%s: %w", r.Repo, r.Tag, err)
	}
	if prev != r.Previous {
		return TagCheck{Previous: prev}, TagState{}, fmt.Errorf("store: record tag %s:%s: %w", r.Repo, r.Tag, ErrTagMoved)
	}
	at := millis(r.At)
	// What the row holds once this commits.
	now := TagState{Digest: r.To.Digest, MediaType: r.To.MediaType, FirstSeen: fromMillis(at), Changed: fromMillis(at), Checked: fromMillis(at)}
	switch {
	case prev == "":
		// A tag pushed again after its deletion is a new tag.
		if _, err = tx.ExecContext(ctx, `DELETE FROM deleted_tags WHERE registry = ? AND repository = ? AND tag = ?`,
			r.Repo.Registry, r.Repo.Name, r.Tag); err != nil {
			break
		}
		// Another process may create the tag at the same moment: the
		// loser of the race finds the tag moved, as a compare-and-set must.
		var res sql.Result
		res, err = tx.ExecContext(ctx, `INSERT INTO tags (registry, repository, tag, digest, media_type, first_seen_at, changed_at, checked_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (registry, repository, tag) DO NOTHING`,
			r.Repo.Registry, r.Repo.Name, r.Tag, r.To.Digest, r.To.MediaType, at, at, at)
		if n, rerr := rowsAffected(res, err); rerr == nil && n == 0 {
			var now string
			_ = s.read.QueryRowContext(ctx, `SELECT digest FROM tags WHERE registry = ? AND repository = ? AND tag = ?`,
				r.Repo.Registry, r.Repo.Name, r.Tag).Scan(&now)
			return TagCheck{Previous: now}, TagState{}, fmt.Errorf("store: record tag %s:%s: %w", r.Repo, r.Tag, ErrTagMoved)
		}
	case prev == r.To.Digest:
		now.MediaType, now.FirstSeen, now.Changed = prevType, fromMillis(first), fromMillis(changed)
		_, err = tx.ExecContext(ctx, `UPDATE tags SET checked_at = ? WHERE registry = ? AND repository = ? AND tag = ?`,
			at, r.Repo.Registry, r.Repo.Name, r.Tag)
	default:
		now.FirstSeen = fromMillis(first)
		_, err = tx.ExecContext(ctx, `UPDATE tags SET digest = ?, media_type = ?, changed_at = ?, checked_at = ?
			WHERE registry = ? AND repository = ? AND tag = ?`, r.To.Digest, r.To.MediaType, at, at, r.Repo.Registry, r.Repo.Name, r.Tag)
	}
	if err != nil {
		return TagCheck{}, TagState{}, fmt.Errorf("store: record tag %s:%s: %w", r.Repo, r.Tag, err)
	}
	if err := recordImage(ctx, tx, r.Repo, r.To, r.At); err != nil {
		return TagCheck{}, TagState{}, err
	}
	return TagCheck{Previous: prev, Moved: prev != r.To.Digest}, now, nil
}

// TagDeletion is a tag the registry answered "not found" for.
type TagDeletion struct {
	Repo analysis.Repository
	Tag  string
	// Previous is where the caller saw the tag point; the record is a
	// compare-and-set, as TagRecord's. "" records a check of a tag already
	// known as deleted (or never known, which records nothing).
	Previous string
	At       time.Time
}

// RecordDeletion records that d.Repo:d.Tag is gone from its registry: the
// tag leaves the tags (and so every tag group and tags list), its deletion
// goes into the change log once (notify tells it as tag.deleted), and the
// repository's change stamp is bumped, so answers and badges say so at once. For a tag
// already recorded as deleted it only notes when the registry was asked.
// TagCheck.Moved reports whether the deletion was recorded now.
func (s *Store) RecordDeletion(ctx context.Context, d TagDeletion) (TagCheck, error) {
	scope := RepositoryScope(d.Repo)
	before := s.Stamp(scope)
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return TagCheck{}, fmt.Errorf("store: record deletion of %s:%s: %w", d.Repo, d.Tag, err)
	}
	defer tx.Rollback()
	var prev string
	err = tx.QueryRowContext(ctx, `SELECT digest FROM tags WHERE registry = ? AND repository = ? AND tag = ?`+
		s.engine.forUpdate(false), d.Repo.Registry, d.Repo.Name, d.Tag).Scan(&prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return TagCheck{}, fmt.Errorf("store: record deletion of %s:%s: %w", d.Repo, d.Tag, err)
	}
	if prev != d.Previous {
		return TagCheck{Previous: prev}, fmt.Errorf("store: record deletion of %s:%s: %w", d.Repo, d.Tag, ErrTagMoved)
	}
	at := millis(d.At)
	if prev == "" {
		// Already deleted (or never known): note the check, nothing else.
		var digest string
		var deleted int64
		err := tx.QueryRowContext(ctx, `SELECT digest, deleted_at FROM deleted_tags WHERE registry = ? AND repository = ? AND tag = ?`,
			d.Repo.Registry, d.Repo.Name, d.Tag).Scan(&digest, &deleted)
		if errors.Is(err, sql.ErrNoRows) {
			return TagCheck{}, nil
		}
		if err == nil {
			_, err = tx.ExecContext(ctx, `UPDATE deleted_tags SET checked_at = ? WHERE registry = ? AND repository = ? AND tag = ?`,
				at, d.Repo.Registry, d.Repo.Name, d.Tag)
		}
		if err == nil {
			err = tx.Commit()
		}
		if err != nil {
			return TagCheck{}, fmt.Errorf("store: record deletion of %s:%s: %w", d.Repo, d.Tag, err)
		}
		s.tags.put(keyOf(d.Repo, d.Tag), tagEntry{missing: true, gone: &analysis.TagDeleted{
			Ref: d.Repo.WithTag(d.Tag), Digest: digest, At: fromMillis(deleted), Checked: d.At.UTC().Truncate(time.Millisecond)}}, before)
		return TagCheck{}, nil
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM tags WHERE registry = ? AND repository = ? AND tag = ?`,
		d.Repo.Registry, d.Repo.Name, d.Tag); err != nil {
		return TagCheck{}, fmt.Errorf("store: record deletion of %s:%s: %w", d.Repo, d.Tag, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO deleted_tags (registry, repository, tag, digest, deleted_at, checked_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (registry, repository, tag) DO UPDATE SET
		digest = excluded.digest, deleted_at = excluded.deleted_at, checked_at = excluded.checked_at`,
		d.Repo.Registry, d.Repo.Name, d.Tag, prev, at, at); err != nil {
		return TagCheck{}, fmt.Errorf("store: record deletion of %s:%s: %w", d.Repo, d.Tag, err)
	}
	given, err := s.bump(ctx, tx, scope, ChangeLogScope)
	if err != nil {
		return TagCheck{}, err
	}
	if _, err := insertChange(ctx, tx, 0, d.Repo, d.Tag, ChangeDeleted, nil, prev, d.At); err != nil {
		return TagCheck{}, err
	}
	if err := s.knowRepository(ctx, tx, d.Repo, d.At); err != nil {
		return TagCheck{}, err
	}
	if err := tx.Commit(); err != nil {
		return TagCheck{}, fmt.Errorf("store: record deletion of %s:%s: %w", d.Repo, d.Tag, err)
	}
	s.publish(given)
	t := fromMillis(at)
	s.tags.put(keyOf(d.Repo, d.Tag), tagEntry{missing: true, gone: &analysis.TagDeleted{Ref: d.Repo.WithTag(d.Tag), Digest: prev, At: t, Checked: t}}, given[scope])
	return TagCheck{Previous: prev, Moved: true}, nil
}

// rowsAffected is res.RowsAffected after err.
func rowsAffected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// RecordImage records that the image d is known in repo (for images reached
// by digest, without a tag).
func (s *Store) RecordImage(ctx context.Context, repo analysis.Repository, d analysis.Descriptor, at time.Time) error {
	return recordImage(ctx, s.write, repo, d, at)
}

func recordImage(ctx context.Context, db execer, repo analysis.Repository, d analysis.Descriptor, at time.Time) error {
	_, err := db.ExecContext(ctx, `INSERT INTO images (registry, repository, digest, media_type, first_seen_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (registry, repository, digest) DO NOTHING`,
		repo.Registry, repo.Name, d.Digest, d.MediaType, millis(at))
	if err != nil {
		return fmt.Errorf("store: record image %s@%s: %w", repo, d.Digest, err)
	}
	return nil
}

// TagsAt returns the tags of repo known to point at digest, sorted.
func (s *Store) TagsAt(ctx context.Context, repo analysis.Repository, digest string) ([]string, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT tag FROM tags WHERE registry = ? AND repository = ? AND digest = ? ORDER BY tag`,
		repo.Registry, repo.Name, digest)
	if err != nil {
		return nil, fmt.Errorf("store: tags of %s@%s: %w", repo, digest, err)
	}
	defer rows.Close()
	tags := []string{}
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, fmt.Errorf("store: tags of %s@%s: %w", repo, digest, err)
		}
		tags = append(tags, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: tags of %s@%s: %w", repo, digest, err)
	}
	return tags, nil
}
