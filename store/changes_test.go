package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/store"
)

func desc(d string) analysis.Descriptor { return analysis.Descriptor{Digest: d, MediaType: "m"} }

// summary writes a change as kind tag previous→digest, for comparisons.
func summary(cs []store.TagChange) []string {
	var out []string
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%s %s %s→%s", c.Kind, c.Tag, c.Previous, c.Digest))
	}
	return out
}

// TestHistoryRecordsEachChangeOnce: created, moved and deleted are each
// recorded once, newest first; checks that change nothing add nothing; a
// tag pushed again after its deletion is a new tag; pages follow each other
// through the cursor without gaps or repeats.
func TestHistoryRecordsEachChangeOnce(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ib.db"))
	repo := analysis.Repository{Registry: "r.example", Name: "acme/app"}
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }

	record(t, s, repo, "1", desc("sha256:a"), at(0))
	record(t, s, repo, "1", desc("sha256:a"), at(1)) // checked again
	record(t, s, repo, "2", desc("sha256:a"), at(2))
	record(t, s, repo, "1", desc("sha256:b"), at(3))
	if c, err := s.RecordDeletion(ctx, store.TagDeletion{Repo: repo, Tag: "1", Previous: "sha256:a", At: at(4)}); !errors.Is(err, store.ErrTagMoved) || c.Previous != "sha256:b" {
		t.Errorf("deletion from a stale digest = %+v, %v; want ErrTagMoved from sha256:b", c, err)
	}
	if c, err := s.RecordDeletion(ctx, store.TagDeletion{Repo: repo, Tag: "1", Previous: "sha256:b", At: at(5)}); err != nil || !c.Moved {
		t.Fatalf("deletion = %+v, %v", c, err)
	}
	// Noticed again (a poll, a listing): nothing more is recorded.
	if c, err := s.RecordDeletion(ctx, store.TagDeletion{Repo: repo, Tag: "1", At: at(6)}); err != nil || c.Moved {
		t.Errorf("second deletion = %+v, %v; want nothing recorded", c, err)
	}
	// A tag never known is not "deleted".
	if c, err := s.RecordDeletion(ctx, store.TagDeletion{Repo: repo, Tag: "never", At: at(6)}); err != nil || c.Moved {
		t.Errorf("deletion of an unknown tag = %+v, %v", c, err)
	}
	if _, err := s.Tag(ctx, repo, "never"); err == nil || !errors.Is(err, analysis.ErrNotFound) {
		t.Errorf("unknown tag: %v", err)
	} else if _, ok := analysis.DeletedTag(err); ok {
		t.Errorf("an unknown tag reads as deleted: %v", err)
	}

	_, err := s.Tag(ctx, repo, "1")
	d, ok := analysis.DeletedTag(err)
	if !errors.Is(err, analysis.ErrNotFound) || !ok {
		t.Fatalf("deleted tag reads %v, want not found with the deletion", err)
	}
	want := analysis.TagDeleted{Ref: repo.WithTag("1"), Digest: "sha256:b", At: at(5), Checked: at(6)}
	if diff := cmp.Diff(want, *d); diff != "" {
		t.Errorf("deletion (-want +got):\n%s", diff)
	}
	if msg, _ := analysis.PublicMessage(err); msg != "r.example/acme/app:1 was removed from its registry (noticed 26 Nov 2026 10:05 UTC); it last pointed at sha256:b" {
		t.Errorf("message %q", msg)
	}
	if tags, _ := s.TagsAt(ctx, repo, "sha256:b"); len(tags) != 0 {
		t.Errorf("a deleted tag is still listed at its digest: %v", tags)
	}
	rows, _ := s.RepositoryTags(ctx, repo)
	if len(rows) != 1 || rows[0].Tag != "2" {
		t.Errorf("repository tags after the deletion = %+v, want 2 alone", rows)
	}

	// Pushed again: a new tag.
	if c := record(t, s, repo, "1", desc("sha256:c"), at(7)); c.Previous != "" || !c.Moved {
		t.Errorf("tag pushed again = %+v, want new", c)
	}
	if st, err := s.Tag(ctx, repo, "1"); err != nil || st.Digest != "sha256:c" {
		t.Errorf("tag pushed again reads %+v, %v", st, err)
	}

	all, more, err := s.History(ctx, store.HistoryQuery{Repo: repo, Limit: 50})
	if err != nil || more {
		t.Fatalf("history: more %v, %v", more, err)
	}
	wantAll := []string{"created 1 →sha256:c", "deleted 1 sha256:b→", "moved 1 sha256:a→sha256:b", "created 2 →sha256:a", "created 1 →sha256:a"}
	if diff := cmp.Diff(wantAll, summary(all)); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	if !all[0].At.Equal(at(7)) || !all[1].At.Equal(at(5)) || !all[4].At.Equal(at(0)) {
		t.Errorf("times %v %v %v", all[0].At, all[1].At, all[4].At)
	}
	// Pages of 2 through the cursor give the same changes in the same order.
	var paged []store.TagChange
	var before int64
	for range 10 {
		page, more, err := s.History(ctx, store.HistoryQuery{Repo: repo, Limit: 2, Before: before})
		if err != nil {
			t.Fatal(err)
		}
		paged = append(paged, page...)
		if !more {
			break
		}
		before = page[len(page)-1].ID
	}
	if diff := cmp.Diff(summary(all), summary(paged)); diff != "" {
		t.Errorf("paged history (-all +paged):\n%s", diff)
	}
	one, _, _ := s.History(ctx, store.HistoryQuery{Repo: repo, Tag: "2", Limit: 50})
	if diff := cmp.Diff([]string{"created 2 →sha256:a"}, summary(one)); diff != "" {
		t.Errorf("history of tag 2 (-want +got):\n%s", diff)
	}
	if known, _ := s.KnownRepository(ctx, repo); !known {
		t.Error("repository with history is not known")
	}
	if known, _ := s.KnownRepository(ctx, analysis.Repository{Registry: "r.example", Name: "acme/other"}); known {
		t.Error("a repository never seen is known")
	}
}

