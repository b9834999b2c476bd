package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestPastedURLIsAnsweredWithTheReferenceToWrite: a reference pasted as a
// URL in the API's path or an image page's path is an invalid reference
// whose message says to drop the scheme and gives the reference without it;
// the home page's search box drops it itself.
func TestPastedURLIsAnsweredWithTheReferenceToWrite(t *testing.T) {
	const pasted = "http://127.0.0.1:5055/me/app:1"
	const want = "write the reference without http://: 127.0.0.1:5055/me/app:1"
	s := newStack(t, 5*time.Second)
	var body errorBody
	if code := getJSON(t, s.url+"/api/v1/images/"+pasted, &body); code != http.StatusBadRequest || body.Error.Code != "invalid_reference" || !strings.Contains(body.Error.Message, want) {
		t.Errorf("API: %d %+v, want 400 invalid_reference saying %q", code, body.Error, want)
	}
	p := newPageStack(t)
	// The router answers a path with "//" by a redirect to its clean form,
	// which a browser follows.
	a := p.get(t, "/images/"+pasted)
	if loc := a.header.Get("Location"); a.status == http.StatusMovedPermanently && loc != "" {
		a = p.get(t, loc)
	}
	if a.status != http.StatusBadRequest || !strings.Contains(a.testid("error-message").Text(), want) {
		t.Errorf("image page: %d, message %q, want 400 saying %q", a.status, a.testid("error-message").Text(), want)
	}
	a = p.get(t, "/?q="+url.QueryEscape(pasted))
	if loc := a.header.Get("Location"); a.status != http.StatusSeeOther || loc != "/images/127.0.0.1:5055/me/app:1" {
		t.Errorf("search box: %d → %q, want 303 → the image page of the reference without http://", a.status, loc)
	}
}
