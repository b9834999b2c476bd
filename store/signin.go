package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
)

// Session is a signed-in person's session as kept: the hash of the
// cookie's secret, never the secret.
type Session struct {
	Hash    string
	Person  string
	Created time.Time
	Expires time.Time
}

// CreateSession records a new session.
func (s *Store) CreateSession(ctx context.Context, ss Session) error {
	if _, err := s.write.ExecContext(ctx, `INSERT INTO sessions (hash, person, created_at, expires_at) VALUES (?, ?, ?, ?)`,
		ss.Hash, ss.Person, millis(ss.Created), millis(ss.Expires)); err != nil {
		return fmt.Errorf("store: create session: %w", err)
	}
	return nil
}

// SessionByHash returns the session whose secret hashes to hash, if it has
// not expired at now, or an error wrapping ErrUnknownCredential.
func (s *Store) SessionByHash(ctx context.Context, hash string, now time.Time) (Session, error) {
	var ss Session
	var created, expires int64
	err := s.read.QueryRowContext(ctx, `SELECT hash, person, created_at, expires_at FROM sessions WHERE hash = ? AND expires_at > ?`,
		hash, millis(now)).Scan(&ss.Hash, &ss.Person, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, fmt.Errorf("store: session: %w", ErrUnknownCredential)
	}
	if err != nil {
		return Session{}, fmt.Errorf("store: session: %w", err)
	}
	ss.Created, ss.Expires = fromMillis(created), fromMillis(expires)
	return ss, nil
}

// DeleteSession ends the session whose secret hashes to hash; ending one
// that does not exist is no error (signing out twice).
func (s *Store) DeleteSession(ctx context.Context, hash string) error {
	if _, err := s.write.ExecContext(ctx, `DELETE FROM sessions WHERE hash = ?`, hash); err != nil {
		return fmt.Errorf("store: delete session: %w", err)
	}
	return nil
}

// DeleteExpiredSessions drops the sessions expired before at, so that the
// table holds the sessions in use and no more.
func (s *Store) DeleteExpiredSessions(ctx context.Context, at time.Time) (int, error) {
	res, err := s.write.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, millis(at))
	n, err := rowsAffected(res, err)
	if err != nil {
		return 0, fmt.Errorf("store: delete expired sessions: %w", err)
	}
	return int(n), nil
}

// APIToken is an API token as kept: its public id and the hash of the
// token, never the token. Expires and Revoked are zero when unset.
type APIToken struct {
	ID      string
	Hash    string
	Person  string
	Name    string
	Scope   string
	Created time.Time
	Expires time.Time
	Revoked time.Time
}

// CreateAPIToken records a new token.
func (s *Store) CreateAPIToken(ctx context.Context, t APIToken) error {
	if _, err := s.write.ExecContext(ctx, `INSERT INTO api_tokens (id, hash, person, name, scope, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.Hash, t.Person, t.Name, t.Scope, millis(t.Created), optionalMillis(t.Expires)); err != nil {
		return fmt.Errorf("store: create API token: %w", err)
	}
	return nil
}

const apiTokenColumns = `id, hash, person, name, scope, created_at, expires_at, revoked_at`

func scanAPIToken(sc interface{ Scan(...any) error }) (APIToken, error) {
	var t APIToken
	var created int64
	var expires, revoked sql.NullInt64
	if err := sc.Scan(&t.ID, &t.Hash, &t.Person, &t.Name, &t.Scope, &created, &expires, &revoked); err != nil {
		return APIToken{}, err
	}
	t.Created = fromMillis(created)
	if expires.Valid {
		t.Expires = fromMillis(expires.Int64)
	}
	if revoked.Valid {
		t.Revoked = fromMillis(revoked.Int64)
	}
	return t, nil
}

// APITokenByID returns the token id, revoked and expired ones included
// (the caller judges them), or an error wrapping ErrUnknownCredential.
func (s *Store) APITokenByID(ctx context.Context, id string) (APIToken, error) {
	t, err := scanAPIToken(s.read.QueryRowContext(ctx, `SELECT `+apiTokenColumns+` FROM api_tokens WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return APIToken{}, fmt.Errorf("store: API token %s: %w", id, ErrUnknownCredential)
	}
	if err != nil {
		return APIToken{}, fmt.Errorf("store: API token %s: %w", id, err)
	}
	return t, nil
}

