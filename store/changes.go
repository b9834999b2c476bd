package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
)

// The kinds of a recorded tag change (docs/API.md, "Tag history").
const (
	ChangeCreated = "created"
	ChangeMoved   = "moved"
	ChangeDeleted = "deleted"
)

// TagChange is one recorded change of a tag: its kind, where the tag points
// after it (empty for a deletion) and before it (empty for a creation).
type TagChange struct {
	// ID orders changes (a later change has a larger ID) and is the
	// history's paging cursor and the fan-out's place in the log.
	ID int64
	// Set groups the changes recorded in one transaction (tags moved
	// together to one image): the ID of its first change. Only the
	// fan-out's reads fill it.
	Set                       int64
	Registry, Repository, Tag string
	Kind                      string
	Digest, Previous          string
	At                        time.Time
}

// ChangeLogScope is the change log itself: every transaction that logs
// changes bumps it before it logs them. On PostgreSQL the bump holds the
// scope's row until the commit, so change IDs are taken in the order their
// transactions commit, and a reader of the log in ID order never passes a
// change that commits later. Other processes learn of new changes through
// the stamp's NOTIFY (OnChangeLogged).
const ChangeLogScope Scope = "changes"

// insertChange appends one change to the log inside tx and returns its ID.
// set is the ID of the first change the transaction logged (0 for that
// first one itself), which numbers the change set. digest and previous are
// nil or a string, for the NULLs of the table.
func insertChange(ctx context.Context, tx *tx, set int64, repo analysis.Repository, tag, kind string, digest, previous any, at time.Time) (int64, error) {
	var setCol any
	if set > 0 {
		setCol = set
	}
	var id int64
	if err := tx.QueryRowContext(ctx, `INSERT INTO tag_changes (registry, repository, tag, kind, digest, previous_digest, at, change_set)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, repo.Registry, repo.Name, tag, kind, digest, previous, millis(at), setCol).Scan(&id); err != nil {
		return 0, fmt.Errorf("store: record %s change of %s:%s: %w", kind, repo, tag, err)
	}
	return id, nil
}

// MaxHistoryPage bounds one page of history.
const MaxHistoryPage = 500

// HistoryQuery selects one page of a repository's history.
type HistoryQuery struct {
	Repo analysis.Repository
	// Tag, when set, keeps the changes of that tag alone.
	Tag string
	// Before, when positive, keeps changes older than the one with this ID
	// (the cursor of the previous page).
	Before int64
	// Limit is the page size, 1 to MaxHistoryPage.
	Limit int
}

// History returns one page of the recorded changes of q.Repo's tags, newest
// first, and whether older ones follow. Each page is one index range read,
// however long the history.
func (s *Store) History(ctx context.Context, q HistoryQuery) ([]TagChange, bool, error) {
	limit := min(max(q.Limit, 1), MaxHistoryPage)
	before := q.Before
	if before <= 0 {
		before = 1<<63 - 1
	}
	query := `SELECT id, tag, kind, digest, previous_digest, at FROM tag_changes
		WHERE registry = ? AND repository = ? AND id < ? ORDER BY id DESC LIMIT ?`
	args := []any{q.Repo.Registry, q.Repo.Name, before, limit + 1}
	if q.Tag != "" {
		query = `SELECT id, tag, kind, digest, previous_digest, at FROM tag_changes
			WHERE registry = ? AND repository = ? AND tag = ? AND id < ? ORDER BY id DESC LIMIT ?`
		args = []any{q.Repo.Registry, q.Repo.Name, q.Tag, before, limit + 1}
	}
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, false, fmt.Errorf("store: history of %s: %w", q.Repo, err)
	}
	defer rows.Close()
	out := make([]TagChange, 0, limit)
	more := false
	for rows.Next() {
		if len(out) == limit {
			more = true
			break
		}
		c := TagChange{Registry: q.Repo.Registry, Repository: q.Repo.Name}
		if err := scanChange(rows, &c); err != nil {
			return nil, false, fmt.Errorf("store: history of %s: %w", q.Repo, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("store: history of %s: %w", q.Repo, err)
	}
	return out, more, nil
}

func scanChange(rows *sql.Rows, c *TagChange) error {
	var digest, prev sql.NullString
	var at int64
	if err := rows.Scan(&c.ID, &c.Tag, &c.Kind, &digest, &prev, &at); err != nil {
		return err
	}
	c.Digest, c.Previous, c.At = digest.String, prev.String, fromMillis(at)
	return nil
}

// RecentChanges returns the latest limit changes of every repository,
// newest first, for the home page's "Recently changed": the recorded
// changes themselves, so nothing shown is ever regrouped after the fact.
func (s *Store) RecentChanges(ctx context.Context, limit int) ([]TagChange, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id, registry, repository, tag, kind, digest, previous_digest, at
		FROM tag_changes ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: recent changes: %w", err)
	}
	defer rows.Close()
	var out []TagChange
	for rows.Next() {
		var c TagChange
		var digest, prev sql.NullString
		var at int64
		if err := rows.Scan(&c.ID, &c.Registry, &c.Repository, &c.Tag, &c.Kind, &digest, &prev, &at); err != nil {
			return nil, fmt.Errorf("store: recent changes: %w", err)
		}
		c.Digest, c.Previous, c.At = digest.String, prev.String, fromMillis(at)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: recent changes: %w", err)
	}
	return out, nil
}

// KnownRepository reports whether any change of repo's tags was ever
// recorded: a repository with no history is one this service never saw.
func (s *Store) KnownRepository(ctx context.Context, repo analysis.Repository) (bool, error) {
	var id int64
	err := s.read.QueryRowContext(ctx, `SELECT id FROM known_repositories WHERE registry = ? AND repository = ?`,
		repo.Registry, repo.Name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: is %s known: %w", repo, err)
	}
	return true, nil
}

// Deleted returns the deletions recorded for repo's tags that are still
// deleted, newest first, at most limit, for the repository page.
func (s *Store) Deleted(ctx context.Context, repo analysis.Repository, limit int) ([]analysis.TagDeleted, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT tag, digest, deleted_at, checked_at FROM deleted_tags
		WHERE registry = ? AND repository = ? ORDER BY deleted_at DESC, tag LIMIT ?`, repo.Registry, repo.Name, limit)
	if err != nil {
		return nil, fmt.Errorf("store: deleted tags of %s: %w", repo, err)
	}
	defer rows.Close()
	var out []analysis.TagDeleted
	for rows.Next() {
		var tag string
		d := analysis.TagDeleted{}
		var at, checked int64
		if err := rows.Scan(&tag, &d.Digest, &at, &checked); err != nil {
			return nil, fmt.Errorf("store: deleted tags of %s: %w", repo, err)
		}
		d.Ref, d.At, d.Checked = repo.WithTag(tag), fromMillis(at), fromMillis(checked)
		out = append(out, d)
	}
	return out, rows.Err()
}
