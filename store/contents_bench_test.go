package store_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/store"
)

// BenchmarkLayerContentsBytesPerFile keeps a layer of 100,000 files (in
// 1,000 directories, names of 12 to 20 characters, a sha256 each) and
// reports what the database grew by, per file, once checkpointed (SQLite;
// PostgreSQL reports its table's size).
func BenchmarkLayerContentsBytesPerFile(b *testing.B) {
	const files = 100_000
	entries := make([]analysis.LayerEntry, 0, files+1000)
	for d := range 1000 {
		entries = append(entries, analysis.LayerEntry{Path: fmt.Sprintf("usr/share/pkg%04d/", d), Type: analysis.TypeDir, Mode: 0o755})
		for f := range files / 1000 {
			entries = append(entries, analysis.LayerEntry{Path: fmt.Sprintf("usr/share/pkg%04d/file-%04d.dat", d, f), Type: analysis.TypeFile,
				Size: int64(1000 + f), Mode: 0o644, Digest: fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(strconv.Itoa(d*1000+f))))})
		}
	}
	ctx := context.Background()
	var perFile float64
	for i := 0; b.Loop(); i++ {
		path := filepath.Join(b.TempDir(), "ib.db")
		s := open(b, path)
		raw := rawDB(b, path)
		size := func() int64 {
			if cluster != nil {
				var n int64
				if err := raw.QueryRow(`SELECT pg_total_relation_size('layer_content_dirs')`).Scan(&n); err != nil {
					b.Fatal(err)
				}
				return n
			}
			if _, err := raw.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
				b.Fatal(err)
			}
			st, err := os.Stat(path)
			if err != nil {
				b.Fatal(err)
			}
			return st.Size()
		}
		before := size()
		digest := contentsDigest(1_000_000 + i)
		if ok, _, err := s.ClaimLayerContents(ctx, digest, "bench", t0, time.Minute); err != nil || !ok {
			b.Fatal(err)
		}
		if err := s.FinishLayerContents(ctx, digest, "bench", store.LayerContentsInfo{}, entries, t0); err != nil {
			b.Fatal(err)
		}
		perFile = float64(size()-before) / files
	}
	b.ReportMetric(perFile, "bytes/file")
}
