package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeStopsOnBadTrustRules: docs/API.md says a rules file that does not
// parse, or names a key that cannot be read, stops serve at start with a
// message naming the line.
func TestServeStopsOnBadTrustRules(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "trust.yaml")
	if err := os.WriteFile(f, []byte("rules:\n  - repositories: [\"ghcr.io/acme/*\"]\n    cosign:\n      keys: [missing.pub]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	err := run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--db", filepath.Join(dir, "ib.db"), "--dockerhub-api", "", "--trust", f}, noEnv, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "--trust") || !strings.Contains(err.Error(), "trust.yaml:2: key missing.pub") {
		t.Fatalf("serve with a missing key: %v, want the file, line and key named", err)
	}
}
