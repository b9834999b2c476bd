package e2e_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/internal/testing/testenv"
)

// TestHostileTagListThroughTheBinary: a registry whose tag list links to
// itself and names a CR/LF tag and a path costs the built service one
// request of the list; the tags answer holds the valid tag alone, says the
// listing is not complete and why, and the log names the skipped names
// quoted. On both engines.
func TestHostileTagListThroughTheBinary(t *testing.T) {
	testenv.EachEngine(t, func(t *testing.T, db string) {
		reg := faultreg.Start(t)
		if err := crane.Push(must(random.Image(256, 1)), reg.Host+"/acme/app:1", crane.WithAuth(authn.Anonymous)); err != nil {
			t.Fatal(err)
		}
		const list = "/v2/acme/app/tags/list"
		reg.Add(faultreg.Rule{Method: http.MethodGet, PathContains: list, Fault: faultreg.TagPage,
			Tags: []string{"1", "bad\r\nX-Injected: 1", "../../etc"}, Link: `<` + list + `?n=1000>; rel="next"`})
		reg.Requests()
		srv := testenv.ServeProcess(t, testenv.Binary(t), testenv.ServeOptions{DBPath: db})
		var got struct {
			TagCount   int    `json:"tagCount"`
			Complete   bool   `json:"complete"`
			Incomplete string `json:"incomplete"`
			Groups     []struct {
				Tags []string `json:"tags"`
			} `json:"groups"`
		}
		if code := fetchJSON(t, "GET", srv.URL+"/api/v1/repositories/"+reg.Host+"/acme/app/tags?refresh=1", &got); code != 200 {
			t.Fatalf("tags: %d %+v", code, got)
		}
		if got.TagCount != 1 || len(got.Groups) != 1 || !slices.Equal(got.Groups[0].Tags, []string{"1"}) {
			t.Errorf("tags answer %+v, want tag 1 alone", got)
		}
		if got.Complete || !strings.Contains(got.Incomplete, "repeats") {
			t.Errorf("complete %v (%q), want not complete, saying the list repeats", got.Complete, got.Incomplete)
		}
		if n := len(reg.Requests(list)); n != 1 {
			t.Errorf("the list was asked %d times, want once", n)
		}
		if out := srv.Output(); !strings.Contains(out, `"tag":"\"bad\\r\\nX-Injected: 1\""`) || !strings.Contains(out, "not a valid tag") {
			t.Errorf("the log does not name the skipped tag, escaped:\n%s", out)
		}
	})
}
