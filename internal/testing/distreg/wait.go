package distreg

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// ErrExited is WaitOK's answer when the process behind the URL exits first.
var ErrExited = errors.New("exited before it answered")

// WaitOK polls GET url every 25 ms until it answers 200 OK. It gives up with
// ErrExited once exited is closed (the process serving url is gone), or with
// ctx's error and the last failure once ctx ends. The registry, the built
// binary under test and the soak's server all start this way.
func WaitOK(ctx context.Context, url string, exited <-chan struct{}) error {
	return WaitStatus(ctx, url, exited, http.StatusOK)
}

// WaitStatus is WaitOK accepting any of statuses: a registry that demands
// credentials is ready once GET /v2/ answers 401.
func WaitStatus(ctx context.Context, url string, exited <-chan struct{}, statuses ...int) error {
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if slices.Contains(statuses, resp.StatusCode) {
				return nil
			}
			err = fmt.Errorf("GET %s answered %s", url, resp.Status)
		}
		last = err
		select {
		case <-exited:
			return ErrExited
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-tick.C:
		}
	}
}
