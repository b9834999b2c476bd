package deploy

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// variableName is an imagebadger environment variable named anywhere in a file.
var variableName = regexp.MustCompile(`\bIMAGEBADGER_[A-Z0-9_]*[A-Z0-9]\b`)

// deploymentFiles returns the deployment files under this directory: what
// people copy and run, not the tests and their data.
func deploymentFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p == "testdata" || p == "secrets" {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(p) {
		case ".yaml", ".yml", ".service", ".env":
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestVariablesAreTheBinarys checks that every IMAGEBADGER_ variable the
// deployment files set or mention, in settings and comments alike, is one
// that `imagebadger serve` reads (a _FILE form counts as its variable): a
// misspelt or retired name would otherwise be ignored without a word.
func TestVariablesAreTheBinarys(t *testing.T) {
	files := deploymentFiles(t)
	kinds := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		names := variableName.FindAllString(string(b), -1)
		slices.Sort(names)
		names = slices.Compact(names)
		if len(names) > 0 {
			kinds[strings.SplitN(filepath.ToSlash(f), "/", 2)[0]] = true
		}
		checkVariables(t, f, names)
	}
	// Each kind of deployment sets the database: a sweep that found nothing
	// in one of them has looked in the wrong place.
	for _, kind := range []string{composeFile, "kubernetes", "systemd"} {
		if !kinds[kind] {
			t.Errorf("no IMAGEBADGER_ variable found in %s (files: %v)", kind, files)
		}
	}
}
