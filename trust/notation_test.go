package trust_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/notaryproject/notation-core-go/signature/cose"
	"github.com/notaryproject/notation-core-go/signature/jws"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/internal/testing/supplyfix"
	"github.com/imagebadger/imagebadger/trust"
)

func TestNotationSignatures(t *testing.T) {
	dir := t.TempDir()
	acme := supplyfix.NewNotationCA(t, "Acme", time.Now().Add(12*time.Hour))
	acme.WriteStore(t, filepath.Join(dir, "store"), "acme")
	stranger := supplyfix.NewNotationCA(t, "Stranger", time.Now().Add(12*time.Hour))
	rulesFile := filepath.Join(dir, "trust.yaml")
	if err := os.WriteFile(rulesFile, []byte(`rules:
  - repositories: ["ghcr.io/acme/*"]
    notation:
      trustStore: store
`), 0o600); err != nil {
		t.Fatal(err)
	}
	rules, err := trust.Load(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	app := analysis.Repository{Registry: "ghcr.io", Name: "acme/app"}
	if !rules.AppliesNotation(app) || rules.AppliesNotation(analysis.Repository{Registry: "ghcr.io", Name: "other/app"}) {
		t.Fatal("the rule should cover ghcr.io/acme/app and nothing else")
	}
	subject := "sha256:" + strings.Repeat("1", 64)
	other := "sha256:" + strings.Repeat("2", 64)
	wantSigner := "CN=Acme release signing,O=Acme"
	for _, mt := range []string{jws.MediaTypeEnvelope, cose.MediaTypeEnvelope} {
		good := acme.Sign(t, mt, subject)
		tampered := append([]byte(nil), good...)
		// A byte of the signature's far end changed: for JWS a character
		// of the base64 signature, for COSE a byte of the signature.
		i := len(tampered) - 20
		if mt == jws.MediaTypeEnvelope {
			i = strings.LastIndex(string(tampered), `"signature":"`) + len(`"signature":"`) + 5
		}
		tampered[i] ^= 0x01
		for _, tc := range []struct {
			name     string
			envelope []byte
			subject  string
			verified bool
			reason   string
		}{
			{"good", good, subject, true, ""},
			{"tampered", tampered, subject, false, "the signature"},
			{"of another image", acme.Sign(t, mt, other), subject, false, "not of this image"},
			{"signed by a CA outside the store", stranger.Sign(t, mt, subject), subject, false, "no certificate of the trust store"},
			{"not an envelope", []byte("not an envelope"), subject, false, "not a Notation signature envelope"},
		} {
			verified, signer, reason := rules.VerifyNotation(app, mt, tc.envelope, tc.subject)
			if verified != tc.verified || !strings.Contains(reason, tc.reason) || (tc.verified && (reason != "" || signer != wantSigner)) {
				t.Errorf("%s, %s: verified %v, signer %q, reason %q; want %v, signer %q, a reason containing %q",
					mt, tc.name, verified, signer, reason, tc.verified, wantSigner, tc.reason)
			}
		}
	}

	// A leaf past its validity is refused now, whatever it signed then.
	expired := supplyfix.NewNotationCA(t, "Acme", time.Now().Add(time.Hour))
	expired.WriteStore(t, filepath.Join(dir, "store"), "expired")
	rules, err = trust.Load(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	env := expired.Sign(t, jws.MediaTypeEnvelope, subject)
	v := rules.For(app).JudgeNotation(jws.MediaTypeEnvelope, env, subject, time.Now().Add(2*time.Hour))
	if v.Verified || !strings.Contains(v.Reason, "not valid now") {
		t.Errorf("an expired certificate: %+v, want refused as not valid now", v)
	}
}

func TestNotationTrustStoreMustHoldCertificates(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	rulesFile := filepath.Join(dir, "trust.yaml")
	if err := os.WriteFile(rulesFile, []byte("rules:\n  - repositories: [\"*\"]\n    notation:\n      trustStore: empty\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := trust.Load(rulesFile); err == nil || !strings.Contains(err.Error(), "holds no certificate") || !strings.Contains(err.Error(), "trust.yaml:2") {
		t.Errorf("Load of a rule with an empty trust store: %v, want an error naming the line and saying it holds no certificate", err)
	}
}
