package trust

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/imagebadger/imagebadger/analysis"
)

// Sigstore bundles and cosign keyless signatures are judged by sigstore-go's
// verify package: the certificate chain to the trusted root's Fulcio
// authorities, the SCTs of its CT logs, the inclusion in its Rekor logs and
// the RFC 3161 timestamps of its timestamp authorities, all offline. Given a
// trusted root read from a file, sigstore-go fetches nothing: its verify,
// bundle and tlog packages hold no HTTP client, and only the root package's
// Fetch…, Get… and Live… functions, never called here, reach its TUF client.

// keylessVerifier is a rule's keyless part made ready: sigstore-go's verifier
// over the trusted root, and the rule's identities as sigstore-go's.
type keylessVerifier struct {
	verifier   *verify.Verifier
	identities []verify.CertificateIdentity
}

// newKeyless loads the trusted root at file and makes the verifier the root
// calls for: a root with Rekor logs means signatures must be in one (as
// cosign verify requires by default), a root with CT logs means Fulcio
// certificates must carry an SCT from one, and either a log's integrated
// time or a timestamp authority's signed time must show the short-lived
// certificate was valid when it signed. A root with neither logs nor
// timestamp authorities could verify no keyless signature, so it is refused.
// The rules file names the root as shown; file is where it is.
func newKeyless(file, shown string, ids []Identity) (*keylessVerifier, error) {
	tr, err := root.NewTrustedRootFromPath(file)
	if err != nil {
		return nil, fmt.Errorf("trusted root %s: %w", shown, err)
	}
	if len(tr.FulcioCertificateAuthorities()) == 0 {
		return nil, fmt.Errorf("trusted root %s names no certificate authority", shown)
	}
	if len(tr.RekorLogs()) == 0 && len(tr.TimestampingAuthorities()) == 0 {
		return nil, fmt.Errorf("trusted root %s names neither a transparency log nor a timestamp authority, so no signing time could be trusted", shown)
	}
	opts := []verify.VerifierOption{verify.WithObserverTimestamps(1)}
	if len(tr.RekorLogs()) > 0 {
		opts = append(opts, verify.WithTransparencyLog(1))
	}
	if len(tr.CTLogs()) > 0 {
		opts = append(opts, verify.WithSignedCertificateTimestamps(1))
	}
	v, err := verify.NewVerifier(tr, opts...)
	if err != nil {
		return nil, err
	}
	k := &keylessVerifier{verifier: v}
	for _, id := range ids {
		if id.Subject == "" || id.Issuer == "" {
			return nil, errors.New("a keyless identity needs a subject and an issuer")
		}
		re, err := globRegexp(id.Subject)
		if err != nil {
			return nil, fmt.Errorf("keyless identity subject %q: %w", id.Subject, err)
		}
		ci, err := verify.NewShortCertificateIdentity(id.Issuer, "", "", re)
		if err != nil {
			return nil, fmt.Errorf("keyless identity subject %q: %w", id.Subject, err)
		}
		k.identities = append(k.identities, ci)
	}
	return k, nil
}

