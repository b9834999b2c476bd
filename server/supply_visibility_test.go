package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/internal/testing/supplyfix"
	"github.com/imagebadger/imagebadger/server"
)

// TestPrivateSupplyChainAnswersAsMissing: a private image that has an SBOM
// and a provenance (the service reads them with its credentials) answers
// its SBOM route and its signed, sbom and provenance badges and shields to
// an anonymous viewer exactly as a repository that does not exist on the
// same registry: the same status, content type and body once the one name
// is put for the other.
func TestPrivateSupplyChainAnswersAsMissing(t *testing.T) {
	stack.EachEngine(t, func(t *testing.T, engine string) {
		reg := faultreg.Start(t)
		h := reg.Host
		supplyfix.Push(t, h+"/private/app:1", supplyfix.Options{
			Platforms:    []supplyfix.Platform{{OS: "linux", Architecture: "amd64"}},
			SBOMPackages: 3, Source: "https://github.com/acme/app", Revision: "abc",
		})
		for _, p := range []string{"/private/", "/nothere/"} {
			reg.Add(faultreg.Rule{Fault: faultreg.RequireBasicAuth, PathContains: p, Username: "reader", Password: "s3cret"})
		}
		s := stack.New(t, stack.Options{Engine: engine, Keychain: credentials{h: {Username: "reader", Password: "s3cret"}}, Server: &server.Options{}})

		// The first, anonymous, read makes the service inspect the image
		// with its credentials; the service itself then holds its SBOM.
		ask(t, http.MethodGet, s.URL+"/api/v1/images/"+h+"/private/app:1", "", nil)
		ref, err := analysis.ParseReference(h + "/private/app:1")
		if err != nil {
			t.Fatal(err)
		}
		page, err := s.Images.SBOM(context.Background(), auth.Operator(), ref, "", "", "", images.ReadOptions{})
		if err != nil || len(page.Packages) != 3 {
			t.Fatalf("the operator's SBOM of the private image: %d packages, %v; want 3", len(page.Packages), err)
		}

		paths := []string{"/api/v1/images/{h}/{n}:1/sbom", "/api/v1/images/{h}/{n}:1/sbom?platform=linux%2Famd64&q=pkg"}
		for _, k := range []string{"signed", "sbom", "provenance"} {
			paths = append(paths, "/badges/"+k+"/{h}/{n}:1.svg", "/api/v1/shields/"+k+"/{h}/{n}:1")
		}
		for _, p := range paths {
			t.Run(p, func(t *testing.T) {
				fill := func(name string) string { return s.URL + strings.NewReplacer("{h}", h, "{n}", name).Replace(p) }
				private := ask(t, http.MethodGet, fill("private/app"), "", nil)
				missing := ask(t, http.MethodGet, fill("nothere/app"), "", nil)
				private.body = strings.ReplaceAll(private.body, "private/app", "nothere/app")
				if private != missing {
					t.Errorf("the private image answers\n%d %s\n%s\n\na missing one\n%d %s\n%s",
						private.status, private.contentType, private.body, missing.status, missing.contentType, missing.body)
				}
				if strings.HasPrefix(p, "/api/v1/images/") {
					if missing.status != http.StatusNotFound {
						t.Errorf("a missing repository's SBOM answers %d, want 404: %s", missing.status, missing.body)
					}
				} else if !strings.Contains(missing.body, "not found") {
					t.Errorf("a missing repository's badge does not say not found: %s", missing.body)
				}
			})
		}
	})
}
