package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/server"
)

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d, %v", url, resp.StatusCode, err)
	}
	return string(b)
}

func refresh(t *testing.T, url string) {
	t.Helper()
	resp, err := http.Post(url, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %d", url, resp.StatusCode)
	}
}

// TestKeptResponsesFollowTheirAnswers: the JSON report and the image page
// are kept between reads of the same answer, and a new answer (the tag
// moved, or was checked again) is never answered with the kept bytes.
// Expectations come from the registry (the pushed images' digests) and the
// clock, not from the service's earlier answers.
func TestKeptResponsesFollowTheirAnswers(t *testing.T) {
	reg := faultreg.Start(t)
	s := stack.New(t, stack.Options{Timeout: 5 * time.Second, Server: &server.Options{}})
	ref := reg.Host + "/acme/app:1"
	api, page := s.URL+"/api/v1/images/"+ref, s.URL+"/images/"+ref
	first, _ := pushRandom(t, ref).Digest()

	var rep analysis.Report
	getJSON(t, api, &rep)
	if rep.Digest != first.String() {
		t.Fatalf("first read: digest %s, want %s", rep.Digest, first)
	}
	if a, b := getBody(t, api), getBody(t, api); a != b {
		t.Errorf("two reads of one answer differ:\n%s\n%s", a, b)
	}
	if p := getBody(t, page); !strings.Contains(p, first.Hex[:12]) {
		t.Fatalf("page does not show %s", first.Hex[:12])
	}
	getBody(t, page)

	// The tag moves; a plain read answers from the store (fresh for an
	// hour), a refresh records the move, and the next plain reads show it.
	second, _ := pushRandom(t, ref).Digest()
	refresh(t, api+"/refresh")
	getJSON(t, api, &rep)
	if rep.Digest != second.String() {
		t.Errorf("after the move: JSON digest %s, want %s", rep.Digest, second)
	}
	// The page shows the new digest as the image's (the old one now only in
	// the tag's history of changes).
	if p := getBody(t, page); !strings.Contains(p, `value="`+second.String()+`" data-testid="digest"`) || strings.Contains(p, `value="`+first.String()+`" data-testid="digest"`) {
		t.Errorf("after the move the page does not show %s as its digest", second)
	}

	// Checked again without a move: the new check time is shown.
	before := rep.CheckedAt
	time.Sleep(time.Until(before.Add(1100 * time.Millisecond)))
	refresh(t, api+"/refresh")
	getJSON(t, api, &rep)
	if !rep.CheckedAt.After(before) {
		t.Errorf("checkedAt %s after a new check, want later than %s", rep.CheckedAt, before)
	}
}
