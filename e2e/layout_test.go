package e2e_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// phone is the viewport of a small phone, in CSS pixels.
var phone = struct{ w, h int64 }{375, 812}

// TestSubscriptionFormOnAPhone drives Debian's chromium at a phone's width
// over the subscription form, filled with a long webhook URL and long
// header names as people paste them: nothing is wider than the screen (the
// page never scrolls sideways), and the header inputs look like the form's
// other inputs (the browser's computed border, padding, radius, font and
// background are the URL input's).
func TestSubscriptionFormOnAPhone(t *testing.T) {
	demo := startDemo(t)
	tb := newTab(t, demo.url)
	tb.do(chromedp.EmulateViewport(phone.w, phone.h))
	tb.visit("/subscriptions/new?image=" + urlQueryEscape(demo.registry+"/acme/app:2.3"))
	long := "https://hooks.slack.com/services/T00000000/B00000000/" + strings.Repeat("XXXXXXXXXXXXXXXXXXXXXXXX", 4)
	tb.do(
		chromedp.SetValue(chromedp.ID("sub-url"), long),
		chromedp.SetValue(chromedp.CSS(`[data-testid=header-name-1]`), "X-Receiver-Authorization-With-A-Long-Name"),
		chromedp.SetValue(chromedp.CSS(`[data-testid=header-value-1]`), strings.Repeat("s", 80)),
	)
	if got := tb.eval(`String(document.documentElement.scrollWidth) + " " + String(document.documentElement.clientWidth)`); !fits(got) {
		t.Errorf("the form is wider than a %d px screen: scrollWidth clientWidth = %s; too wide: %s", phone.w, got,
			tb.eval(overflowing))
	}
	style := func(sel string) map[string]string {
		js := `(() => { const s = getComputedStyle(document.querySelector(` + jsString(sel) + `));
			return JSON.stringify(Object.fromEntries(["border-top-width", "border-top-style", "border-top-color", "border-top-left-radius",
				"padding-top", "padding-left", "font-family", "font-size", "background-color", "color"].map(p => [p, s.getPropertyValue(p)]))) })()`
		var m map[string]string
		if err := json.Unmarshal([]byte(tb.eval(js)), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	want := style("#sub-url")
	for _, sel := range []string{`[data-testid=header-name-1]`, `[data-testid=header-value-1]`} {
		got := style(sel)
		for p, v := range want {
			if got[p] != v {
				t.Errorf("%s: %s is %q, the URL input's is %q", sel, p, got[p], v)
			}
		}
		right := tb.eval(`String(document.querySelector(` + jsString(sel) + `).getBoundingClientRect().right) + " " + String(document.documentElement.clientWidth)`)
		if !fits(right) {
			t.Errorf("%s reaches past the screen's edge: right edge, width = %s", sel, right)
		}
	}
	tb.noConsoleErrors("subscription form on a phone")
}

// overflowing is a script that names what reaches past the right edge of
// the screen: elements, and runs of text (which overflow their element
// without widening it).
const overflowing = `(() => {
	const w = document.documentElement.clientWidth, out = [];
	for (const e of document.querySelectorAll("body *")) {
		if (e.getBoundingClientRect().right > w + 0.5) out.push(e.tagName + "." + e.className);
	}
	const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
	for (let n = walk.nextNode(); n; n = walk.nextNode()) {
		const r = document.createRange();
		r.selectNodeContents(n);
		if ([...r.getClientRects()].some(b => b.right > w + 0.5)) out.push("text in " + n.parentElement.tagName + "." + n.parentElement.className + ": " + n.textContent.trim().slice(0, 50));
	}
	return JSON.stringify(out.slice(0, 10));
})()`

// fits reads "A B" (two numbers a script printed) and reports A <= B.
func fits(pair string) bool {
	var a, b float64
	f := strings.Fields(pair)
	if len(f) != 2 {
		return false
	}
	if err := json.Unmarshal([]byte(f[0]), &a); err != nil {
		return false
	}
	if err := json.Unmarshal([]byte(f[1]), &b); err != nil {
		return false
	}
	return a <= b
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
