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
// analysis.ErrNotFound when the tag was never resolved. Tags once read are
// answered from memory (see tagCache).
func (s *Store) Tag(ctx context.Context, repo analysis.Repository, tag string) (TagState, error) {
	k := keyOf(repo, tag)
	st, ok, seq := s.tags.get(k)
	if ok {
		return st, nil
	}
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
	s.tags.fill(k, st, seq)
	return st, nil
}

// TagCheck is the outcome of recording a resolution of a tag.
type TagCheck struct {
	// Previous is the digest the tag pointed at before; empty for a new tag.
	Previous string
	// Moved is true when the tag is new or points somewhere new.
	Moved bool
}

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

// EventsFunc computes the events of a move of a tag from previous ("" for a
// tag seen the first time) to the new digest. It runs inside the recording
// transaction and must not do I/O.
type EventsFunc func(previous string) ([]Event, error)

// RecordTag records that repo:tag resolved to d at time at, and that the image
// d is known in repo. When the tag is new or moved, the move goes into the
// tag history and events(previous) is stored with it, in one transaction.
// events may be nil. It reports whether the tag moved.
func (s *Store) RecordTag(ctx context.Context, repo analysis.Repository, tag string, d analysis.Descriptor, at time.Time, events EventsFunc) (TagCheck, error) {
	s.tags.writeMu.Lock()
	defer s.tags.writeMu.Unlock()
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return TagCheck{}, fmt.Errorf("store: record tag %s:%s: %w", repo, tag, err)
	}
	defer tx.Rollback()
	var prev, prevType string
	var first, changed int64
	err = tx.QueryRowContext(ctx, `SELECT digest, media_type, first_seen_at, changed_at FROM tags WHERE registry = ? AND repository = ? AND tag = ?`,
		repo.Registry, repo.Name, tag).Scan(&prev, &prevType, &first, &changed)
	// What the row holds once this commits.
	now := TagState{Digest: d.Digest, MediaType: d.MediaType, FirstSeen: fromMillis(millis(at)), Changed: fromMillis(millis(at)), Checked: fromMillis(millis(at))}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		_, err = tx.ExecContext(ctx, `INSERT INTO tags (registry, repository, tag, digest, media_type, first_seen_at, changed_at, checked_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, repo.Registry, repo.Name, tag, d.Digest, d.MediaType, millis(at), millis(at), millis(at))
	case err != nil:
	case prev == d.Digest:
		now.MediaType, now.FirstSeen, now.Changed = prevType, fromMillis(first), fromMillis(changed)
		_, err = tx.ExecContext(ctx, `UPDATE tags SET checked_at = ? WHERE registry = ? AND repository = ? AND tag = ?`,
			millis(at), repo.Registry, repo.Name, tag)
	default:
		now.FirstSeen = fromMillis(first)
		_, err = tx.ExecContext(ctx, `UPDATE tags SET digest = ?, media_type = ?, changed_at = ?, checked_at = ?
			WHERE registry = ? AND repository = ? AND tag = ?`, d.Digest, d.MediaType, millis(at), millis(at), repo.Registry, repo.Name, tag)
	}
	if err != nil {
		return TagCheck{}, fmt.Errorf("store: record tag %s:%s: %w", repo, tag, err)
	}
	if err := recordImage(ctx, tx, repo, d, at); err != nil {
		return TagCheck{}, err
	}
	if prev != d.Digest {
		var old any
		if prev != "" {
			old = prev
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO tag_history (registry, repository, tag, old_digest, new_digest, moved_at)
			VALUES (?, ?, ?, ?, ?, ?)`, repo.Registry, repo.Name, tag, old, d.Digest, millis(at)); err != nil {
			return TagCheck{}, fmt.Errorf("store: record move of %s:%s: %w", repo, tag, err)
		}
		if events != nil {
			evs, err := events(prev)
			if err != nil {
				return TagCheck{}, fmt.Errorf("store: events of %s:%s: %w", repo, tag, err)
			}
			if err := s.enqueue(ctx, tx, evs, at); err != nil {
				return TagCheck{}, err
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return TagCheck{}, fmt.Errorf("store: record tag %s:%s: %w", repo, tag, err)
	}
	s.tags.set(keyOf(repo, tag), now)
	return TagCheck{Previous: prev, Moved: prev != d.Digest}, nil
}

// RecordImage records that the image d is known in repo (for images reached
// by digest, without a tag).
func (s *Store) RecordImage(ctx context.Context, repo analysis.Repository, d analysis.Descriptor, at time.Time) error {
	return recordImage(ctx, s.write, repo, d, at)
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
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
