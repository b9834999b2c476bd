// Package e2e_test runs the built imagebadger binary against Debian's CNCF
// distribution registry on loopback and judges its answers by what crane and
// skopeo, independent tools, report for the same images.
package e2e_test

import (
	"testing"

	"imagebadger/internal/testing/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
