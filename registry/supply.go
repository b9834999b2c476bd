package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imagebadger/imagebadger/analysis"
)

// Blob fetches a blob of the declared size, at most max bytes, verified
// against its digest as it is read: an attestation or a signature.
func (c *Client) Blob(ctx context.Context, repo analysis.Repository, digest string, size, max int64) ([]byte, error) {
	return c.blob(ctx, repo, "blob", digest, size, max)
}

// blob reads a blob; kind names it in messages ("config", "blob").
func (c *Client) blob(ctx context.Context, repo analysis.Repository, kind, digest string, size, max int64) ([]byte, error) {
	what := kind + " " + repo.Name + "@" + analysis.ShortDigest(digest)
	if size < 0 || size > max {
		return nil, analysis.Errorf(analysis.ErrUpstream, nil, "%s declares %d bytes, more than the %d MiB limit", what, size, max>>20)
	}
	h, err := v1.NewHash(digest)
	if err != nil {
		return nil, analysis.Errorf(analysis.ErrUpstream, err, "%s has an invalid digest", what)
	}
	repoName, err := c.name(repo.WithDigest(h.String()))
	if err != nil {
		return nil, analysis.Errorf(analysis.ErrInvalidReference, err, "%s is not a valid reference", repo)
	}
	tctx := c.tagged(ctx, repo.Registry, repoName)
	info, _ := requestOf(tctx)
	info.maxBody = max
	ctx, cancel := context.WithTimeout(withRequest(tctx, info), c.timeout)
	defer cancel()
	layer, err := c.puller.Layer(ctx, repoName.(name.Digest))
	if err != nil {
		return nil, c.classify(ctx, err, repoName, repo.Registry, what)
	}
	rc, err := layer.Compressed()
	if err != nil {
		return nil, c.classify(ctx, err, repoName, repo.Registry, what)
	}
	defer rc.Close()
	// Reading to EOF makes go-containerregistry verify the digest.
	body, err := io.ReadAll(io.LimitReader(rc, size+1))
	if err != nil {
		return nil, c.classify(ctx, err, repoName, repo.Registry, what)
	}
	if int64(len(body)) != size {
		return nil, analysis.Errorf(analysis.ErrUpstream, nil, "%s is %d bytes but its manifest declares %d", what, len(body), size)
	}
	return body, nil
}

// Referrers lists what refers to the manifest digest: the OCI referrers
// API's answer or, where a registry has none (404, or an answer that is
// not an index), its fallback tag sha256-{hex}. fallbackListed tells
// whether the repository's tag list holds that tag: when it does, the tag
// is read at once (one request); when it does not, only the API is asked
// (one request), and a missing API means no referrers. missing reports
// that the registry has no referrers API (404, an error page, or an answer
// that is not an index), so a caller need not ask it again for another
// digest of the same repository.
func (c *Client) Referrers(ctx context.Context, repo analysis.Repository, digest string, fallbackListed bool) (refs []v1.Descriptor, missing bool, err error) {
	what := "referrers of " + repo.Name + "@" + analysis.ShortDigest(digest)
	tag := FallbackTag(digest)
	if fallbackListed {
		d, body, err := c.Fetch(ctx, analysis.Reference{Repository: repo, Tag: tag})
		if err != nil {
			return nil, false, err
		}
		if !analysis.IsIndex(d.MediaType) {
			// Some registries resolve the fallback tag to the subject itself.
			return nil, false, nil
		}
		refs, err := referrerList(body, what)
		return refs, false, err
	}
	n, err := c.name(repo.WithDigest(digest))
	if err != nil {
		return nil, false, analysis.Errorf(analysis.ErrInvalidReference, err, "%s is not a valid reference", repo.WithDigest(digest))
	}
	fellBack := false
	tctx := c.tagged(ctx, repo.Registry, n)
	info, _ := requestOf(tctx)
	info.absent, info.fellBack = tag, &fellBack
	ctx, cancel := context.WithTimeout(withRequest(tctx, info), c.timeout)
	defer cancel()
	idx, err := remote.Referrers(n.(name.Digest), remote.Reuse(c.puller), remote.WithContext(ctx))
	if err != nil {
		cerr := c.classify(ctx, err, n, repo.Registry, what)
		if errors.Is(cerr, analysis.ErrUpstream) && !errors.Is(cerr, analysis.ErrUnreachable) {
			// An error page where the API should be: as good as no API.
			return nil, true, nil
		}
		return nil, false, cerr
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, false, analysis.Errorf(analysis.ErrUpstream, err, "%s is not a valid index", what)
	}
	return capped(m.Manifests), fellBack, nil
}

