package images_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/crane"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/internal/testing/syncbuf"
)

// storedTags is what the store keeps as repo's current tags.
func storedTags(t *testing.T, st *stack.Stack, repo analysis.Repository) []string {
	t.Helper()
	rows, err := st.Store.RepositoryTags(context.Background(), repo)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rows {
		out = append(out, r.Tag)
	}
	return out
}

// headsOf are the manifest HEADs the registry received, by tag.
func headsOf(reg *faultreg.Registry) []string {
	var out []string
	for _, r := range reg.Requests("/manifests/") {
		if tag, ok := strings.CutPrefix(r, "HEAD "); ok {
			out = append(out, tag[strings.LastIndexByte(tag, '/')+1:])
		}
	}
	slices.Sort(out)
	return out
}

// TestListingSkipsTagNamesOutsideTheGrammar: a registry's tag list holding
// names outside the distribution spec's grammar (CR/LF, 5,000 characters,
// U+202E, a path, a leading '.' or '-', 129 characters) is recorded without
// them: they are never asked for, never stored, and each is logged quoted.
// A 128-character tag is a tag.
func TestListingSkipsTagNamesOutsideTheGrammar(t *testing.T) {
	stack.EachEngine(t, func(t *testing.T, engine string) {
		log := &syncbuf.Buffer{}
		st := stack.New(t, stack.Options{Engine: engine, Registry: true, Log: log})
		reg := st.Registry
		long := strings.Repeat("b", 128)
		valid := []string{"1", long, "ok"}
		pushImage(t, reg.Host+"/acme/app:1")
		for _, tag := range valid[1:] {
			if err := crane.Tag(reg.Host+"/acme/app:1", tag); err != nil {
				t.Fatal(err)
			}
		}
		invalid := []string{"bad\r\nX-Injected: 1", strings.Repeat("a", 5000), "evil\u202Egnp.exe", "../../etc", ".hidden", "-dash", strings.Repeat("c", 129)}
		reg.Add(faultreg.Rule{Method: http.MethodGet, PathContains: "/acme/app/tags/list", Fault: faultreg.TagPage, Tags: append(slices.Clone(valid), invalid...)})
		reg.Requests()
		repo := must(analysis.ParseRepository(reg.Host + "/acme/app"))
		list, err := st.Images.System().Tags(context.Background(), repo, images.ReadOptions{Refresh: true})
		if err != nil {
			t.Fatal(err)
		}
		if list.TagCount != len(valid) || !list.Complete {
			t.Errorf("tagCount %d complete %v, want %d and complete", list.TagCount, list.Complete, len(valid))
		}
		if got := storedTags(t, st, repo); !slices.Equal(got, valid) {
			t.Errorf("stored tags %q, want %q", got, valid)
		}
		if got := headsOf(reg); !slices.Equal(got, valid) {
			t.Errorf("HEADs of %q, want of %q alone", got, valid)
		}
		logged := log.String()
		if n := strings.Count(logged, "not a valid tag"); n != len(invalid) {
			t.Errorf("%d log lines about invalid tags, want %d:\n%s", n, len(invalid), logged)
		}
		for _, want := range []string{`"tag":"\"bad\\r\\nX-Injected: 1\""`, `"tag":"\"evil\\u202egnp.exe\""`, `"tag":"\"../../etc\""`} {
			if !strings.Contains(logged, want) {
				t.Errorf("the log lacks %s:\n%s", want, logged)
			}
		}
		if strings.Contains(logged, strings.Repeat("a", 81)) || strings.ContainsAny(logged, "\r\u202e") {
			t.Errorf("the log holds a name uncut or unescaped:\n%s", logged)
		}
	})
}

