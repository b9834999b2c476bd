package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/store"
)

// TestFanOutLease: one owner holds the fan-out at a time; another gets
// ErrFanOutHeld until the lease expires or is released; a step whose owner
// lost the lease, or whose cursor is not where the step starts, writes
// nothing and says ErrFanOutLost.
func TestFanOutLease(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ib.db"))
	addSub(t, s, "sub_tag", "1.0", store.SubscriptionActive)
	if behind, err := s.FanOutBehind(ctx); err != nil || behind {
		t.Fatalf("a new database's fan-out is behind: %v, %v", behind, err)
	}
	record(t, s, subRepo, "1.0", desc("sha256:a"), t0)
	if behind, err := s.FanOutBehind(ctx); err != nil || !behind {
		t.Fatalf("after a change the fan-out is not behind: %v, %v", behind, err)
	}
	cur, err := s.ClaimFanOut(ctx, "a", t0, time.Minute)
	if err != nil || cur != (store.FanOutCursor{}) {
		t.Fatalf("first claim: %+v, %v", cur, err)
	}
	if _, err := s.ClaimFanOut(ctx, "b", t0.Add(59*time.Second), time.Minute); !errors.Is(err, store.ErrFanOutHeld) {
		t.Fatalf("claim while held: %v, want ErrFanOutHeld", err)
	}
	if again, err := s.ClaimFanOut(ctx, "a", t0.Add(30*time.Second), time.Minute); err != nil || again != cur {
		t.Fatalf("renewal: %+v, %v", again, err)
	}
	set, err := s.NextChangeSet(ctx, cur.Position)
	if err != nil || len(set) != 1 {
		t.Fatalf("next set: %+v, %v", set, err)
	}
	step := func(owner string, from store.FanOutCursor, key string) (int, error) {
		return s.CommitFanOut(ctx, store.FanOutStep{Owner: owner, From: from, To: store.FanOutCursor{Position: set[0].ID},
			Now: t0.Add(time.Minute), Lease: time.Minute,
			Events: []store.OutboxEvent{{Key: key, ID: "msg_" + key, Type: "image.updated", Registry: subRepo.Registry,
				Repository: subRepo.Name, Tag: "1.0", Payload: []byte(`{}`), At: t0}},
			Deliveries: []store.EventDelivery{{SubscriptionID: "sub_tag", EventKey: key, Type: "image.updated", At: t0}}})
	}
	// The lease renewed at t0+30s lasts until t0+90s: b takes it after.
	if _, err := s.ClaimFanOut(ctx, "b", t0.Add(91*time.Second), time.Minute); err != nil {
		t.Fatalf("claim after the lease expired: %v", err)
	}
	if _, err := step("a", cur, "stale"); !errors.Is(err, store.ErrFanOutLost) {
		t.Errorf("a step of the old owner: %v, want ErrFanOutLost", err)
	}
	if _, err := step("b", store.FanOutCursor{Position: 99}, "elsewhere"); !errors.Is(err, store.ErrFanOutLost) {
		t.Errorf("a step from another place: %v, want ErrFanOutLost", err)
	}
	if n, err := step("b", cur, "good"); err != nil || n != 1 {
		t.Fatalf("the owner's step: %d, %v", n, err)
	}
	if got := deliveredTo(t, s, "sub_tag"); !cmp.Equal(got["sub_tag"], []string{"msg_good"}) {
		t.Errorf("deliveries %v, want the owner's step's alone", got)
	}
	if behind, err := s.FanOutBehind(ctx); err != nil || behind {
		t.Errorf("after the step the fan-out is behind: %v, %v", behind, err)
	}
	if err := s.ReleaseFanOut(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if cur, err := s.ClaimFanOut(ctx, "c", t0.Add(92*time.Second), time.Minute); err != nil || cur.Position != set[0].ID {
		t.Errorf("claim after the release: %+v, %v", cur, err)
	}
}

// TestChangeLogViews: the log's reads that the fan-out and the as-of views
// of parent detection make: a change set whole, a repository's tags as they
// stood after a change, the tags it had up to a change, and the tags that
// ever pointed at an image up to a change.
func TestChangeLogViews(t *testing.T) {
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "ib.db")
	s := open(t, dbPath)
	other := analysis.Repository{Registry: subRepo.Registry, Name: "acme/other"}
	record(t, s, subRepo, "1", desc("sha256:a"), t0)
	if _, err := s.RecordTags(ctx, []store.TagRecord{
		{Repo: subRepo, Tag: "2", To: desc("sha256:b"), At: t0},
		{Repo: subRepo, Tag: "latest", To: desc("sha256:b"), At: t0},
	}); err != nil {
		t.Fatal(err)
	}
	record(t, s, other, "1", desc("sha256:z"), t0)
	record(t, s, subRepo, "1", desc("sha256:b"), t0)
	var all []store.TagChange
	for pos := int64(0); ; {
		set, err := s.NextChangeSet(ctx, pos)
		if err != nil {
			t.Fatal(err)
		}
		if len(set) == 0 {
			break
		}
		all = append(all, set...)
		pos = set[len(set)-1].ID
		if len(set) == 2 && (set[0].Set != set[1].Set || set[0].Tag != "2" || set[1].Tag != "latest") {
			t.Errorf("the set of one RecordTags: %+v", set)
		}
	}
	if diff := cmp.Diff([]string{"created 1 →sha256:a", "created 2 →sha256:b", "created latest →sha256:b", "created 1 →sha256:z",
		"moved 1 sha256:a→sha256:b"}, summary(all)); diff != "" {
		t.Fatalf("the log in order (-want +got):\n%s", diff)
	}
	// As of each change: 1 created at a; 2 and latest created at b; then
	// (another repository's change, then) 1 moved to b.
	for i, want := range []map[string]string{
		{"1": "sha256:a"},
		{"1": "sha256:a", "2": "sha256:b"},
		{"1": "sha256:a", "2": "sha256:b", "latest": "sha256:b"},
		{"1": "sha256:a", "2": "sha256:b", "latest": "sha256:b"},
		{"1": "sha256:b", "2": "sha256:b", "latest": "sha256:b"},
	} {
		got, err := s.TagsAsOf(ctx, subRepo, all[i].ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("tags as of change %d (-want +got):\n%s", all[i].ID, diff)
		}
	}
	// A tag the log holds nothing of (recorded before the log began) is
	// where it points, whatever the position.
	if _, err := rawDB(t, dbPath).Exec(`INSERT INTO tags (registry, repository, tag, digest, media_type, first_seen_at, changed_at, checked_at)
		VALUES ('` + subRepo.Registry + `', '` + subRepo.Name + `', 'old', 'sha256:o', 'm', 0, 0, 0)`); err != nil {
		t.Fatal(err)
	}
	if got, err := s.TagsAsOf(ctx, subRepo, all[0].ID); err != nil || got["old"] != "sha256:o" {
		t.Errorf("a tag from before the log, as of the first change: %v, %v", got, err)
	}
	if tags, err := s.TagsUpTo(ctx, subRepo, all[1].ID); err != nil || !cmp.Equal(tags, []string{"1", "2"}) {
		t.Errorf("tags up to the second change: %v, %v", tags, err)
	}
	// sha256:b: "2" and "latest" from their creation, "1" since its move.
	for _, tc := range []struct {
		upTo int64
		want []string
	}{{0, []string{"1", "2", "latest"}}, {all[4].ID, []string{"1", "2", "latest"}}, {all[3].ID, []string{"2", "latest"}}, {all[0].ID, nil}} {
		if got, err := s.TagsEverAt(ctx, subRepo, []string{"sha256:b"}, tc.upTo); err != nil || !cmp.Equal(got, tc.want, cmpopts.EquateEmpty()) {
			t.Errorf("tags ever at sha256:b up to %d: %v, %v; want %v", tc.upTo, got, err, tc.want)
		}
	}
}