// globRegexp translates a path.Match pattern into an anchored regular
// expression that matches the same strings, because sigstore-go matches a
// certificate's subject alternative name by regular expression and the
// rules file writes subjects as path.Match patterns (as it writes
// repositories). The identity check then stays sigstore-go's own. '*' and
// '?' do not cross '/', as in path.Match; a character class may match '/'
// (path.Match's classes do too).
func globRegexp(pattern string) (string, error) {
	if _, err := path.Match(pattern, ""); err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(`^`)
	lit := func(r rune) { b.WriteString(regexp.QuoteMeta(string(r))) }
	classRune := func(r rune) { fmt.Fprintf(&b, `\x{%x}`, r) }
	for i := 0; i < len(pattern); {
		r, n := utf8.DecodeRuneInString(pattern[i:])
		i += n
		switch r {
		case '*':
			b.WriteString(`[^/]*`)
		case '?':
			b.WriteString(`[^/]`)
		case '\\':
			r, n = utf8.DecodeRuneInString(pattern[i:])
			i += n
			lit(r)
		case '[':
			b.WriteString(`[`)
			if i < len(pattern) && pattern[i] == '^' {
				b.WriteString(`^`)
				i++
			}
			for i < len(pattern) && pattern[i] != ']' {
				lo, n := utf8.DecodeRuneInString(pattern[i:])
				i += n
				if lo == '\\' {
					lo, n = utf8.DecodeRuneInString(pattern[i:])
					i += n
				}
				classRune(lo)
				if i < len(pattern) && pattern[i] == '-' {
					i++
					hi, n := utf8.DecodeRuneInString(pattern[i:])
					i += n
					if hi == '\\' {
						hi, n = utf8.DecodeRuneInString(pattern[i:])
						i += n
					}
					b.WriteString(`-`)
					classRune(hi)
				}
			}
			i++ // the ']' path.Match has already checked is there
			b.WriteString(`]`)
		default:
			lit(r)
		}
	}
	b.WriteString(`$`)
	return b.String(), nil
}

// Bundle judges a sigstore bundle (its protobuf JSON) found for subject,
// the digest ("sha256:…") of the image it was found beside. A bundle with a
// certificate is judged under the rule's keyless root and identities; one
// signed by a key under its cosign keys. The bundle must sign subject: an
// in-toto statement naming it among its subjects (cosign's image
// signatures and attestations are such statements), or a message signature
// over it. Applies is false when the rule has nothing to judge that kind of
// bundle by.
func (r *Rule) Bundle(data []byte, subject string) Verdict {
	if r == nil || (r.keyless == nil && len(r.keys) == 0) {
		return Verdict{}
	}
	b := &bundle.Bundle{}
	if err := b.UnmarshalJSON(data); err != nil {
		return Verdict{Applies: true, Reason: "the bundle is not a valid sigstore bundle: " + err.Error()}
	}
	vc, err := b.VerificationContent()
	if err != nil {
		return Verdict{Applies: true, Reason: "the bundle is not a valid sigstore bundle: " + err.Error()}
	}
	if vc.Certificate() != nil {
		if r.keyless == nil {
			return Verdict{}
		}
		return r.keyless.judge(b, vc.Certificate(), subject, nil)
	}
	if len(r.keys) == 0 {
		return Verdict{}
	}
	return r.bundleByKey(b, subject)
}

// CosignKeyless judges a cosign keyless signature: sig (base64, the
// layer's signature annotation) over payload (the layer, a simple-signing
// payload that must name subject), with the certificate, chain, Rekor
// bundle and timestamp annotations cosign writes beside it. They are put
// together as the sigstore bundle (v0.1, whose log entries carry a signed
// promise rather than an inclusion proof, as cosign's annotations do) that
// says the same, and judged as one.
func (r *Rule) CosignKeyless(payload []byte, sig string, annotations map[string]string, subject string) Verdict {
	if r == nil || r.keyless == nil {
		return Verdict{}
	}
	var p simpleSigning
	if err := json.Unmarshal(payload, &p); err != nil || p.Critical.Type != "cosign container image signature" {
		return Verdict{Applies: true, Reason: "the signed payload is not a cosign image signature"}
	}
	b, leaf, err := cosignBundle(payload, sig, annotations)
	if err != nil {
		return Verdict{Applies: true, Reason: err.Error()}
	}
	named := p.Critical.Image.DockerManifestDigest
	v := r.keyless.judge(b, leaf, "", verify.WithArtifact(bytes.NewReader(payload)))
	if v.Verified && named != subject {
		// A good signature of another image, copied beside this one.
		return Verdict{Applies: true, Signer: v.Signer, Reason: fmt.Sprintf("the signature by %s is of %s, not of this image", v.Signer, analysis.ShortDigest(named))}
	}
	return v
}

