package main

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/imagebadger/imagebadger/internal/testing/openloop"
	"github.com/imagebadger/imagebadger/notify"
)

const procStatus = `Name:	imagebadger
Umask:	0022
State:	S (sleeping)
VmPeak:	 1912340 kB
VmSize:	 1912340 kB
VmHWM:	   31204 kB
VmRSS:	   28416 kB
RssAnon:	   14508 kB
Threads:	12
`

func TestParseVmRSS(t *testing.T) {
	got, err := parseVmRSS([]byte(procStatus))
	if err != nil || got != 28416*1024 {
		t.Errorf("parseVmRSS = %d, %v; want %d", got, err, 28416*1024)
	}
	for _, bad := range []string{
		"Name:\tkthreadd\nState:\tS (sleeping)\n", // kernel threads have no VmRSS
		"VmRSS:\t12 MB\n",
		"VmRSS:\tlots kB\n",
		"VmRSS:\n",
	} {
		if _, err := parseVmRSS([]byte(bad)); err == nil {
			t.Errorf("parseVmRSS(%q) gave no error", bad)
		}
	}
}

func TestRSSGrowth(t *testing.T) {
	var samples []rssSample
	for i := 0; i <= 60; i++ {
		// 100 MiB up to 30 s, then 1 MiB more every 3 s: 110 MiB at 60 s.
		rss := int64(100 << 20)
		if i > 30 {
			rss += int64((i-30)/3) << 20
		}
		samples = append(samples, rssSample{at: time.Duration(i)*time.Second + 3*time.Millisecond, rss: rss})
	}
	mid, end, growth, ok := rssGrowth(samples)
	if !ok || mid.at.Round(time.Second) != 30*time.Second || end.at.Round(time.Second) != 60*time.Second {
		t.Fatalf("compared %s with %s (ok %v)", mid.at, end.at, ok)
	}
	if growth < 0.0999 || growth > 0.1001 {
		t.Errorf("growth = %.4f, want 0.10", growth)
	}
	if _, _, _, ok := rssGrowth(samples[:2]); ok {
		t.Error("two samples are not enough to tell a trend")
	}
}

