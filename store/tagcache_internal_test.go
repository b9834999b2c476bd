package store

import "testing"

// TestTagCacheAnswersOnlyAtItsStamp: a row kept at a stamp answers while the
// repository's stamp is that one and never after it moved on, so a reader
// that read a row before a writer's commit (and so kept it at the older
// stamp) can never put an out-of-date row in front of later readers.
func TestTagCacheAnswersOnlyAtItsStamp(t *testing.T) {
	c := newTagCache(10)
	k := tagKey{"r.example", "acme/app", "1"}
	if _, ok := c.get(k, 0); ok {
		t.Fatal("empty cache answered")
	}
	c.put(k, tagEntry{state: TagState{Digest: "sha256:old"}}, 3) // a reader that read before the commit of stamp 4
	c.put(k, tagEntry{state: TagState{Digest: "sha256:new"}}, 4) // the writer's own row
	if e, ok := c.get(k, 4); !ok || e.state.Digest != "sha256:new" {
		t.Errorf("at stamp 4: %+v %v, want the written sha256:new", e.state, ok)
	}
	c.put(k, tagEntry{state: TagState{Digest: "sha256:old"}}, 3) // the late reader, after the writer
	if e, ok := c.get(k, 4); ok {
		t.Errorf("a row kept at stamp 3 answered at stamp 4: %+v", e.state)
	}
	if _, ok := c.get(k, 5); ok {
		t.Error("a row answered after its repository's stamp moved on")
	}
}