// cosignBundle assembles the bundle a cosign keyless .sig layer amounts to.
func cosignBundle(payload []byte, sig string, ann map[string]string) (*bundle.Bundle, *x509.Certificate, error) {
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return nil, nil, errors.New("the signature is not base64")
	}
	certs, err := cryptoutils.UnmarshalCertificatesFromPEM([]byte(ann[analysis.AnnotationCosignCertificate]))
	if err != nil || len(certs) != 1 {
		return nil, nil, errors.New("the signature's certificate annotation is not one PEM certificate")
	}
	leaf := certs[0]
	chain := []*protocommon.X509Certificate{{RawBytes: leaf.Raw}}
	if c := ann[analysis.AnnotationCosignChain]; c != "" {
		more, err := cryptoutils.UnmarshalCertificatesFromPEM([]byte(c))
		if err != nil {
			return nil, nil, errors.New("the signature's chain annotation is not PEM certificates")
		}
		for _, m := range more {
			chain = append(chain, &protocommon.X509Certificate{RawBytes: m.Raw})
		}
	}
	sum := sha256.Sum256(payload)
	pb := &protobundle.Bundle{
		MediaType: "application/vnd.dev.sigstore.bundle+json;version=0.1",
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content:                   &protobundle.VerificationMaterial_X509CertificateChain{X509CertificateChain: &protocommon.X509CertificateChain{Certificates: chain}},
			TimestampVerificationData: &protobundle.TimestampVerificationData{},
		},
		Content: &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: sum[:]},
			Signature:     raw,
		}},
	}
	if rb := ann[analysis.AnnotationCosignBundle]; rb != "" {
		tle, err := rekorEntry([]byte(rb))
		if err != nil {
			return nil, nil, err
		}
		pb.VerificationMaterial.TlogEntries = []*protorekor.TransparencyLogEntry{tle}
	}
	if ts := ann[analysis.AnnotationCosignTimestamp]; ts != "" {
		var t struct {
			SignedRFC3161Timestamp []byte `json:"SignedRFC3161Timestamp"`
		}
		if err := json.Unmarshal([]byte(ts), &t); err != nil || len(t.SignedRFC3161Timestamp) == 0 {
			return nil, nil, errors.New("the signature's timestamp annotation is not a cosign RFC 3161 timestamp")
		}
		pb.VerificationMaterial.TimestampVerificationData.Rfc3161Timestamps = []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: t.SignedRFC3161Timestamp}}
	}
	b, err := bundle.NewBundle(pb)
	if err != nil {
		return nil, nil, fmt.Errorf("the signature's annotations do not make a sigstore bundle: %w", err)
	}
	return b, leaf, nil
}

// rekorEntry reads cosign's Rekor bundle annotation: the log's signed
// entry timestamp over the entry's body, integrated time, index and log.
func rekorEntry(data []byte) (*protorekor.TransparencyLogEntry, error) {
	bad := errors.New("the signature's Rekor bundle annotation is not one cosign writes")
	var rb struct {
		SignedEntryTimestamp []byte `json:"SignedEntryTimestamp"`
		Payload              struct {
			Body           []byte `json:"body"`
			IntegratedTime int64  `json:"integratedTime"`
			LogIndex       int64  `json:"logIndex"`
			LogID          string `json:"logID"`
		} `json:"Payload"`
	}
	if err := json.Unmarshal(data, &rb); err != nil || len(rb.Payload.Body) == 0 || len(rb.SignedEntryTimestamp) == 0 {
		return nil, bad
	}
	logID, err := hex.DecodeString(rb.Payload.LogID)
	if err != nil {
		return nil, bad
	}
	var kind struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := json.Unmarshal(rb.Payload.Body, &kind); err != nil || kind.Kind == "" {
		return nil, bad
	}
	return &protorekor.TransparencyLogEntry{
		LogIndex:          rb.Payload.LogIndex,
		LogId:             &protocommon.LogId{KeyId: logID},
		KindVersion:       &protorekor.KindVersion{Kind: kind.Kind, Version: kind.APIVersion},
		IntegratedTime:    rb.Payload.IntegratedTime,
		InclusionPromise:  &protorekor.InclusionPromise{SignedEntryTimestamp: rb.SignedEntryTimestamp},
		CanonicalizedBody: rb.Payload.Body,
	}, nil
}

