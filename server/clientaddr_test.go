package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/internal/testing/syncbuf"
	"github.com/imagebadger/imagebadger/ratelimit"
	"github.com/imagebadger/imagebadger/server"
)

// proxied sends a request as a reverse proxy on 127.0.0.1 forwards it for
// client (X-Forwarded-For), with the bearer token tok, and returns the
// status.
func proxied(t *testing.T, method, url, client, tok string) int {
	t.Helper()
	var body *strings.Reader
	if method == http.MethodPost {
		body = strings.NewReader(`{"events":[]}`)
	} else {
		body = strings.NewReader("")
	}
	r, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Authorization", "Bearer "+tok)
	r.Header.Set("Content-Type", "application/json")
	if client != "" {
		r.Header.Set("X-Forwarded-For", client)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestWrongTokensBehindATrustedProxy: behind a reverse proxy on 127.0.0.1
// named in TrustedProxies, 20 wrong tokens from one client lock that
// client out of the token routes (429 even with the right token) and no
// other: a second client's right token still opens its subscription and
// the registry hook. Without TrustedProxies the header is ignored, every
// request is the proxy's, and the second client is locked out too.
func TestWrongTokensBehindATrustedProxy(t *testing.T) {
	stack.EachEngine(t, func(t *testing.T, engine string) {
		for _, trusted := range []bool{true, false} {
			name := "proxy trusted"
			if !trusted {
				name = "proxy not trusted"
			}
			t.Run(name, func(t *testing.T) {
				opts := &server.Options{HookToken: "right-hook-token"}
				if trusted {
					opts.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
				}
				log := &syncbuf.Buffer{}
				s := stack.New(t, stack.Options{Engine: engine, Registry: true, Notify: true, AllowPrivateWebhooks: true, Server: opts, Log: log})
				rc := stack.NewReceiver(t)
				ref := s.Registry.Host + "/acme/base:1.0"
				stack.Push(t, ref)
				sub := s.Subscribe(t, rc, ref, "/hook")
				subURL := s.URL + "/api/v1/subscriptions/" + sub.ID
				const attacker, other = "203.0.113.5", "203.0.113.6"

				for i := range 20 {
					if code := proxied(t, "GET", subURL, attacker, "wrong-token"); code != http.StatusUnauthorized {
						t.Fatalf("wrong token %d from %s: %d, want 401", i+1, attacker, code)
					}
				}
				if code := proxied(t, "GET", subURL, attacker, sub.Token); code != http.StatusTooManyRequests {
					t.Errorf("the right token from %s after 20 wrong ones: %d, want 429", attacker, code)
				}
				if code := proxied(t, "POST", s.URL+"/hooks/registry", attacker, "right-hook-token"); code != http.StatusTooManyRequests {
					t.Errorf("the registry hook from %s after 20 wrong tokens: %d, want 429", attacker, code)
				}
				wantOther := http.StatusOK
				wantHook := http.StatusAccepted
				if !trusted {
					wantOther, wantHook = http.StatusTooManyRequests, http.StatusTooManyRequests
				}
				if code := proxied(t, "GET", subURL, other, sub.Token); code != wantOther {
					t.Errorf("the right token from %s: %d, want %d", other, code, wantOther)
				}
				if code := proxied(t, "POST", s.URL+"/hooks/registry", other, "right-hook-token"); code != wantHook {
					t.Errorf("the registry hook from %s: %d, want %d", other, code, wantHook)
				}
				// The request log names the client each limit was keyed by:
				// 21 lines of the attacker's and one of the other's requests
				// to the subscription, or all 22 of the proxy's.
				want := map[string]int{attacker: 21, other: 1}
				if !trusted {
					want = map[string]int{"127.0.0.1": 22}
				}
				got := map[string]int{}
				for line := range strings.Lines(log.String()) {
					var l struct{ Msg, Route, Client string }
					if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "http" && l.Route == "/api/v1/subscriptions/{id}" {
						got[l.Client]++
					}
				}
				if len(got) != len(want) || got[attacker] != want[attacker] || got[other] != want[other] || got["127.0.0.1"] != want["127.0.0.1"] {
					t.Errorf("request log lines of the subscription route by client: %v, want %v", got, want)
				}
			})
		}
	})
}

// TestSubscriptionsPerClientBehindATrustedProxy: the subscriptions one
// client may create are counted per client behind the trusted proxy (one
// client's limit reached leaves another's whole), and a subscription
// records the client, not the proxy, as the address that made it.
func TestSubscriptionsPerClientBehindATrustedProxy(t *testing.T) {
	stack.EachEngine(t, func(t *testing.T, engine string) {
		s := stack.New(t, stack.Options{Engine: engine, Registry: true, Notify: true, AllowPrivateWebhooks: true,
			PerClient: ratelimit.Limit{Burst: 2, Period: time.Hour},
			Server:    &server.Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}})
		rc := stack.NewReceiver(t)
		ref := s.Registry.Host + "/acme/base:1.0"
		stack.Push(t, ref)
		create := func(client string, i int) (int, string) {
			t.Helper()
			body := `{"image":"` + ref + `","url":"` + rc.URL + `/hook/` + strconv.Itoa(i) + `"}`
			r, _ := http.NewRequest("POST", s.URL+"/api/v1/subscriptions", strings.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Forwarded", `for="`+client+`:4711";proto=https`)
			resp, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var sub stack.Subscription
			_ = json.NewDecoder(resp.Body).Decode(&sub)
			return resp.StatusCode, sub.ID
		}
		var first string
		for i := range 2 {
			code, id := create("203.0.113.5", i)
			if code != http.StatusCreated {
				t.Fatalf("subscription %d from 203.0.113.5: %d, want 201", i+1, code)
			}
			if i == 0 {
				first = id
			}
		}
		if code, _ := create("203.0.113.5", 2); code != http.StatusTooManyRequests {
			t.Errorf("a third subscription from 203.0.113.5: %d, want 429", code)
		}
		if code, _ := create("203.0.113.6", 3); code != http.StatusCreated {
			t.Errorf("a subscription from 203.0.113.6: %d, want 201", code)
		}
		sub, err := s.Store.Subscription(context.Background(), first)
		if err != nil {
			t.Fatal(err)
		}
		if sub.Client != "203.0.113.5" {
			t.Errorf("the subscription records client %q, want 203.0.113.5", sub.Client)
		}
	})
}
