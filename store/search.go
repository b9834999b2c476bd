package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
)

// Search finds known repositories by part of their name with an n-gram
// index kept in the store (repository_grams, gram_counts): the rarest two-
// or three-character piece of the term selects the candidates through the
// index, newest first, and only they are compared with the term, until the
// page is full. Names whose last part starts with the term come first,
// through an index of their own. The SQL is portable (no FTS, no
// extension), so the PostgreSQL store can keep the same tables; there the
// last_part index must compare bytes (COLLATE "C"), as SQLite's does, for
// its range to be the names starting with a term.

// searchName is the form of a repository's name that search matches:
// lower-case registry/repository.
func searchName(repo analysis.Repository) string { return strings.ToLower(repo.String()) }

// lastPart is the lower-case last part of a repository's path ("app" for
// acme/app), which a search matches first.
func lastPart(repo analysis.Repository) string {
	name := strings.ToLower(repo.Name)
	return name[strings.LastIndexByte(name, '/')+1:]
}

// grams returns the distinct two- and three-character pieces of name
// padded with a space at each end, sorted: a term of two characters is one
// piece, a longer one holds all of its three-character pieces.
func grams(name string) []string {
	p := " " + name + " "
	seen := make(map[string]bool, 2*len(p))
	var out []string
	for n := 2; n <= 3; n++ {
		for i := 0; i+n <= len(p); i++ {
			g := p[i : i+n]
			if !seen[g] {
				seen[g] = true
				out = append(out, g)
			}
		}
	}
	sort.Strings(out)
	return out
}

// termGrams are the pieces a term's matches must all hold.
func termGrams(term string) []string {
	if len(term) == 2 {
		return []string{term}
	}
	seen := map[string]bool{}
	var out []string
	for i := 0; i+3 <= len(term); i++ {
		if g := term[i : i+3]; !seen[g] {
			seen[g] = true
			out = append(out, g)
		}
	}
	return out
}