// judge verifies a keyless bundle. artifact, when given, is what the
// signature is over (a cosign .sig payload); otherwise the bundle must sign
// subject, and a bundle that verifies but signs something else is false
// with a reason naming what it signs.
func (k *keylessVerifier) judge(b *bundle.Bundle, leaf *x509.Certificate, subject string, artifact verify.ArtifactPolicyOption) Verdict {
	// The certificate's identity, for messages before it is verified.
	shown := ""
	if s, err := certificate.SummarizeCertificate(leaf); err == nil {
		shown = s.SubjectAlternativeName + " (" + s.Issuer + ")"
	}
	policy := []verify.PolicyOption{}
	for _, id := range k.identities {
		policy = append(policy, verify.WithCertificateIdentity(id))
	}
	elsewhere := ""
	if artifact == nil {
		artifact, elsewhere = subjectPolicy(b, subject)
	}
	res, err := k.verifier.Verify(b, verify.NewPolicy(artifact, policy...))
	if err != nil {
		return Verdict{Applies: true, Reason: failure(err, shown)}
	}
	c := res.Signature.Certificate
	signer := c.SubjectAlternativeName + " (" + c.Issuer + ")"
	if elsewhere != "" {
		return Verdict{Applies: true, Signer: signer, Reason: fmt.Sprintf("the bundle signed by %s is of %s, not of this image", signer, elsewhere)}
	}
	return Verdict{Applies: true, Verified: true, Signer: signer}
}

// bundleByKey verifies a bundle signed by a key with each of the rule's
// keys in turn, as Cosign does for key signatures: the signature alone, by
// the key, with no log or timestamp asked for (a key does not expire).
func (r *Rule) bundleByKey(b *bundle.Bundle, subject string) Verdict {
	artifact, elsewhere := subjectPolicy(b, subject)
	reason := "no trusted key verifies the bundle"
	for _, k := range r.keys {
		res, err := k.bundles.Verify(b, verify.NewPolicy(artifact, verify.WithKey()))
		if err != nil || res == nil {
			continue
		}
		if elsewhere != "" {
			reason = fmt.Sprintf("the bundle signed by %s is of %s, not of this image", k.id, elsewhere)
			continue
		}
		return Verdict{Applies: true, Verified: true, Signer: k.id}
	}
	return Verdict{Applies: true, Reason: reason}
}

// subjectPolicy is the artifact policy under which b is verified for
// subject ("alg:hex"). When b signs subject, sigstore-go is asked to check
// that it does. When it signs something else, it is verified as what it
// signs, and elsewhere names that, so that a good bundle of another image
// is told apart from a bad one.
func subjectPolicy(b *bundle.Bundle, subject string) (artifact verify.ArtifactPolicyOption, elsewhere string) {
	alg, hexDigest, _ := strings.Cut(subject, ":")
	want, err := hex.DecodeString(hexDigest)
	if err != nil {
		want = nil
	}
	mine := verify.WithArtifactDigest(alg, want)
	sc, err := b.SignatureContent()
	if err != nil {
		return mine, ""
	}
	if env := sc.EnvelopeContent(); env != nil {
		st, err := env.Statement()
		if err != nil {
			return mine, ""
		}
		first := ""
		for _, s := range st.GetSubject() {
			if s.GetDigest()[alg] == hexDigest {
				return mine, ""
			}
			for a, d := range s.GetDigest() {
				if first == "" || a == alg {
					first = analysis.ShortDigest(a + ":" + d)
				}
			}
		}
		if first == "" {
			first = "nothing named"
		}
		return verify.WithoutArtifactUnsafe(), first
	}
	if m := sc.MessageSignatureContent(); m != nil {
		h, err := hashName(m.DigestAlgorithm())
		if err != nil || (h == alg && bytes.Equal(m.Digest(), want)) {
			return mine, ""
		}
		return verify.WithArtifactDigest(h, m.Digest()), analysis.ShortDigest(h + ":" + hex.EncodeToString(m.Digest()))
	}
	return mine, ""
}

