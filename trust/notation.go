package trust

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/notaryproject/notation-core-go/signature"
	// The two envelope formats Notation signs in register themselves.
	_ "github.com/notaryproject/notation-core-go/signature/cose"
	_ "github.com/notaryproject/notation-core-go/signature/jws"

	"github.com/imagebadger/imagebadger/analysis"
)

// Notation is judged with notation-core-go, the library notation-go's own
// verifier is built on, following the Notary Project's verification steps
// (integrity, authenticity against the trust store, expiry, the signed
// target). notation-go's verifier is not used: it reads its own trust
// policy documents rather than the rule that names the trust store, and
// checks revocation by dialling the OCSP and CRL addresses certificates
// name, which verification here must never do.

// Limits on reading a Notation trust store: its certificate files are a
// few kilobytes each, and a store holds a handful.
const (
	maxTrustStoreFiles     = 1000
	maxTrustStoreFileBytes = 1 << 20
)

// notationPayloadType is the content type of what a Notation signature
// signs: the descriptor of its target artifact.
const notationPayloadType = "application/vnd.cncf.notary.payload.v1+json"

// loadTrustStore reads every certificate (PEM, one or many, or DER) under
// dir, as Notation's trust store keeps them (x509/ca/<name>/*.crt and the
// like). A store without one is an error: it could vouch for nothing.
func loadTrustStore(dir string) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	files := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if files++; files > maxTrustStoreFiles {
			return fmt.Errorf("more than %d files", maxTrustStoreFiles)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Size() > maxTrustStoreFileBytes {
			return fmt.Errorf("%s is larger than %d KiB", p, maxTrustStoreFileBytes>>10)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		cs, err := parseCertificates(data)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		certs = append(certs, cs...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(certs) == 0 {
		return nil, errors.New("holds no certificate")
	}
	return certs, nil
}

// parseCertificates reads the PEM certificates in data, or data as one DER
// certificate.
func parseCertificates(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) > 0 {
		return out, nil
	}
	c, err := x509.ParseCertificate(data)
	if err != nil {
		return nil, errors.New("not a certificate (PEM or DER)")
	}
	return []*x509.Certificate{c}, nil
}

// notationTarget is the part of a Notation payload that names what is
// signed.
type notationTarget struct {
	TargetArtifact struct {
		Digest string `json:"digest"`
	} `json:"targetArtifact"`
}

// JudgeNotation judges a Notation signature envelope of mediaType
// (application/jose+json or application/cose), which must sign subject,
// the digest it was found for, under the rule's trust store. The signer
// is the signing certificate's subject.
func (r *Rule) JudgeNotation(mediaType string, envelope []byte, subject string, now time.Time) Verdict {
	if r == nil || len(r.notationCerts) == 0 {
		return Verdict{}
	}
	env, err := signature.ParseEnvelope(mediaType, envelope)
	if err != nil {
		return Verdict{Applies: true, Reason: "the signature is not a Notation signature envelope"}
	}
	// Integrity: the signature over the payload and signed attributes, by
	// the key of the chain's first certificate, and the chain itself.
	content, err := env.Verify()
	if err != nil {
		return Verdict{Applies: true, Reason: "the signature does not verify: " + err.Error()}
	}
	info := &content.SignerInfo
	signer := ""
	if len(info.CertificateChain) > 0 {
		signer = info.CertificateChain[0].Subject.String()
	}
	// Authenticity: a certificate of the chain is one the store trusts.
	if _, err := signature.VerifyAuthenticity(info, r.notationCerts); err != nil {
		return Verdict{Applies: true, Signer: signer, Reason: "no certificate of the trust store is in the signature's chain"}
	}
	// Without a timestamp a signing time is only the signer's word, so the
	// chain must be valid now, as Notation's strict level checks it.
	for _, c := range info.CertificateChain {
		if now.Before(c.NotBefore) || now.After(c.NotAfter) {
			return Verdict{Applies: true, Signer: signer, Reason: fmt.Sprintf("the certificate %q is not valid now (valid %s to %s)",
				c.Subject.String(), c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))}
		}
	}
	if exp := info.SignedAttributes.Expiry; !exp.IsZero() && now.After(exp) {
		return Verdict{Applies: true, Signer: signer, Reason: "the signature expired on " + exp.UTC().Format(time.RFC3339)}
	}
	if content.Payload.ContentType != notationPayloadType {
		return Verdict{Applies: true, Signer: signer, Reason: "the signed payload is not a Notation target descriptor"}
	}
	var p notationTarget
	if err := json.Unmarshal(content.Payload.Content, &p); err != nil {
		return Verdict{Applies: true, Signer: signer, Reason: "the signed payload is not a Notation target descriptor"}
	}
	if p.TargetArtifact.Digest != subject {
		// A good signature of another artifact, attached to this one.
		return Verdict{Applies: true, Signer: signer, Reason: fmt.Sprintf("the signature by %s is of %s, not of this image", signer, analysis.ShortDigest(p.TargetArtifact.Digest))}
	}
	return Verdict{Applies: true, Verified: true, Signer: signer}
}

// AppliesNotation reports whether a rule with a Notation trust store covers
// repo, so that the registry client reads a Notation signature only when
// it will be judged.
func (rs *Rules) AppliesNotation(repo analysis.Repository) bool {
	r := rs.For(repo)
	return r != nil && len(r.notationCerts) > 0
}

// VerifyNotation is JudgeNotation under the rule for repo, now, in the
// registry client's terms.
func (rs *Rules) VerifyNotation(repo analysis.Repository, mediaType string, envelope []byte, subject string) (verified bool, signer, reason string) {
	v := rs.For(repo).JudgeNotation(mediaType, envelope, subject, time.Now())
	return v.Verified, v.Signer, v.Reason
}
