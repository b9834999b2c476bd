// Package e2e_test runs the built imagebadger binary against Debian's CNCF
// distribution registry on loopback and judges its answers by what crane and
// skopeo, independent tools, report for the same images.
package e2e_test

import (
	"net/http"
	"testing"

	"github.com/imagebadger/imagebadger/internal/testing/apispec"
	"github.com/imagebadger/imagebadger/internal/testing/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// client is the HTTP client of the end-to-end tests: every answer of the
// JSON API that passes through it is checked against docs/openapi.yaml.
func client(t testing.TB) *http.Client {
	return &http.Client{Transport: apispec.Transport(t, http.DefaultTransport)}
}
