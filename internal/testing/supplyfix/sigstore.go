package supplyfix

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
	sigdsse "github.com/sigstore/sigstore/pkg/signature/dsse"
	"google.golang.org/protobuf/encoding/protojson"
)

// Sigstore is a Sigstore deployment in memory: sigstore-go's own test
// VirtualSigstore (a Fulcio CA, a Rekor log and a timestamp authority), for
// signing images as cosign does, keyless, and writing the trusted root a
// rules file names. Test files make it with NewSigstore(ca.NewVirtualSigstore()),
// because the package that holds the VirtualSigstore,
// github.com/sigstore/sigstore-go/pkg/testing/ca, links Rekor's PGP support
// (golang.org/x/crypto/openpgp, which govulncheck flags as unmaintained):
// imported from test files only, it stays out of what `govulncheck ./...`
// and the service link.
type Sigstore struct {
	VS VirtualSigstore
	// attestAt is the VirtualSigstore's AttestAtTime: a DSSE envelope of
	// statement, logged at integrated, with an inclusion proof when proof.
	attestAt func(identity, issuer string, statement []byte, integrated time.Time, proof bool) (verify.SignedEntity, error)
	// signAt is its SignAtTime: a message signature over artifact.
	signAt func(identity, issuer string, artifact []byte, integrated time.Time) (verify.SignedEntity, error)
}

// Signer is the VirtualSigstore's signing, E its entity type (the ca
// package's TestEntity, which this package cannot name).
type Signer[E verify.SignedEntity] interface {
	VirtualSigstore
	AttestAtTime(identity, issuer string, statement []byte, integrated time.Time, proof bool) (E, error)
	SignAtTime(identity, issuer string, artifact []byte, integrated time.Time) (E, error)
}

// NewSigstore wraps vs, a *ca.VirtualSigstore, or fails t when it could not
// be made.
func NewSigstore[E verify.SignedEntity](t testing.TB, vs Signer[E], err error) *Sigstore {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return &Sigstore{
		VS: vs,
		attestAt: func(identity, issuer string, statement []byte, at time.Time, proof bool) (verify.SignedEntity, error) {
			return vs.AttestAtTime(identity, issuer, statement, at, proof)
		},
		signAt: func(identity, issuer string, artifact []byte, at time.Time) (verify.SignedEntity, error) {
			return vs.SignAtTime(identity, issuer, artifact, at)
		},
	}
}

// VirtualSigstore is what Sigstore uses of sigstore-go's VirtualSigstore
// besides its signing.
type VirtualSigstore interface {
	FulcioCertificateAuthorities() []root.CertificateAuthority
	TimestampingAuthorities() []root.TimestampingAuthority
	RekorLogs() map[string]*root.TransparencyLog
	RekorSignPayload(payload tlog.RekorPayload) ([]byte, error)
}

// rekorLogs are the deployment's Rekor logs as a trusted root names them:
// the log ID as the key's raw SHA-256 (the VirtualSigstore keeps it as hex
// text, which only its in-memory use tolerates).
func (s *Sigstore) rekorLogs(t testing.TB) map[string]*root.TransparencyLog {
	t.Helper()
	out := map[string]*root.TransparencyLog{}
	for id, l := range s.VS.RekorLogs() {
		raw, err := hex.DecodeString(id)
		if err != nil {
			t.Fatal(err)
		}
		c := *l
		c.ID = raw
		out[id] = &c
	}
	return out
}

// TrustedRoot is the deployment's trusted_root.json: its Fulcio CA, Rekor
// log and timestamp authority. It names no CT log: the virtual Fulcio
// embeds no SCTs, as a private deployment without certificate transparency.
func (s *Sigstore) TrustedRoot(t testing.TB) []byte {
	t.Helper()
	return s.trustedRoot(t, s.VS.FulcioCertificateAuthorities())
}

// TrustedRootWithCAOf is this deployment's trusted root with other's
// Fulcio CA in place of its own: its log and timestamps are trusted, the
// certificates it issues are not.
func (s *Sigstore) TrustedRootWithCAOf(t testing.TB, other *Sigstore) []byte {
	t.Helper()
	return s.trustedRoot(t, other.VS.FulcioCertificateAuthorities())
}

