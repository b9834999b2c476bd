package server

import (
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
)

// handlerFunc is a handler that returns its error instead of writing it, so
// every error goes through writeError.
type handlerFunc func(http.ResponseWriter, *http.Request) error

// handle adapts a handlerFunc and labels it with name for metrics.
func (s *Server) handle(name string, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		start := time.Now()
		if err := h(sw, r); err != nil {
			s.writeError(sw, r, err)
		}
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		s.http.requests.WithLabelValues(name, strconv.Itoa(status)).Inc()
		s.http.duration.WithLabelValues(name).Observe(time.Since(start).Seconds())
	})
}

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg *prometheus.Registry) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagebadger_http_requests_total",
			Help: "HTTP requests answered, by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "imagebadger_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// newBuildInfoGauge is imagebadger_build_info: always 1, its labels name
// the build (version, commit, date and the Go release it was compiled
// with), as Prometheus exporters conventionally say what is running.
func newBuildInfoGauge(b BuildInfo) prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "imagebadger_build_info",
		Help: "The build that serves: version, commit, build date and Go version; always 1.",
	}, []string{"version", "commit", "date", "goversion"})
	g.WithLabelValues(b.Version, b.Commit, b.Date, runtime.Version()).Set(1)
	return g
}

// statusWriter remembers the status code written, for logs and metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// quietRoute marks the handler of a route whose requests are logged at
// debug rather than info: badges (most of the traffic, one request per
// README view), the health checks and /metrics, which machines ask for on
// a timer. Their lines would bury the ones a person looks for at info.
type quietRoute struct{ http.Handler }

// quiet marks h as the handler of a quiet route (see quietRoute).
func quiet(h http.Handler) http.Handler { return quietRoute{h} }

// logEveryRoute puts the request log around the handler of every route
// registered on the router, at the level the route asks for: debug for a
// quiet route, info for any other. Wrapping each route once, at start,
// spares a request the per-request middleware chain of the router, and a
// route added later is logged without being told to.
func (s *Server) logEveryRoute() {
	_ = s.router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		h := route.GetHandler()
		if h == nil {
			return nil
		}
		level := slog.LevelInfo
		if q, ok := h.(quietRoute); ok {
			level, h = slog.LevelDebug, q.Handler
		}
		tmpl, _ := route.GetPathTemplate()
		route.Handler(s.logRequests(level, tmpl, h))
		return nil
	})
}

// logRequests logs one line per request to next, the route whose path
// template is route, at level: its outcome and duration. A request below
// the logger's level costs one Enabled check and nothing more (no status
// recorder, no clock, no attributes), which keeps the cached badge path as
// fast with the log as without it.
func (s *Server) logRequests(level slog.Level, route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if !s.log.Enabled(ctx, level) {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		s.log.LogAttrs(ctx, level, "http", slog.String("method", r.Method), slog.String("path", loggedPath(r)),
			slog.String("route", route), slog.Int("status", status), slog.String("client", clientAddr(r)),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000))
	})
}

// loggedPath is the request's path as logs may show it: a token in the
// path (the hooks' {token}) is replaced, since whoever reads the log could
// otherwise use it.
func loggedPath(r *http.Request) string {
	tok := mux.Vars(r)["token"]
	if tok == "" {
		return r.URL.Path
	}
	return strings.Replace(r.URL.Path, tok, "{token}", 1)
}
