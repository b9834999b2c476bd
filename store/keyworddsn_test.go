package store_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/imagebadger/imagebadger/store"
)

// TestKeywordDSNIsRefused: a libpq keyword/value connection string is not
// taken for a SQLite path: Open refuses it, saying to give a postgres://
// URL, with no part of the value in the message, and creates no file;
// Redacted shows none of it either. A path that merely holds an = is still
// a SQLite file.
func TestKeywordDSNIsRefused(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, dsn := range []string{
		"host=db.internal port=5432 dbname=imagebadger user=ib password=Sup3rSecret sslmode=require",
		"password=Sup3rSecret",
		"  HOST = db.internal  Password='Sup3r Secret'",
		"dbname=imagebadger",
		"sslmode=disable host=/run/postgresql",
	} {
		_, err := store.Open(context.Background(), dsn)
		if !errors.Is(err, store.ErrKeywordDSN) {
			t.Errorf("Open(%q): %v, want ErrKeywordDSN", dsn, err)
			continue
		}
		if !strings.Contains(err.Error(), "postgres://") {
			t.Errorf("Open(%q): %q does not say to give a postgres:// URL", dsn, err)
		}
		for _, part := range strings.FieldsFunc(dsn, func(r rune) bool { return r == ' ' || r == '=' || r == '\'' }) {
			if len(part) > 3 && (strings.Contains(err.Error(), part) || strings.Contains(store.Redacted(dsn), part)) &&
				!isKeyword(part) {
				t.Errorf("Open(%q): the message or Redacted repeats %q: %s / %s", dsn, part, err, store.Redacted(dsn))
			}
		}
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("the directory holds %v (err %v) after the refusals, want nothing", entries, err)
	}

	// An = in a file name alone does not make a keyword string.
	s, err := store.Open(context.Background(), "data=2024.db")
	if err != nil {
		t.Fatalf("Open of a SQLite file named data=2024.db: %v", err)
	}
	s.Close()
	if _, err := os.Stat("data=2024.db"); err != nil {
		t.Errorf("data=2024.db was not created as a SQLite file: %v", err)
	}
}

// isKeyword reports whether part is a libpq keyword, which a message may
// name (it says what the value looked like, not what it held).
func isKeyword(part string) bool {
	switch strings.ToLower(part) {
	case "host", "port", "dbname", "user", "password", "sslmode":
		return true
	}
	return false
}