// knowRepository makes repo known to search inside tx (indexed, the first
// time) and records at as its latest change.
func (s *Store) knowRepository(ctx context.Context, tx *tx, repo analysis.Repository, at time.Time) error {
	var id int64
	err := tx.QueryRowContext(ctx, `INSERT INTO known_repositories (registry, repository, name, last_part, changed_at, grams_done)
		VALUES (?, ?, ?, ?, ?, 1) ON CONFLICT (registry, repository) DO NOTHING RETURNING id`,
		repo.Registry, repo.Name, searchName(repo), lastPart(repo), millis(at)).Scan(&id)
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

// gramsPerStatement bounds the rows of one INSERT of insertGrams, far
// below either engine's limit of bound parameters.
const gramsPerStatement = 500

// insertGrams indexes name as repository id: two statements per batch of
// grams rather than two per gram, for a name has dozens of them and each
// statement is a round trip (PostgreSQL) or a driver call (SQLite). The
// grams are distinct, so one statement never updates a count twice.
func insertGrams(ctx context.Context, tx *tx, id int64, name string) error {
	gs := grams(name)
	for len(gs) > 0 {
		batch := gs[:min(len(gs), gramsPerStatement)]
		gs = gs[len(batch):]
		args := make([]any, 0, 2*len(batch))
		for _, g := range batch {
			args = append(args, g, id)
		}
		rows := strings.Repeat("(?, ?), ", len(batch))
		if _, err := tx.ExecContext(ctx, `INSERT INTO repository_grams (gram, repository_id) VALUES `+rows[:len(rows)-2], args...); err != nil {
			return fmt.Errorf("store: index repository name %q: %w", name, err)
		}
		counts := strings.Repeat("(?, 1), ", len(batch))
		args = args[:0]
		for _, g := range batch {
			args = append(args, g)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO gram_counts (gram, n) VALUES `+counts[:len(counts)-2]+`
			ON CONFLICT (gram) DO UPDATE SET n = gram_counts.n + 1`, args...); err != nil {
			return fmt.Errorf("store: index repository name %q: %w", name, err)
		}
	}
	return nil
}

// fillGrams indexes the names of repositories made known by migration 0009
// from the history that was there before it, in batches, at Open.
func (s *Store) fillGrams(ctx context.Context) error {
	for {
		rows, err := s.write.QueryContext(ctx, `SELECT id, registry, repository FROM known_repositories WHERE grams_done = 0 LIMIT 500`)
		if err != nil {
			return fmt.Errorf("store: index repository names: %w", err)
		}
		type todo struct {
			id   int64
			repo analysis.Repository
		}
		var batch []todo
		for rows.Next() {
			var t todo
			if err := rows.Scan(&t.id, &t.repo.Registry, &t.repo.Name); err != nil {
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
			if err := insertGrams(ctx, tx, t.id, searchName(t.repo)); err != nil {
				tx.Rollback()
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE known_repositories SET last_part = ?, grams_done = 1 WHERE id = ?`, lastPart(t.repo), t.id); err != nil {
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
// those whose last part starts with the term's last part, in name order
// (so the repository named exactly so is first), then the others, most
// recently known first. A term with a character no name can hold finds nothing.
// Both steps read index ranges in the order they answer and stop at limit,
// so a search costs about the same whatever the number of repositories.
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
	like := "%" + escapeLike(term) + "%"
	// First the names whose last part starts with the term's last part
	// (its range of the last_part index; every character of a name sorts
	// below 0x7f), in order: "app" before "app-worker", and for acme/app,
	// r.example/acme/app before r.example/acme/app-worker.
	seg := term[strings.LastIndexByte(term, '/')+1:]
	from, to := seg, seg+"\x7f"
	out := []SearchResult{}
	var err error
	if seg != "" {
		out, err = s.searchRows(ctx, term, `SELECT registry, repository, changed_at FROM known_repositories
			WHERE last_part >= ? AND last_part < ? AND name LIKE ? ESCAPE '\' ORDER BY last_part, name LIMIT ?`, from, to, like, limit)
		if err != nil || len(out) == limit {
			return s.withTags(ctx, term, out, err)
		}
	} else {
		from, to = "\x7f", "\x7f" // an empty range: nothing to leave out below
	}
	// The others: the candidates of the term's rarest piece, newest first.
	pieces := termGrams(term)
	query := `SELECT gram FROM gram_counts WHERE gram IN (?` + strings.Repeat(", ?", len(pieces)-1) + `) ORDER BY n, gram`
	args := make([]any, len(pieces))
	for i, g := range pieces {
		args[i] = g
	}
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: search %q: %w", term, err)
	}
	var counted []string
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: search %q: %w", term, err)
		}
		counted = append(counted, g)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: search %q: %w", term, err)
	}
	if len(counted) < len(pieces) {
		// A piece no name holds: nothing else matches.
		return s.withTags(ctx, term, out, nil)
	}
	more, err := s.searchRows(ctx, term, `SELECT k.registry, k.repository, k.changed_at FROM repository_grams g
		JOIN known_repositories k ON k.id = g.repository_id
		WHERE g.gram = ? AND k.name LIKE ? ESCAPE '\' AND NOT (k.last_part >= ? AND k.last_part < ?)
		ORDER BY g.repository_id DESC LIMIT ?`, counted[0], like, from, to, limit-len(out))
	return s.withTags(ctx, term, append(out, more...), err)
}

func (s *Store) searchRows(ctx context.Context, term, query string, args ...any) ([]SearchResult, error) {
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: search %q: %w", term, err)
	}
	defer rows.Close()
	out := []SearchResult{}
	for rows.Next() {
		var r SearchResult
		var changed int64
		if err := rows.Scan(&r.Repo.Registry, &r.Repo.Name, &changed); err != nil {
			return nil, fmt.Errorf("store: search %q: %w", term, err)
		}
		r.Changed = fromMillis(changed)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: search %q: %w", term, err)
	}
	return out, nil
}

// withTags fills each result's tag count and most recently changed tag.
func (s *Store) withTags(ctx context.Context, term string, out []SearchResult, err error) ([]SearchResult, error) {
	if err != nil {
		return nil, err
	}
	for i := range out {
		r := &out[i]
		err := s.read.QueryRowContext(ctx, `SELECT t.tag, (SELECT COUNT(*) FROM tags c WHERE c.registry = t.registry AND c.repository = t.repository)
			FROM tags t WHERE t.registry = ? AND t.repository = ? ORDER BY t.changed_at DESC, t.tag LIMIT 1`,
			r.Repo.Registry, r.Repo.Name).Scan(&r.Tag, &r.TagCount)
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
