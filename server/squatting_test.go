package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/notify"
	"github.com/imagebadger/imagebadger/server"
)

// from is an HTTP client whose connections come from ip, one of the
// loopback addresses: the service sees each as another client.
func from(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}, Timeout: 30 * time.Second}
}

// subscribeFrom posts a subscription request as client and returns the
// status, the Location header and the body.
func subscribeFrom(t *testing.T, client *http.Client, srv string, req map[string]any) (int, string, string) {
	t.Helper()
	return subscribeAs(t, client, srv, "", req)
}

// subscribeAs is subscribeFrom signed in as person through the
// authenticating proxy's header ("" for nobody).
func subscribeAs(t *testing.T, client *http.Client, srv, person string, req map[string]any) (int, string, string) {
	t.Helper()
	b, _ := json.Marshal(req)
	r, _ := http.NewRequest(http.MethodPost, srv+"/api/v1/subscriptions", bytes.NewReader(b))
	r.Header.Set("Content-Type", "application/json")
	if person != "" {
		r.Header.Set(proxyUser, person)
	}
	resp, err := client.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), body.String()
}

// TestSquattingIsBounded: ten addresses each subscribing as often as they
// may hold no more than half of an image's cap (each is refused past its
// share, naming the share), so its owner still subscribes; a subscription
// someone else made to the owner's URL neither blocks the owner's nor is
// named to them; only the owner's own duplicate is 409, naming the owner's.
func TestSquattingIsBounded(t *testing.T) {
	stack.EachEngine(t, func(t *testing.T, engine string) {
		s := stack.New(t, stack.Options{Engine: engine, Registry: true, Notify: true, AllowPrivateWebhooks: true, Server: &server.Options{}})
		rc := stack.NewReceiver(t)
		image := s.Registry.Host + "/acme/app:1"
		stack.Push(t, image)

		held := 0
		for a := range 10 {
			squatter := from(fmt.Sprintf("127.0.0.%d", 10+a))
			for i := range notify.DefaultMaxPerSubscriber + 1 {
				code, _, body := subscribeFrom(t, squatter, s.URL, map[string]any{"image": image, "url": fmt.Sprintf("%s/squat/%d/%d", rc.URL, a, i)})
				switch {
				case i < notify.DefaultMaxPerSubscriber && code == http.StatusCreated:
					held++
				case i == notify.DefaultMaxPerSubscriber:
					if code != http.StatusBadRequest || !strings.Contains(body, "the most one subscriber may") {
						t.Fatalf("address %d, subscription %d: %d %s, want 400 past its share", a, i+1, code, body)
					}
				default:
					t.Fatalf("address %d, subscription %d: %d %s", a, i+1, code, body)
				}
			}
		}
		if held >= notify.DefaultMaxPerImage {
			t.Fatalf("ten addresses hold %d subscriptions, the whole cap of %d", held, notify.DefaultMaxPerImage)
		}

		// Someone subscribes first to the owner's GitHub dispatch URL.
		dispatch := rc.URL + "/repos/owner/app/dispatches"
		squat := map[string]any{"image": image, "url": dispatch, "format": "github"}
		code, squatLoc, body := subscribeFrom(t, from("127.0.0.2"), s.URL, squat)
		if code != http.StatusCreated {
			t.Fatalf("the squatter's subscription: %d %s", code, body)
		}
		squatID := squatLoc[strings.LastIndex(squatLoc, "/")+1:]
		owner := from("127.0.0.3")
		mine := map[string]any{"image": image, "url": dispatch, "format": "github", "headers": map[string]string{"Authorization": "Bearer ghp_owner"}}
		code, ownLoc, body := subscribeFrom(t, owner, s.URL, mine)
		if code != http.StatusCreated {
			t.Fatalf("the owner's subscription after the squatter's: %d %s, want 201", code, body)
		}
		// The squatter's exact request, from the owner, is the owner's own.
		if code, _, body := subscribeFrom(t, owner, s.URL, squat); code != http.StatusCreated || strings.Contains(body, squatID) {
			t.Errorf("the squatter's request made by the owner: %d %s, want 201 without the squatter's id", code, body)
		}
		// The owner asking again is a duplicate: 409, naming the owner's.
		code, loc, body := subscribeFrom(t, owner, s.URL, mine)
		if code != http.StatusConflict || loc != ownLoc || !strings.Contains(body, `"subscription_exists"`) {
			t.Errorf("the owner's duplicate: %d Location %q %s, want 409 at %s", code, loc, body, ownLoc)
		}
		if strings.Contains(body, squatID) || strings.Contains(loc, squatID) {
			t.Errorf("the 409 names the squatter's subscription %s: %s", squatID, body)
		}
		// The same URL with other headers is another subscription.
		mine["headers"] = map[string]string{"Authorization": "Bearer ghp_rotated"}
		if code, _, body := subscribeFrom(t, owner, s.URL, mine); code != http.StatusCreated {
			t.Errorf("the owner's URL with another credential: %d %s, want 201", code, body)
		}
	})
}

