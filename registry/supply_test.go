package registry_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/internal/testing/distreg"
	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/internal/testing/supplyfix"
	"github.com/imagebadger/imagebadger/registry"
	"github.com/imagebadger/imagebadger/trust"
)

// supplyFixture is a BuildKit-shaped image with everything that signs and
// attests it, pushed as BuildKit, cosign and the OCI 1.1 clients push:
//   - an index of linux/amd64 and linux/arm64, each with an attestation
//     manifest in the index (a SLSA v0.2 provenance and an SPDX SBOM);
//   - a cosign key signature of the index (tag sha256-{hex}.sig), made with
//     an ECDSA key, and a cosign attestation of a VEX (tag .att);
//   - a sigstore bundle referring to the index, and a Notation signature
//     referring to the amd64 image (the referrers API, or its fallback tag
//     where the registry has none).
type supplyFixture struct {
	index      v1.ImageIndex
	indexDig   string
	platforms  map[string]string // platform → digest
	provenance map[string]string // platform → statement layer digest
	sbom       map[string]string // platform → statement layer digest
	cosignSig  string            // the .sig layer
	vex        string            // the .att layer
	bundle     string            // the bundle referrer's manifest
	notation   string            // the Notation referrer's manifest
}

const spdxPackages = `{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","creationInfo":{"creators":["Tool: buildkit-syft-scanner-1.4.0"]},
"packages":[{"name":"musl","versionInfo":"1.2.5-r0","licenseDeclared":"MIT","externalRefs":[{"referenceType":"purl","referenceLocator":"pkg:apk/alpine/musl@1.2.5-r0"}]},
{"name":"busybox","versionInfo":"1.36.1-r29","licenseDeclared":"GPL-2.0-only","externalRefs":[{"referenceType":"purl","referenceLocator":"pkg:apk/alpine/busybox@1.36.1-r29"}]},
{"name":"app","versionInfo":"1.0"}]}`

func statement(predicateType, subject, predicate string) []byte {
	return []byte(`{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"` + predicateType + `",` +
		`"subject":[{"name":"pkg:docker/acme/app@1.0","digest":{"sha256":"` + strings.TrimPrefix(subject, "sha256:") + `"}}],"predicate":` + predicate + `}`)
}

func provenanceFor(platform string) string {
	return `{"builder":{"id":"https://github.com/acme/app/actions/runs/7"},"buildType":"https://mobyproject.org/buildkit@v1",
"materials":[{"uri":"pkg:docker/alpine@3.20?platform=` + strings.ReplaceAll(platform, "/", "%2F") + `","digest":{"sha256":"` + strings.Repeat("a", 64) + `"}}],
"invocation":{"configSource":{"uri":"https://github.com/acme/app.git#refs/heads/main","digest":{"sha1":"` + strings.Repeat("c", 40) + `"}}}}`
}

// artifact is a manifest of one layer, its config media type the
// artifact's type (what registries report as artifactType).
func artifact(t *testing.T, configType types.MediaType, body []byte, layerType types.MediaType, ann map[string]string, subject *v1.Descriptor) v1.Image {
	t.Helper()
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), configType)
	img, err := mutate.Append(img, mutate.Addendum{Layer: static.NewLayer(body, layerType), Annotations: ann})
	if err != nil {
		t.Fatal(err)
	}
	if subject != nil {
		img = mutate.Subject(img, *subject).(v1.Image)
	}
	return img
}

// onlyDials gives a transport that records every address it dials, and a
// check, to call once the test's requests are done, that it dialled
// something and nothing but host: a verification that reached a
// transparency log or a key server would dial it.
func onlyDials(t *testing.T, host string) (*http.Transport, func()) {
	var mu sync.Mutex
	var dialled []string
	transport := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		dialled = append(dialled, addr)
		mu.Unlock()
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	t.Cleanup(transport.CloseIdleConnections)
	return transport, func() {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		for _, a := range dialled {
			if a != host {
				t.Errorf("dialled %s, which is not the registry (%s)", a, host)
			}
		}
		if len(dialled) == 0 {
			t.Error("nothing was dialled: the test's transport was not used")
		}
	}
}

