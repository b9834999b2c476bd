package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/store"
)

func TestSupplyChainRecord(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ib.db"))
	repo := analysis.Repository{Registry: "ghcr.io", Name: "acme/app"}
	other := analysis.Repository{Registry: "ghcr.io", Name: "acme/fork"}
	const d = "sha256:aa"
	if _, err := s.SupplyChain(ctx, repo, d); !errors.Is(err, analysis.ErrNotFound) {
		t.Fatalf("never looked: err = %v, want not found", err)
	}
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	before := s.Stamp(store.RepositoryScope(repo))
	changed, err := s.RecordSupplyChain(ctx, repo, d, store.SupplyRecord{Body: []byte(`{"signatures":[]}`), SBOMDigest: "sha256:bb", Checked: at})
	if err != nil || !changed {
		t.Fatalf("first record: changed %v, %v", changed, err)
	}
	if s.Stamp(store.RepositoryScope(repo)) == before {
		t.Error("a new supply chain left the repository's stamp as it was")
	}
	got, err := s.SupplyChain(ctx, repo, d)
	if err != nil || string(got.Body) != `{"signatures":[]}` || got.SBOMDigest != "sha256:bb" || !got.Checked.Equal(at) {
		t.Fatalf("read back %+v, %v", got, err)
	}
	if _, err := s.SupplyChain(ctx, other, d); !errors.Is(err, analysis.ErrNotFound) {
		t.Errorf("another repository's look: err = %v, want not found (signatures live beside the image)", err)
	}
	// The same found again: only checked_at moves, no stamp.
	stamp := s.Stamp(store.RepositoryScope(repo))
	later := at.Add(time.Hour)
	if changed, err := s.RecordSupplyChain(ctx, repo, d, store.SupplyRecord{Body: []byte(`{"signatures":[]}`), SBOMDigest: "sha256:bb", Checked: later}); err != nil || changed {
		t.Fatalf("same again: changed %v, %v", changed, err)
	}
	if s.Stamp(store.RepositoryScope(repo)) != stamp {
		t.Error("an unchanged look bumped the stamp")
	}
	if got, _ := s.SupplyChain(ctx, repo, d); !got.Checked.Equal(later) {
		t.Errorf("checked = %v, want %v", got.Checked, later)
	}
	if changed, err := s.RecordSupplyChain(ctx, repo, d, store.SupplyRecord{Body: []byte(`{"signatures":[{}]}`), Checked: later}); err != nil || !changed {
		t.Fatalf("a new signature: changed %v, %v", changed, err)
	}
	if got, _ := s.SupplyChain(ctx, repo, d); got.SBOMDigest != "" || string(got.Body) != `{"signatures":[{}]}` {
		t.Errorf("after the change: %+v", got)
	}
}
