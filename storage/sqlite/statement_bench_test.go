package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/donations"
)

// BenchmarkStatement is storage/mongo's BenchmarkStatement on this store: one
// organization's monthly statement with QF_BENCH_LEDGER_ENTRIES entries in its ledger
// (default 100,000, over twelve months) among QF_BENCH_LEDGER_OTHERS entries of 99
// other organizations (default 900,000: a store of 1,000,000), a published month as the public reads it
// (Ledger.PublicStatement: the stored statement and its correction notes) and the same
// month recomputed (Ledger.Statement: every entry read and folded), interleaved, one
// run:
//
//	go test -run '^$' -bench 'Statement$' -benchtime 1x ./storage/sqlite
func BenchmarkStatement(b *testing.B) {
	n := 100_000
	if v := os.Getenv("QF_BENCH_LEDGER_ENTRIES"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	// The rest of the store: 99 other organizations' entries (900,000 by default, so
	// that the store holds 1,000,000), interleaved with the measured one's.
	others := 900_000
	if v := os.Getenv("QF_BENCH_LEDGER_OTHERS"); v != "" {
		others, _ = strconv.Atoi(v)
	}
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(b.TempDir(), FileName), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	const code = "51330782MJ0000018J"
	start := time.Now()
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	// Seeded through the append path itself, in one transaction (one fsync).
	if err := db.Tx(ctx, func(tx *sql.Tx) error {
		for i := range n {
			e := donations.Entry{Date: fmt.Sprintf("2026-%02d-%02d", 1+i%12, 1+i%28), RecordedBy: "liaison-1", RecordedAt: at}
			if i%4 != 3 {
				e.Kind, e.IncomeType, e.AmountFen, e.ReceiptNumber = donations.KindIncome, donations.IncomeCash, 10_000, fmt.Sprint("R", i)
			} else {
				e.Kind, e.From, e.AmountFen = donations.KindDisbursement, donations.FromFunds, 4_000
			}
			if _, err := appendTx(ctx, tx, code, e, nil); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	// The other organizations, in transactions of 10,000 entries.
	for done := 0; done < others; {
		chunk := min(10_000, others-done)
		if err := db.Tx(ctx, func(tx *sql.Tx) error {
			for i := done; i < done+chunk; i++ {
				e := donations.Entry{Date: fmt.Sprintf("2026-%02d-%02d", 1+i%12, 1+i%28), RecordedBy: "liaison-2", RecordedAt: at,
					Kind: donations.KindIncome, IncomeType: donations.IncomeCash, AmountFen: 5_000, ReceiptNumber: fmt.Sprint("O", i)}
				if _, err := appendTx(ctx, tx, fmt.Sprintf("51330782MJ%07dX", i%99), e, nil); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		done += chunk
	}
	b.Logf("seeded %d entries for the organization and %d for 99 others in %v", n, others, time.Since(start).Round(time.Millisecond))
	l := &donations.Ledger{Store: NewLedgerStore(db), Now: func() time.Time { return time.Date(2026, 12, 20, 0, 0, 0, 0, time.UTC) }}
	start = time.Now()
	if _, err := l.Publish(ctx, code, "2026-10", "liaison-1"); err != nil {
		b.Fatal(err)
	}
	b.Logf("published 2026-10 in %v", time.Since(start).Round(time.Millisecond))
	var read, ours []time.Duration
	var want donations.Statement
	b.ResetTimer()
	for range b.N {
		for range 5 {
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
}