// FallbackTag is the tag under which the referrers of digest are kept on
// registries without the referrers API; cosign's tags add .sig, .att and
// .sbom to it.
func FallbackTag(digest string) string { return strings.Replace(digest, ":", "-", 1) }

func referrerList(body []byte, what string) ([]v1.Descriptor, error) {
	var m v1.IndexManifest
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, analysis.Errorf(analysis.ErrUpstream, err, "%s is not a valid index", what)
	}
	return capped(m.Manifests), nil
}

func capped(ds []v1.Descriptor) []v1.Descriptor {
	if len(ds) > analysis.MaxSupplyItems {
		ds = ds[:analysis.MaxSupplyItems]
	}
	return ds
}

// Supply is what was found of one platform image's supply chain: the
// report's part, and where its SBOM is kept (a blob in Content) so its
// packages can be served without asking the registry again.
type Supply struct {
	analysis.SupplyChain
	// SBOMDigest is the Content blob holding the SBOM, bare or as an
	// in-toto statement; empty when there is none.
	SBOMDigest string
}

// SupplyChain finds and reads the signatures and attestations of the image
// digest in repo (whose manifest or index Content already holds, as Report
// leaves it), keyed by platform image digest. An index's own signatures
// and attestations belong to each of its platform images.
//
// Requests: the repository's tag list once (it shows the referrers
// fallback tags and cosign's tags), then one referrers request per digest
// (the index and each platform image), then one per document read (N):
// manifests of attestations and signatures and the blobs of the
// provenances and SBOMs. Documents are kept in Content by digest, so a
// later look costs only the finding requests. What cannot be read is left
// out; only the context's end stops the whole.
func (in *Inspector) SupplyChain(ctx context.Context, repo analysis.Repository, digest string) (map[string]*Supply, error) {
	mt, top, err := in.manifest(ctx, repo, digest)
	if err != nil {
		return nil, err
	}
	tags, err := in.client.ListTags(ctx, repo)
	if err != nil {
		return nil, err
	}
	f := &finder{in: in, repo: repo, tags: map[string]bool{}}
	for _, t := range tags {
		if strings.HasPrefix(t, "sha256-") {
			f.tags[t] = true
		}
	}
	out := map[string]*Supply{}
	if !analysis.IsIndex(mt) {
		s := &Supply{}
		f.subject(ctx, s, digest)
		out[digest] = s.done()
		return out, ctx.Err()
	}
	_, entries, err := analysis.ParseIndex(top, "image "+repo.WithDigest(digest).String())
	if err != nil {
		return nil, err
	}
	// The attestation manifests the index names need no finding: they are
	// read beside the referrers requests, which go one after another (the
	// first tells whether the registry has the API at all).
	inIndex := analysis.AttestationManifests(top)
	fromIndex := make(map[string]*Supply, len(entries))
	var wg sync.WaitGroup
	for _, e := range entries {
		d := e.Digest.String()
		s := &Supply{}
		fromIndex[d] = s
		if ams := inIndex[d]; len(ams) > 0 {
			wg.Go(func() {
				for _, am := range ams {
					f.attestationManifest(ctx, s, am, analysis.FoundByIndex)
				}
			})
		}
	}
	shared := &Supply{}
	f.subject(ctx, shared, digest)
	found := make(map[string]*Supply, len(entries))
	for _, e := range entries {
		d := e.Digest.String()
		found[d] = &Supply{}
		f.subject(ctx, found[d], d)
	}
	wg.Wait()
	for _, e := range entries {
		d := e.Digest.String()
		// The index's attestations first, as BuildKit made them for this
		// image; then what refers to the image, then to the index.
		s := fromIndex[d]
		s.merge(found[d])
		s.merge(shared)
		out[d] = s.done()
	}
	return out, ctx.Err()
}

