package e2e_test

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagebadger/imagebadger/internal/testing/supplyfix"
	"github.com/imagebadger/imagebadger/internal/testing/testenv"
)

// TestSupplyChainInBrowser: the built binary, serving with a --trust file
// that holds the signer's key, in front of the real distribution registry
// (no referrers API), shows a BuildKit-shaped, cosign-signed image's
// "Supply chain" in chromium: the signature verified and by whom, the
// SBOM's package count linked to its packages, the provenance's source,
// revision and materials; the three badges say so too.
func TestSupplyChainInBrowser(t *testing.T) {
	reg := testenv.Distribution(t)
	pushed := supplyfix.Push(t, reg+"/acme/app:1", supplyfix.Options{
		Platforms: []supplyfix.Platform{{OS: "linux", Architecture: "amd64", Materials: []supplyfix.Material{
			{URI: "pkg:docker/alpine@3.20?platform=linux%2Famd64", Digest: "sha256:" + strings.Repeat("1", 64)}}}},
		SBOMPackages: 7, ProvenanceV1: true, Source: "https://github.com/acme/app", Revision: "0f3c0f3c",
	})

	// cosign sign --key of the index.
	dir := t.TempDir()
	key := supplyfix.CosignKey(t, dir, "cosign.pub")
	rules := filepath.Join(dir, "trust.yaml")
	if err := os.WriteFile(rules, []byte("rules:\n  - repositories: [\""+reg+"/acme/*\"]\n    cosign:\n      keys: [cosign.pub]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"critical":{"identity":{"docker-reference":"` + reg + `/acme/app"},"image":{"docker-manifest-digest":"` + pushed.Index + `"},"type":"cosign container image signature"},"optional":null}`)
	sum := sha256.Sum256(payload)
	sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sigImg, err := mutate.Append(mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON),
		mutate.Addendum{Layer: static.NewLayer(payload, "application/vnd.dev.cosign.simplesigning.v1+json"),
			Annotations: map[string]string{"dev.cosignproject.cosign/signature": base64.StdEncoding.EncodeToString(sig)}})
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(reg + "/acme/app:" + strings.Replace(pushed.Index, ":", "-", 1) + ".sig")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, sigImg, remote.WithAuth(authn.Anonymous)); err != nil {
		t.Fatal(err)
	}

	srv := testenv.ServeProcess(t, testenv.Binary(t), testenv.ServeOptions{Args: []string{"--dockerhub-api", "", "--insecure-registries", reg, "--trust", rules}})
	tb := newTab(t, srv.URL)
	if code := tb.visit("/images/" + reg + "/acme/app:1"); code != 200 {
		t.Fatalf("image page: %d", code)
	}
	tb.noConsoleErrors("image page")
	if got := tb.text(`[data-testid="supply-chain"] h2`); got != "Supply chain" {
		t.Errorf("section heading %q", got)
	}
	if got := tb.text(`[data-testid="signature"]`); !strings.Contains(got, "verified") || !strings.Contains(got, "signed by cosign.pub (sha256:") {
		t.Errorf("signature %q", got)
	}
	if got := tb.text(`[data-testid="sbom-link"]`); got != "7 packages" {
		t.Errorf("SBOM %q", got)
	}
	if got := tb.text(`[data-testid="provenance-kind"]`); got != "SLSA v1" {
		t.Errorf("provenance %q", got)
	}
	if got := tb.text(`[data-testid="provenance-source"]`); got != "https://github.com/acme/app" {
		t.Errorf("source %q", got)
	}
	if got := tb.text(`[data-testid="provenance-revision"]`); got != "0f3c0f3c" {
		t.Errorf("revision %q", got)
	}
	if n := tb.count(`[data-testid="material"] a`); n != 1 {
		t.Errorf("%d linked materials, want 1", n)
	}
	// The SBOM link leads to its packages.
	href := tb.eval(`document.querySelector('[data-testid="sbom-link"]').getAttribute("href")`)
	if !strings.HasPrefix(href, "/api/v1/images/") || !strings.Contains(href, "/sbom") {
		t.Errorf("SBOM link %q", href)
	}
	for kind, want := range map[string]string{"signed": ">verified<", "sbom": ">7 packages<", "provenance": ">SLSA v1<"} {
		status, body := fetch(t, srv.URL+"/badges/"+kind+"/"+reg+"/acme/app:1.svg")
		if status != 200 || !strings.Contains(body, want) {
			t.Errorf("%s badge: %d, want %s", kind, status, want)
		}
	}
}
