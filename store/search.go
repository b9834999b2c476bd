package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"imagebadger/analysis"
)

// Search finds known repositories by part of their name with a trigram
// index kept in the store (repository_grams): the term's three-character
// pieces select the candidates through the index, and only they are
// compared with the term. The SQL is portable (no FTS, no extension), so
// the PostgreSQL store can keep the same tables.

// searchName is the form of a repository's name that search matches:
// lower-case registry/repository.
func searchName(repo analysis.Repository) string { return strings.ToLower(repo.String()) }

// grams returns the distinct trigrams of name padded with a space at each
// end, sorted. The padding makes every two-character piece of the name the
// start of some trigram, which is how two-character terms are found.
func grams(name string) []string {
	p := " " + name + " "
	seen := make(map[string]bool, len(p))
	var out []string
	for i := 0; i+3 <= len(p); i++ {
		g := p[i : i+3]
		if !seen[g] {
			seen[g] = true
			out = append(out, g)
		}
	}
	sort.Strings(out)
	return out
}

// knowRepository makes repo known to search inside tx (with its trigrams,
// the first time) and records at as its latest change.
func (s *Store) knowRepository(ctx context.Context, tx *sql.Tx, repo analysis.Repository, at time.Time) error {
	var id int64
	err := tx.QueryRowContext(ctx, `INSERT INTO known_repositories (registry, repository, name, changed_at, grams_done)
		VALUES (?, ?, ?, ?, 1) ON CONFLICT (registry, repository) DO NOTHING RETURNING id`,
		repo.Registry, repo.Name, searchName(repo), millis(at)).Scan(&id)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		// Known already: keep the latest change.
		if _, err := tx.ExecContext(ctx, `UPDATE known_repositories SET changed_at = ?
			WHERE registry = ? AND repository = ? AND changed_at < ?`, millis(at), repo.Registry, repo.Name, millis(at)); err != nil {
			return fmt.Errorf("store: know repository %s: %w", repo, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("store: know repository %s: %w", repo, err)
	}
	return insertGrams(ctx, tx, id, searchName(repo))
}

func insertGrams(ctx context.Context, tx *sql.Tx, id int64, name string) error {
	for _, g := range grams(name) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO repository_grams (gram, repository_id) VALUES (?, ?)
			ON CONFLICT (gram, repository_id) DO NOTHING`, g, id); err != nil {
			return fmt.Errorf("store: index repository name %q: %w", name, err)
		}
	}
	return nil
}

// fillGrams indexes the names of repositories made known by migration 0009
// from the history that was there before it, in batches, at Open.
func (s *Store) fillGrams(ctx context.Context) error {
	for {
		rows, err := s.write.QueryContext(ctx, `SELECT id, name FROM known_repositories WHERE grams_done = 0 LIMIT 500`)
		if err != nil {
			return fmt.Errorf("store: index repository names: %w", err)
		}
		type todo struct {
			id   int64
			name string
		}
		var batch []todo
		for rows.Next() {
			var t todo
			if err := rows.Scan(&t.id, &t.name); err != nil {
				rows.Close()
				return fmt.Errorf("store: index repository names: %w", err)
			}
			batch = append(batch, t)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: index repository names: %w", err)
		}
		if len(batch) == 0 {
			return nil
		}
		tx, err := s.write.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("store: index repository names: %w", err)
		}
		for _, t := range batch {
			if err := insertGrams(ctx, tx, t.id, t.name); err != nil {
				tx.Rollback()
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE known_repositories SET grams_done = 1 WHERE id = ?`, t.id); err != nil {
				tx.Rollback()
				return fmt.Errorf("store: index repository names: %w", err)
			}
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("store: index repository names: %w", err)
		}
	}
}

// SearchResult is one repository a search found.
type SearchResult struct {
	Repo analysis.Repository
	// Tag is the repository's most recently changed tag ("" when all of its
	// tags were deleted); TagCount how many tags it has now.
	Tag      string
	TagCount int
	Changed  time.Time
}

// MinSearchTerm is the shortest term Search takes.
const MinSearchTerm = 2

// Search returns the known repositories whose registry/repository contains
// term (case-insensitive, at least MinSearchTerm characters), best first:
// names whose last part is the term, then names with a part starting with
// it, then the rest, each by latest change. A term with a character no name
// can hold finds nothing.
func (s *Store) Search(ctx context.Context, term string, limit int) ([]SearchResult, error) {
	term = strings.ToLower(term)
	if len(term) < MinSearchTerm {
		return nil, fmt.Errorf("store: search %q: %w", term, analysis.ErrInvalidRequest)
	}
	for i := 0; i < len(term); i++ {
		if c := term[i]; c <= ' ' || c >= 0x7f {
			return []SearchResult{}, nil
		}
	}
	// Candidates through the index: a two-character term is the start of a
	// trigram (a range of the primary key); a longer one holds all of its own.
	var cand string
	var args []any
	if len(term) == 2 {
		cand = `SELECT repository_id FROM repository_grams WHERE gram >= ? AND gram < ?`
		args = []any{term, term[:1] + string(term[1]+1)}
	} else {
		var parts []string
		seen := map[string]bool{}
		for i := 0; i+3 <= len(term); i++ {
			if g := term[i : i+3]; !seen[g] {
				seen[g] = true
				parts = append(parts, `SELECT repository_id FROM repository_grams WHERE gram = ?`)
				args = append(args, g)
			}
		}
		cand = strings.Join(parts, " INTERSECT ")
	}
	like := escapeLike(term)
	args = append(args, "%"+like+"%", "%/"+like, "%/"+like+"%", limit)
	rows, err := s.read.QueryContext(ctx, `SELECT k.registry, k.repository, k.changed_at FROM known_repositories k
		WHERE k.id IN (`+cand+`) AND k.name LIKE ? ESCAPE '\'
		ORDER BY CASE WHEN k.name LIKE ? ESCAPE '\' THEN 0 WHEN k.name LIKE ? ESCAPE '\' THEN 1 ELSE 2 END,
			k.changed_at DESC, k.name
		LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: search %q: %w", term, err)
	}
	out := []SearchResult{}
	for rows.Next() {
		var r SearchResult
		var changed int64
		if err := rows.Scan(&r.Repo.Registry, &r.Repo.Name, &changed); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: search %q: %w", term, err)
		}
		r.Changed = fromMillis(changed)
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: search %q: %w", term, err)
	}
	for i := range out {
		r := &out[i]
		err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM tags WHERE registry = ? AND repository = ?`,
			r.Repo.Registry, r.Repo.Name).Scan(&r.TagCount)
		if err == nil {
			err = s.read.QueryRowContext(ctx, `SELECT tag FROM tags WHERE registry = ? AND repository = ?
				ORDER BY changed_at DESC, tag LIMIT 1`, r.Repo.Registry, r.Repo.Name).Scan(&r.Tag)
		}
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("store: search %q: %w", term, err)
		}
	}
	return out, nil
}

// escapeLike escapes LIKE's wildcards (and the escape character itself).
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
