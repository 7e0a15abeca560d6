package mongo

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/qingfeng-zj/qingfeng/donations"
)

// BenchmarkStatement is one organization's monthly statement with
// QF_BENCH_LEDGER_ENTRIES entries in its ledger (default 100,000, over twelve months),
// three ways, interleaved, one run: a published month as the public reads it
// (Ledger.PublicStatement: the stored statement and the entries after it, an _id
// range), the same month recomputed (Ledger.Statement: every entry folded), and the
// bare driver sending the equivalent aggregations (the month's sums by kind, and the
// funds at the month's end).
//
//	go test -run '^$' -bench 'Statement$' -benchtime 1x ./storage/mongo
func BenchmarkStatement(b *testing.B) {
	n := 100_000
	if v := os.Getenv("QF_BENCH_LEDGER_ENTRIES"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	forEachBenchTarget(b, func(b *testing.B, db *DB) {
		ctx := context.Background()
		const code = "51330782MJ0000018J"
		start := time.Now()
		batch := make([]any, 0, 1000)
		for i := range n {
			e := donations.Entry{Seq: int64(i + 1), Org: code, Date: fmt.Sprintf("2026-%02d-%02d", 1+i%12, 1+i%28),
				RecordedBy: "liaison-1", RecordedAt: base}
			e.ID = LedgerEntryID(code, e.Seq)
			if i%4 != 3 {
				e.Kind, e.IncomeType, e.AmountFen, e.ReceiptNumber = donations.KindIncome, donations.IncomeCash, 10_000, fmt.Sprint("R", i)
			} else {
				e.Kind, e.From, e.AmountFen = donations.KindDisbursement, donations.FromFunds, 4_000
			}
			batch = append(batch, toLedgerDoc(e))
			if len(batch) == cap(batch) || i == n-1 {
				if _, err := db.coll(collLedger).InsertMany(ctx, batch); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
		}
		b.Logf("seeded %d entries in %v", n, time.Since(start).Round(time.Millisecond))
		s := NewLedgerStore(db)
		l := &donations.Ledger{Store: s, Now: func() time.Time { return time.Date(2026, 12, 20, 0, 0, 0, 0, time.UTC) }}
		start = time.Now()
		if _, err := l.Publish(ctx, code, "2026-10", "liaison-1"); err != nil {
			b.Fatal(err)
		}
		b.Logf("published 2026-10 in %v", time.Since(start).Round(time.Millisecond))
		var read, ours, raw []time.Duration
		var want donations.Statement
		b.ResetTimer()
		for range b.N {
			t0 := time.Now()
			ps, corrections, err := l.PublicStatement(ctx, code, "2026-10")
			if err != nil || len(corrections) != 0 {
				b.Fatal(err, len(corrections))
			}
			read = append(read, time.Since(t0))

			t0 = time.Now()
			want, _, err = l.Statement(ctx, code, "2026-10")
			if err != nil {
				b.Fatal(err)
			}
			ours = append(ours, time.Since(t0))
			if string(want.Canonical()) != string(ps.Canonical()) {
				b.Fatal("the published statement differs from the recomputed one")
			}

			t0 = time.Now()
			var month, end []bson.M
			cur, err := db.coll(collLedger).Aggregate(ctx, bson.A{
				bson.M{"$match": bson.M{"org": code, "date": bson.M{"$gte": "2026-10-01", "$lte": "2026-10-31"}}},
				bson.M{"$group": bson.M{"_id": bson.M{"kind": "$kind", "income_type": "$income_type", "from": "$from"}, "fen": bson.M{"$sum": "$amount_fen"}, "n": bson.M{"$sum": 1}}},
			})
			if err == nil {
				err = cur.All(ctx, &month)
			}
			if err == nil {
				cur, err = db.coll(collLedger).Aggregate(ctx, bson.A{
					bson.M{"$match": bson.M{"org": code, "date": bson.M{"$lte": "2026-10-31"}}},
					bson.M{"$group": bson.M{"_id": "$kind", "fen": bson.M{"$sum": "$amount_fen"}}},
				})
			}
			if err == nil {
				err = cur.All(ctx, &end)
			}
			if mongodrv.IsTimeout(err) {
				// Reported, not fatal: on a loaded machine the embedded server's
				// aggregation can exceed the driver's operation timeout (opTimeout).
				b.Logf("raw aggregation: gave up after %v: %v", time.Since(t0).Round(time.Millisecond), err)
				continue
			}
			if err != nil {
				b.Fatal(err)
			}
			raw = append(raw, time.Since(t0))
			if len(month) == 0 || len(end) == 0 {
				b.Fatal("the raw aggregation found nothing")
			}
		}
		b.StopTimer()
		if want.Entries == 0 || want.IncomeFen == 0 {
			b.Fatalf("statement %+v", want)
		}
		med := func(d []time.Duration) float64 {
			slices.Sort(d)
			return float64(d[len(d)/2].Microseconds()) / 1e3
		}
		b.ReportMetric(med(read), "published-read-median-ms")
		b.ReportMetric(med(ours), "recomputed-median-ms")
		b.ReportMetric(med(ours)/med(read), "recomputed/published")
		if len(raw) > 0 {
			b.ReportMetric(med(raw), "raw-median-ms")
			b.ReportMetric(med(raw)/med(read), "raw/published")
			b.ReportMetric(med(raw)/med(ours), "raw/recomputed")
		}
	})
}
