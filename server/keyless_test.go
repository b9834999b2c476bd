package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/internal/testing/supplyfix"
	"github.com/imagebadger/imagebadger/server"
	"github.com/imagebadger/imagebadger/trust"
)

// TestKeylessSignaturesThroughTheService: an index signed keyless as cosign
// v3 signs it (a sigstore bundle attached by the referrers API) by the
// identity a --trust rule names, and again by one it does not, read through
// the service on each engine: the JSON report lists both on the platform
// image, the first verified with its certificate's identity and issuer as
// signer, the second false with a reason, as docs/API.md's Supply chain
// says; the signed badge says verified; and a second service on the same
// store (the service restarted) answers the same verdicts from what was kept.
func TestKeylessSignaturesThroughTheService(t *testing.T) {
	stack.EachEngine(t, func(t *testing.T, engine string) { testKeylessSignatures(t, engine) })
}

func testKeylessSignatures(t *testing.T, engine string) {
	const issuer, who = "https://token.actions.example", "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1"
	reg := faultreg.StartWith(t, faultreg.Options{Referrers: true})
	pushed := supplyfix.Push(t, reg.Host+"/acme/app:1", supplyfix.Options{Platforms: []supplyfix.Platform{{OS: "linux", Architecture: "amd64"}}})
	sig := newSigstore(t)

	dir := t.TempDir()
	sig.WriteTrustedRoot(t, filepath.Join(dir, "root.json"))
	rulesFile := filepath.Join(dir, "trust.yaml")
	if err := os.WriteFile(rulesFile, []byte(`rules:
  - repositories: ["`+reg.Host+`/acme/*"]
    keyless:
      trustedRoot: root.json
      identities: [{subject: "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/*", issuer: "`+issuer+`"}]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	rules, err := trust.Load(rulesFile)
	if err != nil {
		t.Fatal(err)
	}

	// cosign v3 attaches each bundle as an artifact whose subject is the
	// signed index.
	index, err := v1.NewHash(pushed.Index)
	if err != nil {
		t.Fatal(err)
	}
	subject := v1.Descriptor{MediaType: types.OCIImageIndex, Digest: index}
	for _, bundle := range [][]byte{
		sig.SignImage(t, who, issuer, pushed.Index),
		sig.SignImage(t, "https://github.com/mallory/fork/.github/workflows/release.yml@refs/tags/v1", issuer, pushed.Index),
	} {
		img, err := mutate.Append(mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), analysis.MediaTypeSigstoreBundle),
			mutate.Addendum{Layer: static.NewLayer(bundle, analysis.MediaTypeSigstoreBundle)})
		if err != nil {
			t.Fatal(err)
		}
		img = mutate.Subject(img, subject).(v1.Image)
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		ref, err := name.NewDigest(reg.Host + "/acme/app@" + d.String())
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img, remote.WithAuth(authn.Anonymous)); err != nil {
			t.Fatal(err)
		}
	}

	check := func(t *testing.T, url string) {
		t.Helper()
		var rep analysis.Report
		if code := getJSON(t, url+"/api/v1/images/"+reg.Host+"/acme/app:1", &rep); code != 200 {
			t.Fatalf("report: status %d", code)
		}
		if len(rep.Platforms) != 1 || rep.Platforms[0].SupplyChain == nil {
			t.Fatalf("report platforms %+v", rep.Platforms)
		}
		var good, other int
		for _, s := range rep.Platforms[0].SupplyChain.Signatures {
			if s.Format != "sigstore-bundle" || s.FoundBy != "referrers" || s.Verified == nil {
				t.Errorf("signature %+v: want a sigstore bundle found by referrers and judged", s)
				continue
			}
			switch {
			case *s.Verified && s.Signer == who+" ("+issuer+")":
				good++
			case !*s.Verified && s.Reason != "":
				other++
			default:
				t.Errorf("signature %+v", s)
			}
		}
		if good != 1 || other != 1 {
			t.Errorf("%d verified by the named identity and %d refused with a reason; want 1 and 1: %+v", good, other, rep.Platforms[0].SupplyChain.Signatures)
		}
		if code, body := get(t, url+"/badges/signed/"+reg.Host+"/acme/app:1.svg"); code != 200 || !strings.Contains(body, ">verified<") {
			t.Errorf("signed badge: %d\n%s", code, body)
		}
	}
	s := stack.New(t, stack.Options{Engine: engine, Timeout: 5 * time.Second, Server: &server.Options{}, Images: images.Options{Verifier: rules}})
	check(t, s.URL)
	again := stack.New(t, stack.Options{Store: s.Store, Timeout: 5 * time.Second, Server: &server.Options{}, Images: images.Options{Verifier: rules}})
	reg.Requests()
	check(t, again.URL)
	for _, r := range reg.Requests() {
		if strings.Contains(r, "/referrers/") || strings.Contains(r, "/blobs/") {
			t.Errorf("the restarted service asked the registry %s: the verdicts were not kept", r)
		}
	}
}

// newSigstore starts an in-memory Sigstore of its own keys (see
// supplyfix.Sigstore for why it is made here).
func newSigstore(t testing.TB) *supplyfix.Sigstore {
	vs, err := ca.NewVirtualSigstore()
	return supplyfix.NewSigstore(t, vs, err)
}
