package analysis_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/imagebadger/imagebadger/analysis"
)

// TestCloneKeepsEmptyListsEmpty: a report whose tag list is empty (read
// while its tag was deleted or moved) is still "tags": [] once cloned, as
// docs/openapi.yaml wants, not null; nil stays nil.
func TestCloneKeepsEmptyListsEmpty(t *testing.T) {
	r := &analysis.Report{Tags: []string{}, Platforms: []analysis.Platform{{Parent: &analysis.Parent{Tags: []string{}}}}}
	c := r.Clone()
	body, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), `"tags":[]`) || strings.Contains(string(body), `"tags":null`) {
		t.Errorf("cloned report %s, want its empty tag lists as []", body)
	}
	if c.Platforms[0].Parent == r.Platforms[0].Parent {
		t.Error("the clone shares the parent")
	}
	if (&analysis.Report{}).Clone().Tags != nil {
		t.Error("a nil tag list came out of Clone not nil")
	}
}
