package notify_test

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/imagebadger/imagebadger/notify"
)

// TestSignKnownAnswer checks the signature against the Standard Webhooks
// specification's own example.
func TestSignKnownAnswer(t *testing.T) {
	got, err := notify.Sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
		time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("signature = %s, want %s", got, want)
	}
}

// TestSignedHeadersVerifyWithTheReferenceLibrary has an independent
// implementation, the specification's Go library, check what we send.
func TestSignedHeadersVerifyWithTheReferenceLibrary(t *testing.T) {
	secret := notify.NewSecret()
	body := []byte(`{"type":"image.updated","timestamp":"2026-11-26T22:00:00Z","data":{}}`)
	h := http.Header{}
	if err := notify.SignedHeaders(h, secret, "msg_abc", time.Now(), body); err != nil {
		t.Fatal(err)
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(body, h); err != nil {
		t.Errorf("the reference library refuses our signature: %v", err)
	}
	if h.Get("Content-Type") != "application/json" || h.Get("webhook-id") != "msg_abc" {
		t.Errorf("headers = %v", h)
	}
	tampered := append([]byte(nil), body...)
	tampered[2] = 'T'
	if err := wh.Verify(tampered, h); err == nil {
		t.Error("a tampered body verified")
	}
	other, _ := standardwebhooks.NewWebhook(notify.NewSecret())
	if err := other.Verify(body, h); err == nil {
		t.Error("another secret verified")
	}
}

func TestNewSecret(t *testing.T) {
	a, b := notify.NewSecret(), notify.NewSecret()
	if a == b {
		t.Fatal("two secrets are equal")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(a, "whsec_"))
	if !strings.HasPrefix(a, "whsec_") || err != nil || len(key) != 32 {
		t.Errorf("secret %q: want whsec_ + base64 of 32 bytes (%d bytes, %v)", a, len(key), err)
	}
	if _, err := notify.Sign("whsec_not base64!", "id", time.Now(), nil); err == nil {
		t.Error("a malformed secret signed")
	}
}