func digestString(t *testing.T, d interface{ Digest() (v1.Hash, error) }) string {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

func layerDigest(t *testing.T, img v1.Image) string {
	t.Helper()
	ls, err := img.Layers()
	if err != nil || len(ls) == 0 {
		t.Fatalf("layers: %v", err)
	}
	return digestString(t, ls[0])
}

// pushSupplyFixture pushes the fixture to host/acme/app:1.0.
func pushSupplyFixture(t *testing.T, host string) *supplyFixture {
	t.Helper()
	f := &supplyFixture{platforms: map[string]string{}, provenance: map[string]string{}, sbom: map[string]string{}}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for i, arch := range []string{"amd64", "arm64"} {
		plat := "linux/" + arch
		img := imageSpec{layers: 2 + i, os: "linux", arch: arch, oci: true}.build(t)
		d := digestString(t, img)
		f.platforms[plat] = d
		att := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
		prov := static.NewLayer(statement(analysis.PredicateSLSAv02, d, provenanceFor(plat)), analysis.MediaTypeInToto)
		sbom := static.NewLayer(statement(analysis.PredicateSPDX, d, spdxPackages), analysis.MediaTypeInToto)
		att, err := mutate.Append(att,
			mutate.Addendum{Layer: prov, Annotations: map[string]string{analysis.AnnotationPredicateType: analysis.PredicateSLSAv02}},
			mutate.Addendum{Layer: sbom, Annotations: map[string]string{analysis.AnnotationPredicateType: analysis.PredicateSPDX}})
		if err != nil {
			t.Fatal(err)
		}
		f.provenance[plat], f.sbom[plat] = digestString(t, prov), digestString(t, sbom)
		idx = mutate.AppendManifests(idx,
			mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}},
			mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{
				Platform:    &v1.Platform{OS: "unknown", Architecture: "unknown"},
				Annotations: map[string]string{analysis.AnnotationReferenceType: analysis.ReferenceTypeAttestation, analysis.AnnotationReferenceDigest: d},
			}})
	}
	f.index, f.indexDig = idx, digestString(t, idx)
	repo := host + "/acme/app"
	pushIndex(t, repo+":1.0", idx)

	// cosign sign --key: the simple-signing payload, signed with ECDSA P-256
	// over its SHA-256, base64 in the layer's annotation.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"critical":{"identity":{"docker-reference":"` + repo + `"},"image":{"docker-manifest-digest":"` + f.indexDig + `"},"type":"cosign container image signature"},"optional":null}`)
	sum := sha256.Sum256(payload)
	sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sigImg := artifact(t, types.OCIConfigJSON, payload, analysis.MediaTypeCosignSimple,
		map[string]string{analysis.AnnotationCosignSignature: base64.StdEncoding.EncodeToString(sig)}, nil)
	f.cosignSig = layerDigest(t, sigImg)
	tagBase := registry.FallbackTag(f.indexDig)
	push(t, repo+":"+tagBase+".sig", sigImg)

	// cosign attest --type openvex: a DSSE envelope, its predicate type
	// in the layer's annotation.
	vexStmt := statement("https://openvex.dev/ns/v0.2.0", f.indexDig, `{"statements":[]}`)
	env := `{"payloadType":"application/vnd.in-toto+json","payload":"` + base64.StdEncoding.EncodeToString(vexStmt) + `","signatures":[{"keyid":"","sig":"MEUCIQ=="}]}`
	attImg := artifact(t, types.OCIConfigJSON, []byte(env), analysis.MediaTypeDSSE, map[string]string{"predicateType": "https://openvex.dev/ns/v0.2.0"}, nil)
	f.vex = layerDigest(t, attImg)
	push(t, repo+":"+tagBase+".att", attImg)

	// Referrers: a sigstore bundle of the index, a Notation signature of
	// the amd64 image. go-containerregistry's pusher keeps the fallback tag
	// where the registry has no referrers API, as cosign and notation do.
	idxDesc := v1.Descriptor{MediaType: types.OCIImageIndex, Digest: must(v1.NewHash(f.indexDig)), Size: must(f.index.Size())}
	bundle := artifact(t, analysis.MediaTypeSigstoreBundle, []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`), analysis.MediaTypeSigstoreBundle, nil, &idxDesc)
	f.bundle = digestString(t, bundle)
	push(t, repo+"@"+f.bundle, bundle)
	amd, _ := f.index.Image(must(v1.NewHash(f.platforms["linux/amd64"])))
	amdDesc := v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: must(v1.NewHash(f.platforms["linux/amd64"])), Size: must(amd.Size())}
	notation := artifact(t, analysis.MediaTypeNotation, []byte("jws"), "application/jose+json", nil, &amdDesc)
	f.notation = digestString(t, notation)
	push(t, repo+"@"+f.notation, notation)
	return f
}

// want is the supply chain every registry kind must report for the
// fixture, written from how it was pushed.
func (f *supplyFixture) want() map[string]*registry.Supply {
	shared := []analysis.Signature{
		{Format: "cosign", Digest: f.cosignSig, FoundBy: "tag"},
		{Format: "sigstore-bundle", Digest: f.bundle, FoundBy: "referrers"},
	}
	out := map[string]*registry.Supply{}
	for plat, d := range f.platforms {
		s := &registry.Supply{SBOMDigest: f.sbom[plat]}
		s.Signatures = slices.Clone(shared)
		if plat == "linux/amd64" {
			s.Signatures = append(s.Signatures, analysis.Signature{Format: "notation", Digest: f.notation, FoundBy: "referrers"})
		}
		s.Attestations = []analysis.Attestation{
			{PredicateType: analysis.PredicateSLSAv02, Kind: "provenance", Digest: f.provenance[plat], FoundBy: "index"},
			{PredicateType: analysis.PredicateSPDX, Kind: "sbom", Digest: f.sbom[plat], FoundBy: "index"},
			{PredicateType: "https://openvex.dev/ns/v0.2.0", Kind: "vex", Digest: f.vex, FoundBy: "tag"},
		}
		s.SBOM = &analysis.SBOMSummary{Format: "spdx", Packages: 3, Generator: "buildkit-syft-scanner-1.4.0"}
		s.Provenance = &analysis.Provenance{
			PredicateType: analysis.PredicateSLSAv02,
			Builder:       "https://github.com/acme/app/actions/runs/7",
			Source:        "https://github.com/acme/app",
			Revision:      strings.Repeat("c", 40),
			Materials: []analysis.Material{{
				URI:    "pkg:docker/alpine@3.20?platform=" + strings.ReplaceAll(plat, "/", "%2F"),
				Digest: "sha256:" + strings.Repeat("a", 64),
			}},
		}
		out[d] = s
	}
	return out
}

// supplyOrder compares lists whatever order the registries list them in.
var supplyOrder = cmp.Options{
	cmpopts.SortSlices(func(a, b analysis.Signature) bool { return a.Digest < b.Digest }),
	cmpopts.SortSlices(func(a, b analysis.Attestation) bool { return a.Digest < b.Digest }),
}

// wantRequests is the most a look may cost: 2 per platform image plus one
// per document read (N): the .sig and .att manifests, and per platform its
// attestation manifest and the two statements.
func (f *supplyFixture) wantRequests() int {
	n := 2 + len(f.platforms)*3
	return 2*len(f.platforms) + n
}

func TestSupplyChainRegistries(t *testing.T) {
	ctx := context.Background()
	type reg struct {
		host     string
		requests func() []string // and forget
	}
	faulty := func(t *testing.T, o faultreg.Options, rules ...faultreg.Rule) (reg, func()) {
		r := faultreg.StartWith(t, o)
		return reg{host: r.Host, requests: func() []string { return r.Requests() }}, func() { r.Add(rules...) }
	}
	tests := []struct {
		name  string
		start func(t *testing.T) (reg, func())
	}{
		{"in-process registry with the referrers API", func(t *testing.T) (reg, func()) {
			return faulty(t, faultreg.Options{Referrers: true})
		}},
		{"referrers answered by an error page (200)", func(t *testing.T) (reg, func()) {
			return faulty(t, faultreg.Options{}, faultreg.Rule{PathContains: "/referrers/", Fault: faultreg.ErrorPage})
		}},
		{"referrers answered by an error page (500)", func(t *testing.T) (reg, func()) {
			return faulty(t, faultreg.Options{}, faultreg.Rule{PathContains: "/referrers/", Fault: faultreg.ErrorPage, Status: http.StatusInternalServerError})
		}},
		{"distribution 2.8", func(t *testing.T) (reg, func()) {
			host, requests := startDistribution(t)
			return reg{host: host, requests: requests}, func() {}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, misbehave := tt.start(t)
			f := pushSupplyFixture(t, r.host)
			misbehave()
			_, in := newInspector(t, registry.Options{})
			ref, err := analysis.ParseReference(r.host + "/acme/app:1.0")
			if err != nil {
				t.Fatal(err)
			}
			rep, err := inspect(t, in, ref)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Platforms) != 2 {
				t.Fatalf("report has %d platforms, want 2 (attestation manifests left out)", len(rep.Platforms))
			}
			r.requests()
			got, err := in.SupplyChain(ctx, ref.Repository, f.indexDig)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(f.want(), got, supplyOrder); diff != "" {
				t.Errorf("supply chain (-want +got):\n%s", diff)
			}
			reqs := r.requests()
			if len(reqs) != f.wantRequests() {
				t.Errorf("%d requests, want %d (2 per platform image + N):\n%s", len(reqs), f.wantRequests(), strings.Join(reqs, "\n"))
			}

			// Kept by digest: a second look asks only where things are.
			if _, err := in.SupplyChain(ctx, ref.Repository, f.indexDig); err != nil {
				t.Fatal(err)
			}
			again := r.requests()
			for _, q := range again {
				if strings.Contains(q, "/blobs/") {
					t.Errorf("second look read a blob again: %s", q)
				}
			}
			if max := 2*len(f.platforms) + 2; len(again) > max {
				t.Errorf("second look: %d requests, want at most %d (finding, and the .sig and .att tags that may have moved):\n%s", len(again), max, strings.Join(again, "\n"))
			}

			// The SBOM's packages are served from what was kept.
			sb, err := in.SBOM(ctx, got[f.platforms["linux/arm64"]].SBOMDigest)
			if err != nil {
				t.Fatal(err)
			}
			wantPkgs := []analysis.Package{
				{Name: "musl", Version: "1.2.5-r0", Purl: "pkg:apk/alpine/musl@1.2.5-r0", Licenses: []string{"MIT"}},
				{Name: "busybox", Version: "1.36.1-r29", Purl: "pkg:apk/alpine/busybox@1.36.1-r29", Licenses: []string{"GPL-2.0-only"}},
				{Name: "app", Version: "1.0", Licenses: []string{}},
			}
			if diff := cmp.Diff(wantPkgs, sb.Packages); diff != "" {
				t.Errorf("SBOM packages (-want +got):\n%s", diff)
			}
			if len(r.requests()) != 0 {
				t.Error("serving the SBOM asked the registry")
			}
		})
	}
}

// startDistribution starts the distribution registry (2.8, without the
// referrers API) behind a proxy that counts requests; requests returns
// those that arrived since it was last called.
func startDistribution(t *testing.T) (host string, requests func() []string) {
	t.Helper()
	d, err := distreg.Start(context.Background(), distreg.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	var seen []string
	addr, counts, stop, err := distreg.MeteredProxy(d.Addr, 0, func(r *http.Request) string {
		return r.Method + " " + r.URL.Path
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return addr, func() []string {
		var got []string
		for k, n := range counts() {
			for range n {
				got = append(got, k)
			}
		}
		slices.Sort(got)
		// Return only what arrived since the last call.
		out := slices.Clone(got)
		for _, s := range seen {
			if i := slices.Index(out, s); i >= 0 {
				out = slices.Delete(out, i, i+1)
			}
		}
		seen = got
		return out
	}
}

// TestSupplyChainSingleManifest: an image without an index, signed by
// cosign, costs the tag list, one referrers request and the signature.
func TestSupplyChainSingleManifest(t *testing.T) {
	ctx := context.Background()
	tr := newTestRegistry(t)
	img := imageSpec{layers: 1}.build(t)
	d := digestString(t, img)
	push(t, tr.Host+"/acme/one:1", img)
	sigImg := artifact(t, types.OCIConfigJSON, []byte(`{}`), analysis.MediaTypeCosignSimple, map[string]string{analysis.AnnotationCosignSignature: "MEUC"}, nil)
	push(t, tr.Host+"/acme/one:"+registry.FallbackTag(d)+".sig", sigImg)
	_, in := newInspector(t, registry.Options{})
	ref := tr.ref(t, "acme/one:1")
	if _, err := inspect(t, in, ref); err != nil {
		t.Fatal(err)
	}
	tr.Requests()
	got, err := in.SupplyChain(ctx, ref.Repository, d)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]*registry.Supply{d: {SupplyChain: analysis.SupplyChain{
		Signatures:   []analysis.Signature{{Format: "cosign", Digest: layerDigest(t, sigImg), FoundBy: "tag"}},
		Attestations: []analysis.Attestation{},
	}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("supply chain (-want +got):\n%s", diff)
	}
	if reqs := tr.Requests(); len(reqs) != 3 {
		t.Errorf("requests = %q, want the tag list, the referrers API and the .sig manifest", reqs)
	}
}

// TestSupplyChainVerifiesCosignSignatures: under a rule with the signer's
// key, the good signature verifies (true, the key named as signer), the
// same signature with one byte changed does not (false, with a reason), and
// a repository no rule covers keeps null. Nothing is dialled but the
// registry, asserted at the dialer.
func TestSupplyChainVerifiesCosignSignatures(t *testing.T) {
	ctx := context.Background()
	tr := newTestRegistry(t)
	dir := t.TempDir()
	key := supplyfix.CosignKey(t, dir, "cosign.pub")
	rulesFile := filepath.Join(dir, "trust.yaml")
	if err := os.WriteFile(rulesFile, []byte("rules:\n  - repositories: [\""+tr.Host+"/acme/*\"]\n    cosign:\n      keys: [cosign.pub]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rules, err := trust.Load(rulesFile)
	if err != nil {
		t.Fatal(err)
	}

	signed := func(repo string) (digest string, good, bad string) {
		img := imageSpec{layers: 1}.build(t)
		digest = digestString(t, img)
		push(t, tr.Host+"/"+repo+":1", img)
		payload := []byte(`{"critical":{"identity":{"docker-reference":"` + tr.Host + "/" + repo + `"},"image":{"docker-manifest-digest":"` + digest + `"},"type":"cosign container image signature"},"optional":null}`)
		sum := sha256.Sum256(payload)
		sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		tampered := slices.Clone(sig)
		tampered[len(tampered)/2] ^= 0x01
		// Two signatures in one .sig manifest, as two `cosign sign` runs
		// leave them; the second payload differs by a space so the layers differ.
		sigImg := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
		sigImg, err = mutate.Append(sigImg,
			mutate.Addendum{Layer: static.NewLayer(payload, analysis.MediaTypeCosignSimple), Annotations: map[string]string{analysis.AnnotationCosignSignature: base64.StdEncoding.EncodeToString(sig)}},
			mutate.Addendum{Layer: static.NewLayer(append(slices.Clone(payload), ' '), analysis.MediaTypeCosignSimple), Annotations: map[string]string{analysis.AnnotationCosignSignature: base64.StdEncoding.EncodeToString(tampered)}})
		if err != nil {
			t.Fatal(err)
		}
		push(t, tr.Host+"/"+repo+":"+registry.FallbackTag(digest)+".sig", sigImg)
		ls, _ := sigImg.Layers()
		return digest, digestString(t, ls[0]), digestString(t, ls[1])
	}
	covered, goodSig, badSig := signed("acme/app")
	outside, outGood, outBad := signed("other/app")

	transport, checkDials := onlyDials(t, tr.Host)
	_, in := newInspector(t, registry.Options{Transport: transport})
	judged := registry.NewInspector(in.client, in.content).WithVerifier(rules)
	yes, no := true, false
	for _, tc := range []struct {
		repo, digest string
		want         []analysis.Signature
	}{
		{"acme/app", covered, []analysis.Signature{
			{Format: "cosign", Digest: goodSig, FoundBy: "tag", Verified: &yes, Signer: "cosign.pub (sha256:"},
			{Format: "cosign", Digest: badSig, FoundBy: "tag", Verified: &no, Reason: "no trusted key verifies the signature"},
		}},
		{"other/app", outside, []analysis.Signature{
			{Format: "cosign", Digest: outGood, FoundBy: "tag"},
			{Format: "cosign", Digest: outBad, FoundBy: "tag"},
		}},
	} {
		ref := tr.ref(t, tc.repo+":1")
		if _, err := inspect(t, in, ref); err != nil {
			t.Fatal(err)
		}
		tr.Requests()
		got, err := judged.SupplyChain(ctx, ref.Repository, tc.digest)
		if err != nil {
			t.Fatal(err)
		}
		sigs := got[tc.digest].Signatures
		// The signer names the key file and its fingerprint; compare the name.
		for i := range sigs {
			if strings.HasPrefix(sigs[i].Signer, "cosign.pub (sha256:") {
				sigs[i].Signer = "cosign.pub (sha256:"
			}
		}
		if diff := cmp.Diff(tc.want, sigs, supplyOrder); diff != "" {
			t.Errorf("%s signatures (-want +got):\n%s", tc.repo, diff)
		}
		// The tag list, the referrers API, the .sig manifest, and under a
		// rule the two signed payloads.
		want := 3
		if tc.repo == "acme/app" {
			want = 5
		}
		if reqs := tr.Requests(); len(reqs) != want {
			t.Errorf("%s: %d requests, want %d: %q", tc.repo, len(reqs), want, reqs)
		}
	}
	checkDials()
}

// TestSupplyChainSinglePlatformIndex: BuildKit makes an index even for one
// platform, to hold its attestation manifest. Where the registry has no
// referrers API, its first 404 spares the platform image's request: the tag
// list and one referrers request, then the attestation manifest and its two
// statements (2 + N). With the API, the index's and the platform image's
// referrers are both asked for (3 + N).
func TestSupplyChainSinglePlatformIndex(t *testing.T) {
	for _, tc := range []struct {
		referrers bool
		want      int
	}{{false, 2 + 3}, {true, 3 + 3}} {
		t.Run(fmt.Sprintf("referrers API %v", tc.referrers), func(t *testing.T) {
			ctx := context.Background()
			r := faultreg.StartWith(t, faultreg.Options{Referrers: tc.referrers})
			pushed := supplyfix.Push(t, r.Host+"/acme/one:1", supplyfix.Options{Platforms: []supplyfix.Platform{{OS: "linux", Architecture: "amd64"}}, SBOMPackages: 2})
			_, in := newInspector(t, registry.Options{})
			ref, err := analysis.ParseReference(r.Host + "/acme/one:1")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := inspect(t, in, ref); err != nil {
				t.Fatal(err)
			}
			r.Requests()
			got, err := in.SupplyChain(ctx, ref.Repository, pushed.Index)
			if err != nil {
				t.Fatal(err)
			}
			if sc := got[pushed.Platforms["linux/amd64"]]; sc == nil || sc.SBOM == nil || sc.SBOM.Packages != 2 || sc.Provenance == nil {
				t.Errorf("supply chain %+v", sc)
			}
			if reqs := r.Requests(); len(reqs) != tc.want {
				t.Errorf("%d requests, want %d:\n%s", len(reqs), tc.want, strings.Join(reqs, "\n"))
			}
		})
	}
}
