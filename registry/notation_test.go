package registry_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/notaryproject/notation-core-go/signature/cose"
	"github.com/notaryproject/notation-core-go/signature/jws"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/internal/testing/supplyfix"
	"github.com/imagebadger/imagebadger/registry"
	"github.com/imagebadger/imagebadger/trust"
)

// TestSupplyChainVerifiesNotationSignatures: Notation signatures made as
// `notation sign` makes them (a JWS envelope by a certificate of the trust
// store's CA, a COSE one by a CA the store does not hold), attached as
// referrers (the API, or the fallback tag where the registry has none),
// are judged under a rule with a Notation trust store: true with the
// signing certificate's subject, false with a reason; a repository no rule
// covers keeps null and costs no read of its signatures. Each judged
// signature costs its manifest and its envelope.
func TestSupplyChainVerifiesNotationSignatures(t *testing.T) {
	for _, withAPI := range []bool{true, false} {
		t.Run(fmt.Sprintf("referrers API %v", withAPI), func(t *testing.T) {
			ctx := context.Background()
			r := faultreg.StartWith(t, faultreg.Options{Referrers: withAPI})
			dir := t.TempDir()
			acme := supplyfix.NewNotationCA(t, "Acme", time.Now().Add(12*time.Hour))
			acme.WriteStore(t, filepath.Join(dir, "store"), "acme")
			stranger := supplyfix.NewNotationCA(t, "Stranger", time.Now().Add(12*time.Hour))
			rulesFile := filepath.Join(dir, "trust.yaml")
			if err := os.WriteFile(rulesFile, []byte("rules:\n  - repositories: [\""+r.Host+"/acme/*\"]\n    notation:\n      trustStore: store\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			rules, err := trust.Load(rulesFile)
			if err != nil {
				t.Fatal(err)
			}
			signed := func(repo string) (digest, good, bad string) {
				img := imageSpec{layers: 1, oci: true}.build(t)
				digest = digestString(t, img)
				push(t, r.Host+"/"+repo+":1", img)
				desc := v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: must(v1.NewHash(digest)), Size: must(img.Size())}
				goodSig := artifact(t, analysis.MediaTypeNotation, acme.Sign(t, jws.MediaTypeEnvelope, digest), jws.MediaTypeEnvelope, nil, &desc)
				badSig := artifact(t, analysis.MediaTypeNotation, stranger.Sign(t, cose.MediaTypeEnvelope, digest), cose.MediaTypeEnvelope, nil, &desc)
				for _, s := range []v1.Image{goodSig, badSig} {
					push(t, r.Host+"/"+repo+"@"+digestString(t, s), s)
				}
				return digest, digestString(t, goodSig), digestString(t, badSig)
			}
			covered, good, bad := signed("acme/app")
			outside, outGood, outBad := signed("other/app")

			_, in := newInspector(t, registry.Options{})
			judged := registry.NewInspector(in.client, in.content).WithVerifier(rules)
			yes, no := true, false
			for _, tc := range []struct {
				repo, digest string
				want         map[string]analysis.Signature
				requests     int
			}{
				{"acme/app", covered, map[string]analysis.Signature{
					good: {Format: "notation", Digest: good, FoundBy: "referrers", Verified: &yes, Signer: "CN=Acme release signing,O=Acme"},
					bad:  {Format: "notation", Digest: bad, FoundBy: "referrers", Verified: &no, Signer: "CN=Stranger release signing,O=Stranger", Reason: "no certificate of the trust store is in the signature's chain"},
				}, 2 + 2*2},
				{"other/app", outside, map[string]analysis.Signature{
					outGood: {Format: "notation", Digest: outGood, FoundBy: "referrers"},
					outBad:  {Format: "notation", Digest: outBad, FoundBy: "referrers"},
				}, 2},
			} {
				ref, err := analysis.ParseReference(r.Host + "/" + tc.repo + ":1")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := inspect(t, in, ref); err != nil {
					t.Fatal(err)
				}
				r.Requests()
				got, err := judged.SupplyChain(ctx, ref.Repository, tc.digest)
				if err != nil {
					t.Fatal(err)
				}
				sigs := got[tc.digest].Signatures
				if len(sigs) != len(tc.want) {
					t.Errorf("%s: signatures %+v, want %d", tc.repo, sigs, len(tc.want))
				}
				for _, s := range sigs {
					w := tc.want[s.Digest]
					if s.Format != w.Format || s.FoundBy != w.FoundBy || s.Signer != w.Signer || s.Reason != w.Reason ||
						(s.Verified == nil) != (w.Verified == nil) || (s.Verified != nil && *s.Verified != *w.Verified) {
						t.Errorf("%s: signature %+v (verified %v), want %+v (verified %v)", tc.repo, s, deref(s.Verified), w, deref(w.Verified))
					}
				}
				if reqs := r.Requests(); len(reqs) != tc.requests {
					t.Errorf("%s: %d requests, want %d: %s", tc.repo, len(reqs), tc.requests, strings.Join(reqs, "\n"))
				}
			}
		})
	}
}

func deref(b *bool) any {
	if b == nil {
		return nil
	}
	return *b
}
