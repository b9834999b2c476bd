package trust_test

import (
	"testing"

	"github.com/sigstore/sigstore-go/pkg/testing/ca"

	"github.com/imagebadger/imagebadger/internal/testing/supplyfix"
)

// newSigstore starts an in-memory Sigstore of its own keys (see
// supplyfix.Sigstore for why it is made here).
func newSigstore(t testing.TB) *supplyfix.Sigstore {
	vs, err := ca.NewVirtualSigstore()
	return supplyfix.NewSigstore(t, vs, err)
}
