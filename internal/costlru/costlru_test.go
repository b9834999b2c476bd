package costlru

import (
	"fmt"
	"testing"
)

func keys(c *Cache[string, int]) []string {
	var out []string
	for el := c.order.Back(); el != nil; el = el.Prev() {
		out = append(out, el.Value.(*entry[string, int]).key)
	}
	return out
}

func TestCostBoundEvictsLeastRecentlyUsed(t *testing.T) {
	c := New[string, int](100, 100)
	for i := range 4 {
		c.Add(fmt.Sprint(i), i, 30) // 0,1,2 fit (90); 3 evicts 0
	}
	if got, want := fmt.Sprint(keys(c)), "[1 2 3]"; got != want {
		t.Fatalf("kept %s, want %s", got, want)
	}
	if c.Cost() != 90 {
		t.Fatalf("cost %d, want 90", c.Cost())
	}
	c.Get("1") // 1 is now the most recent: 2 goes next
	c.Add("big", 0, 70)
	if got, want := fmt.Sprint(keys(c)), "[1 big]"; got != want {
		t.Fatalf("kept %s, want %s", got, want)
	}
	if c.Cost() != 100 {
		t.Fatalf("cost %d, want 100", c.Cost())
	}
}

func TestReplacingAKeyCountsOnlyItsNewCost(t *testing.T) {
	c := New[string, int](10, 100)
	c.Add("a", 1, 60)
	c.Add("a", 2, 10)
	c.Add("b", 3, 80)
	if v, ok := c.Get("a"); !ok || v != 2 {
		t.Fatalf("a = %d, %v; want 2, true", v, ok)
	}
	if c.Cost() != 90 || c.Len() != 2 {
		t.Fatalf("cost %d over %d entries, want 90 over 2", c.Cost(), c.Len())
	}
}

func TestEntryBound(t *testing.T) {
	c := New[string, int](3, 1<<30)
	for i := range 10 {
		c.Add(fmt.Sprint(i), i, 1)
	}
	if got, want := fmt.Sprint(keys(c)), "[7 8 9]"; got != want {
		t.Fatalf("kept %s, want %s", got, want)
	}
}

func TestOverBudgetValueIsNotKept(t *testing.T) {
	c := New[string, int](10, 100)
	c.Add("small", 1, 10)
	c.Add("x", 1, 10)
	if c.Add("x", 2, 101) {
		t.Fatal("a value over the whole budget was kept")
	}
	if c.Contains("x") || !c.Contains("small") || c.Cost() != 10 {
		t.Fatalf("after refusing: x held %v, small held %v, cost %d", c.Contains("x"), c.Contains("small"), c.Cost())
	}
	c.Remove("small")
	if c.Len() != 0 || c.Cost() != 0 {
		t.Fatalf("after Remove: %d entries, cost %d", c.Len(), c.Cost())
	}
}
