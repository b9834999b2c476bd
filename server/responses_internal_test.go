package server

import (
	"fmt"
	"strings"
	"testing"
)

// TestResponseMemoStaysWithinItsBytes: however many distinct requests are
// kept, the memo never holds more than its budget, the answers kept are
// the latest (least recently used first out), and an entry replaced under
// the same key is not counted twice.
func TestResponseMemoStaysWithinItsBytes(t *testing.T) {
	const budget = 10_000
	m := newResponseMemo(budget)
	body := []byte(strings.Repeat("x", 900))
	for i := 0; i < 1000; i++ {
		m.put(fmt.Sprintf("page\x00img:%d", i), "v1", body)
		if got := m.items.Cost(); got > budget {
			t.Fatalf("after %d puts: %d bytes held, budget %d", i+1, got, budget)
		}
	}
	// Each entry is 12 + 2 + 900 = 914 bytes (keys of three digits), so the
	// budget holds ten of them: the last ten put.
	if got := m.items.Len(); got != 10 {
		t.Errorf("%d entries kept, want 10", got)
	}
	for i := 990; i < 1000; i++ {
		if _, ok := m.get(fmt.Sprintf("page\x00img:%d", i), "v1"); !ok {
			t.Errorf("entry %d of the last ten is not kept", i)
		}
	}
	m = newResponseMemo(budget)
	for i := 0; i < 100; i++ {
		m.put("same", fmt.Sprint("v", i), body)
	}
	if m.items.Len() != 1 || m.items.Cost() != int64(len("same")+len("v99")+len(body)) {
		t.Errorf("one key replaced 100 times: %d entries, %d bytes counted", m.items.Len(), m.items.Cost())
	}
	if b, ok := m.get("same", "v99"); !ok || len(b) != len(body) {
		t.Error("the latest version is not served")
	}
	if _, ok := m.get("same", "v98"); ok {
		t.Error("an older version is served")
	}
	m.put("huge", "v", make([]byte, budget))
	if _, ok := m.get("huge", "v"); ok {
		t.Error("an answer larger than the budget was kept")
	}
}
