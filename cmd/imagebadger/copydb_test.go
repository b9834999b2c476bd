package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imagebadger/imagebadger/store"
)

func noEnv(string) (string, bool) { return "", false }

// TestCopyDB: copy-db names every table it copies, refuses a target that
// already holds rows (a second copy would double nothing, it stops), and
// says what is wrong with a missing source or a missing flag.
func TestCopyDB(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src.db"), filepath.Join(dir, "dst.db")
	st, err := store.Open(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutManifest(ctx, "sha256:aa", "application/vnd.oci.image.manifest.v1+json", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	st.Close()

	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"copy-db", "--from", src, "--to", dst}, noEnv, &out, &errOut); err != nil {
		t.Fatalf("copy-db: %v\n%s", err, errOut.String())
	}
	for _, table := range store.CopiedTables() {
		if !strings.Contains(out.String(), table+" ") {
			t.Errorf("copy-db does not report table %s:\n%s", table, out.String())
		}
	}
	if !strings.Contains(out.String(), "copied 1 row from") {
		t.Errorf("copy-db summary:\n%s", out.String())
	}
	got, err := store.Open(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, body, err := got.Manifest(ctx, "sha256:aa"); err != nil || string(body) != `{}` {
		t.Errorf("manifest on the target: %q %v", body, err)
	}
	got.Close()

	for _, tc := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"--from", src, "--to", dst}, "not empty", 1},
		{[]string{"--from", filepath.Join(dir, "missing.db"), "--to", filepath.Join(dir, "new.db")}, "missing.db", 1},
		{[]string{"--from", src}, "--to", 2},
		{[]string{"--from", src, "--to", src}, "same database", 2},
	} {
		err := run(ctx, append([]string{"copy-db"}, tc.args...), noEnv, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), tc.want) || exitCode(err) != tc.code {
			t.Errorf("copy-db %v: %v (exit %d), want an error naming %q, exit %d", tc.args, err, exitCode(err), tc.want, tc.code)
		}
	}
}
