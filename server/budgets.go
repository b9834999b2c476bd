package server

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagebadger/imagebadger/images"
)

// budgetCollector exposes the rate-limit budgets registries announce
// (RateLimit-Limit and RateLimit-Remaining, as Docker Hub sends them) as
// the gauges docs/API.md names, read when /metrics is scraped.
type budgetCollector struct {
	budgets          func() []images.Budget
	remaining, limit *prometheus.Desc
}

func newBudgetCollector(budgets func() []images.Budget) *budgetCollector {
	return &budgetCollector{
		budgets: budgets,
		remaining: prometheus.NewDesc("imagebadger_registry_ratelimit_remaining",
			"Requests the registry last said are left in its rate-limit window (RateLimit-Remaining).", []string{"registry"}, nil),
		limit: prometheus.NewDesc("imagebadger_registry_ratelimit_limit",
			"The registry's rate limit per window, as it last announced it (RateLimit-Limit).", []string{"registry"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *budgetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.remaining
	ch <- c.limit
}

// Collect implements prometheus.Collector.
func (c *budgetCollector) Collect(ch chan<- prometheus.Metric) {
	for _, b := range c.budgets() {
		ch <- prometheus.MustNewConstMetric(c.remaining, prometheus.GaugeValue, float64(b.Remaining), b.Registry)
		ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(b.Limit), b.Registry)
	}
}

// budgetNotice is the image page's warning when registry's budget is low,
// "" otherwise.
func (s *Server) budgetNotice(registryName string) string {
	b, ok := s.images.Budget(registryName)
	if !ok || !b.Low() {
		return ""
	}
	return fmt.Sprintf("%s's rate limit for this service is low: %d of %d requests left%s. "+
		"Background polling waits until it recovers, so what this page shows may lag the registry.",
		registryName, b.Remaining, b.Limit, windowText(b))
}

func windowText(b images.Budget) string {
	if b.Window <= 0 {
		return ""
	}
	return " in its " + strings.TrimSuffix(strings.TrimSuffix(b.Window.String(), "0s"), "0m") + " window"
}

// registriesStatus answers GET /healthz/registries: one line per registry
// that announced a rate-limit budget, saying whether it is low. It answers
// 200 whatever the budgets say: a low budget is no reason to restart the
// process, but it is what an operator looks for when pages lag.
func (s *Server) registriesStatus(w http.ResponseWriter, r *http.Request) error {
	var b strings.Builder
	for _, bud := range s.images.Budgets() {
		state := "ok"
		if bud.Low() {
			state = fmt.Sprintf("low (at most %d%% left: polling waits, reads go on)", int(images.PollReserve*100))
		}
		fmt.Fprintf(&b, "%s ratelimit %d/%d%s: %s\n", bud.Registry, bud.Remaining, bud.Limit, windowText(bud), state)
	}
	if b.Len() == 0 {
		b.WriteString("no registry has announced a rate limit\n")
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, err := w.Write([]byte(b.String()))
	return err
}
