package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestRequestBelowTheLevelCostsNothing: the request log of a route whose
// level the logger leaves out allocates nothing (no status recorder, no
// attributes), so the cached badge pays nothing for a log it does not
// write; at a level the logger keeps, it writes one line.
func TestRequestBelowTheLevelCostsNothing(t *testing.T) {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/badges/version/x.svg", nil)
	for _, tc := range []struct {
		logger slog.Level
		allocs float64
	}{
		{slog.LevelInfo, 0},
		{slog.LevelWarn, 0},
	} {
		s := &Server{log: slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: tc.logger}))}
		h := s.logRequests(slog.LevelDebug, "/badges/{kind}/{reference:.+}.svg", inner)
		if got := testing.AllocsPerRun(1000, func() { h.ServeHTTP(w, r) }); got != tc.allocs {
			t.Errorf("a debug route under a %s logger: %.1f allocations a request, want %.0f", tc.logger, got, tc.allocs)
		}
	}
	var lines countingWriter
	s := &Server{log: slog.New(slog.NewJSONHandler(&lines, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	s.logRequests(slog.LevelDebug, "/x", inner).ServeHTTP(w, r)
	if lines != 1 {
		t.Errorf("a debug route under a debug logger wrote %d lines, want 1", lines)
	}
}

// countingWriter counts the writes made to it (slog writes a line at once).
type countingWriter int

func (c *countingWriter) Write(p []byte) (int, error) { *c++; return len(p), nil }
