package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// healthcheckTimeout is how long healthcheck waits for /healthz by
// default: the route answers from memory, so a process that takes longer
// is not well, and a container runtime's own timeout is rarely shorter.
const healthcheckTimeout = 5 * time.Second

// healthcheckCommand is healthcheck: a container's HEALTHCHECK for an image
// with nothing in it but this binary (no shell, no curl).
func healthcheckCommand() command {
	var target, addr string
	timeout := healthcheckTimeout
	return command{
		name:    "healthcheck",
		summary: "exit 0 when the service answers /healthz, else 1: a container healthcheck for an image without a shell",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&target, "url", "", "the service's root `URL`; /healthz is asked there (default http://127.0.0.1 and the port of --addr)")
			fs.StringVar(&addr, "addr", defaultConfig().Addr, "the address serve listens on, as serve's --addr (IMAGEBADGER_ADDR): its port makes the default --url, so the container's own setting is checked")
			fs.DurationVar(&timeout, "timeout", timeout, "how long to wait for the answer")
		},
		run: func(ctx context.Context, inv invocation) error {
			u, err := healthURL(target, addr)
			if err != nil {
				return err
			}
			if timeout <= 0 {
				return usageError{"healthcheck: --timeout must be positive"}
			}
			return healthcheck(ctx, u, timeout, inv.stdout)
		},
	}
}

// healthURL is the URL healthcheck asks: --url with /healthz appended, or
// http://127.0.0.1:PORT/healthz for the port of --addr (the host too, when
// --addr names one that is not a wildcard).
func healthURL(target, addr string) (string, error) {
	if target == "" {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return "", usageError{fmt.Sprintf("healthcheck: --addr %q is not HOST:PORT: %v", addr, err)}
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		target = "http://" + net.JoinHostPort(host, port)
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", usageError{fmt.Sprintf("healthcheck: --url %q is not an http or https URL such as http://127.0.0.1:8080", target)}
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/healthz"
	u.RawQuery, u.Fragment = "", ""
	return u.String(), nil
}

// healthcheck asks target and returns nil when it answers 200 within
// timeout, else an error saying what happened (exit status 1).
//
// The request does not go through netguard, which refuses loopback for
// registries and webhooks: here the address is the operator's own service,
// given by the operator (--url, --addr), and loopback is the very address
// a container healthcheck asks. For the same reason no proxy of the
// environment is used and no redirect is followed: a redirect is not the
// service answering.
func healthcheck(ctx context.Context, target string, timeout time.Duration, w io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("healthcheck: GET %s: no answer within %s", target, timeout)
		}
		// The url.Error would name the method and URL a second time.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("healthcheck: GET %s: %w", target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: GET %s answered %s: %s", target, resp.Status, oneLine(string(body), 120))
	}
	_, err = fmt.Fprintf(w, "ok: GET %s answered %s\n", target, resp.Status)
	return err
}
