package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/imagebadger/imagebadger/analysis"
)

// Manifest implements analysis.Content.
func (s *Store) Manifest(ctx context.Context, digest string) (string, []byte, error) {
	var mt string
	var body []byte
	err := s.read.QueryRowContext(ctx, `SELECT media_type, body FROM manifests WHERE digest = ?`, digest).Scan(&mt, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil, fmt.Errorf("store: manifest %s: %w", digest, analysis.ErrNotFound)
	}
	if err != nil {
		return "", nil, fmt.Errorf("store: manifest %s: %w", digest, err)
	}
	return mt, body, nil
}

// PutManifest implements analysis.Content. Content is addressed by digest, so
// a second put of the same digest is a no-op.
func (s *Store) PutManifest(ctx context.Context, digest, mediaType string, body []byte) error {
	_, err := s.write.ExecContext(ctx, `INSERT INTO manifests (digest, media_type, body, fetched_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (digest) DO NOTHING`, digest, mediaType, body, millis(s.now()))
	if err != nil {
		return fmt.Errorf("store: save manifest %s: %w", digest, err)
	}
	return nil
}

// Config implements analysis.Content.
func (s *Store) Config(ctx context.Context, digest string) ([]byte, error) {
	var body []byte
	err := s.read.QueryRowContext(ctx, `SELECT body FROM configs WHERE digest = ?`, digest).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: config %s: %w", digest, analysis.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: config %s: %w", digest, err)
	}
	return body, nil
}

// PutConfig implements analysis.Content.
func (s *Store) PutConfig(ctx context.Context, digest string, body []byte) error {
	_, err := s.write.ExecContext(ctx, `INSERT INTO configs (digest, body, fetched_at) VALUES (?, ?, ?)
		ON CONFLICT (digest) DO NOTHING`, digest, body, millis(s.now()))
	if err != nil {
		return fmt.Errorf("store: save config %s: %w", digest, err)
	}
	return nil
}