// APITokens lists person's tokens, newest first, revoked ones included.
func (s *Store) APITokens(ctx context.Context, person string) ([]APIToken, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+apiTokenColumns+` FROM api_tokens WHERE person = ?
		ORDER BY created_at DESC, id`, person)
	if err != nil {
		return nil, fmt.Errorf("store: API tokens: %w", err)
	}
	defer rows.Close()
	var out []APIToken
	for rows.Next() {
		t, err := scanAPIToken(rows)
		if err != nil {
			return nil, fmt.Errorf("store: API tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: API tokens: %w", err)
	}
	return out, nil
}

// RevokeAPIToken revokes person's token id as of at. A token that is not
// person's, or does not exist, is an error wrapping ErrUnknownCredential;
// revoking a revoked token keeps its first revocation.
func (s *Store) RevokeAPIToken(ctx context.Context, person, id string, at time.Time) error {
	res, err := s.write.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? AND person = ?`,
		millis(at), id, person)
	n, err := rowsAffected(res, err)
	if err != nil {
		return fmt.Errorf("store: revoke API token %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("store: revoke API token %s: %w", id, ErrUnknownCredential)
	}
	return nil
}

// ErrUnknownCredential marks a session or token the store does not hold
// (or no longer: expired, deleted). It wraps analysis.ErrNotFound, so
// either may be checked; auth, which imports the store alone, checks this.
var ErrUnknownCredential = fmt.Errorf("no such session, token or badge token: %w", analysis.ErrNotFound)

// BadgeSalt returns the salt of the badge token of repository name on
// registry (named apart, not as an analysis.Repository, for auth, which
// imports the store alone), recording newSalt()
// first if it has none, so that a repository keeps one token until it
// is regenerated.
func (s *Store) BadgeSalt(ctx context.Context, registry, name string, newSalt func() string, at time.Time) (string, error) {
	var salt string
	err := s.read.QueryRowContext(ctx, `SELECT salt FROM badge_tokens WHERE registry = ? AND repository = ?`,
		registry, name).Scan(&salt)
	if err == nil {
		return salt, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("store: badge token of %s/%s: %w", registry, name, err)
	}
	if _, err := s.write.ExecContext(ctx, `INSERT INTO badge_tokens (registry, repository, salt, created_at)
		VALUES (?, ?, ?, ?) ON CONFLICT (registry, repository) DO NOTHING`, registry, name, newSalt(), millis(at)); err != nil {
		return "", fmt.Errorf("store: badge token of %s/%s: %w", registry, name, err)
	}
	// Read back through the writer: another request may have won the race.
	if err := s.write.QueryRowContext(ctx, `SELECT salt FROM badge_tokens WHERE registry = ? AND repository = ?`,
		registry, name).Scan(&salt); err != nil {
		return "", fmt.Errorf("store: badge token of %s/%s: %w", registry, name, err)
	}
	return salt, nil
}

// BadgeSaltIfAny returns the salt of the repository's badge token, or an error
// wrapping analysis.ErrNotFound when none was ever made (then no token
// opens its badges).
func (s *Store) BadgeSaltIfAny(ctx context.Context, registry, name string) (string, error) {
	var salt string
	err := s.read.QueryRowContext(ctx, `SELECT salt FROM badge_tokens WHERE registry = ? AND repository = ?`,
		registry, name).Scan(&salt)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("store: badge token of %s/%s: %w", registry, name, ErrUnknownCredential)
	}
	if err != nil {
		return "", fmt.Errorf("store: badge token of %s/%s: %w", registry, name, err)
	}
	return salt, nil
}

// SetBadgeSalt gives the repository's badge token the salt salt, retiring the token
// made from the one before.
func (s *Store) SetBadgeSalt(ctx context.Context, registry, name, salt string, at time.Time) error {
	if _, err := s.write.ExecContext(ctx, `INSERT INTO badge_tokens (registry, repository, salt, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (registry, repository) DO UPDATE SET salt = excluded.salt, created_at = excluded.created_at`,
		registry, name, salt, millis(at)); err != nil {
		return fmt.Errorf("store: new badge token of %s/%s: %w", registry, name, err)
	}
	return nil
}

// optionalMillis is t in milliseconds, or NULL for the zero time.
func optionalMillis(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return millis(t)
}