// finder gathers one image's supply chain.
type finder struct {
	in   *Inspector
	repo analysis.Repository
	// tags are the repository's tags of the sha256-{hex} forms.
	tags map[string]bool
	// noAPI is set once the registry has shown it has no referrers API.
	noAPI bool
}

// subject finds what refers to digest: its referrers and cosign's tags.
func (f *finder) subject(ctx context.Context, s *Supply, digest string) {
	base := FallbackTag(digest)
	// Where the registry has shown it has no referrers API, only a listed
	// fallback tag can hold referrers.
	if !f.noAPI || f.tags[base] {
		refs, missing, err := f.in.client.Referrers(ctx, f.repo, digest, f.tags[base])
		f.noAPI = f.noAPI || missing
		if err == nil {
			for _, d := range refs {
				f.referrer(ctx, s, d, digest)
			}
		}
	}
	if f.tags[base+".sig"] {
		f.cosignSignatures(ctx, s, base+".sig", digest)
	}
	if f.tags[base+".att"] {
		if _, body, err := f.byTag(ctx, base+".att"); err == nil {
			if m, err := analysis.ParseManifest(body, "attestations "+base); err == nil {
				f.layers(ctx, s, m, analysis.FoundByTag)
			}
		}
	}
	if f.tags[base+".sbom"] {
		if _, body, err := f.byTag(ctx, base+".sbom"); err == nil {
			if m, err := analysis.ParseManifest(body, "SBOM "+base); err == nil {
				for _, l := range m.Layers {
					pt := sbomPredicate(string(l.MediaType))
					if pt == "" {
						continue
					}
					s.attest(analysis.Attestation{PredicateType: pt, Kind: analysis.KindSBOM, Digest: l.Digest.String(), FoundBy: analysis.FoundByTag})
					f.readSBOM(ctx, s, l)
				}
			}
		}
	}
}

// byTag reads the manifest a tag points at now and keeps it by digest.
func (f *finder) byTag(ctx context.Context, tag string) (analysis.Descriptor, []byte, error) {
	d, body, err := f.in.client.Fetch(ctx, analysis.Reference{Repository: f.repo, Tag: tag})
	if err != nil {
		return d, nil, err
	}
	if err := f.in.content.PutManifest(ctx, d.Digest, d.MediaType, body); err != nil {
		return d, nil, err
	}
	return d, body, nil
}

// cosignSignatures lists the signatures of a cosign .sig manifest of
// subject: one layer each, the signature in an annotation over the layer,
// judged (its layer read) when a trust rule covers the repository with
// what judges that kind: keys for a key signature, a keyless trusted root
// for a keyless one (whose layer carries its certificate).
func (f *finder) cosignSignatures(ctx context.Context, s *Supply, tag, subject string) {
	_, body, err := f.byTag(ctx, tag)
	if err != nil {
		return
	}
	m, err := analysis.ParseManifest(body, "signatures "+tag)
	if err != nil {
		return
	}
	v := f.in.verifier
	keys := v != nil && v.Applies(f.repo)
	keyless := v != nil && v.AppliesKeyless(f.repo)
	for _, l := range m.Layers {
		b64, ok := l.Annotations[analysis.AnnotationCosignSignature]
		if !ok {
			continue
		}
		sig := analysis.Signature{Format: analysis.SignatureCosign, Digest: l.Digest.String(), FoundBy: analysis.FoundByTag}
		_, isKeyless := l.Annotations[analysis.AnnotationCosignCertificate]
		if (isKeyless && keyless) || (!isKeyless && keys) {
			verified, reason := false, ""
			switch payload, err := f.blob(ctx, l); {
			case err != nil:
				reason = "the signed payload could not be read"
			case isKeyless:
				verified, sig.Signer, reason = v.VerifyCosignKeyless(f.repo, payload, b64, l.Annotations, subject)
			default:
				verified, sig.Signer, reason = v.VerifyCosign(f.repo, payload, b64, subject)
			}
			sig.Verified, sig.Reason = &verified, reason
		}
		s.sign(sig)
	}
}

