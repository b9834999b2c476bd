package registry_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/internal/testing/supplyfix"
	"github.com/imagebadger/imagebadger/registry"
	"github.com/imagebadger/imagebadger/trust"
)

// TestSupplyChainVerifiesSigstore: sigstore bundles attached as referrers
// (as cosign v3 attaches them: the referrers API, or its fallback tag) and
// cosign keyless signatures in a .sig tag, all made by an in-memory
// Sigstore, pushed to the in-process registry (with and without the
// referrers API) and to distribution, are judged under a rule with that
// Sigstore's trusted root, an identity and a cosign key: a good keyless
// bundle and a bundle signed by the key are true; the good bundle with its
// statement changed, a good bundle of another image and a bundle by an
// identity the rule does not name are false with a reason; the keyless .sig
// layer is true. A rule of keys alone judges the key bundle and leaves the
// keyless ones null without reading the .sig layer; a repository no rule
// covers reads nothing more than the finding requests. Judging a bundle
// costs its manifest and its blob; nothing is dialled but the registry, at
// the dialer and at net/http's default transport (which a TUF fetch would
// use).
func TestSupplyChainVerifiesSigstore(t *testing.T) {
	inProcess := func(api bool) func(t *testing.T) (string, func() []string) {
		return func(t *testing.T) (string, func() []string) {
			r := faultreg.StartWith(t, faultreg.Options{Referrers: api})
			return r.Host, func() []string { return r.Requests() }
		}
	}
	for _, reg := range []struct {
		name  string
		start func(t *testing.T) (host string, requests func() []string)
	}{
		{"in-process registry with the referrers API", inProcess(true)},
		{"in-process registry without it", inProcess(false)},
		{"distribution 2.8", startDistribution},
	} {
		t.Run(reg.name, func(t *testing.T) {
			ctx := context.Background()
			host, requests := reg.start(t)
			acme := newSigstore(t)
			const issuer, who = "https://issuer.acme.example", "release@acme.example"
			dir := t.TempDir()
			key := supplyfix.CosignKey(t, dir, "cosign.pub")
			acme.WriteTrustedRoot(t, filepath.Join(dir, "root.json"))
			rulesFile := filepath.Join(dir, "trust.yaml")
			if err := os.WriteFile(rulesFile, []byte(`rules:
  - repositories: ["`+host+`/acme/*"]
    cosign:
      keys: [cosign.pub]
    keyless:
      trustedRoot: root.json
      identities: [{subject: "*@acme.example", issuer: "`+issuer+`"}]
  - repositories: ["`+host+`/keys/*"]
    cosign:
      keys: [cosign.pub]
`), 0o600); err != nil {
				t.Fatal(err)
			}
			rules, err := trust.Load(rulesFile)
			if err != nil {
				t.Fatal(err)
			}

			type pushed struct {
				digest                                 string
				good, tampered, elsewhere, evil, byKey string // bundle manifests
				sigLayer                               string // the keyless .sig layer
			}
			signed := func(repo string) pushed {
				img := imageSpec{layers: 1, oci: true}.build(t)
				p := pushed{digest: digestString(t, img)}
				push(t, host+"/"+repo+":1", img)
				desc := v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: must(v1.NewHash(p.digest)), Size: must(img.Size())}
				attach := func(data []byte) string {
					a := artifact(t, analysis.MediaTypeSigstoreBundle, data, analysis.MediaTypeSigstoreBundle, nil, &desc)
					push(t, host+"/"+repo+"@"+digestString(t, a), a)
					return digestString(t, a)
				}
				good := acme.SignImage(t, who, issuer, p.digest)
				p.good = attach(good)
				p.tampered = attach(changeStatement(t, good, supplyfix.ImageStatement("sha256:"+strings.Repeat("0", 64))))
				p.elsewhere = attach(acme.SignImage(t, who, issuer, "sha256:"+strings.Repeat("e", 64)))
				p.evil = attach(acme.SignImage(t, "mallory@evil.example", issuer, p.digest))
				p.byKey = attach(supplyfix.KeyBundle(t, key, p.digest))

				// cosign sign (v2, keyless): the .sig tag's layer.
				payload := []byte(`{"critical":{"identity":{"docker-reference":"` + host + "/" + repo + `"},"image":{"docker-manifest-digest":"` + p.digest + `"},"type":"cosign container image signature"},"optional":null}`)
				sigImg, err := mutate.Append(mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON),
					mutate.Addendum{Layer: static.NewLayer(payload, analysis.MediaTypeCosignSimple), Annotations: acme.CosignKeylessLayer(t, who, issuer, payload)})
				if err != nil {
					t.Fatal(err)
				}
				p.sigLayer = layerDigest(t, sigImg)
				push(t, host+"/"+repo+":"+registry.FallbackTag(p.digest)+".sig", sigImg)
				return p
			}
			acmeApp, keysApp, otherApp := signed("acme/app"), signed("keys/app"), signed("other/app")

			transport, checkDials := onlyDials(t, host)
			_, in := newInspector(t, registry.Options{Transport: transport})
			judged := registry.NewInspector(in.client, in.content).WithVerifier(rules)
			var mu sync.Mutex
			var fetched []string
			defaultTransport := http.DefaultTransport
			// The default transport carries on to loopback (the metered
			// proxy in front of distribution uses it) and refuses the rest.
			http.DefaultTransport = roundTrip(func(req *http.Request) (*http.Response, error) {
				if h, _, _ := net.SplitHostPort(req.URL.Host); h == "127.0.0.1" {
					return defaultTransport.RoundTrip(req)
				}
				mu.Lock()
				fetched = append(fetched, req.URL.String())
				mu.Unlock()
				return nil, errors.New("verification must not fetch")
			})
			t.Cleanup(func() { http.DefaultTransport = defaultTransport })

			yes, no := true, false
			signer := who + " (" + issuer + ")"
			bundle := func(d string, verified *bool, signer, reason string) analysis.Signature {
				return analysis.Signature{Format: "sigstore-bundle", Digest: d, FoundBy: "referrers", Verified: verified, Signer: signer, Reason: reason}
			}
			for _, tc := range []struct {
				repo     string
				p        pushed
				want     []analysis.Signature
				requests int
			}{
				{"acme/app", acmeApp, []analysis.Signature{
					bundle(acmeApp.good, &yes, signer, ""),
					bundle(acmeApp.tampered, &no, "", "the transparency log entry does not vouch for this signature: "),
					bundle(acmeApp.elsewhere, &no, signer, "the bundle signed by "+signer+" is of sha256:eeeeeeeeeeee, not of this image"),
					bundle(acmeApp.evil, &no, "", "the certificate's identity mallory@evil.example ("+issuer+") is not one the rule trusts"),
					bundle(acmeApp.byKey, &yes, "cosign.pub (sha256:", ""),
					{Format: "cosign", Digest: acmeApp.sigLayer, FoundBy: "tag", Verified: &yes, Signer: signer},
				}, 2 + 1 + 1 + 5*2}, // finding; the .sig manifest and its layer; each bundle's manifest and blob
				{"keys/app", keysApp, []analysis.Signature{
					bundle(keysApp.good, nil, "", ""),
					bundle(keysApp.tampered, nil, "", ""),
					bundle(keysApp.elsewhere, nil, "", ""),
					bundle(keysApp.evil, nil, "", ""),
					bundle(keysApp.byKey, &yes, "cosign.pub (sha256:", ""),
					{Format: "cosign", Digest: keysApp.sigLayer, FoundBy: "tag"},
				}, 2 + 1 + 5*2}, // the keyless .sig layer is not read
				{"other/app", otherApp, []analysis.Signature{
					bundle(otherApp.good, nil, "", ""),
					bundle(otherApp.tampered, nil, "", ""),
					bundle(otherApp.elsewhere, nil, "", ""),
					bundle(otherApp.evil, nil, "", ""),
					bundle(otherApp.byKey, nil, "", ""),
					{Format: "cosign", Digest: otherApp.sigLayer, FoundBy: "tag"},
				}, 2 + 1},
			} {
				ref, err := analysis.ParseReference(host + "/" + tc.repo + ":1")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := inspect(t, in, ref); err != nil {
					t.Fatal(err)
				}
				requests()
				got, err := judged.SupplyChain(ctx, ref.Repository, tc.p.digest)
				if err != nil {
					t.Fatal(err)
				}
				sigs := got[tc.p.digest].Signatures
				for i := range sigs {
					if strings.HasPrefix(sigs[i].Signer, "cosign.pub (sha256:") {
						sigs[i].Signer = "cosign.pub (sha256:"
					}
					// The log's words follow the reason's start.
					if strings.HasPrefix(sigs[i].Reason, "the transparency log entry does not vouch for this signature: ") {
						sigs[i].Reason = "the transparency log entry does not vouch for this signature: "
					}
				}
				if diff := cmp.Diff(tc.want, sigs, supplyOrder); diff != "" {
					t.Errorf("%s signatures (-want +got):\n%s", tc.repo, diff)
				}
				if reqs := requests(); len(reqs) != tc.requests {
					t.Errorf("%s: %d requests, want %d: %s", tc.repo, len(reqs), tc.requests, strings.Join(reqs, "\n"))
				}
			}
			checkDials()
			mu.Lock()
			defer mu.Unlock()
			if len(fetched) != 0 {
				t.Errorf("fetched %q through the default transport", fetched)
			}
		})
	}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// changeStatement replaces the bundle's DSSE payload, leaving its
// signature, certificate and log entry as they were.
func changeStatement(t *testing.T, bundle, statement []byte) []byte {
	t.Helper()
	var b map[string]any
	if err := json.Unmarshal(bundle, &b); err != nil {
		t.Fatal(err)
	}
	b["dsseEnvelope"].(map[string]any)["payload"] = base64.StdEncoding.EncodeToString(statement)
	out, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