// proxyUser is the authenticating proxy's header of these tests.
const proxyUser = "X-Remote-User"

// TestSignedInDuplicateFromAnotherAddress: a signed-in person asking again
// from another address is told of their own subscription (409, naming
// it); someone else from that address makes a new one.
func TestSignedInDuplicateFromAnotherAddress(t *testing.T) {
	stack.EachEngine(t, func(t *testing.T, engine string) {
		s := stack.New(t, stack.Options{Engine: engine, Registry: true, Notify: true, AllowPrivateWebhooks: true, Server: &server.Options{},
			Auth: &auth.Options{ProxyHeader: proxyUser, ProxyTrusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, BadgeKey: []byte("k")}})
		rc := stack.NewReceiver(t)
		image := s.Registry.Host + "/acme/app:1"
		stack.Push(t, image)
		req := map[string]any{"image": image, "url": rc.URL + "/alice"}
		code, first, body := subscribeAs(t, from("127.0.0.20"), s.URL, "alice@example.com", req)
		if code != http.StatusCreated {
			t.Fatalf("alice's subscription: %d %s", code, body)
		}
		if code, loc, body := subscribeAs(t, from("127.0.0.21"), s.URL, "alice@example.com", req); code != http.StatusConflict || loc != first {
			t.Errorf("alice again from another address: %d %q %s, want 409 at %s", code, loc, body, first)
		}
		if code, _, body := subscribeAs(t, from("127.0.0.21"), s.URL, "bob@example.com", req); code != http.StatusCreated {
			t.Errorf("bob from that address: %d %s, want 201", code, body)
		}
		if code, _, body := subscribeAs(t, from("127.0.0.22"), s.URL, "", req); code != http.StatusCreated {
			t.Errorf("someone anonymous: %d %s, want 201", code, body)
		}
	})
}

// TestTokenIsItsMakersSubscriber: a write token subscribes on behalf of the
// person who made it, so the person's duplicate from any address, by the
// token or signed in, is the same subscriber's (409, naming the first), and
// another person's token is another subscriber.
func TestTokenIsItsMakersSubscriber(t *testing.T) {
	stack.EachEngine(t, func(t *testing.T, engine string) {
		s := stack.New(t, stack.Options{Engine: engine, Registry: true, Notify: true, AllowPrivateWebhooks: true, Server: &server.Options{},
			Auth: &auth.Options{ProxyHeader: proxyUser, ProxyTrusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, BadgeKey: []byte("k")}})
		rc := stack.NewReceiver(t)
		image := s.Registry.Host + "/acme/app:1"
		stack.Push(t, image)
		token := func(person string) string {
			tok, err := s.Auth.CreateToken(t.Context(), person, "ci", auth.ScopeWrite, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			return tok.Token
		}
		subscribe := func(client *http.Client, tok string, req map[string]any) (int, string, string) {
			b, _ := json.Marshal(req)
			r, _ := http.NewRequest(http.MethodPost, s.URL+"/api/v1/subscriptions", bytes.NewReader(b))
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Authorization", "Bearer "+tok)
			resp, err := client.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body bytes.Buffer
			_, _ = body.ReadFrom(resp.Body)
			return resp.StatusCode, resp.Header.Get("Location"), body.String()
		}
		alice, bob := token("alice@example.com"), token("bob@example.com")
		req := map[string]any{"image": image, "url": rc.URL + "/alice"}
		code, first, body := subscribe(from("127.0.0.30"), alice, req)
		if code != http.StatusCreated {
			t.Fatalf("alice's token: %d %s", code, body)
		}
		if code, loc, body := subscribe(from("127.0.0.31"), alice, req); code != http.StatusConflict || loc != first {
			t.Errorf("alice's token again from another address: %d %q %s, want 409 at %s", code, loc, body, first)
		}
		if code, loc, body := subscribeAs(t, from("127.0.0.32"), s.URL, "alice@example.com", req); code != http.StatusConflict || loc != first {
			t.Errorf("alice signed in from a third address: %d %q %s, want 409 at %s", code, loc, body, first)
		}
		if code, _, body := subscribe(from("127.0.0.31"), bob, req); code != http.StatusCreated {
			t.Errorf("bob's token: %d %s, want 201", code, body)
		}
	})
}