// referrer handles one entry of a referrers list of subject by its
// artifact type.
func (f *finder) referrer(ctx context.Context, s *Supply, d v1.Descriptor, subject string) {
	at := d.ArtifactType
	if format, ok := analysis.SignatureFormat(at); ok {
		sig := analysis.Signature{Format: format, Digest: d.Digest.String(), FoundBy: analysis.FoundByReferrers}
		switch {
		case f.in.verifier == nil:
		case format == analysis.SignatureNotation && f.in.verifier.AppliesNotation(f.repo):
			f.judgeNotation(ctx, &sig, d, subject)
		case format == analysis.SignatureBundle && f.in.verifier.AppliesBundle(f.repo):
			f.judgeBundle(ctx, &sig, d, subject)
		}
		s.sign(sig)
		// A bundle that holds an attestation says of what kind.
		if pt := d.Annotations["dev.sigstore.bundle.predicateType"]; pt != "" {
			s.attest(analysis.Attestation{PredicateType: pt, Kind: analysis.AttestationKind(pt), Digest: d.Digest.String(), FoundBy: analysis.FoundByReferrers})
		}
		return
	}
	if at == analysis.MediaTypeInToto || at == analysis.MediaTypeDSSE || sbomPredicate(at) != "" {
		f.attestationManifest(ctx, s, d, analysis.FoundByReferrers)
	}
}

// judgeNotation reads a Notation signature (its manifest, then the
// envelope its layer holds: two requests) and judges it.
func (f *finder) judgeNotation(ctx context.Context, sig *analysis.Signature, d v1.Descriptor, subject string) {
	verified, reason := false, "the signature could not be read"
	defer func() { sig.Verified, sig.Reason = &verified, reason }()
	mt, body, err := f.in.manifest(ctx, f.repo, d.Digest.String())
	if err != nil || !analysis.IsImageManifest(mt) {
		return
	}
	m, err := analysis.ParseManifest(body, "Notation signature "+analysis.ShortDigest(d.Digest.String()))
	if err != nil || len(m.Layers) == 0 {
		return
	}
	l := m.Layers[0]
	envelope, err := f.blob(ctx, l)
	if err != nil {
		return
	}
	verified, sig.Signer, reason = f.in.verifier.VerifyNotation(f.repo, string(l.MediaType), envelope, subject)
}

// judgeBundle reads a sigstore bundle (its manifest, then the bundle its
// layer holds, at most MaxAttestationBytes, since a bundle of an
// attestation holds the whole statement: two requests) and judges it. A
// bundle the rule has nothing to judge by stays unjudged.
func (f *finder) judgeBundle(ctx context.Context, sig *analysis.Signature, d v1.Descriptor, subject string) {
	fail := func(reason string) {
		no := false
		sig.Verified, sig.Reason = &no, reason
	}
	mt, body, err := f.in.manifest(ctx, f.repo, d.Digest.String())
	if err != nil || !analysis.IsImageManifest(mt) {
		fail("the bundle could not be read")
		return
	}
	m, err := analysis.ParseManifest(body, "sigstore bundle "+analysis.ShortDigest(d.Digest.String()))
	if err != nil || len(m.Layers) == 0 {
		fail("the bundle could not be read")
		return
	}
	data, err := f.blob(ctx, m.Layers[0])
	if err != nil {
		fail("the bundle could not be read")
		return
	}
	judged, verified, signer, reason := f.in.verifier.VerifyBundle(f.repo, data, subject)
	if judged {
		sig.Verified, sig.Signer, sig.Reason = &verified, signer, reason
	}
}

