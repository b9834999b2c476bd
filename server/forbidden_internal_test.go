package server

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/images"
)

// A write refused to a viewer who may read but not write (a read token) is
// docs/API.md's 403 forbidden, however it is wrapped.
func TestForbiddenIsMapped(t *testing.T) {
	err := fmt.Errorf("refresh: %w", &analysis.Error{Kind: images.ErrForbidden, Message: "read only"})
	if code, status := statusOf(err); code != "forbidden" || status != http.StatusForbidden {
		t.Fatalf("statusOf = %q %d, want forbidden 403", code, status)
	}
}
