package migrate_test

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/storage/blob"
	"github.com/qingfeng-zj/qingfeng/storage/migrate"
)

// BenchmarkMigrate times a whole migration (copy and verify) of a seeded data set —
// QF_BENCH_MIGRATE_CASES cases (default 2,000) with their objects and the rest of
// fill's kinds — from SQLite to MongoDB (the embedded FerretDB) and back, and reports
// cases a second each way. Run it once: go test -run '^$' -bench Migrate -benchtime 1x
func BenchmarkMigrate(b *testing.B) {
	n := 2000
	if v, err := strconv.Atoi(os.Getenv("QF_BENCH_MIGRATE_CASES")); err == nil && v > 0 {
		n = v
	}
	srv := startServers(b)
	src, srcDB := srv.sqliteSide(b)
	fill(b, srcDB, src.Objects.(*blob.Store), n, rand.New(rand.NewPCG(7, 8)))
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		mid, _ := srv.mongoSide(b)
		start := time.Now()
		if _, err := migrate.Run(ctx, src, mid, migrate.Options{Progress: os.Stderr}); err != nil {
			b.Fatal(err)
		}
		up := time.Since(start)
		back, _ := srv.sqliteSide(b)
		start = time.Now()
		if _, err := migrate.Run(ctx, mid, back, migrate.Options{Progress: os.Stderr}); err != nil {
			b.Fatal(err)
		}
		down := time.Since(start)
		b.ReportMetric(float64(n)/up.Seconds(), "cases/s_to_mongo")
		b.ReportMetric(float64(n)/down.Seconds(), "cases/s_to_sqlite")
		b.Logf("%d cases: sqlite → FerretDB %s, FerretDB → sqlite %s (copy and verify)", n, up.Round(time.Millisecond), down.Round(time.Millisecond))
	}
}