// TestChangeLogIsReadInCommitOrder: two stores (two processes, on
// PostgreSQL) record moves at once while a reader follows the log by
// position, as the fan-out does; every change is read exactly once. On
// PostgreSQL a change's ID is taken under the change log's stamp lock, so
// no change with a smaller ID commits after one the reader has passed;
// SQLite's writers take turns.
func TestChangeLogIsReadInCommitOrder(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ib.db")
	writers := []*store.Store{open(t, path), open(t, path)}
	reader := open(t, path)
	const perWriter = 60
	var wg sync.WaitGroup
	for w, s := range writers {
		wg.Go(func() {
			for i := range perWriter {
				repo := analysis.Repository{Registry: subRepo.Registry, Name: fmt.Sprintf("acme/w%d-%d", w, i%5)}
				if _, err := s.RecordTag(ctx, store.TagRecord{Repo: repo, Tag: fmt.Sprint(i), To: desc(fmt.Sprintf("sha256:%d-%d", w, i)), At: t0}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var seen []int64
	pos := int64(0)
	follow := func() {
		for {
			set, err := reader.NextChangeSet(ctx, pos)
			if err != nil {
				t.Fatal(err)
			}
			if len(set) == 0 {
				return
			}
			for _, c := range set {
				seen = append(seen, c.ID)
			}
			pos = set[len(set)-1].ID
		}
	}
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		follow()
	}
	follow()
	var ids []int64
	for pos := int64(0); ; {
		set, err := reader.NextChangeSet(ctx, pos)
		if err != nil {
			t.Fatal(err)
		}
		if len(set) == 0 {
			break
		}
		for _, c := range set {
			ids = append(ids, c.ID)
		}
		pos = set[len(set)-1].ID
	}
	if len(ids) != 2*perWriter || !slices.Equal(seen, ids) {
		t.Errorf("the reader following the log saw %d changes, the log holds %d (%d written); missed: %v",
			len(seen), len(ids), 2*perWriter, missing(ids, seen))
	}
}

func missing(all, seen []int64) []int64 {
	var out []int64
	for _, id := range all {
		if !slices.Contains(seen, id) {
			out = append(out, id)
		}
	}
	return out
}
