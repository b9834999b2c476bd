// Package trust judges signatures under the trust rules of docs/API.md
// (`--trust FILE`): which keys, identities and trust stores vouch for which
// repositories. Verification is sigstore's (its signature verifiers for
// cosign key signatures; sigstore-go's verify package for sigstore bundles
// and keyless signatures, against a trusted root read from a file) and the
// Notary Project's (notation-core-go's envelopes), offline: it never dials
// anything (the registry client has already read what is verified), so a
// rule cannot make the service reach a transparency log or a key server.
package trust

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"go.yaml.in/yaml/v4"

	"github.com/imagebadger/imagebadger/analysis"
)

// MaxRulesBytes bounds the rules file; real ones are a few lines.
const MaxRulesBytes = 1 << 20

// Rules are the parsed trust rules, in file order: the first rule whose
// pattern matches a repository applies to it.
type Rules struct {
	rules []*Rule
}

// Rule is one entry of the rules file.
type Rule struct {
	// Patterns are path.Match patterns on "registry/repository".
	Patterns []string
	// Line is where the rule starts in its file, for messages.
	Line int
	keys []*key
	// Keyless is the rule's trusted root and identities for sigstore
	// bundles and cosign keyless signatures; keyless is it made ready.
	Keyless *Keyless
	keyless *keylessVerifier
	// Notation is the rule's Notation trust store, a directory of
	// certificates (see JudgeNotation); notationCerts are what it holds.
	Notation      string
	notationCerts []*x509.Certificate
}

// Keyless is a rule's trusted root and identities for sigstore bundles and
// cosign keyless signatures.
type Keyless struct {
	TrustedRoot string
	Identities  []Identity
}

// Identity is a certificate subject (a path.Match pattern) and its issuer.
type Identity struct {
	Subject string `yaml:"subject"`
	Issuer  string `yaml:"issuer"`
}

// key is a cosign public key and the name it is shown by; bundles is
// sigstore-go's verifier of bundles signed by it.
type key struct {
	file     string
	id       string
	verifier signature.Verifier
	bundles  *verify.Verifier
}

type fileSpec struct {
	Rules []ruleSpec `yaml:"rules"`
}

type ruleSpec struct {
	Repositories []string `yaml:"repositories"`
	Cosign       *struct {
		Keys []string `yaml:"keys"`
	} `yaml:"cosign"`
	Keyless *struct {
		TrustedRoot string     `yaml:"trustedRoot"`
		Identities  []Identity `yaml:"identities"`
	} `yaml:"keyless"`
	Notation *struct {
		TrustStore string `yaml:"trustStore"`
	} `yaml:"notation"`
}

// Load reads and checks the rules file at file. A file that does not parse,
// a bad pattern, or a key that cannot be read is an error naming the line.
func Load(file string) (*Rules, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("trust: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxRulesBytes+1))
	if err != nil {
		return nil, fmt.Errorf("trust: %s: %w", file, err)
	}
	if len(data) > MaxRulesBytes {
		return nil, fmt.Errorf("trust: %s is larger than %d KiB", file, MaxRulesBytes>>10)
	}
	return Parse(data, file)
}

// Parse reads rules from data; file names it in messages, and relative key
// and root paths are taken from its directory.
func Parse(data []byte, file string) (*Rules, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var spec fileSpec
	if err := dec.Decode(&spec); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("trust: %s: %w", file, err)
	}
	// A second pass for the line of each rule.
	var lines struct {
		Rules []yaml.Node `yaml:"rules"`
	}
	if err := yaml.Unmarshal(data, &lines); err != nil {
		return nil, fmt.Errorf("trust: %s: %w", file, err)
	}
	dir := filepath.Dir(file)
	rs := &Rules{}
	for i, s := range spec.Rules {
		line := 0
		if i < len(lines.Rules) {
			line = lines.Rules[i].Line
		}
		at := fmt.Sprintf("%s:%d", file, line)
		if len(s.Repositories) == 0 {
			return nil, fmt.Errorf("trust: %s: a rule needs repositories", at)
		}
		for _, p := range s.Repositories {
			if _, err := path.Match(p, ""); err != nil {
				return nil, fmt.Errorf("trust: %s: repository pattern %q: %w", at, p, err)
			}
		}
		r := &Rule{Patterns: s.Repositories, Line: line}
		if s.Cosign != nil {
			for _, kf := range s.Cosign.Keys {
				k, err := loadKey(resolve(dir, kf))
				if err != nil {
					return nil, fmt.Errorf("trust: %s: key %s: %w", at, kf, err)
				}
				r.keys = append(r.keys, k)
			}
		}
		if s.Keyless != nil {
			if s.Keyless.TrustedRoot == "" || len(s.Keyless.Identities) == 0 {
				return nil, fmt.Errorf("trust: %s: keyless needs trustedRoot and identities", at)
			}
			tr := resolve(dir, s.Keyless.TrustedRoot)
			kv, err := newKeyless(tr, s.Keyless.TrustedRoot, s.Keyless.Identities)
			if err != nil {
				return nil, fmt.Errorf("trust: %s: %w", at, err)
			}
			r.Keyless, r.keyless = &Keyless{TrustedRoot: tr, Identities: s.Keyless.Identities}, kv
		}
		if s.Notation != nil {
			ts := resolve(dir, s.Notation.TrustStore)
			if st, err := os.Stat(ts); err != nil || !st.IsDir() {
				return nil, fmt.Errorf("trust: %s: notation trust store %s is not a readable directory", at, s.Notation.TrustStore)
			}
			certs, err := loadTrustStore(ts)
			if err != nil {
				return nil, fmt.Errorf("trust: %s: notation trust store %s: %w", at, s.Notation.TrustStore, err)
			}
			r.Notation, r.notationCerts = ts, certs
		}
		rs.rules = append(rs.rules, r)
	}
	return rs, nil
}

