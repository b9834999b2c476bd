package analysis_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/imagebadger/imagebadger/analysis"
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

// TestInvalidReferencesSayWhatIsWrong: an invalid reference's message names
// the part that is wrong and why, as docker's grammar has it.
func TestInvalidReferencesSayWhatIsWrong(t *testing.T) {
	for _, tc := range []struct{ in, says string }{
		{"Acme/app:1", `the repository "Acme/app" has upper-case letters`},
		{"ghcr.io/acme/App", `the repository "acme/App" has upper-case letters`},
		{"acme/app:bad*tag", `the tag "bad*tag" has '*'`},
		{"acme/app:.hidden", `the tag ".hidden" starts with`},
		{"acme/app:" + strings.Repeat("a", 129), "longer than 128 characters"},
		{"127.0.0.1:99999/x", `the port "99999" of registry "127.0.0.1:99999" is not a port number`},
		{"127.0.0.1:0/x", `the port "0"`},
		{"acme//app", "has an empty part"},
		{"-acme/app", "starts and ends with a letter or digit"},
		{"acme/app@sha256:abc", "has 3 hexadecimal digits, not the 64 of sha256"},
		{"acme/app@sha256:" + strings.Repeat("G", 64), "'G', which is not a lower-case hexadecimal digit"},
		{"acme/a pp", `has ' '`},
	} {
		_, err := analysis.ParseReference(tc.in)
		msg, _ := analysis.PublicMessage(err)
		if !errors.Is(err, analysis.ErrInvalidReference) || !strings.Contains(msg, tc.says) {
			t.Errorf("ParseReference(%q): %v, want a message saying %q", tc.in, err, tc.says)
		}
	}
	if _, err := analysis.ParseRepository("acme/app:1"); err == nil || !strings.Contains(err.Error(), "a repository name has no tag") {
		t.Errorf("ParseRepository with a tag: %v", err)
	}
	for _, ok := range []string{"python", "127.0.0.1:5000/acme/app:2.3", "[::1]:5000/acme/app", "localhost/a__b/c-d.e:v1_2.3-rc", "a/b@sha256:" + strings.Repeat("0", 64)} {
		if _, err := analysis.ParseReference(ok); err != nil {
			t.Errorf("ParseReference(%q): %v", ok, err)
		}
	}
}

// TestPastedURLsSayToDropTheScheme: a reference pasted with a URL scheme
// (a browser's address bar, skopeo's docker:// transport, or a path an HTTP
// router has cleaned to one slash) is refused with the reference to write
// instead, and that suggestion is one docker's grammar accepts.
func TestPastedURLsSayToDropTheScheme(t *testing.T) {
	for _, tc := range []struct{ in, scheme, want string }{
		{"http://127.0.0.1:5055/me/app:1", "http://", "127.0.0.1:5055/me/app:1"},
		{"https://ghcr.io/acme/app:1.2/", "https://", "ghcr.io/acme/app:1.2"},
		{"HTTPS://ghcr.io/acme/app", "https://", "ghcr.io/acme/app"},
		{"http:/127.0.0.1:5055/me/app:1", "http://", "127.0.0.1:5055/me/app:1"},
		{"docker://alpine:3.20", "docker://", "alpine:3.20"},
		{"https://hub.docker.com/_/python/tags", "https://", "python"},
		{"https://hub.docker.com/r/acme/app", "https://", "acme/app"},
	} {
		_, err := analysis.ParseReference(tc.in)
		msg, _ := analysis.PublicMessage(err)
		if !errors.Is(err, analysis.ErrInvalidReference) || !strings.HasSuffix(msg, "write the reference without "+tc.scheme+": "+tc.want) {
			t.Errorf("ParseReference(%q): %v, want a message ending %q", tc.in, err, "write the reference without "+tc.scheme+": "+tc.want)
		}
		if _, err := name.ParseReference(tc.want); err != nil {
			t.Errorf("the suggestion %q for %q is not a reference to docker's grammar: %v", tc.want, tc.in, err)
		}
	}
	_, err := analysis.ParseRepository("https://127.0.0.1:5055/me/app")
	if msg, _ := analysis.PublicMessage(err); !errors.Is(err, analysis.ErrInvalidReference) || !strings.HasSuffix(msg, "write the repository without https://: 127.0.0.1:5055/me/app") {
		t.Errorf("ParseRepository of a URL: %v", err)
	}
	// A registry with a port is not a scheme.
	for _, ok := range []string{"localhost:5000/app:1", "127.0.0.1:5055/me/app"} {
		if _, err := analysis.ParseReference(ok); err != nil {
			t.Errorf("ParseReference(%q): %v", ok, err)
		}
	}
}
