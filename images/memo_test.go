package images_test

import (
	"context"
	"testing"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/images"
)

// TestStoredAnswersFollowMoves: plain reads are served from memory between
// changes, and a change anywhere (here the base's tag moving) is seen by the
// very next read of the child.
func TestStoredAnswersFollowMoves(t *testing.T) {
	e := newEnv(t)
	base := layered(t, nil, 2, "linux/amd64")
	e.push("acme/base:1", base)
	e.push("acme/child:1", layered(t, base, 1, "linux/amd64"))
	e.inspect("acme/base:1")
	e.inspect("acme/child:1")
	child := must(analysis.ParseReference(e.host + "/acme/child:1"))
	stored := func() *analysis.Parent {
		t.Helper()
		a, err := e.svc.Read(context.Background(), auth.Viewer{}, child, images.ReadOptions{})
		rep := a.Report
		if err != nil {
			t.Fatal(err)
		}
		return rep.Platforms[0].Parent
	}
	for i := 0; i < 3; i++ {
		if p := stored(); p == nil || p.Outdated {
			t.Fatalf("read %d before the move: parent %+v", i, p)
		}
	}
	moved := e.push("acme/base:1", layered(t, nil, 2, "linux/amd64"))
	e.inspect("acme/base:1")
	if p := stored(); p == nil || !p.Outdated || p.CurrentDigest != moved {
		t.Errorf("first read after the move: parent %+v, want outdated at %s", p, moved)
	}
	// Between changes, reads share one answer: a repeated read copies
	// nothing (which is why answers are read-only).
	a, _ := e.svc.Read(context.Background(), auth.Viewer{}, child, images.ReadOptions{})
	b, _ := e.svc.Read(context.Background(), auth.Viewer{}, child, images.ReadOptions{})
	if a.Report != b.Report || a.Version != b.Version {
		t.Error("two reads with nothing changed between them answered two copies")
	}
}

// TestStoredAnswersFollowCandidateRepositories: a child's parent is chosen
// among identical images by their tag counts, so a tag added in a candidate
// repository that is not (yet) the parent's changes the answer, and the
// memoised answer must not hide it.
func TestStoredAnswersFollowCandidateRepositories(t *testing.T) {
	e := newEnv(t)
	base := layered(t, nil, 2, "linux/amd64")
	e.push("acme/one:a", base)
	e.push("acme/two:a", base)
	e.push("acme/child:1", layered(t, base, 1, "linux/amd64"))
	e.inspect("acme/one:a")
	e.inspect("acme/two:a")
	e.inspect("acme/child:1")
	child := must(analysis.ParseReference(e.host + "/acme/child:1"))
	parentRepo := func() string {
		t.Helper()
		a, err := e.svc.Read(context.Background(), auth.Viewer{}, child, images.ReadOptions{})
		rep := a.Report
		if err != nil {
			t.Fatal(err)
		}
		if p := rep.Platforms[0].Parent; p != nil {
			return p.Repository
		}
		return ""
	}
	// One tag each: the one seen first wins.
	for i := 0; i < 2; i++ {
		if got := parentRepo(); got != "acme/one" {
			t.Fatalf("read %d: parent in %q, want acme/one (equal tags, seen first)", i, got)
		}
	}
	e.push("acme/two:b", base)
	e.inspect("acme/two:b")
	if got := parentRepo(); got != "acme/two" {
		t.Errorf("after acme/two gained a tag: parent in %q, want acme/two (two tags beat one)", got)
	}
}