// hashName is the digest prefix ("sha256") of a bundle's hash algorithm.
func hashName(alg string) (string, error) {
	switch alg {
	case protocommon.HashAlgorithm_SHA2_256.String():
		return "sha256", nil
	case protocommon.HashAlgorithm_SHA2_384.String():
		return "sha384", nil
	case protocommon.HashAlgorithm_SHA2_512.String():
		return "sha512", nil
	}
	return "", fmt.Errorf("unknown digest algorithm %s", alg)
}

// failure says why sigstore-go did not verify a keyless bundle, by the step
// of its verification that failed (the prefixes of its Verify's errors), so
// that a tampered signature, an untrusted certificate authority and a wrong
// identity read differently; the library's own words follow.
func failure(err error, identity string) string {
	msg := err.Error()
	var noID *verify.ErrNoMatchingCertificateIdentity
	switch {
	case errors.As(err, &noID) || strings.HasPrefix(msg, "failed to verify certificate identity"):
		return fmt.Sprintf("the certificate's identity %s is not one the rule trusts", identity)
	case strings.HasPrefix(msg, "failed to verify log inclusion"):
		return "the transparency log entry does not vouch for this signature: " + strings.TrimPrefix(msg, "failed to verify log inclusion: ")
	case strings.HasPrefix(msg, "failed to verify timestamps"):
		return "no trusted time shows the certificate was valid when it signed: " + strings.TrimPrefix(msg, "failed to verify timestamps: ")
	case strings.HasPrefix(msg, "failed to verify leaf certificate"):
		return "the certificate is not issued by a certificate authority of the trusted root"
	case strings.HasPrefix(msg, "failed to verify signed certificate timestamp"):
		return "the certificate has no valid SCT from a CT log of the trusted root: " + strings.TrimPrefix(msg, "failed to verify signed certificate timestamp: ")
	case strings.HasPrefix(msg, "failed to verify signature"):
		return "the signature does not verify: " + strings.TrimPrefix(msg, "failed to verify signature: ")
	}
	return "the bundle does not verify: " + msg
}

// keyBundleVerifier is sigstore-go's verifier for bundles signed by k.
func keyBundleVerifier(k *key) (*verify.Verifier, error) {
	material := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
		return root.NewExpiringKey(k.verifier, time.Time{}, time.Time{}), nil
	})
	return verify.NewVerifier(material, verify.WithNoObserverTimestamps())
}

// AppliesKeyless reports whether a rule with a keyless trusted root covers
// repo, so that the registry client reads a keyless signature only when it
// will be judged.
func (rs *Rules) AppliesKeyless(repo analysis.Repository) bool {
	r := rs.For(repo)
	return r != nil && r.keyless != nil
}

// AppliesBundle reports whether a rule that could judge a sigstore bundle
// (keyless, or cosign keys) covers repo.
func (rs *Rules) AppliesBundle(repo analysis.Repository) bool {
	r := rs.For(repo)
	return r != nil && (r.keyless != nil || len(r.keys) > 0)
}

// VerifyCosignKeyless is CosignKeyless under the rule for repo, in the
// registry client's terms.
func (rs *Rules) VerifyCosignKeyless(repo analysis.Repository, payload []byte, sig string, annotations map[string]string, subject string) (verified bool, signer, reason string) {
	v := rs.For(repo).CosignKeyless(payload, sig, annotations, subject)
	return v.Verified, v.Signer, v.Reason
}

// VerifyBundle is Bundle under the rule for repo, in the registry client's
// terms; judged is false when the rule has nothing to judge it by.
func (rs *Rules) VerifyBundle(repo analysis.Repository, data []byte, subject string) (judged, verified bool, signer, reason string) {
	v := rs.For(repo).Bundle(data, subject)
	return v.Applies, v.Verified, v.Signer, v.Reason
}