// TestRecordTagsIsOneCompareAndSet: a batch is recorded whole or not at all.
func TestRecordTagsIsOneCompareAndSet(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ib.db"))
	repo := analysis.Repository{Registry: "r.example", Name: "acme/base"}
	record(t, s, repo, "1", desc("sha256:a"), t0)
	record(t, s, repo, "1.0", desc("sha256:a"), t0)
	record(t, s, repo, "1.0", desc("sha256:z"), t0) // moved behind the caller's back
	checks, err := s.RecordTags(ctx, []store.TagRecord{
		{Repo: repo, Tag: "1", Previous: "sha256:a", To: desc("sha256:b"), At: t0.Add(time.Minute)},
		{Repo: repo, Tag: "1.0", Previous: "sha256:a", To: desc("sha256:b"), At: t0.Add(time.Minute)},
	})
	if !errors.Is(err, store.ErrTagMoved) || len(checks) != 2 || checks[1].Previous != "sha256:z" {
		t.Fatalf("batch with a stale tag = %+v, %v; want ErrTagMoved naming sha256:z", checks, err)
	}
	if st, _ := s.Tag(ctx, repo, "1"); st.Digest != "sha256:a" {
		t.Errorf("a refused batch moved tag 1 to %s", st.Digest)
	}
	checks, err = s.RecordTags(ctx, []store.TagRecord{
		{Repo: repo, Tag: "1", Previous: "sha256:a", To: desc("sha256:b"), At: t0.Add(time.Minute)},
		{Repo: repo, Tag: "1.0", Previous: "sha256:z", To: desc("sha256:b"), At: t0.Add(time.Minute)},
	})
	if err != nil || !checks[0].Moved || !checks[1].Moved {
		t.Fatalf("batch = %+v, %v", checks, err)
	}
	hist, _, _ := s.History(ctx, store.HistoryQuery{Repo: repo, Limit: 2})
	if diff := cmp.Diff([]string{"moved 1.0 sha256:z→sha256:b", "moved 1 sha256:a→sha256:b"}, summary(hist)); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
}

