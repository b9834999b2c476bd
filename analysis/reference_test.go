package analysis_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"imagebadger/analysis"
)

// TestOfficialNameLengthLimit: a Docker Hub official name is accepted only
// when its canonical form, with "library/", is a name go-containerregistry
// accepts; the case FuzzParseReference found (248 characters, 256 with
// "library/") is refused as an invalid reference, for images and for
// repositories alike.
func TestOfficialNameLengthLimit(t *testing.T) {
	for _, n := range []int{200, 247, 248, 300} {
		short := strings.Repeat("a", n)
		_, ggcrErr := name.NewRepository("docker.io/library/" + short)
		wantOK := ggcrErr == nil
		ref, err := analysis.ParseReference(short + ":1")
		if (err == nil) != wantOK {
			t.Errorf("%d characters: ParseReference err = %v; go-containerregistry on the canonical form: %v", n, err, ggcrErr)
		}
		if err != nil && !errors.Is(err, analysis.ErrInvalidReference) {
			t.Errorf("%d characters: error %v is not ErrInvalidReference", n, err)
		}
		if err == nil {
			if again, err := analysis.ParseReference(ref.String()); err != nil || again != ref {
				t.Errorf("%d characters: canonical %q parses to %+v, %v", n, ref.String(), again, err)
			}
		}
		if _, err := analysis.ParseRepository(short); (err == nil) != wantOK {
			t.Errorf("%d characters: ParseRepository err = %v; go-containerregistry on the canonical form: %v", n, err, ggcrErr)
		}
	}
}
