package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/store"
)

// TestSessionsAreSharedAndExpire: a session written through one store is
// read through another on the same database (another process), is gone at
// its expiry and once deleted, and expired rows are pruned.
func TestSessionsAreSharedAndExpire(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ib.db")
	a, b := open(t, path), open(t, path)
	ss := store.Session{Hash: "h1", Person: "ada@example.com", Created: t0, Expires: t0.Add(time.Hour)}
	if err := a.CreateSession(ctx, ss); err != nil {
		t.Fatal(err)
	}
	if err := a.CreateSession(ctx, store.Session{Hash: "h2", Person: "bob@example.com", Created: t0, Expires: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	got, err := b.SessionByHash(ctx, "h1", t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ss, got); diff != "" {
		t.Errorf("session read on the other store (-written +read):\n%s", diff)
	}
	if _, err := b.SessionByHash(ctx, "h1", t0.Add(time.Hour)); !errors.Is(err, analysis.ErrNotFound) {
		t.Errorf("at its expiry the session reads %v, want not found", err)
	}
	if _, err := b.SessionByHash(ctx, "nope", t0); !errors.Is(err, analysis.ErrNotFound) {
		t.Errorf("an unknown hash reads %v, want not found", err)
	}
	if n, err := a.DeleteExpiredSessions(ctx, t0.Add(2*time.Minute)); err != nil || n != 1 {
		t.Errorf("pruning at t0+2m dropped %d (%v), want 1", n, err)
	}
	if err := b.DeleteSession(ctx, "h1"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SessionByHash(ctx, "h1", t0); !errors.Is(err, analysis.ErrNotFound) {
		t.Errorf("a deleted session reads %v, want not found", err)
	}
	if err := b.DeleteSession(ctx, "h1"); err != nil {
		t.Errorf("deleting a deleted session: %v", err)
	}
}

// TestAPITokens: tokens are listed per person, newest first, without
// anything but what was written; a revocation is the owner's alone and
// keeps its first time.
func TestAPITokens(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ib.db"))
	read := store.APIToken{ID: "t1", Hash: "hash1", Person: "ada@example.com", Name: "ci", Scope: "read", Created: t0}
	write := store.APIToken{ID: "t2", Hash: "hash2", Person: "ada@example.com", Name: "deploy", Scope: "write",
		Created: t0.Add(time.Minute), Expires: t0.Add(24 * time.Hour)}
	other := store.APIToken{ID: "t3", Hash: "hash3", Person: "bob@example.com", Name: "bob's", Scope: "read", Created: t0}
	for _, tok := range []store.APIToken{read, write, other} {
		if err := s.CreateAPIToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateAPIToken(ctx, read); err == nil {
		t.Error("a second token with an id in use was accepted")
	}
	got, err := s.APITokens(ctx, "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.APIToken{write, read}, got); diff != "" {
		t.Errorf("ada's tokens (-want +got):\n%s", diff)
	}
	if err := s.RevokeAPIToken(ctx, "ada@example.com", "t3", t0); !errors.Is(err, analysis.ErrNotFound) {
		t.Errorf("ada revoking bob's token: %v, want not found", err)
	}
	if err := s.RevokeAPIToken(ctx, "ada@example.com", "t1", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAPIToken(ctx, "ada@example.com", "t1", t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	tok, err := s.APITokenByID(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if !tok.Revoked.Equal(t0.Add(time.Hour)) {
		t.Errorf("revoked at %v, want the first revocation %v", tok.Revoked, t0.Add(time.Hour))
	}
	if tok, _ := s.APITokenByID(ctx, "t3"); !tok.Revoked.IsZero() {
		t.Errorf("bob's token was revoked by ada's attempt: %+v", tok)
	}
	if _, err := s.APITokenByID(ctx, "t9"); !errors.Is(err, analysis.ErrNotFound) {
		t.Errorf("an unknown id reads %v, want not found", err)
	}
}

// TestBadgeSalts: a repository gets one salt on first use and keeps it, a
// new one replaces it, and another repository's salt is its own.
func TestBadgeSalts(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ib.db"))
	app := analysis.Repository{Registry: "r.example", Name: "acme/app"}
	other := analysis.Repository{Registry: "r.example", Name: "acme/other"}
	if _, err := s.BadgeSaltIfAny(ctx, app.Registry, app.Name); !errors.Is(err, analysis.ErrNotFound) {
		t.Errorf("before any salt: %v, want not found", err)
	}
	salts := []string{"s1", "s2", "s3"}
	next := func() string { x := salts[0]; salts = salts[1:]; return x }
	first, err := s.BadgeSalt(ctx, app.Registry, app.Name, next, t0)
	if err != nil || first != "s1" {
		t.Fatalf("first salt %q (%v), want s1", first, err)
	}
	if again, err := s.BadgeSalt(ctx, app.Registry, app.Name, next, t0); err != nil || again != "s1" {
		t.Errorf("second read %q (%v), want s1 kept", again, err)
	}
	if o, err := s.BadgeSalt(ctx, other.Registry, other.Name, next, t0); err != nil || o != "s2" {
		t.Errorf("other repository's salt %q (%v), want s2 (a kept salt draws none)", o, err)
	}
	if err := s.SetBadgeSalt(ctx, app.Registry, app.Name, "new", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.BadgeSaltIfAny(ctx, app.Registry, app.Name); err != nil || got != "new" {
		t.Errorf("after regenerating %q (%v), want new", got, err)
	}
	if got, _ := s.BadgeSaltIfAny(ctx, other.Registry, other.Name); got != "s2" {
		t.Errorf("other repository's salt became %q", got)
	}
}