// TestMigrationCarriesMovesOver: a database made by the migrations before
// this branch's (0001–0007 and the later 0020 and 0031, as main's store
// left it), with moves in tag_history, opens with 0008 and 0009 applied:
// every move is in the new history (same order, kinds from the old
// digest), and its repositories are searchable. The migration runner
// applies every version it has not recorded, not only those above the
// highest, so numbers below an applied one still run.
func TestMigrationCarriesMovesOver(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db := rawDB(t, path)
	bind := func(q string) string { return q }
	if *engine == "postgres" {
		bind = func(q string) string {
			for i := 1; strings.Contains(q, "?"); i++ {
				q = strings.Replace(q, "?", fmt.Sprintf("$%d", i), 1)
			}
			return q
		}
	}
	if _, err := db.Exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join("migrations", *engine, "*.sql"))
	sort.Strings(files)
	var before []string
	for _, f := range files {
		// The schema as it was before 0008 and 0009 came: 0001-0007, 0020
		// and 0031 (later migrations run after these anyway).
		if n := filepath.Base(f)[:4]; n != "0008" && n != "0009" && n <= "0031" {
			before = append(before, f)
		}
	}
	if len(before) != 9 {
		t.Fatalf("found %d migrations besides 0008 and 0009, want main's 9: %v", len(before), before)
	}
	for _, f := range before {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(string(body)); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		version, _ := strconv.Atoi(filepath.Base(f)[:4])
		if _, err := db.Exec(bind(`INSERT INTO schema_migrations VALUES (?, ?, 0)`), version, filepath.Base(f)); err != nil {
			t.Fatal(err)
		}
	}
	for _, row := range []struct {
		tag      string
		old, new any
		at       int64
	}{{"1", nil, "sha256:a", 1000}, {"1", "sha256:a", "sha256:b", 2000}, {"2", nil, "sha256:b", 3000}} {
		if _, err := db.Exec(bind(`INSERT INTO tag_history (registry, repository, tag, old_digest, new_digest, moved_at) VALUES ('r.example', 'Acme/App', ?, ?, ?, ?)`),
			row.tag, row.old, row.new, row.at); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s := open(t, path)
	repo := analysis.Repository{Registry: "r.example", Name: "Acme/App"}
	hist, _, err := s.History(ctx, store.HistoryQuery{Repo: repo, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"created 2 →sha256:b", "moved 1 sha256:a→sha256:b", "created 1 →sha256:a"}, summary(hist)); diff != "" {
		t.Errorf("carried-over history (-want +got):\n%s", diff)
	}
	if got, _ := s.TagsEverAt(ctx, repo, []string{"sha256:a"}, 0); !cmp.Equal(got, []string{"1"}) {
		t.Errorf("tags ever at sha256:a = %v", got)
	}
	found, err := s.Search(ctx, "acme/ap", 10)
	if err != nil || len(found) != 1 || found[0].Repo != repo || !found[0].Changed.Equal(time.UnixMilli(3000).UTC()) {
		t.Errorf("search after the migration = %+v, %v", found, err)
	}
	// A change recorded now is numbered after the carried-over ones
	// (PostgreSQL's identity was moved past them), so it is the newest.
	record(t, s, repo, "2", desc("sha256:c"), time.UnixMilli(4000))
	hist, _, err = s.History(ctx, store.HistoryQuery{Repo: repo, Limit: 1})
	if err != nil || len(hist) != 1 || hist[0].Digest != "sha256:c" || hist[0].ID <= 3 {
		t.Errorf("newest change after the migration = %+v, %v", hist, err)
	}
}

