package server

import (
	"fmt"
	"strings"
	"testing"
)

// TestResponseMemoStaysWithinItsBytes: however many distinct requests are
// kept, the memo never holds more than its budget, and an entry replaced
// under the same key is not counted twice.
func TestResponseMemoStaysWithinItsBytes(t *testing.T) {
	const budget = 10_000
	m := newResponseMemo(budget)
	body := []byte(strings.Repeat("x", 900))
	for i := 0; i < 1000; i++ {
		m.put(fmt.Sprintf("page\x00img:%d", i), "v1", body)
		total := 0
		for k, e := range m.items {
			total += len(k) + len(e.version) + len(e.body)
		}
		if total > budget || total != m.bytes {
			t.Fatalf("after %d puts: %d bytes held, %d counted, budget %d", i+1, total, m.bytes, budget)
		}
	}
	m = newResponseMemo(budget)
	for i := 0; i < 100; i++ {
		m.put("same", fmt.Sprint("v", i), body)
	}
	if len(m.items) != 1 || m.bytes != len("same")+len("v99")+len(body) {
		t.Errorf("one key replaced 100 times: %d entries, %d bytes counted", len(m.items), m.bytes)
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
