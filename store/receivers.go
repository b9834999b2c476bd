package store

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// ReceiverOf names the receiver a webhook URL delivers to: its scheme, host
// and port (the scheme's default when none is given), in lower case. A URL
// that does not parse is its own receiver.
func ReceiverOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// fillReceivers sets the receiver of subscriptions created before it was
// recorded (migration 0006).
func (s *Store) fillReceivers(ctx context.Context) error {
	rows, err := s.write.QueryContext(ctx, `SELECT id, url FROM subscriptions WHERE receiver = ''`)
	if err != nil {
		return fmt.Errorf("store: fill receivers: %w", err)
	}
	type sub struct{ id, url string }
	var subs []sub
	for rows.Next() {
		var x sub
		if err := rows.Scan(&x.id, &x.url); err != nil {
			rows.Close()
			return fmt.Errorf("store: fill receivers: %w", err)
		}
		subs = append(subs, x)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: fill receivers: %w", err)
	}
	for _, x := range subs {
		if _, err := s.write.ExecContext(ctx, `UPDATE subscriptions SET receiver = ? WHERE id = ?`, ReceiverOf(x.url), x.id); err != nil {
			return fmt.Errorf("store: fill receivers: %w", err)
		}
	}
	return nil
}
