package trust_test

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/internal/testing/supplyfix"
	"github.com/imagebadger/imagebadger/trust"
)

// Payload is cosign's simple-signing payload for digest; Sign is `cosign
// sign --key`: ECDSA over the payload's SHA-256, base64.
func Payload(digest string) []byte {
	return []byte(`{"critical":{"identity":{"docker-reference":"ghcr.io/acme/app"},"image":{"docker-manifest-digest":"` + digest + `"},"type":"cosign container image signature"},"optional":null}`)
}

func Sign(t *testing.T, k *ecdsa.PrivateKey, payload []byte) string {
	t.Helper()
	sum := sha256.Sum256(payload)
	sig, err := ecdsa.SignASN1(rand.Reader, k, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

func TestCosignKeySignatures(t *testing.T) {
	dir := t.TempDir()
	good := supplyfix.CosignKey(t, dir, "cosign.pub")
	other := supplyfix.CosignKey(t, t.TempDir(), "other.pub")
	rulesFile := filepath.Join(dir, "trust.yaml")
	if err := os.WriteFile(rulesFile, []byte(`rules:
  - repositories: ["ghcr.io/acme/*"]
    cosign:
      keys: [cosign.pub]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	rules, err := trust.Load(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	app := analysis.Repository{Registry: "ghcr.io", Name: "acme/app"}
	digest := "sha256:" + strings.Repeat("a", 64)
	payload := Payload(digest)
	sig := Sign(t, good, payload)
	rule := rules.For(app)
	if rule == nil || rule.Line != 2 {
		t.Fatalf("rule for %s = %+v, want the one on line 2", app, rule)
	}

	v := rule.Cosign(payload, sig, digest)
	if !v.Applies || !v.Verified || !strings.HasPrefix(v.Signer, "cosign.pub (sha256:") {
		t.Errorf("good signature: %+v, want verified by cosign.pub", v)
	}
	// The same signature, one byte of it changed.
	raw, _ := base64.StdEncoding.DecodeString(sig)
	raw[len(raw)/2] ^= 0x01
	tampered := base64.StdEncoding.EncodeToString(raw)
	if v := rule.Cosign(payload, tampered, digest); !v.Applies || v.Verified || v.Reason != "no trusted key verifies the signature" {
		t.Errorf("tampered signature: %+v, want false with a reason", v)
	}
	if v := rule.Cosign(payload, Sign(t, other, payload), digest); v.Verified || v.Reason == "" {
		t.Errorf("signature by an untrusted key: %+v", v)
	}
	// A good signature of another image.
	elsewhere := "sha256:" + strings.Repeat("b", 64)
	if v := rule.Cosign(Payload(elsewhere), Sign(t, good, Payload(elsewhere)), digest); v.Verified || !strings.Contains(v.Reason, "not of this image") {
		t.Errorf("signature of another image: %+v", v)
	}
	// The payload changed after signing.
	if v := rule.Cosign(append(payload, ' '), sig, digest); v.Verified {
		t.Errorf("changed payload verified: %+v", v)
	}
	if v := rule.Cosign(payload, "%%%", digest); v.Verified || v.Reason == "" {
		t.Errorf("signature not base64: %+v", v)
	}
	// No rule: nothing to judge by, verified stays null.
	if r := rules.For(analysis.Repository{Registry: "docker.io", Name: "library/alpine"}); r != nil {
		t.Errorf("a rule applies to alpine: %+v", r)
	}
	var none *trust.Rule
	if v := none.Cosign(payload, sig, digest); v.Applies {
		t.Errorf("no rule: %+v, want not applying", v)
	}
}

func TestRulesFileErrorsNameTheLine(t *testing.T) {
	dir := t.TempDir()
	supplyfix.CosignKey(t, dir, "cosign.pub")
	for name, tc := range map[string]struct{ body, want string }{
		"missing key":   {"rules:\n  - repositories: [\"a/*\"]\n  - repositories: [\"b/*\"]\n    cosign:\n      keys: [missing.pub]\n", "trust.yaml:3: key missing.pub"},
		"not a key":     {"rules:\n  - repositories: [\"a/*\"]\n    cosign:\n      keys: [trust.yaml]\n", "trust.yaml:2: key trust.yaml"},
		"bad pattern":   {"rules:\n  - repositories: [\"a/[\"]\n", "trust.yaml:2: repository pattern"},
		"unknown field": {"rules:\n  - repositories: [\"a/*\"]\n    cosgin: {}\n", "line 3"},
		"not YAML":      {"rules: [\n", "trust.yaml"},
		"no patterns":   {"rules:\n  - cosign:\n      keys: [cosign.pub]\n", "trust.yaml:2: a rule needs repositories"},
		"no root":       {"rules:\n  - repositories: [\"a/*\"]\n    keyless:\n      trustedRoot: nowhere.json\n      identities: [{subject: s, issuer: i}]\n", "trust.yaml:2: trusted root nowhere.json"},
	} {
		t.Run(name, func(t *testing.T) {
			f := filepath.Join(dir, "trust.yaml")
			if err := os.WriteFile(f, []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := trust.Load(f)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
