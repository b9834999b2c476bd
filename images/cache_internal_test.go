package images

import (
	"testing"

	"imagebadger/analysis"
)

// TestAnswerMemoRetirement: a change in a repository retires the answers
// that read it and no other; a change of the index retires all; a change
// made while an answer was being assembled retires that answer.
func TestAnswerMemoRetirement(t *testing.T) {
	repo := func(name string) analysis.Repository {
		return analysis.Repository{Registry: "registry.example", Name: name}
	}
	app, base, other := repo("acme/app"), repo("acme/base"), repo("acme/other")
	rep := &analysis.Report{}
	m := newAnswerMemo(100)
	fill := func() {
		since := m.start()
		m.put("app", "sha256:a", since, []analysis.Repository{app, base}, rep)
		m.put("other", "sha256:o", since, []analysis.Repository{other}, rep)
	}
	has := func(key, digest string) bool { _, _, ok := m.get(key, digest); return ok }

	fill()
	if !has("app", "sha256:a") || !has("other", "sha256:o") {
		t.Fatal("fresh answers not served")
	}
	if has("app", "sha256:b") {
		t.Error("an answer for another digest was served")
	}
	m.changedRepo(base)
	if has("app", "sha256:a") {
		t.Error("a move in the parent's repository left the child's answer")
	}
	if !has("other", "sha256:o") {
		t.Error("a move in an unrelated repository retired an answer that never read it")
	}

	fill()
	m.changed()
	if has("app", "sha256:a") || has("other", "sha256:o") {
		t.Error("an index change left answers")
	}

	// Assembled across a change: the answer is stale from the start.
	since := m.start()
	m.changedRepo(app)
	m.put("app", "sha256:a", since, []analysis.Repository{app}, rep)
	if has("app", "sha256:a") {
		t.Error("an answer assembled across a change of its repository was kept")
	}
}

// TestAnswerMemoForgetsStampsSafely: when the per-repository stamps are
// dropped to bound memory, no answer survives on a forgotten stamp.
func TestAnswerMemoForgetsStampsSafely(t *testing.T) {
	m := newAnswerMemo(2)
	r := func(n string) analysis.Repository { return analysis.Repository{Registry: "r.example", Name: n} }
	m.put("x", "d", m.start(), []analysis.Repository{r("x")}, &analysis.Report{})
	m.changedRepo(r("a"))
	m.changedRepo(r("b"))
	m.changedRepo(r("x")) // the table is full: dropped, and everything retired
	if _, _, ok := m.get("x", "d"); ok {
		t.Error("answer of x survived its repository's change when the stamps were dropped")
	}
}
