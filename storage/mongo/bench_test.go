package mongo

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/storage/storetest"
)

// BenchmarkCreateCase and BenchmarkRawInsert insert the same case documents into the
// same indexed collection, through CaseStore and through the bare driver with the
// document already marshalled. Their ratio is the cost of this package's layer
// (mapping, marshalling, error mapping) on top of the round trip:
//
//	go test -run '^$' -bench 'CreateCase|RawInsert' ./storage/mongo
func BenchmarkCreateCase(b *testing.B) {
	forEachBenchTarget(b, func(b *testing.B, db *DB) {
		ctx := context.Background()
		s := NewCaseStore(db)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if err := s.CreateCase(ctx, storetest.NewCase(i, "unit-a", "330782", base)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkRawInsert(b *testing.B) {
	forEachBenchTarget(b, func(b *testing.B, db *DB) {
		ctx := context.Background()
		docs := make([]bson.Raw, b.N)
		for i := range docs {
			raw, err := bson.Marshal(toCaseDoc(storetest.NewCase(i, "unit-a", "330782", base)))
			if err != nil {
				b.Fatal(err)
			}
			docs[i] = raw
		}
		coll := db.coll(collCases)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if _, err := coll.InsertOne(ctx, docs[i]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// forEachBenchTarget runs f against a fresh indexed database on every target.
func forEachBenchTarget(b *testing.B, f func(b *testing.B, db *DB)) {
	for _, tg := range targets {
		b.Run(tg.name, func(b *testing.B) {
			if tg.skip != "" {
				b.Skip(tg.skip)
			}
			if tg.err != nil {
				b.Fatalf("start %s: %v", tg.name, tg.err)
			}
			f(b, openTestDB(b, tg))
		})
	}
}

// benchCases is how many cases the read benchmarks store: enough that a full scan
// shows against an index lookup.
const benchCases = 1000

func seedBenchCases(b *testing.B, db *DB) *CaseStore {
	b.Helper()
	s := NewCaseStore(db)
	ctx := context.Background()
	for i := range benchCases {
		c := storetest.NewCase(i, fmt.Sprintf("unit-%d", i%10), "330782", base.Add(time.Duration(i)*time.Second))
		if err := s.CreateCase(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// BenchmarkLookup compares a lookup by _id with lookups by the other unique keys.
func BenchmarkLookup(b *testing.B) {
	forEachBenchTarget(b, func(b *testing.B, db *DB) {
		s := seedBenchCases(b, db)
		ctx := context.Background()
		lookups := []struct {
			name string
			get  func(i int) (*intake.Case, error)
		}{
			{"ByID", func(i int) (*intake.Case, error) { return s.CaseByID(ctx, fmt.Sprintf("case-%04d", i)) }},
			{"ByNumber", func(i int) (*intake.Case, error) {
				return s.CaseByNumber(ctx, fmt.Sprintf("QF-330782-2026-%06d", i))
			}},
			{"ByReceipt", func(i int) (*intake.Case, error) {
				return s.CaseByReceipt(ctx, []byte(fmt.Sprintf("receipt-hash-%04d", i)))
			}},
		}
		for _, l := range lookups {
			b.Run(l.name, func(b *testing.B) {
				for i := range b.N {
					if _, err := l.get(i % benchCases); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	})
}

// BenchmarkListCases pages through one unit's cases, 50 at a time.
func BenchmarkListCases(b *testing.B) {
	forEachBenchTarget(b, func(b *testing.B, db *DB) {
		s := seedBenchCases(b, db)
		ctx := context.Background()
		b.ResetTimer()
		after := ""
		for range b.N {
			page, err := s.ListCases(ctx, intake.CaseFilter{UnitID: "unit-3", Limit: 50, After: after})
			if err != nil {
				b.Fatal(err)
			}
			after = ""
			if len(page) == 50 {
				after = page[len(page)-1].ID
			}
		}
	})
}
