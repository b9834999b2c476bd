package trust_test

import (
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/imagebadger/imagebadger/internal/testing/supplyfix"
)

// newSigstore starts an in-memory Sigstore of its own keys (see
// supplyfix.Sigstore for why it is made here).
func newSigstore(t testing.TB) *supplyfix.Sigstore {
	t.Helper()
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	return &supplyfix.Sigstore{
		VS: vs,
		AttestAt: func(identity, issuer string, statement []byte, at time.Time, proof bool) (verify.SignedEntity, error) {
			return vs.AttestAtTime(identity, issuer, statement, at, proof)
		},
		SignAt: func(identity, issuer string, artifact []byte, at time.Time) (verify.SignedEntity, error) {
			return vs.SignAtTime(identity, issuer, artifact, at)
		},
	}
}
