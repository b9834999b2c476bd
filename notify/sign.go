package notify

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// secretPrefix marks a Standard Webhooks signing secret; the rest is the
// base64 of the key.
const secretPrefix = "whsec_"

// secretBytes is the key length: the specification asks for 24 to 64 bytes.
const secretBytes = 32

// NewSecret returns a new signing secret, "whsec_" followed by the base64 of
// 32 random bytes, the form receivers' Standard Webhooks libraries accept.
func NewSecret() string {
	b := make([]byte, secretBytes)
	_, _ = rand.Read(b)
	return secretPrefix + base64.StdEncoding.EncodeToString(b)
}

// errBadSecret reports a secret that is not "whsec_" + base64.
var errBadSecret = errors.New("notify: malformed webhook secret")

// Sign returns the webhook-signature header value for one message: "v1,"
// followed by the base64 HMAC-SHA256, keyed with the decoded secret, of
// "{id}.{timestamp}.{body}", as the Standard Webhooks specification says.
func Sign(secret, id string, ts time.Time, body []byte) (string, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, secretPrefix))
	if err != nil || len(key) == 0 {
		return "", errBadSecret
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.", id, ts.Unix())
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// SignedHeaders sets the three Standard Webhooks headers and the content
// type of a delivery on h.
func SignedHeaders(h http.Header, secret, id string, ts time.Time, body []byte) error {
	sig, err := Sign(secret, id, ts, body)
	if err != nil {
		return err
	}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	h.Set("webhook-signature", sig)
	h.Set("Content-Type", "application/json")
	return nil
}
