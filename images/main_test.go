package images_test

import (
	"testing"

	"github.com/imagebadger/imagebadger/internal/testing/stack"
)

// TestMain stops the PostgreSQL cluster the tests on both engines share.
func TestMain(m *testing.M) { stack.Main(m) }