// attestationManifest reads a manifest whose layers are attestations.
func (f *finder) attestationManifest(ctx context.Context, s *Supply, d v1.Descriptor, foundBy string) {
	mt, body, err := f.in.manifest(ctx, f.repo, d.Digest.String())
	if err != nil || !analysis.IsImageManifest(mt) {
		return
	}
	m, err := analysis.ParseManifest(body, "attestation "+analysis.ShortDigest(d.Digest.String()))
	if err != nil {
		return
	}
	f.layers(ctx, s, m, foundBy)
}

// layers lists the attestations a manifest's layers hold, reading only
// the first provenance and the first SBOM: the kind of the others is in
// their annotations.
func (f *finder) layers(ctx context.Context, s *Supply, m *v1.Manifest, foundBy string) {
	f.prefetch(ctx, s, m)
	for _, l := range m.Layers {
		mt := string(l.MediaType)
		if pt := sbomPredicate(mt); pt != "" {
			s.attest(analysis.Attestation{PredicateType: pt, Kind: analysis.KindSBOM, Digest: l.Digest.String(), FoundBy: foundBy})
			f.readSBOM(ctx, s, l)
			continue
		}
		if mt != analysis.MediaTypeInToto && mt != analysis.MediaTypeDSSE {
			continue
		}
		pt := annotatedPredicate(l)
		kind := analysis.AttestationKind(pt)
		if pt == "" || (kind == analysis.KindProvenance && s.Provenance == nil) || (kind == analysis.KindSBOM && s.SBOM == nil) {
			body, err := f.blob(ctx, l)
			if err != nil {
				continue
			}
			st, err := analysis.ParseStatement(body, "attestation "+analysis.ShortDigest(l.Digest.String()))
			if err != nil {
				continue
			}
			pt, kind = st.PredicateType, analysis.AttestationKind(st.PredicateType)
			switch {
			case kind == analysis.KindProvenance && s.Provenance == nil:
				if p, err := analysis.ParseProvenance(pt, st.Predicate, "provenance"); err == nil {
					s.Provenance = p
				}
			case kind == analysis.KindSBOM && s.SBOM == nil:
				if sb, err := analysis.ParseSBOM(st.Predicate, "SBOM"); err == nil {
					s.SBOM, s.SBOMDigest = sb.Summary(), l.Digest.String()
				}
			}
		}
		s.attest(analysis.Attestation{PredicateType: pt, Kind: kind, Digest: l.Digest.String(), FoundBy: foundBy})
	}
}

// prefetch reads at once, side by side, the blobs of m that layers will
// read one after another: the first provenance and the first SBOM by their
// annotations, and any layer that does not say what it holds. layers then
// finds them kept; the requests are the same, their round trips overlap.
func (f *finder) prefetch(ctx context.Context, s *Supply, m *v1.Manifest) {
	prov, sbom := s.Provenance != nil, s.SBOM != nil
	var wg sync.WaitGroup
	for _, l := range m.Layers {
		mt := string(l.MediaType)
		want := false
		switch pt := annotatedPredicate(l); {
		case sbomPredicate(mt) != "":
			want, sbom = !sbom, true
		case mt != analysis.MediaTypeInToto && mt != analysis.MediaTypeDSSE:
		case pt == "":
			want = true
		case analysis.AttestationKind(pt) == analysis.KindProvenance:
			want, prov = !prov, true
		case analysis.AttestationKind(pt) == analysis.KindSBOM:
			want, sbom = !sbom, true
		}
		if want {
			wg.Go(func() { _, _ = f.blob(ctx, l) })
		}
	}
	wg.Wait()
}

// annotatedPredicate is the predicate type an attestation layer's
// annotations name, "" when they do not.
func annotatedPredicate(l v1.Descriptor) string {
	if pt := l.Annotations[analysis.AnnotationPredicateType]; pt != "" {
		return pt
	}
	return l.Annotations["predicateType"] // cosign's .att layers
}

