package trust_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/internal/testing/supplyfix"
	"github.com/imagebadger/imagebadger/trust"
)

// app is the repository the rules of these tests cover.
var app = analysis.Repository{Registry: "ghcr.io", Name: "acme/app"}

const (
	acmeIssuer  = "https://issuer.acme.example"
	acmeSubject = "release@acme.example"
)

func digestOf(s string) string {
	return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(s)))
}

// noDial makes every HTTP request through the default transport (what
// sigstore-go's TUF client and its fetchers use) fail and be counted, so a
// test can assert verification reached for nothing.
func noDial(t *testing.T) func() []string {
	t.Helper()
	var mu sync.Mutex
	var asked []string
	old := http.DefaultTransport
	http.DefaultTransport = roundTripper(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, r.URL.String())
		return nil, errors.New("verification must not dial")
	})
	t.Cleanup(func() { http.DefaultTransport = old })
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), asked...)
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// rulesWith writes files (name → content) and a rules file of body into a
// new directory, and loads it.
func rulesWith(t *testing.T, body string, files map[string][]byte) *trust.Rules {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f := filepath.Join(dir, "trust.yaml")
	if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	rs, err := trust.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// tamper changes the bundle's DSSE payload (the statement, now of other)
// and leaves its signature, log entry and certificate as they were.
func tamper(t *testing.T, bundle []byte, other string) []byte {
	t.Helper()
	var b map[string]any
	if err := json.Unmarshal(bundle, &b); err != nil {
		t.Fatal(err)
	}
	b["dsseEnvelope"].(map[string]any)["payload"] = base64.StdEncoding.EncodeToString(supplyfix.ImageStatement(other))
	out, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// flipSignature changes one bit of the bundle's DSSE signature.
func flipSignature(t *testing.T, bundle []byte) []byte {
	t.Helper()
	var b map[string]any
	if err := json.Unmarshal(bundle, &b); err != nil {
		t.Fatal(err)
	}
	sig := b["dsseEnvelope"].(map[string]any)["signatures"].([]any)[0].(map[string]any)
	raw, err := base64.StdEncoding.DecodeString(sig["sig"].(string))
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 0x01
	sig["sig"] = base64.StdEncoding.EncodeToString(raw)
	out, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSigstoreBundles judges bundles made by an in-memory Sigstore
// (sigstore-go's VirtualSigstore) as cosign v3 makes them, under a rule
// with that deployment's trusted root, an identity pattern, and a cosign
// key for bundles signed by a key.
func TestSigstoreBundles(t *testing.T) {
	asked := noDial(t)
	acme := newSigstore(t)
	dir := t.TempDir()
	key := supplyfix.CosignKey(t, dir, "cosign.pub")
	pub, err := os.ReadFile(filepath.Join(dir, "cosign.pub"))
	if err != nil {
		t.Fatal(err)
	}
	other := supplyfix.CosignKey(t, t.TempDir(), "other.pub")
	rules := rulesWith(t, `rules:
  - repositories: ["ghcr.io/acme/*"]
    cosign:
      keys: [cosign.pub]
    keyless:
      trustedRoot: root.json
      identities:
        - {subject: "*@acme.example", issuer: "`+acmeIssuer+`"}
`, map[string][]byte{"root.json": acme.TrustedRoot(t), "cosign.pub": pub})
	rule := rules.For(app)
	image, elsewhere := digestOf("image"), digestOf("another image")
	good := acme.SignImage(t, acmeSubject, acmeIssuer, image)
	signer := acmeSubject + " (" + acmeIssuer + ")"

	for _, tc := range []struct {
		name   string
		bundle []byte
		want   trust.Verdict
		// reason is what the reason must contain, when not verified.
		reason string
	}{
		{"good", good, trust.Verdict{Applies: true, Verified: true, Signer: signer}, ""},
		{"statement changed after signing", tamper(t, good, image+"0"), trust.Verdict{Applies: true}, "transparency log"},
		{"signature changed", flipSignature(t, good), trust.Verdict{Applies: true}, "transparency log signature does not match"},
		{"a good bundle of another image", acme.SignImage(t, acmeSubject, acmeIssuer, elsewhere), trust.Verdict{Applies: true, Signer: signer},
			"is of sha256:" + strings.TrimPrefix(elsewhere, "sha256:")[:12] + ", not of this image"},
		{"an identity the rule does not name", acme.SignImage(t, "mallory@evil.example", acmeIssuer, image), trust.Verdict{Applies: true},
			"identity mallory@evil.example (" + acmeIssuer + ") is not one the rule trusts"},
		{"the right subject from another issuer", acme.SignImage(t, acmeSubject, "https://evil.example", image), trust.Verdict{Applies: true},
			"identity " + acmeSubject + " (https://evil.example) is not one the rule trusts"},
		{"another Sigstore deployment", newSigstore(t).SignImage(t, acmeSubject, acmeIssuer, image), trust.Verdict{Applies: true},
			"transparency log"},
		{"signed by the rule's key", supplyfix.KeyBundle(t, key, image), trust.Verdict{Applies: true, Verified: true, Signer: "cosign.pub (sha256:"}, ""},
		{"signed by another key", supplyfix.KeyBundle(t, other, image), trust.Verdict{Applies: true}, "no trusted key verifies the bundle"},
		{"signed by the rule's key, of another image", supplyfix.KeyBundle(t, key, elsewhere), trust.Verdict{Applies: true}, "not of this image"},
		{"not a bundle", []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`), trust.Verdict{Applies: true}, "not a valid sigstore bundle"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := rule.Bundle(tc.bundle, image)
			if strings.HasPrefix(v.Signer, "cosign.pub (sha256:") {
				v.Signer = "cosign.pub (sha256:"
			}
			reason := v.Reason
			v.Reason = ""
			if v != tc.want {
				t.Errorf("verdict %+v (reason %q), want %+v", v, reason, tc.want)
			}
			if tc.want.Verified != (reason == "") || !strings.Contains(reason, tc.reason) {
				t.Errorf("reason %q, want one containing %q", reason, tc.reason)
			}
		})
	}

	// A rule of keys alone has nothing to judge a keyless bundle by, and a
	// keyless rule nothing for a bundle signed by a key: both stay null.
	keysOnly := rulesWith(t, "rules:\n  - repositories: [\"ghcr.io/acme/*\"]\n    cosign:\n      keys: [cosign.pub]\n", map[string][]byte{"cosign.pub": pub}).For(app)
	if v := keysOnly.Bundle(good, image); v.Applies {
		t.Errorf("keyless bundle under a rule of keys: %+v, want not judged", v)
	}
	keylessOnly := rulesWith(t, "rules:\n  - repositories: [\"ghcr.io/acme/*\"]\n    keyless:\n      trustedRoot: root.json\n      identities: [{subject: \"*@acme.example\", issuer: \""+acmeIssuer+"\"}]\n",
		map[string][]byte{"root.json": acme.TrustedRoot(t)}).For(app)
	if v := keylessOnly.Bundle(supplyfix.KeyBundle(t, key, image), image); v.Applies {
		t.Errorf("key bundle under a keyless rule: %+v, want not judged", v)
	}
	if v := keylessOnly.Bundle(good, image); !v.Verified {
		t.Errorf("keyless bundle under a keyless rule: %+v", v)
	}
	var none *trust.Rule
	if v := none.Bundle(good, image); v.Applies {
		t.Errorf("no rule: %+v", v)
	}

	// A root that trusts the deployment's log and timestamps but another
	// Fulcio: its certificates are not trusted.
	stranger := newSigstore(t)
	otherCA := rulesWith(t, "rules:\n  - repositories: [\"ghcr.io/acme/*\"]\n    keyless:\n      trustedRoot: root.json\n      identities: [{subject: \"*@acme.example\", issuer: \""+acmeIssuer+"\"}]\n",
		map[string][]byte{"root.json": acme.TrustedRootWithCAOf(t, stranger)}).For(app)
	if v := otherCA.Bundle(good, image); v.Verified || v.Reason != "the certificate is not issued by a certificate authority of the trusted root" {
		t.Errorf("bundle under a root without its CA: %+v", v)
	}

	// One rule judges the signatures of concurrent looks at once.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if v := rule.Bundle(good, image); !v.Verified {
				t.Errorf("concurrent judgement: %+v", v)
			}
		})
	}
	wg.Wait()

	if got := asked(); len(got) != 0 {
		t.Errorf("verification asked the network for %q", got)
	}
}

// TestCosignKeylessSignatures judges the .sig layers cosign's keyless
// signing writes (the signature, certificate, chain, Rekor bundle and
// timestamp annotations over a simple-signing payload).
func TestCosignKeylessSignatures(t *testing.T) {
	asked := noDial(t)
	acme := newSigstore(t)
	rules := rulesWith(t, "rules:\n  - repositories: [\"ghcr.io/acme/*\"]\n    keyless:\n      trustedRoot: root.json\n      identities: [{subject: \"*@acme.example\", issuer: \""+acmeIssuer+"\"}]\n",
		map[string][]byte{"root.json": acme.TrustedRoot(t)})
	rule := rules.For(app)
	image := digestOf("image")
	payload := Payload(image)
	ann := acme.CosignKeylessLayer(t, acmeSubject, acmeIssuer, payload)
	sig := ann["dev.cosignproject.cosign/signature"]
	signer := acmeSubject + " (" + acmeIssuer + ")"

	if v := rule.CosignKeyless(payload, sig, ann, image); !v.Applies || !v.Verified || v.Signer != signer {
		t.Errorf("good keyless signature: %+v, want verified by %s", v, signer)
	}
	if v := rule.CosignKeyless(append(payload, ' '), sig, ann, image); !v.Applies || v.Verified || v.Reason == "" {
		t.Errorf("payload changed after signing: %+v, want false with a reason", v)
	}
	elsewhere := digestOf("another image")
	otherPayload := Payload(elsewhere)
	otherAnn := acme.CosignKeylessLayer(t, acmeSubject, acmeIssuer, otherPayload)
	if v := rule.CosignKeyless(otherPayload, otherAnn["dev.cosignproject.cosign/signature"], otherAnn, image); v.Verified || !strings.Contains(v.Reason, "not of this image") || v.Signer != signer {
		t.Errorf("keyless signature of another image: %+v", v)
	}
	evil := acme.CosignKeylessLayer(t, "mallory@evil.example", acmeIssuer, payload)
	if v := rule.CosignKeyless(payload, evil["dev.cosignproject.cosign/signature"], evil, image); v.Verified || !strings.Contains(v.Reason, "is not one the rule trusts") {
		t.Errorf("keyless signature by another identity: %+v", v)
	}
	// The Rekor bundle of another signature: the log does not vouch for it.
	mixed := map[string]string{}
	for k, v := range ann {
		mixed[k] = v
	}
	mixed["dev.sigstore.cosign/bundle"] = otherAnn["dev.sigstore.cosign/bundle"]
	if v := rule.CosignKeyless(payload, sig, mixed, image); v.Verified || !strings.Contains(v.Reason, "transparency log") {
		t.Errorf("keyless signature with another's log entry: %+v", v)
	}
	noCert := map[string]string{"dev.cosignproject.cosign/signature": sig}
	if v := rule.CosignKeyless(payload, sig, noCert, image); !v.Applies || v.Verified || v.Reason == "" {
		t.Errorf("keyless signature without its certificate: %+v", v)
	}
	var none *trust.Rule
	if v := none.CosignKeyless(payload, sig, ann, image); v.Applies {
		t.Errorf("no rule: %+v", v)
	}
	if got := asked(); len(got) != 0 {
		t.Errorf("verification asked the network for %q", got)
	}
}

// TestPublicGoodBundle verifies a real bundle from the public-good
// Sigstore (sigstore-js 2.0.0's npm provenance, from sigstore-go's test
// data; see testdata/sigstore-go/README.md) against the public-good trusted
// root of that time, offline: its certificate chain, SCT, Rekor entry and
// the workflow identity. Its subject is an npm package, not an image, so
// what can honestly be asserted is that it verifies for the digest it
// names, and that as a signature found beside an image it is false.
func TestPublicGoodBundle(t *testing.T) {
	asked := noDial(t)
	data, err := os.ReadFile("testdata/sigstore-go/sigstore-js-2.0.0-provenance.sigstore.json")
	if err != nil {
		t.Fatal(err)
	}
	root, err := os.ReadFile("testdata/sigstore-go/public-good.json")
	if err != nil {
		t.Fatal(err)
	}
	const (
		workflow = "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main"
		actions  = "https://token.actions.githubusercontent.com"
		// The statement's subject, pkg:npm/sigstore@2.0.0.
		npm = "sha512:46d4e2f74c4877316640000a6fdf8a8b59f1e0847667973e9859f774dd31b8f1e0937813b777fb66a2ac67d50540fe34640966eee9fc2ccca387082b4c85cd3c"
	)
	rule := func(subject string) *trust.Rule {
		return rulesWith(t, "rules:\n  - repositories: [\"ghcr.io/acme/*\"]\n    keyless:\n      trustedRoot: public-good.json\n      identities: [{subject: \""+subject+"\", issuer: \""+actions+"\"}]\n",
			map[string][]byte{"public-good.json": root}).For(app)
	}
	release := rule("https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/*")
	if v := release.Bundle(data, npm); !v.Verified || v.Signer != workflow+" ("+actions+")" {
		t.Errorf("public-good bundle for its own subject: %+v, want verified by the release workflow", v)
	}
	image := digestOf("image")
	if v := release.Bundle(data, image); v.Verified || !strings.Contains(v.Reason, "not of this image") {
		t.Errorf("public-good bundle beside an image: %+v, want false, of another artifact", v)
	}
	if v := rule("https://github.com/acme/*").Bundle(data, npm); v.Verified || !strings.Contains(v.Reason, "is not one the rule trusts") {
		t.Errorf("public-good bundle under another identity: %+v", v)
	}
	if got := asked(); len(got) != 0 {
		t.Errorf("verification asked the network for %q", got)
	}
}

func TestKeylessRulesFileErrors(t *testing.T) {
	acme := newSigstore(t)
	dir := t.TempDir()
	acme.WriteTrustedRoot(t, filepath.Join(dir, "root.json"))
	if err := os.WriteFile(filepath.Join(dir, "bare.json"), []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	// A Fulcio CA alone: nothing could say when a certificate signed.
	caOnly, err := root.NewTrustedRoot(root.TrustedRootMediaType01, acme.VS.FulcioCertificateAuthorities(), nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	caOnlyJSON, err := caOnly.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca-only.json"), caOnlyJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ body, want string }{
		"bad subject pattern": {"rules:\n  - repositories: [\"a/*\"]\n    keyless:\n      trustedRoot: root.json\n      identities: [{subject: \"a[\", issuer: i}]\n", `trust.yaml:2: keyless identity subject "a["`},
		"no issuer":           {"rules:\n  - repositories: [\"a/*\"]\n    keyless:\n      trustedRoot: root.json\n      identities: [{subject: s}]\n", "trust.yaml:2: a keyless identity needs a subject and an issuer"},
		"root without logs or timestamps": {"rules:\n  - repositories: [\"a/*\"]\n    keyless:\n      trustedRoot: ca-only.json\n      identities: [{subject: s, issuer: i}]\n",
			"trust.yaml:2: trusted root ca-only.json names neither a transparency log nor a timestamp authority"},
		"root of nothing": {"rules:\n  - repositories: [\"a/*\"]\n    keyless:\n      trustedRoot: bare.json\n      identities: [{subject: s, issuer: i}]\n", "trust.yaml:2: trusted root bare.json names no certificate authority"},
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