func (s *Sigstore) trustedRoot(t testing.TB, cas []root.CertificateAuthority) []byte {
	t.Helper()
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, cas, nil, s.VS.TimestampingAuthorities(), s.rekorLogs(t))
	if err != nil {
		t.Fatal(err)
	}
	data, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// WriteTrustedRoot writes TrustedRoot to file.
func (s *Sigstore) WriteTrustedRoot(t testing.TB, file string) {
	t.Helper()
	if err := os.WriteFile(file, s.TrustedRoot(t), 0o600); err != nil {
		t.Fatal(err)
	}
}

// PredicateCosignSign is the predicate type of cosign v3's image
// signatures: an in-toto statement whose subject is the image.
const PredicateCosignSign = "https://sigstore.dev/cosign/sign/v1"

// ImageStatement is the statement cosign v3 signs for an image digest.
func ImageStatement(digest string) []byte {
	return []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"` + strings.TrimPrefix(digest, "sha256:") +
		`"}}],"predicateType":"` + PredicateCosignSign + `","predicate":{}}`)
}

// SignImage is `cosign sign` (v3, keyless) of digest by identity (an
// e-mail address, the certificate's subject) at issuer: the sigstore bundle
// (v0.3 JSON) of a DSSE envelope of ImageStatement, with its certificate,
// its Rekor entry (inclusion proof and promise) and an RFC 3161 timestamp.
func (s *Sigstore) SignImage(t testing.TB, identity, issuer, digest string) []byte {
	t.Helper()
	return s.Attest(t, identity, issuer, ImageStatement(digest))
}

// Attest signs an in-toto statement as SignImage does.
func (s *Sigstore) Attest(t testing.TB, identity, issuer string, statement []byte) []byte {
	t.Helper()
	// Logged five minutes after the certificate's start, as the
	// VirtualSigstore's own Attest does, within its ten minutes.
	e, err := s.attestAt(identity, issuer, statement, time.Now().Add(5*time.Minute), true)
	if err != nil {
		t.Fatal(err)
	}
	vc, err := e.VerificationContent()
	if err != nil {
		t.Fatal(err)
	}
	sc, err := e.SignatureContent()
	if err != nil {
		t.Fatal(err)
	}
	env := sc.EnvelopeContent().RawEnvelope()
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		t.Fatal(err)
	}
	var sigs []*protodsse.Signature
	for _, sg := range env.Signatures {
		raw, err := base64.StdEncoding.DecodeString(sg.Sig)
		if err != nil {
			t.Fatal(err)
		}
		sigs = append(sigs, &protodsse.Signature{Sig: raw, Keyid: sg.KeyID})
	}
	tss, err := e.Timestamps()
	if err != nil {
		t.Fatal(err)
	}
	pb := &protobundle.Bundle{
		MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content:                   &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: vc.Certificate().Raw}},
			TlogEntries:               s.logEntries(t, e),
			TimestampVerificationData: &protobundle.TimestampVerificationData{Rfc3161Timestamps: timestamps(tss)},
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{Payload: payload, PayloadType: env.PayloadType, Signatures: sigs}},
	}
	data, err := protojson.Marshal(pb)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func timestamps(tss [][]byte) []*protocommon.RFC3161SignedTimestamp {
	var out []*protocommon.RFC3161SignedTimestamp
	for _, ts := range tss {
		out = append(out, &protocommon.RFC3161SignedTimestamp{SignedTimestamp: ts})
	}
	return out
}

// logEntries are the entity's Rekor entries as a bundle holds them, with
// their kind and the log's signed entry timestamp (the promise), which the
// VirtualSigstore signs but does not hand out: it is signed again here over
// the same fields, as Rekor signs it.
func (s *Sigstore) logEntries(t testing.TB, e verify.SignedEntity) []*protorekor.TransparencyLogEntry {
	t.Helper()
	entries, err := e.TlogEntries()
	if err != nil {
		t.Fatal(err)
	}
	var out []*protorekor.TransparencyLogEntry
	for _, en := range entries {
		tle := en.TransparencyLogEntry()
		var kind struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := json.Unmarshal(tle.CanonicalizedBody, &kind); err != nil {
			t.Fatal(err)
		}
		tle.KindVersion = &protorekor.KindVersion{Kind: kind.Kind, Version: kind.APIVersion}
		tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: s.set(t, en)}
		out = append(out, tle)
	}
	return out
}