// readSBOM reads a bare SBOM document when none is read yet.
func (f *finder) readSBOM(ctx context.Context, s *Supply, l v1.Descriptor) {
	if s.SBOM != nil {
		return
	}
	body, err := f.blob(ctx, l)
	if err != nil {
		return
	}
	if sb, err := analysis.ParseSBOM(body, "SBOM"); err == nil {
		s.SBOM, s.SBOMDigest = sb.Summary(), l.Digest.String()
	}
}

// blob reads an attestation blob from Content, else from the registry,
// and keeps it.
func (f *finder) blob(ctx context.Context, l v1.Descriptor) ([]byte, error) {
	d := l.Digest.String()
	body, err := f.in.content.Config(ctx, d)
	if err == nil {
		return body, nil
	}
	if !errors.Is(err, analysis.ErrNotFound) {
		return nil, err
	}
	body, err = f.in.client.Blob(ctx, f.repo, d, l.Size, analysis.MaxAttestationBytes)
	if err != nil {
		return nil, err
	}
	if err := f.in.content.PutConfig(ctx, d, body); err != nil {
		return nil, err
	}
	return body, nil
}

// SBOM returns the packages of the SBOM a Supply names, from Content.
func (in *Inspector) SBOM(ctx context.Context, blobDigest string) (*analysis.SBOM, error) {
	body, err := in.content.Config(ctx, blobDigest)
	if err != nil {
		return nil, err
	}
	what := "SBOM " + analysis.ShortDigest(blobDigest)
	if bytes.Contains(body, []byte(`"predicateType"`)) {
		st, err := analysis.ParseStatement(body, what)
		if err == nil {
			return analysis.ParseSBOM(st.Predicate, what)
		}
	}
	return analysis.ParseSBOM(body, what)
}

// sbomPredicate is the predicate type of an SBOM stored bare under a media
// type (cosign's .sbom tags, ORAS attachments), or "".
func sbomPredicate(mediaType string) string {
	switch mediaType {
	case analysis.MediaTypeSPDXJSON, "application/spdx+json":
		return analysis.PredicateSPDX
	case analysis.MediaTypeCycloneDXJSON:
		return analysis.PredicateCycloneDX
	}
	return ""
}

func (s *Supply) sign(sig analysis.Signature) {
	if len(s.Signatures) < analysis.MaxSupplyItems && !slices.ContainsFunc(s.Signatures, func(o analysis.Signature) bool { return o.Digest == sig.Digest }) {
		s.Signatures = append(s.Signatures, sig)
	}
}

func (s *Supply) attest(a analysis.Attestation) {
	if len(s.Attestations) < analysis.MaxSupplyItems && !slices.ContainsFunc(s.Attestations, func(o analysis.Attestation) bool { return o.Digest == a.Digest }) {
		s.Attestations = append(s.Attestations, a)
	}
}

// merge adds what the index has to a platform image's own.
func (s *Supply) merge(o *Supply) {
	for _, sig := range o.Signatures {
		s.sign(sig)
	}
	for _, a := range o.Attestations {
		s.attest(a)
	}
	if s.Provenance == nil {
		s.Provenance = o.Provenance
	}
	if s.SBOM == nil {
		s.SBOM, s.SBOMDigest = o.SBOM, o.SBOMDigest
	}
}

// done makes the lists empty rather than nil, as the JSON says [].
func (s *Supply) done() *Supply {
	if s.Signatures == nil {
		s.Signatures = []analysis.Signature{}
	}
	if s.Attestations == nil {
		s.Attestations = []analysis.Attestation{}
	}
	return s
}

// absentManifest is the answer to a manifest request for a tag known to
// be missing, as a registry would give it.
func absentManifest(req *http.Request) *http.Response {
	body := `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", http.StatusNotFound, http.StatusText(http.StatusNotFound)),
		StatusCode:    http.StatusNotFound,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}
