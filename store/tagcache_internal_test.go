package store

import "testing"

// TestTagCacheFillNeverUndoesAWrite: a reader that missed, read the row,
// and fills after a writer updated the tag must not put the older row back;
// without an intervening write its fill is kept.
func TestTagCacheFillNeverUndoesAWrite(t *testing.T) {
	c := newTagCache(10)
	k := tagKey{"r.example", "acme/app", "1"}
	_, ok, seq := c.get(k)
	if ok {
		t.Fatal("empty cache answered")
	}
	c.set(k, TagState{Digest: "sha256:new"}) // committed after the reader's query
	c.fill(k, TagState{Digest: "sha256:old"}, seq)
	if st, _, _ := c.get(k); st.Digest != "sha256:new" {
		t.Errorf("after a late fill the cache holds %q, want the written sha256:new", st.Digest)
	}

	other := tagKey{"r.example", "acme/app", "2"}
	_, _, seq = c.get(other)
	c.fill(other, TagState{Digest: "sha256:read"}, seq)
	if st, ok, _ := c.get(other); !ok || st.Digest != "sha256:read" {
		t.Errorf("fill without a write in between was dropped: %+v %v", st, ok)
	}

	_, _, seq = c.get(other)
	c.forget([]tagKey{other})
	c.fill(other, TagState{Digest: "sha256:read"}, seq)
	if _, ok, _ := c.get(other); ok {
		t.Error("a fill after the tag was forgotten brought it back")
	}
}