func (s *Sigstore) set(t testing.TB, en *tlog.Entry) []byte {
	t.Helper()
	set, err := s.VS.RekorSignPayload(tlog.RekorPayload{
		Body:           en.Body(),
		IntegratedTime: en.IntegratedTime().Unix(),
		LogIndex:       en.LogIndex(),
		LogID:          hex.EncodeToString([]byte(en.LogKeyID())),
	})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// CosignKeylessLayer is `cosign sign` (v2, keyless, the .sig tag scheme)
// of payload (a simple-signing payload) by identity at issuer: the
// signature (base64) and the annotations cosign writes on the layer: the
// certificate and its chain (PEM), the Rekor bundle (the hashedrekord
// entry with its signed entry timestamp) and the RFC 3161 timestamp.
func (s *Sigstore) CosignKeylessLayer(t testing.TB, identity, issuer string, payload []byte) map[string]string {
	t.Helper()
	e, err := s.signAt(identity, issuer, payload, time.Now().Add(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	vc, err := e.VerificationContent()
	if err != nil {
		t.Fatal(err)
	}
	sc, err := e.SignatureContent()
	if err != nil {
		t.Fatal(err)
	}
	fulcio := s.VS.FulcioCertificateAuthorities()[0].(*root.FulcioCertificateAuthority)
	var chain []byte
	for _, c := range append(append([]*x509.Certificate{}, fulcio.Intermediates...), fulcio.Root) {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	entries, err := e.TlogEntries()
	if err != nil || len(entries) != 1 {
		t.Fatalf("log entries %v: %v", entries, err)
	}
	en := entries[0]
	rekor, err := json.Marshal(map[string]any{
		"SignedEntryTimestamp": s.set(t, en),
		"Payload": map[string]any{
			"body":           en.Body(),
			"integratedTime": en.IntegratedTime().Unix(),
			"logIndex":       en.LogIndex(),
			"logID":          hex.EncodeToString([]byte(en.LogKeyID())),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	tss, err := e.Timestamps()
	if err != nil || len(tss) != 1 {
		t.Fatalf("timestamps: %v", err)
	}
	ts, err := json.Marshal(map[string][]byte{"SignedRFC3161Timestamp": tss[0]})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"dev.cosignproject.cosign/signature":   base64.StdEncoding.EncodeToString(sc.Signature()),
		"dev.sigstore.cosign/certificate":      string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: vc.Certificate().Raw})),
		"dev.sigstore.cosign/chain":            string(chain),
		"dev.sigstore.cosign/bundle":           string(rekor),
		"dev.sigstore.cosign/rfc3161timestamp": string(ts),
	}
}

// KeyBundle is `cosign sign --key` (v3, no transparency log upload) of
// digest: a bundle of a DSSE envelope of ImageStatement signed by key,
// naming the key by its hint (the SHA-256 of its PKIX form) rather than a
// certificate.
func KeyBundle(t testing.TB, key *ecdsa.PrivateKey, digest string) []byte {
	t.Helper()
	return KeyBundleOf(t, key, ImageStatement(digest))
}

// KeyBundleOf signs statement as KeyBundle does.
func KeyBundleOf(t testing.TB, key *ecdsa.PrivateKey, statement []byte) []byte {
	t.Helper()
	sv, err := signature.LoadECDSASignerVerifier(key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	envJSON, err := sigdsse.WrapSigner(sv, "application/vnd.in-toto+json").SignMessage(strings.NewReader(string(statement)))
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		PayloadType string `json:"payloadType"`
		Payload     []byte `json:"payload"`
		Signatures  []struct {
			Sig []byte `json:"sig"`
		} `json:"signatures"`
	}
	if err := json.Unmarshal(envJSON, &env); err != nil || len(env.Signatures) != 1 {
		t.Fatalf("DSSE envelope %s: %v", envJSON, err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	hint := sha256.Sum256(der)
	pb := &protobundle.Bundle{
		MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{Hint: base64.StdEncoding.EncodeToString(hint[:])}},
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: env.Payload, PayloadType: env.PayloadType, Signatures: []*protodsse.Signature{{Sig: env.Signatures[0].Sig}},
		}},
	}
	data, err := protojson.Marshal(pb)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// CosignKey is an ECDSA P-256 key as `cosign generate-key-pair` makes one;
// its public half is written as PEM to dir/name, for a rules file's
// cosign.keys.
func CosignKey(t testing.TB, dir, name string) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return k
}
