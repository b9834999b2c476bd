package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
)

// seedRepositories makes n repositories known, with names built the way
// registries fill up (team/service-variant on a few registries), written
// straight into the tables in one transaction: the index is what a search
// reads, however it was filled.
func seedRepositories(b *testing.B, s *Store, n int) []analysis.Repository {
	b.Helper()
	ctx := context.Background()
	registries := []string{"docker.io", "ghcr.io", "quay.io", "registry.example:5000"}
	teams := []string{"acme", "library", "bitnami", "payments", "data-platform", "ml", "infra", "frontend", "search", "billing",
		"identity", "mobile", "observability", "security", "growth", "core", "edge", "devtools", "storage", "analytics"}
	services := []string{"api", "web", "worker", "gateway", "postgres", "redis", "nginx", "python", "node", "golang",
		"exporter", "scheduler", "indexer", "auth", "billing-service", "cache", "queue", "proxy", "runner", "agent",
		"frontend", "backend", "etl", "notebook", "trainer", "serving", "ingest", "cron", "migrations", "docs"}
	rng := rand.New(rand.NewPCG(1, 2))
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var repos []analysis.Repository
	for i := range n {
		repo := analysis.Repository{
			Registry: registries[rng.IntN(len(registries))],
			Name:     fmt.Sprintf("%s-%d/%s-%d", teams[rng.IntN(len(teams))], rng.IntN(500), services[rng.IntN(len(services))], i),
		}
		if err := s.knowRepository(ctx, tx, repo, at.Add(time.Duration(i)*time.Second)); err != nil {
			b.Fatal(err)
		}
		repos = append(repos, repo)
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	return repos
}

// BenchmarkSearch100000 searches 100,000 known repositories for their best
// 20 matches: one repository's own last part, a service name thousands of
// repositories start with, a piece inside thousands of names, a term with a
// path that few names hold, a common two-character piece, and a term no
// name holds.
func BenchmarkSearch100000(b *testing.B) {
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "ib.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const n = 100_000
	repos := seedRepositories(b, s, n)
	one := lastPart(repos[4242])
	two := repos[777].Name[:strings.IndexByte(repos[777].Name, '/')+5]
	for _, term := range []string{one, "postgres", "gres", two, "et", "zz-none"} {
		b.Run(term, func(b *testing.B) {
			var found int
			for b.Loop() {
				rs, err := s.Search(context.Background(), term, 20)
				if err != nil {
					b.Fatal(err)
				}
				found = len(rs)
			}
			b.ReportMetric(float64(found), "results")
		})
	}
}
