package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/registry"
)

// TestTagsCommandListingCutShort: `imagebadger tags` is one listing with
// no next one, so it looks up every tag it read, past the 1,000 new tags a
// listing of the service records; and a list whose Link repeats its page
// is read once, and the table says it is not the registry's every tag.
func TestTagsCommandListingCutShort(t *testing.T) {
	reg := faultreg.Start(t)
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := crane.Push(img, reg.Host+"/acme/app:t0000", crane.WithAuth(authn.Anonymous)); err != nil {
		t.Fatal(err)
	}
	const list = "/v2/acme/app/tags/list"
	names := make([]string, 1001)
	for i := range names {
		names[i] = fmt.Sprintf("t%04d", i)
	}
	reg.Add(faultreg.Rule{Method: http.MethodGet, PathContains: list, Fault: faultreg.TagPage, Tags: names, Link: `<` + list + `?n=1000>; rel="next"`})
	reg.Requests()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"tags", "--allow-private-registries", reg.Host + "/acme/app"}, noEnv, &out, &out); err != nil {
		t.Fatal(err)
	}
	if want := "Not every tag the registry lists is shown: the registry's next page repeats a page already read."; !strings.Contains(out.String(), want) {
		t.Errorf("tags printed:\n%s\nwant a line %q", out.String(), want)
	}
	heads, pages := 0, 0
	for _, r := range reg.Requests() {
		switch {
		case strings.HasPrefix(r, "HEAD ") && strings.Contains(r, "/manifests/t"):
			heads++
		case r == "GET "+list:
			pages++
		}
	}
	if heads != len(names) || pages != 1 {
		t.Errorf("%d HEADs of tags and %d pages, want %d and 1", heads, pages, len(names))
	}
	if registry.MaxListedTags < len(names) {
		t.Fatalf("the case wants a listing to read %d tags", len(names))
	}
}
