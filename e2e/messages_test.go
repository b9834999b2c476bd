package e2e_test

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/imagebadger/imagebadger/internal/testing/testenv"
)

// registryCodes asks the registry's API for path and returns the
// distribution spec's error codes of its answer.
func registryCodes(t *testing.T, url string) []string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	var codes []string
	for _, e := range body.Errors {
		codes = append(codes, e.Code)
	}
	return codes
}

// TestNotFoundAgainstDistribution: against the distribution registry, the
// command line says whether the repository or the tag is missing, as the
// registry's own answers have it (NAME_UNKNOWN from a repository's tag list,
// MANIFEST_UNKNOWN for a tag), and suggests the tags command for a missing
// tag; a registry nothing listens for is said to refuse the connection.
func TestNotFoundAgainstDistribution(t *testing.T) {
	reg := testenv.Distribution(t)
	bin := testenv.Binary(t)
	testenv.Crane(t, "append", "-f", layerTar(t, "app"), "-t", reg+"/acme/app:1")
	if codes := registryCodes(t, "http://"+reg+"/v2/acme/nothing/tags/list"); strings.Join(codes, ",") != "NAME_UNKNOWN" {
		t.Fatalf("the registry lists acme/nothing with codes %v, want NAME_UNKNOWN", codes)
	}
	if codes := registryCodes(t, "http://"+reg+"/v2/acme/app/manifests/nope"); strings.Join(codes, ",") != "MANIFEST_UNKNOWN" {
		t.Fatalf("the registry answers acme/app:nope with codes %v, want MANIFEST_UNKNOWN", codes)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"inspect", reg + "/acme/app:nope"}, "repository " + reg + "/acme/app has no tag nope; `imagebadger tags " + reg + "/acme/app` lists its tags"},
		{[]string{"inspect", reg + "/acme/nothing:1"}, "repository " + reg + "/acme/nothing does not exist"},
		{[]string{"tags", reg + "/acme/nothing"}, "repository " + reg + "/acme/nothing does not exist"},
		{[]string{"inspect", closed + "/acme/app:1"}, "the registry at " + closed + " refused the connection"},
	} {
		r := runBinary(t, bin, append(tc.args[:1:1], append([]string{"--allow-private-registries"}, tc.args[1:]...)...)...)
		if r.code != 1 || !strings.HasPrefix(r.stderr, "imagebadger: "+tc.says) {
			t.Errorf("%v: exit %d, %q; want 1 and %q", tc.args, r.code, r.stderr, "imagebadger: "+tc.says)
		}
	}
}