func resolve(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// loadKey reads a PEM public key as cosign writes them.
func loadKey(file string) (*key, error) {
	pemBytes, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
	if err != nil {
		return nil, err
	}
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	k := &key{file: file, id: fmt.Sprintf("%s (sha256:%x)", filepath.Base(file), sum[:8]), verifier: v}
	if k.bundles, err = keyBundleVerifier(k); err != nil {
		return nil, err
	}
	return k, nil
}

// For returns the rule that applies to repo, nil when none does.
func (rs *Rules) For(repo analysis.Repository) *Rule {
	if rs == nil {
		return nil
	}
	name := repo.String()
	for _, r := range rs.rules {
		for _, p := range r.Patterns {
			if ok, _ := path.Match(p, name); ok {
				return r
			}
		}
	}
	return nil
}

// Applies reports whether a rule with cosign keys covers repo, so that the
// registry client reads a key signature's payload only when it will be
// judged.
func (rs *Rules) Applies(repo analysis.Repository) bool {
	r := rs.For(repo)
	return r != nil && len(r.keys) > 0
}

// VerifyCosign is Cosign under the rule for repo, in the registry
// client's terms.
func (rs *Rules) VerifyCosign(repo analysis.Repository, payload []byte, sig, subject string) (verified bool, signer, reason string) {
	v := rs.For(repo).Cosign(payload, sig, subject)
	return v.Verified, v.Signer, v.Reason
}

// Verdict is what a rule says of one signature.
type Verdict struct {
	// Applies is false when the rule has nothing to judge this kind of
	// signature by (verified stays null).
	Applies  bool
	Verified bool
	Signer   string
	Reason   string
}

// simpleSigning is the payload cosign signs: the image's digest, by name.
type simpleSigning struct {
	Critical struct {
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
}

// Cosign judges a cosign key signature: sig (base64, from the layer's
// annotation) over payload (the layer), which must name subject, the
// digest it was found for. It verifies with each of the rule's keys in
// turn; the first that verifies is the signer.
func (r *Rule) Cosign(payload []byte, sig, subject string) Verdict {
	if r == nil || len(r.keys) == 0 {
		return Verdict{}
	}
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return Verdict{Applies: true, Reason: "the signature is not base64"}
	}
	var p simpleSigning
	if err := json.Unmarshal(payload, &p); err != nil || p.Critical.Type != "cosign container image signature" {
		return Verdict{Applies: true, Reason: "the signed payload is not a cosign image signature"}
	}
	reason := "no trusted key verifies the signature"
	for _, k := range r.keys {
		if err := verifyWith(k, raw, payload); err != nil {
			continue
		}
		if p.Critical.Image.DockerManifestDigest != subject {
			// A good signature of another image, copied beside this one.
			reason = fmt.Sprintf("the signature by %s is of %s, not of this image", k.id, analysis.ShortDigest(p.Critical.Image.DockerManifestDigest))
			continue
		}
		return Verdict{Applies: true, Verified: true, Signer: k.id}
	}
	return Verdict{Applies: true, Reason: reason}
}

// verifyWith checks a message signature against one key: the signature
// over the payload itself, as cosign signs it. sigstore-go's verify package
// (linked for bundles and keyless signatures, see sigstore.go) would do the
// same for a key-only message signature once the payload is wrapped as a
// bundle; the signature verifier is called directly because there is
// nothing else to check: no certificate, log entry or timestamp.
func verifyWith(k *key, sig, payload []byte) error {
	return k.verifier.VerifySignature(bytes.NewReader(sig), bytes.NewReader(payload))
}