// TestEventKeysAreOneOfAKind: an event whose key is stored already is not
// stored again, and a delivery naming the key goes to the stored event, so
// a fan-out step written again (after a crash) queues nothing twice; once
// claimed, a retry sends what the first attempt sent.
func TestEventKeysAreOneOfAKind(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ib.db"))
	addSub(t, s, "sub_tag", "1.0", store.SubscriptionActive)
	addSub(t, s, "sub_repo", "", store.SubscriptionActive)
	ev := func(id, tag, key, payload string) store.OutboxEvent {
		return store.OutboxEvent{Key: key, ID: id, Type: "base.updated", Registry: subRepo.Registry, Repository: subRepo.Name, Tag: tag,
			Payload: []byte(payload), At: t0}
	}
	tell(t, s, ev("msg_tag", "1.0", "k-tag", `{"n":1}`), store.EventDelivery{SubscriptionID: "sub_tag"})
	tell(t, s, ev("msg_repo", "", "k-repo", `{"n":1}`), store.EventDelivery{SubscriptionID: "sub_repo"})
	if n := tell(t, s, ev("msg_tag_again", "1.0", "k-tag", `{"n":2}`), store.EventDelivery{SubscriptionID: "sub_tag"}); n != 0 {
		t.Errorf("the same key told again queued %d deliveries", n)
	}
	tell(t, s, ev("msg_repo_again", "", "k-repo", `{"n":2}`), store.EventDelivery{SubscriptionID: "sub_repo"})
	got := deliveredTo(t, s, "sub_tag", "sub_repo")
	want := map[string][]string{"sub_tag": {"msg_tag"}, "sub_repo": {"msg_repo"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
	claims, err := s.ClaimDeliveries(ctx, "w", t0.Add(time.Second), time.Minute, 10, 0)
	if err != nil || len(claims) != 2 {
		t.Fatalf("claims = %d, %v", len(claims), err)
	}
	for _, c := range claims {
		if string(c.Payload) != `{"n":1}` {
			t.Errorf("%s carries %s, want the first payload stored", c.WebhookID, c.Payload)
		}
		if err := s.RecordAttempt(ctx, store.AttemptResult{DeliveryID: c.ID, Owner: "w", StartedAt: t0.Add(time.Second),
			StatusCode: 500, Error: "500", NextAttemptAt: t0.Add(2 * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	tell(t, s, ev("msg_tag_3", "1.0", "k-tag", `{"n":3}`), store.EventDelivery{SubscriptionID: "sub_tag"})
	again, err := s.ClaimDeliveries(ctx, "w", t0.Add(time.Minute), time.Minute, 10, 0)
	if err != nil || len(again) != 2 {
		t.Fatalf("second claims = %d, %v", len(again), err)
	}
	for _, c := range again {
		if string(c.Payload) != `{"n":1}` {
			t.Errorf("retry of %s carries %s, want what the first attempt sent", c.WebhookID, c.Payload)
		}
	}
}

// TestSearchFindsPartsOfNames: any part of at least two characters,
// case-insensitive, best matches first; LIKE's wildcards are plain
// characters.
func TestSearchFindsPartsOfNames(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ib.db"))
	names := []string{"acme/app", "acme/app-worker", "acme/webapp", "other/application", "acme/base", "x/a_b", "x/axb"}
	for i, n := range names {
		record(t, s, analysis.Repository{Registry: "r.example", Name: n}, "1", desc("sha256:a"), t0.Add(time.Duration(i)*time.Minute))
	}
	record(t, s, analysis.Repository{Registry: "r.example", Name: "acme/app"}, "2", desc("sha256:b"), t0.Add(time.Hour))
	search := func(term string) []string {
		t.Helper()
		rs, err := s.Search(ctx, term, 10)
		if err != nil {
			t.Fatalf("search %q: %v", term, err)
		}
		var out []string
		for _, r := range rs {
			out = append(out, r.Repo.Name)
		}
		return out
	}
	for _, tc := range []struct {
		term string
		want []string
	}{
		// Names whose last part starts with the term, in name order (the
		// exact one first), then the others, most recently known first.
		{"app", []string{"acme/app", "acme/app-worker", "other/application", "acme/webapp"}},
		{"APP", []string{"acme/app", "acme/app-worker", "other/application", "acme/webapp"}},
		{"pp", []string{"other/application", "acme/webapp", "acme/app-worker", "acme/app"}},
		{"acme/app", []string{"acme/app", "acme/app-worker"}},
		{"acme/", []string{"acme/base", "acme/webapp", "acme/app-worker", "acme/app"}},
		{"se", []string{"acme/base"}},
		{"a_b", []string{"x/a_b"}},
		{"r.example/acme/b", []string{"acme/base"}},
		{"nothing", nil},
		{"ü!", nil},
	} {
		if got := search(tc.term); !cmp.Equal(got, tc.want) {
			t.Errorf("search %q = %v, want %v", tc.term, got, tc.want)
		}
	}
	// A long name has more grams than one statement indexes: every part
	// of it is found, wherever its grams fall.
	long := "x/"
	for i := 0; len(long) < 600; i++ {
		long += strconv.FormatInt(int64(i*i*7919%1000003), 12)
	}
	record(t, s, analysis.Repository{Registry: "r.example", Name: long}, "1", desc("sha256:a"), t0)
	for _, at := range []int{2, 290, 580} {
		if got := search(long[at : at+12]); !cmp.Equal(got, []string{long}) {
			t.Errorf("search part %d of the long name = %v", at, got)
		}
	}
	rs, _ := s.Search(ctx, "acme/app", 1)
	if len(rs) != 1 || rs[0].Tag != "2" || rs[0].TagCount != 2 || !rs[0].Changed.Equal(t0.Add(time.Hour)) {
		t.Errorf("acme/app = %+v, want tag 2 (changed last) of 2, changed %s", rs, t0.Add(time.Hour))
	}
	if _, err := s.Search(ctx, "a", 10); !errors.Is(err, analysis.ErrInvalidRequest) {
		t.Errorf("one-character term: %v", err)
	}
}

// TestRacingStoresRecordEachChangeOnce: two stores on one database (two
// processes of a deployment, on PostgreSQL) record the same listing's moves
// and then the same deletion at once, in opposite tag orders: every change
// is recorded once, each batch as one change set, the loser of each race is told
// ErrTagMoved, and neither waits on the other for ever (the rows are locked
// in one order). Each store's cache then reads what the database holds.
func TestRacingStoresRecordEachChangeOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ib.db")
	a, b := open(t, path), open(t, path)
	repo := analysis.Repository{Registry: "r.example", Name: "acme/base"}
	tags := []string{"1", "1.0", "1.0.1", "latest"}
	batch := func(from, to string, order []string, at time.Time) []store.TagRecord {
		var rs []store.TagRecord
		for _, tag := range order {
			rs = append(rs, store.TagRecord{Repo: repo, Tag: tag, Previous: from, To: desc(to), At: at})
		}
		return rs
	}
	reversed := slices.Clone(tags)
	slices.Reverse(reversed)
	race := func(name string, fa, fb func() error) {
		t.Helper()
		errs := make(chan error, 2)
		go func() { errs <- fa() }()
		go func() { errs <- fb() }()
		var won, lost int
		for range 2 {
			switch err := <-errs; {
			case err == nil:
				won++
			case errors.Is(err, store.ErrTagMoved):
				lost++
			default:
				t.Fatalf("%s: %v", name, err)
			}
		}
		if won != 1 || lost != 1 {
			t.Errorf("%s: %d recorded and %d refused, want one each", name, won, lost)
		}
	}
	for round, step := range []struct{ from, to string }{{"", "sha256:a"}, {"sha256:a", "sha256:b"}} {
		at := t0.Add(time.Duration(round) * time.Minute)
		race("moves to "+step.to,
			func() error {
				_, err := a.RecordTags(ctx, batch(step.from, step.to, tags, at))
				return err
			},
			func() error {
				_, err := b.RecordTags(ctx, batch(step.from, step.to, reversed, at))
				return err
			})
	}
	race("deletion",
		func() error {
			_, err := a.RecordDeletion(ctx, store.TagDeletion{Repo: repo, Tag: "1.0.1", Previous: "sha256:b", At: t0.Add(2 * time.Minute)})
			return err
		},
		func() error {
			_, err := b.RecordDeletion(ctx, store.TagDeletion{Repo: repo, Tag: "1.0.1", Previous: "sha256:b", At: t0.Add(2 * time.Minute)})
			return err
		})

	hist, _, err := a.History(ctx, store.HistoryQuery{Repo: repo, Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, c := range summary(hist) {
		count[c]++
	}
	want := map[string]int{"deleted 1.0.1 sha256:b→": 1}
	for _, tag := range tags {
		want["created "+tag+" →sha256:a"] = 1
		want["moved "+tag+" sha256:a→sha256:b"] = 1
	}
	if diff := cmp.Diff(want, count); diff != "" {
		t.Errorf("changes recorded (-want +got):\n%s", diff)
	}
	// The log holds each batch as one set: the creations, the moves, the
	// deletion.
	var sets [][]string
	for pos := int64(0); ; {
		set, err := a.NextChangeSet(ctx, pos)
		if err != nil {
			t.Fatal(err)
		}
		if len(set) == 0 {
			break
		}
		var kinds []string
		for _, c := range set {
			if c.Set != set[0].Set {
				t.Errorf("change %d of set %d is in set %d", c.ID, set[0].Set, c.Set)
			}
			kinds = append(kinds, c.Kind)
		}
		sets = append(sets, kinds)
		pos = set[len(set)-1].ID
	}
	n := len(tags)
	if diff := cmp.Diff([][]string{slices.Repeat([]string{"created"}, n), slices.Repeat([]string{"moved"}, n), {"deleted"}}, sets); diff != "" {
		t.Errorf("change sets (-want +got):\n%s", diff)
	}
	// On PostgreSQL each store answers as the database holds once it has
	// learnt the other's stamps, which every process is told within a
	// second. A SQLite file belongs to one process: a second store on it
	// learns nothing of the first's changes, so only the stores' writes
	// are judged there, above.
	if a.Engine() != "postgres" {
		return
	}
	for _, s := range []*store.Store{a, b} {
		fresh := open(t, path)
		for _, tag := range tags {
			want, werr := fresh.Tag(ctx, repo, tag)
			deadline := time.Now().Add(5 * time.Second)
			for {
				got, gerr := s.Tag(ctx, repo, tag)
				if cmp.Equal(got, want) && (gerr == nil) == (werr == nil) {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("%s: %+v %v, the database holds %+v %v", tag, got, gerr, want, werr)
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		fresh.Close()
	}
}