func TestClassify(t *testing.T) {
	jsonErr := func(code string) []byte { return []byte(`{"error":{"code":"` + code + `","message":"m"}}`) }
	page := []byte("<!DOCTYPE html>\n<html lang=\"en\"><head><title>The registry answered with an error")
	for _, tc := range []struct {
		name  string
		class string
		r     openloop.Result
		want  outcome
	}{
		{"ok", classBadge, openloop.Result{Status: 200}, answered},
		{"not modified", classBadge, openloop.Result{Status: 304}, answered},
		{"not found", classJSON, openloop.Result{Status: 404, Body: jsonErr("not_found")}, answered},
		{"rate limited", classJSON, openloop.Result{Status: 429, Body: jsonErr("rate_limited")}, answered},
		{"registry error", classJSON, openloop.Result{Status: 502, Body: jsonErr("registry_error")}, registryError},
		{"registry timeout", classJSON, openloop.Result{Status: 504, Body: jsonErr("registry_timeout")}, registryError},
		{"code and status disagree", classJSON, openloop.Result{Status: 502, Body: jsonErr("registry_timeout")}, failed5xx},
		{"internal", classJSON, openloop.Result{Status: 500, Body: jsonErr("internal")}, failed5xx},
		{"503 without body", classBadge, openloop.Result{Status: 503}, failed5xx},
		{"page 502", classPage, openloop.Result{Status: 502, Body: page}, registryError},
		{"page 500", classPage, openloop.Result{Status: 500, Body: page}, failed5xx},
		{"html for json", classJSON, openloop.Result{Status: 502, Body: page}, failed5xx},
		{"plain text 502 (a proxy's)", classPage, openloop.Result{Status: 502, Body: []byte("Bad Gateway")}, failed5xx},
		{"transport error", classBadge, openloop.Result{Err: errors.New("connection reset")}, noAnswer},
		{"not sent", classBadge, openloop.Result{NotSent: true}, noAnswer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := classify(tc.class, tc.r); got != tc.want {
				t.Errorf("classify = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	var rs []openloop.Result
	for i := 1; i <= 100; i++ {
		rs = append(rs, openloop.Result{Class: classBadge, Status: 200,
			Latency: time.Duration(i) * time.Millisecond, Service: time.Duration(i)*time.Millisecond - 100*time.Microsecond})
	}
	rs = append(rs,
		openloop.Result{Class: classBadge, Status: 500, Latency: time.Second, Service: time.Second},
		openloop.Result{Class: classBadge, NotSent: true},
		openloop.Result{Class: classPage, Status: 200, Latency: time.Hour},
	)
	cs := summarize(classBadge, rs)
	if cs.count != 102 || cs.answeredLatencies != 101 || cs.outcomes != [4]int{100, 0, 1, 1} {
		t.Errorf("counts %+v", cs)
	}
	if cs.p50 != 51*time.Millisecond || cs.p90 != 91*time.Millisecond || cs.p99 != 100*time.Millisecond || cs.max != time.Second {
		t.Errorf("p50 %s p90 %s p99 %s max %s", cs.p50, cs.p90, cs.p99, cs.max)
	}
	if cs.lateP99 != 100*time.Microsecond {
		t.Errorf("lateness p99 %s", cs.lateP99)
	}
	codes, noAnswer, notSent := statusHistogram(rs)
	if codes[200] != 101 || codes[500] != 1 || noAnswer != 0 || notSent != 1 {
		t.Errorf("histogram %v, %d no answer, %d not sent", codes, noAnswer, notSent)
	}
}

func TestPlan(t *testing.T) {
	const srv = "http://127.0.0.1:1"
	family := []string{"127.0.0.1:2/soak/app:2.3"}
	storm := []string{"127.0.0.1:2/soak/storm-00:t00"}
	reqs := plan(srv, family, storm, [3]int{60, 20, 20}, 10000, rand.New(rand.NewPCG(1, 2)))
	n := map[string]int{}
	for _, r := range reqs {
		n[r.Class]++
		ok := false
		switch r.Class {
		case classBadge:
			ok = strings.HasPrefix(r.URL, srv+"/badges/") && strings.HasSuffix(r.URL, ".svg")
		case classPage:
			ok = strings.HasPrefix(r.URL, srv+"/images/127.0.0.1:2/soak/")
		case classJSON:
			ok = strings.HasPrefix(r.URL, srv+"/api/v1/images/127.0.0.1:2/soak/")
		}
		if !ok || r.Method != "" {
			t.Fatalf("%s request %s %s", r.Class, r.Method, r.URL)
		}
	}
	for class, share := range map[string]float64{classBadge: 0.6, classPage: 0.2, classJSON: 0.2} {
		if got := float64(n[class]) / float64(len(reqs)); got < share-0.02 || got > share+0.02 {
			t.Errorf("%s: %.3f of the requests, want %.1f", class, got, share)
		}
	}
}

func TestParseMix(t *testing.T) {
	if mix, err := parseMix("60, 20,20"); err != nil || mix != [3]int{60, 20, 20} {
		t.Errorf("parseMix = %v, %v", mix, err)
	}
	if mix, err := parseMix("100,0,0"); err != nil || mix != [3]int{100, 0, 0} {
		t.Errorf("parseMix = %v, %v", mix, err)
	}
	for _, bad := range []string{"", "60,40", "0,0,0", "60,-1,41", "a,b,c", "60,20,20,0"} {
		if _, err := parseMix(bad); err == nil {
			t.Errorf("parseMix(%q) gave no error", bad)
		}
	}
	only := plan("http://x", []string{"r:1"}, nil, [3]int{0, 0, 1}, 100, rand.New(rand.NewPCG(1, 2)))
	for _, r := range only {
		if r.Class != classJSON {
			t.Fatalf("mix 0,0,1 planned a %s request", r.Class)
		}
	}
}

// TestHookEnvelope: the service's own parser reads the envelope the pusher
// sends as a push of the tag on the proxy's address.
func TestHookEnvelope(t *testing.T) {
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	body := hookEnvelope("127.0.0.1:4000", "soak/storm-03", "t05", digest,
		"application/vnd.docker.distribution.manifest.v2+json", 428, time.Now())
	pushes, _, err := notify.ParseRegistryNotification(body)
	if err != nil || len(pushes) != 1 {
		t.Fatalf("ParseRegistryNotification = %v, %v", pushes, err)
	}
	if got := pushes[0].Ref.String(); got != "127.0.0.1:4000/soak/storm-03:t05" || pushes[0].Digest != digest {
		t.Errorf("push of %s to %s", got, pushes[0].Digest)
	}
}

func TestParseDelivery(t *testing.T) {
	typ, key := parseDelivery([]byte(`{"type":"image.updated","timestamp":"2026-11-26T22:00:00Z","text":"…",
		"data":{"image":{"registry":"127.0.0.1:4000","repository":"soak/storm-01","tag":"t02","reference":"…",
		"digest":"sha256:aa","previousDigest":"sha256:bb","url":"…"}}}`))
	if typ != "image.updated" || key != (moveKey{"soak/storm-01", "t02", "sha256:aa"}) {
		t.Errorf("image.updated read as %s %+v", typ, key)
	}
	if typ, _ := parseDelivery([]byte(`{"type":"webhook.ping","data":{"subscription":"sub_1","image":"127.0.0.1:4000/soak/storm-01"}}`)); typ != "webhook.ping" {
		t.Errorf("ping read as %s", typ)
	}
	if typ, _ := parseDelivery([]byte(`not json`)); typ != "invalid" {
		t.Errorf("garbage read as %s", typ)
	}
}

func TestSummarizeRegistryLog(t *testing.T) {
	const lines = `time="2026-11-27T00:55:32.493723317Z" level=info msg="response completed" go.version=go1.19.8 http.request.host="127.0.0.1:37787" http.request.id=3efc http.request.method=GET http.request.remoteaddr=127.0.0.1 http.request.uri="/v2/soak/storm-00/tags/list?n=1000" http.request.useragent="imagebadger go-containerregistry/v0.22.1" http.response.contenttype="application/json; charset=utf-8" http.response.duration=2.66ms http.response.status=200 http.response.written=154
127.0.0.1 - - [27/Nov/2026:00:55:32 +0000] "GET /v2/soak/storm-00/tags/list?n=1000 HTTP/1.1" 200 154 "" "imagebadger go-containerregistry/v0.22.1"
time="2026-11-27T00:55:33.0Z" level=info msg="response completed" http.request.method=HEAD http.request.uri=/v2/soak/storm-00/manifests/t01 http.request.useragent="imagebadger go-containerregistry/v0.22.1" http.response.status=200
time="2026-11-27T00:55:33.5Z" level=error msg="response completed with error" err.code="manifest unknown" http.request.method=HEAD http.request.uri=/v2/soak/base/manifests/0.9 http.request.useragent="imagebadger go-containerregistry/v0.22.1" http.response.status=404
time="2026-11-27T00:55:34.0Z" level=info msg="response completed" http.request.method=PUT http.request.uri=/v2/soak/storm-00/manifests/t01 http.request.useragent=go-containerregistry/v0.22.1 http.response.status=201
time="2026-11-27T00:59:00.0Z" level=info msg="response completed" http.request.method=GET http.request.uri=/v2/soak/app/blobs/sha256:aa http.request.useragent="imagebadger go-containerregistry/v0.22.1" http.response.status=200
`
	from := time.Date(2026, 11, 27, 0, 55, 0, 0, time.UTC)
	rs := summarizeRegistryLog(strings.NewReader(lines), from, from.Add(time.Minute))
	if rs.err != nil || rs.total != 3 || rs.byKind["tag listings"] != 1 || rs.byKind["HEAD manifest"] != 2 ||
		rs.statuses[200] != 2 || rs.statuses[404] != 1 {
		t.Errorf("summary %+v", rs)
	}
	if got := rs.kinds(); got != "2 HEAD manifest, 1 tag listings" {
		t.Errorf("kinds() = %q", got)
	}
}

func TestSummarizeLog(t *testing.T) {
	const lines = `{"time":"2026-11-27T00:55:32.42Z","level":"INFO","msg":"imagebadger serving"}
{"time":"2026-11-27T00:56:00Z","level":"INFO","msg":"http","method":"GET","status":200}
{"time":"2026-11-27T00:56:01Z","level":"WARN","msg":"hook: refresh queue full; the next poll will catch up","image":"x"}
{"time":"2026-11-27T00:56:02Z","level":"WARN","msg":"hook: refresh queue full; the next poll will catch up","image":"y"}
{"time":"2026-11-27T00:56:03Z","level":"ERROR","msg":"request failed","code":"internal"}
a panic trace, not JSON
`
	from := time.Date(2026, 11, 27, 0, 55, 50, 0, time.UTC)
	ls := summarizeLog(strings.NewReader(lines), from, from.Add(time.Minute))
	if ls.requests != 1 || ls.byLevel["WARN"] != 2 || ls.byLevel["ERROR"] != 1 || ls.byLevel["INFO"] != 1 || ls.unreadable != 1 {
		t.Errorf("summary %+v", ls)
	}
	k := "WARN hook: refresh queue full; the next poll will catch up"
	if ls.warnings[k] != 2 || !strings.Contains(ls.examples[k], `"image":"x"`) || ls.warnings["ERROR request failed"] != 1 {
		t.Errorf("warnings %v, examples %v", ls.warnings, ls.examples)
	}
}

func TestParseCPU(t *testing.T) {
	stat := []byte("17249 (my (odd) name) R 17159 17159 4009 0 -1 4194304 101 0 0 0 250 30 0 0 20 0 1 0 373865 3133440 379")
	if got, err := parseProcessCPU(stat); err != nil || got != 2800*time.Millisecond {
		t.Errorf("parseProcessCPU = %s, %v; want 2.8s", got, err)
	}
	if _, err := parseProcessCPU([]byte("17249 (cat) R 1 2")); err == nil {
		t.Error("a short stat line gave no error")
	}
	busy, all, err := parseMachineCPU([]byte("cpu  300 10 50 600 40 0 5 0 7 0\ncpu0 1 2 3 4 5 6 7 8 9 0\n"))
	if err != nil || busy != 3650*time.Millisecond || all != 10050*time.Millisecond {
		t.Errorf("parseMachineCPU = %s, %s, %v; want 3.65s of 10.05s", busy, all, err)
	}
	if _, _, err := parseMachineCPU([]byte("intr 1 2 3\n")); err == nil {
		t.Error("a /proc/stat without the cpu line gave no error")
	}
}

func TestWindowP99(t *testing.T) {
	var rs []openloop.Result
	for i := range 2000 {
		lat := time.Millisecond
		if i >= 1000 && i%50 == 0 { // the second window has a 2% tail
			lat = 40 * time.Millisecond
		}
		rs = append(rs, openloop.Result{Class: classBadge, Status: 200, Due: time.Duration(i) * 10 * time.Millisecond, Latency: lat})
	}
	rs = append(rs, openloop.Result{Class: classPage, Status: 200, Due: 0, Latency: time.Hour})
	got := windowP99(rs, classBadge, 10*time.Second)
	if len(got) != 2 || got[0] != time.Millisecond || got[1] != 40*time.Millisecond {
		t.Errorf("windowP99 = %v", got)
	}
}
