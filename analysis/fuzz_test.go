package analysis_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/imagebadger/imagebadger/analysis"
)

// FuzzParseReference: any text either parses to a reference whose canonical
// form parses back to itself, or fails with ErrInvalidReference; never a panic.
func FuzzParseReference(f *testing.F) {
	for _, s := range []string{
		"python", "library/python:3.12-slim", "ghcr.io/acme/app:1.2", "127.0.0.1:5000/acme/app@sha256:" + fmt.Sprintf("%064x", 1),
		"localhost:5000/a/b/c:tag@sha256:" + fmt.Sprintf("%064x", 2), "UPPER/case", "a:b:c", "", "@", "x/../y", "[::1]:5000/r:1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := analysis.ParseReference(s)
		if err != nil {
			if !errors.Is(err, analysis.ErrInvalidReference) {
				t.Fatalf("ParseReference(%q) error %v is not ErrInvalidReference", s, err)
			}
			return
		}
		again, err := analysis.ParseReference(ref.String())
		if err != nil || again != ref {
			t.Fatalf("ParseReference(%q) = %+v, but its String %q parses to %+v, %v", s, ref, ref.String(), again, err)
		}
	})
}
