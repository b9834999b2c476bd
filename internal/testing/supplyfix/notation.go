package supplyfix

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/notaryproject/notation-core-go/signature"
	// The envelope formats a test may sign in.
	_ "github.com/notaryproject/notation-core-go/signature/cose"
	_ "github.com/notaryproject/notation-core-go/signature/jws"
)

// NotationCA is a certificate authority and a code-signing certificate it
// issued, shaped as the Notary Project's certificate requirements ask
// (a CA with keyCertSign; a leaf with digitalSignature and codeSigning),
// the way `notation cert generate-test` makes them.
type NotationCA struct {
	CA, Leaf *x509.Certificate
	Key      *ecdsa.PrivateKey // the leaf's
}

func NewNotationCA(t testing.TB, name string, notAfter time.Time) *NotationCA {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA", Organization: []string{name}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name + " release signing", Organization: []string{name}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(leafDER)
	return &NotationCA{CA: ca, Leaf: leaf, Key: key}
}

// WriteStore writes the CA's certificate into a Notation trust store
// under dir, laid out as notation keeps one (x509/ca/<name>/<file>.crt).
func (c *NotationCA) WriteStore(t testing.TB, dir, name string) {
	t.Helper()
	d := filepath.Join(dir, "x509", "ca", name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, name+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.CA.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Sign is `notation sign` of the artifact digest, in envelope format
// mediaType: the payload is the target's descriptor, the scheme
// notary.x509, signed by notation-core-go as notation itself signs.
func (c *NotationCA) Sign(t testing.TB, mediaType, digest string) []byte {
	t.Helper()
	signer, err := signature.NewLocalSigner([]*x509.Certificate{c.Leaf, c.CA}, c.Key)
	if err != nil {
		t.Fatal(err)
	}
	env, err := signature.NewEnvelope(mediaType)
	if err != nil {
		t.Fatal(err)
	}
	payload := `{"targetArtifact":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + digest + `","size":1234}}`
	sig, err := env.Sign(&signature.SignRequest{
		Payload:       signature.Payload{ContentType: "application/vnd.cncf.notary.payload.v1+json", Content: []byte(payload)},
		Signer:        signer,
		SigningTime:   time.Now(),
		SigningScheme: signature.SigningSchemeX509,
		SigningAgent:  "notation-go/1.3.0",
	})
	if err != nil {
		t.Fatal(err)
	}
	return sig
}