// TestListingCutShortInfersNoDeletion: a listing whose Link repeats its own
// page ends after that page (one request) and is not complete, so a
// recorded tag missing from it stays recorded; a listing read to its end
// without that tag records it deleted.
func TestListingCutShortInfersNoDeletion(t *testing.T) {
	stack.EachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		st := stack.New(t, stack.Options{Engine: engine, Registry: true})
		reg := st.Registry
		pushImage(t, reg.Host+"/acme/app:1")
		pushImage(t, reg.Host+"/acme/app:2")
		repo := must(analysis.ParseRepository(reg.Host + "/acme/app"))
		refresh := images.ReadOptions{Refresh: true}
		if list, err := st.Images.System().Tags(ctx, repo, refresh); err != nil || list.TagCount != 2 || !list.Complete {
			t.Fatalf("first listing: %+v %v, want 2 tags, complete", list, err)
		}
		const path = "/v2/acme/app/tags/list"
		reg.Add(faultreg.Rule{Method: http.MethodGet, PathContains: path, Fault: faultreg.TagPage, Tags: []string{"1"},
			Link: `<` + path + `?n=1000>; rel="next"`})
		reg.Requests()
		list, err := st.Images.System().Tags(ctx, repo, refresh)
		if err != nil {
			t.Fatal(err)
		}
		if list.Complete || !strings.Contains(list.Incomplete, "repeats") {
			t.Errorf("self-linking listing: complete %v (%q), want not complete, saying it repeats", list.Complete, list.Incomplete)
		}
		if asked := reg.Requests(path); len(asked) != 1 {
			t.Errorf("the self-linking list was asked %d times, want once", len(asked))
		}
		if got := storedTags(t, st, repo); !slices.Equal(got, []string{"1", "2"}) {
			t.Errorf("after a listing cut short: %q, want 1 and 2 still", got)
		}
		reg.Reset()
		reg.Add(faultreg.Rule{Method: http.MethodGet, PathContains: path, Fault: faultreg.TagPage, Tags: []string{"1"}})
		if list, err := st.Images.System().Tags(ctx, repo, refresh); err != nil || !list.Complete || list.Incomplete != "" {
			t.Fatalf("whole listing: %+v %v, want complete", list, err)
		}
		if got := storedTags(t, st, repo); !slices.Equal(got, []string{"1"}) {
			t.Errorf("after a whole listing without 2: %q, want 1 alone", got)
		}
	})
}

// TestListingCaps: a listing looks up at most MaxNewTags tags it has not
// recorded (the first by name), and keeps at most MaxRepositoryTags tags
// of a repository; until every listed tag is recorded the listing says it
// is not complete. Tags already recorded are checked every time.
func TestListingCaps(t *testing.T) {
	stack.EachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		st := stack.New(t, stack.Options{Engine: engine, Registry: true, Images: images.Options{MaxNewTags: 2, MaxRepositoryTags: 3}})
		reg := st.Registry
		pushImage(t, reg.Host+"/acme/app:a")
		for _, tag := range []string{"b", "c", "d", "e"} {
			if err := crane.Tag(reg.Host+"/acme/app:a", tag); err != nil {
				t.Fatal(err)
			}
		}
		repo := must(analysis.ParseRepository(reg.Host + "/acme/app"))
		for i, want := range []struct{ stored, heads []string }{
			{[]string{"a", "b"}, []string{"a", "b"}},
			{[]string{"a", "b", "c"}, []string{"a", "b", "c"}},
			{[]string{"a", "b", "c"}, []string{"a", "b", "c"}},
		} {
			reg.Requests()
			list, err := st.Images.System().Tags(ctx, repo, images.ReadOptions{Refresh: true})
			if err != nil {
				t.Fatal(err)
			}
			if list.Complete || !strings.Contains(list.Incomplete, "not looked up") || list.TagCount != len(want.stored) {
				t.Errorf("listing %d: complete %v (%q), %d tags; want not complete, %d tags", i+1, list.Complete, list.Incomplete, list.TagCount, len(want.stored))
			}
			if got := storedTags(t, st, repo); !slices.Equal(got, want.stored) {
				t.Errorf("listing %d stored %q, want %q", i+1, got, want.stored)
			}
			if got := headsOf(reg); !slices.Equal(got, want.heads) {
				t.Errorf("listing %d sent HEADs of %q, want of %q", i+1, got, want.heads)
			}
		}
	})
}

// TestListingLogsInvalidNamesBounded: a registry listing many names
// outside the grammar gets ten log lines naming them and one counting the
// rest, not a line each.
func TestListingLogsInvalidNamesBounded(t *testing.T) {
	log := &syncbuf.Buffer{}
	st := stack.New(t, stack.Options{Registry: true, Log: log})
	reg := st.Registry
	pushImage(t, reg.Host+"/acme/app:1")
	names := []string{"1"}
	for i := range 25 {
		names = append(names, fmt.Sprintf(".hidden%02d", i))
	}
	reg.Add(faultreg.Rule{Method: http.MethodGet, PathContains: "/acme/app/tags/list", Fault: faultreg.TagPage, Tags: names})
	repo := must(analysis.ParseRepository(reg.Host + "/acme/app"))
	if _, err := st.Images.System().Tags(context.Background(), repo, images.ReadOptions{Refresh: true}); err != nil {
		t.Fatal(err)
	}
	logged := log.String()
	if n := strings.Count(logged, "skipped a tag name"); n != 10 {
		t.Errorf("%d lines naming a skipped tag, want 10", n)
	}
	if !strings.Contains(logged, `"msg":"tags: skipped more tag names the registry listed that are not valid tags","repository":"`+repo.String()+`","count":15`) {
		t.Errorf("no line counting the other 15:\n%s", logged)
	}
}
