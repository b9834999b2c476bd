package store_test

import (
	"context"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/store"
)

// TestTrackedItemsAreShared: due items are claimed by one worker at a time,
// come back once their lease expires (the holder died), are due again when
// their holder says, and are forgotten once nobody wants them.
func TestTrackedItemsAreShared(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ib.db"))
	repo := analysis.Repository{Registry: "r.example", Name: "acme/app"}
	var items []store.Tracked
	for _, tag := range []string{"", "1", "2", "3", "4"} {
		items = append(items, store.Tracked{Repo: repo, Tag: tag})
	}
	if err := s.WantTracked(ctx, items, t0); err != nil {
		t.Fatal(err)
	}
	a, err := s.ClaimTracked(ctx, "a", t0, time.Minute, 3)
	if err != nil || len(a) != 3 {
		t.Fatalf("a claimed %v (%v), want 3", a, err)
	}
	b, err := s.ClaimTracked(ctx, "b", t0, time.Minute, 10)
	if err != nil || len(b) != 2 {
		t.Fatalf("b claimed %v (%v), want the 2 a left", b, err)
	}
	seen := map[string]bool{}
	for _, it := range append(a, b...) {
		if seen[it.Tag] {
			t.Errorf("%q claimed twice", it.Tag)
		}
		seen[it.Tag] = true
	}
	if c, _ := s.ClaimTracked(ctx, "c", t0.Add(30*time.Second), time.Minute, 10); len(c) != 0 {
		t.Errorf("c claimed %v while every lease holds", c)
	}
	// a finishes its items; b dies holding its own.
	for _, it := range a {
		if err := s.RescheduleTracked(ctx, "a", it, t0.Add(10*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	c, err := s.ClaimTracked(ctx, "c", t0.Add(2*time.Minute), time.Minute, 10)
	if err != nil || len(c) != 2 {
		t.Fatalf("after b's leases expired c claimed %v (%v), want b's 2", c, err)
	}
	// b's late reschedule does not free what c holds now.
	if err := s.RescheduleTracked(ctx, "b", b[0], t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.ClaimTracked(ctx, "d", t0.Add(2*time.Minute+time.Second), time.Minute, 10); len(d) != 0 {
		t.Errorf("d claimed %v, which c holds", d)
	}
	for _, it := range c {
		if err := s.RescheduleTracked(ctx, "c", it, t0.Add(10*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	due, _ := s.ClaimTracked(ctx, "e", t0.Add(10*time.Minute), time.Minute, 10)
	var tags []string
	for _, it := range due {
		tags = append(tags, it.Tag)
	}
	sort.Strings(tags)
	if len(tags) != 5 {
		t.Errorf("at their next time all 5 are due again, got %v", tags)
	}
	// Wanted again later (all but "4"), then what nobody wanted is dropped.
	if err := s.WantTracked(ctx, items[:4], t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.ForgetUnwanted(ctx, t0.Add(30*time.Minute)); err != nil || n != 1 {
		t.Errorf("forgot %d (%v), want 1", n, err)
	}
}

// TestTrackedLeasesRenew: a holder that renews keeps its items past the
// first lease; others get them once the renewed lease has run out, and a
// renewal does not take back what another has claimed since.
func TestTrackedLeasesRenew(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ib.db"))
	repo := analysis.Repository{Registry: "r.example", Name: "acme/app"}
	if err := s.WantTracked(ctx, []store.Tracked{{Repo: repo}, {Repo: repo, Tag: "1"}}, t0); err != nil {
		t.Fatal(err)
	}
	if a, err := s.ClaimTracked(ctx, "a", t0, time.Minute, 1); err != nil || len(a) != 1 {
		t.Fatalf("a claimed %v (%v), want 1", a, err)
	}
	if err := s.RenewTracked(ctx, "a", t0.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	// The unclaimed item is not a's: the renewal leaves it free.
	b, err := s.ClaimTracked(ctx, "b", t0.Add(2*time.Minute), time.Hour, 10)
	if err != nil || len(b) != 1 {
		t.Fatalf("b claimed %v (%v) within a's renewed lease, want only the free item", b, err)
	}
	c, err := s.ClaimTracked(ctx, "c", t0.Add(3*time.Minute), time.Minute, 10)
	if err != nil || len(c) != 1 {
		t.Fatalf("c claimed %v (%v) once a's renewed lease ran out, want a's item", c, err)
	}
	if err := s.RenewTracked(ctx, "a", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.ClaimTracked(ctx, "d", t0.Add(5*time.Minute), time.Minute, 10); len(d) != 1 || d[0] != c[0] {
		t.Errorf("d claimed %v after c's lease ran out, want c's item (a's late renewal does not take it back)", d)
	}
}
