package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/audit"
	"github.com/qingfeng-zj/qingfeng/intake"
)

// fillAuditAndUsers stores n audit entries (over n/10 cases) and n accounts in one
// transaction each, straight through SQL: the benchmarks time reads, not filling.
func fillAuditAndUsers(tb testing.TB, db *DB, n int) {
	tb.Helper()
	ctx := context.Background()
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		for i := 1; i <= n; i++ {
			if _, err := tx.ExecContext(ctx, "INSERT INTO audit ("+auditColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
				i, at+int64(i), fmt.Sprintf("u-%d", i%50), "staff", "case.read", fmt.Sprintf("QF-330782-2026-%06d", i%(n/10)),
				`{"view":"full"}`, "prev", "hash"); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO users (id, username, display_name, role, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
				fmt.Sprintf("u%07d", i), fmt.Sprintf("user%07d", i), "王五", "staff", "$argon2id$x", at, at); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkIndexedReads shows how the audit list of one case (GET /v1/admin/audit?case=)
// and a login's account lookup grow with the rows stored: with the indexes, by a B-tree
// level per order of magnitude at most, not with the row count.
//
//	go test ./storage/sqlite/ -run '^$' -bench IndexedReads -benchtime 2000x
func BenchmarkIndexedReads(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{1_000, 10_000, 100_000} {
		db := openTestDB(b)
		fillAuditAndUsers(b, db, n)
		as, us := NewAuditStore(db), NewUserStore(db)
		b.Run(fmt.Sprintf("audit-list-by-case/rows=%d", n), func(b *testing.B) {
			i := 0
			for b.Loop() {
				i++
				es, err := as.List(ctx, audit.Query{Case: fmt.Sprintf("QF-330782-2026-%06d", i%(n/10)), Limit: 50})
				if err != nil || len(es) != 10 {
					b.Fatalf("%d entries, %v", len(es), err)
				}
			}
		})
		b.Run(fmt.Sprintf("user-by-username/rows=%d", n), func(b *testing.B) {
			i := 0
			for b.Loop() {
				i++
				if _, err := us.UserByUsername(ctx, fmt.Sprintf("user%07d", 1+i%n)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkIntakeWrites measures the writes of one anonymous filing, approximated
// with the stores there are (a case number, an idempotency claim and its update, an
// audit entry, and a 4 KiB row standing for the case itself: five commits), from 32
// goroutines at once, with synchronous=FULL (the choice) and NORMAL (what FULL costs).
// The goal is 500 filings/s at concurrency 32; it also reports the WAL's
// largest size seen, which must stay under 64 MiB.
//
//	go test ./storage/sqlite/ -run '^$' -bench IntakeWrites -benchtime 2000x
func BenchmarkIntakeWrites(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		b.Run("synchronous="+sync, func(b *testing.B) {
			ctx := context.Background()
			path := filepath.Join(b.TempDir(), FileName)
			db, err := open(ctx, path, nil, options{migrations: migrations, busy: busyTimeout, synchronous: sync})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			if _, err := db.w.ExecContext(ctx, "CREATE TABLE bench_cases (id TEXT PRIMARY KEY, body BLOB NOT NULL) STRICT"); err != nil {
				b.Fatal(err)
			}
			counters, idem, l := NewCounterStore(db), NewIdempotencyStore(db), &audit.Log{Store: NewAuditStore(db)}
			body := bytes.Repeat([]byte{0xa5}, 4096)
			var n atomic.Int64
			var maxWAL atomic.Int64
			b.SetParallelism(16) // × GOMAXPROCS 2 = 32 goroutines
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					key := fmt.Sprintf("key-%d", i)
					now := time.Now()
					seq, err := counters.NextSequence(ctx, "QF-330782-2026")
					if err != nil {
						b.Error(err)
						return
					}
					r := &intake.IdempotencyRecord{KeyHash: key, RequestHash: "r", Owner: "o", ClaimUntil: now.Add(time.Minute), CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)}
					if _, err := idem.ClaimIdempotency(ctx, r); err != nil {
						b.Error(err)
						return
					}
					if err := db.Tx(ctx, func(tx *sql.Tx) error {
						_, err := tx.ExecContext(ctx, "INSERT INTO bench_cases (id, body) VALUES (?, ?)", fmt.Sprint("case-", seq), body)
						return err
					}); err != nil {
						b.Error(err)
						return
					}
					r.Done, r.CaseID = true, fmt.Sprint("case-", seq)
					if err := idem.UpdateIdempotency(ctx, r); err != nil {
						b.Error(err)
						return
					}
					if err := l.Record(ctx, "reporter", "", "case.filed", fmt.Sprint("QF-330782-2026-", seq), nil); err != nil {
						b.Error(err)
						return
					}
					if i%200 == 0 {
						if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() > maxWAL.Load() {
							maxWAL.Store(fi.Size())
						}
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "filings/s")
			b.ReportMetric(float64(maxWAL.Load())/(1<<20), "max-WAL-MiB")
		})
	}
}

// BenchmarkCaseReads shows how a unit's queue page (50 cases by nearest deadline, as
// the console opens it, and the page after it) and a case read by number grow with
// the cases stored, filled through CaseStore.CreateCase: 10 units, deadlines spread
// over 60 days. The file is opened with synchronous=OFF so that filling 100,000
// cases takes seconds; reads do not depend on it.
//
//	go test ./storage/sqlite/ -run '^$' -bench CaseReads -benchtime 2000x
func BenchmarkCaseReads(b *testing.B) {
	ctx := context.Background()
	const units = 10
	received := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, n := range []int{1_000, 10_000, 100_000} {
		db, err := open(ctx, filepath.Join(b.TempDir(), FileName), nil, options{migrations: migrations, busy: busyTimeout, synchronous: "OFF"})
		if err != nil {
			b.Fatal(err)
		}
		s := NewCaseStore(db)
		for i := range n {
			c := benchCase(i, fmt.Sprintf("unit-%02d", i%units), received.Add(time.Duration(i)*time.Second))
			if err := s.CreateCase(ctx, c); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(fmt.Sprintf("queue-by-due/cases=%d", n), func(b *testing.B) {
			i := 0
			for b.Loop() {
				i++
				page, err := s.ListCases(ctx, intake.CaseFilter{UnitID: fmt.Sprintf("unit-%02d", i%units), SortByDue: true, Limit: 50})
				if err != nil || len(page) != 50 {
					b.Fatalf("%d cases, %v", len(page), err)
				}
			}
		})
		first, err := s.ListCases(ctx, intake.CaseFilter{UnitID: "unit-03", SortByDue: true, Limit: 50})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("queue-by-due-next-page/cases=%d", n), func(b *testing.B) {
			for b.Loop() {
				page, err := s.ListCases(ctx, intake.CaseFilter{UnitID: "unit-03", SortByDue: true, Limit: 50, After: first[49].ID})
				if err != nil || len(page) != 50 {
					b.Fatalf("%d cases, %v", len(page), err)
				}
			}
		})
		b.Run(fmt.Sprintf("case-by-number/cases=%d", n), func(b *testing.B) {
			i := 0
			for b.Loop() {
				i++
				if _, err := s.CaseByNumber(ctx, fmt.Sprintf("QF-330782-2026-%06d", i%n)); err != nil {
					b.Fatal(err)
				}
			}
		})
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// benchCase is a registered real-name case of a typical size, due within 60 days.
func benchCase(i int, unit string, received time.Time) *intake.Case {
	return &intake.Case{
		ID: fmt.Sprintf("case-%07d", i), Number: fmt.Sprintf("QF-330782-2026-%06d", i), Source: "app", Category: "arbitrary_fees",
		Subject:     intake.Subject{Kind: intake.SubjectOrganization, Organization: &intake.OrgSubject{CreditCode: "51330782MJ0000000X", Name: "义乌市某某协会"}},
		Description: "以会员费名义向企业强制收费，涉及多家企业，金额较大。", Location: intake.Location{Division: "330782001", Address: "稠城街道"},
		RealName: true, Identity: &intake.SealedIdentity{Ciphertext: bytes.Repeat([]byte{0x5a}, 400), Recipients: []string{"age1custodian"}, SealedAt: received},
		ReceiptHash: []byte(fmt.Sprintf("receipt-hash-%07d", i)), Status: intake.StatusRegistered, UnitID: unit,
		Decision:   intake.Decision{UnitID: unit, UnitName: "义乌市民政局", Reason: "属地管辖", Router: "rules/v1", DecidedAt: received},
		ReceivedAt: received, AcceptanceDue: received.AddDate(0, 0, i*7919%60).Format(time.DateOnly), Version: 1, UpdatedAt: received,
	}
}
