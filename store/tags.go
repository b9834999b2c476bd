package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"imagebadger/analysis"
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
// analysis.ErrNotFound when the tag was never resolved (or was deleted).
// Rows once read are answered from memory while the repository's change
// stamp is unchanged (see tagCache).
func (s *Store) Tag(ctx context.Context, repo analysis.Repository, tag string) (TagState, error) {
	k := keyOf(repo, tag)
	stamp := s.Stamp(RepositoryScope(repo))
	if st, ok := s.tags.get(k, stamp); ok {
		return st, nil
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
		return TagState{}, fmt.Errorf("store: tag %s:%s: %w", repo, tag, analysis.ErrNotFound)
	}
	if err != nil {
		return TagState{}, fmt.Errorf("store: tag %s:%s: %w", repo, tag, err)
	}
	st.FirstSeen, st.Changed, st.Checked = fromMillis(first), fromMillis(changed), fromMillis(checked)
	s.tags.put(keyOf(repo, tag), st, stamp)
	return st, nil
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

// Event is something subscribers may be told about, emitted in the same
// transaction as the tag move that caused it (the outbox pattern), so a move
// is never recorded without its events nor an event without its move.
type Event struct {
	// ID is unique and stable; webhook deliveries use it as webhook-id.
	ID   string
	Type string
	// Registry, Repository and Tag name the image the event is about, which
	// is what subscriptions are matched against.
	Registry, Repository, Tag string
	// Payload is the JSON body delivered to subscribers.
	Payload []byte
}

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
	// Events are stored with the move, each with one pending delivery per
	// subscription that wants it; they are ignored when the tag did not
	// move (To.Digest == Previous).
	Events []Event
}

// RecordTag records that r.Repo:r.Tag resolved to r.To at r.At, and that the
// image is known in the repository. When the tag is new or moved, the move
// goes into the tag history with r.Events and their deliveries, and the
// repository's change stamp is bumped, all in one transaction. It reports
// whether the tag moved.
func (s *Store) RecordTag(ctx context.Context, r TagRecord) (TagCheck, error) {
	scope := RepositoryScope(r.Repo)
	before := s.Stamp(scope)
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return TagCheck{}, fmt.Errorf("store: record tag %s:%s: %w", r.Repo, r.Tag, err)
	}
	defer tx.Rollback()
	var prev, prevType string
	var first, changed int64
	err = tx.QueryRowContext(ctx, `SELECT digest, media_type, first_seen_at, changed_at FROM tags WHERE registry = ? AND repository = ? AND tag = ?`+
		s.engine.forUpdate(false), r.Repo.Registry, r.Repo.Name, r.Tag).Scan(&prev, &prevType, &first, &changed)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return TagCheck{}, fmt.Errorf("store: record tag %s:%s: %w", r.Repo, r.Tag, err)
	}
	if prev != r.Previous {
		return TagCheck{Previous: prev}, fmt.Errorf("store: record tag %s:%s: %w", r.Repo, r.Tag, ErrTagMoved)
	}
	at := millis(r.At)
	// What the row holds once this commits.
	now := TagState{Digest: r.To.Digest, MediaType: r.To.MediaType, FirstSeen: fromMillis(at), Changed: fromMillis(at), Checked: fromMillis(at)}
	switch {
	case prev == "":
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
			return TagCheck{Previous: now}, fmt.Errorf("store: record tag %s:%s: %w", r.Repo, r.Tag, ErrTagMoved)
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
		return TagCheck{}, fmt.Errorf("store: record tag %s:%s: %w", r.Repo, r.Tag, err)
	}
	if err := recordImage(ctx, tx, r.Repo, r.To, r.At); err != nil {
		return TagCheck{}, err
	}
	moved := prev != r.To.Digest
	stamp, given := before, map[Scope]Stamp(nil)
	if moved {
		var old any
		if prev != "" {
			old = prev
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO tag_history (registry, repository, tag, old_digest, new_digest, moved_at)
			VALUES (?, ?, ?, ?, ?, ?)`, r.Repo.Registry, r.Repo.Name, r.Tag, old, r.To.Digest, at); err != nil {
			return TagCheck{}, fmt.Errorf("store: record move of %s:%s: %w", r.Repo, r.Tag, err)
		}
		if err := s.enqueue(ctx, tx, r.Events, r.At); err != nil {
			return TagCheck{}, err
		}
		if given, err = s.bump(ctx, tx, scope); err != nil {
			return TagCheck{}, err
		}
		stamp = given[scope]
	}
	if err := tx.Commit(); err != nil {
		return TagCheck{}, fmt.Errorf("store: record tag %s:%s: %w", r.Repo, r.Tag, err)
	}
	s.publish(given)
	s.tags.put(keyOf(r.Repo, r.Tag), now, stamp)
	return TagCheck{Previous: prev, Moved: moved}, nil
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
