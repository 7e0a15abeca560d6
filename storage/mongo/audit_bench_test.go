package mongo

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/qingfeng-zj/qingfeng/audit"
)

// BenchmarkAuditRecord measures audit.Log.Record on AuditStore against the bare
// driver's InsertOne of the same documents (already marshalled) into another
// collection, interleaved so both see the same server state. record-ns/op and
// insert-ns/op time each alone; record/insert is their ratio, the cost of the hash
// chain and the store layer on top of one round trip:
//
//	go test -run '^$' -bench AuditRecord -benchtime 2000x ./storage/mongo
func BenchmarkAuditRecord(b *testing.B) {
	forEachBenchTarget(b, func(b *testing.B, db *DB) {
		ctx := context.Background()
		l := &audit.Log{Store: NewAuditStore(db)}
		raw := db.coll("audit_raw")
		detail := map[string]string{"evidence": "ev-0123456789", "from": "registered", "to": "accepted"}
		prev := strings.Repeat("0", 64)
		var recordT, insertT time.Duration
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			cs := fmt.Sprintf("QF-330782-2026-%06d", i%500)

			start := time.Now()
			if err := l.Record(ctx, "u-0123456789", "staff", "case.transition", cs, detail); err != nil {
				b.Fatal(err)
			}
			recordT += time.Since(start)

			e := audit.Entry{Seq: int64(i + 1), At: time.Now().UTC().Truncate(time.Millisecond), Actor: "u-0123456789",
				Role: "staff", Action: "case.transition", Case: cs, Detail: detail, Prev: prev}
			e.Hash = e.ComputeHash()
			doc, err := bson.Marshal(toAuditDoc(e))
			if err != nil {
				b.Fatal(err)
			}
			start = time.Now()
			if _, err := raw.InsertOne(ctx, doc); err != nil {
				b.Fatal(err)
			}
			insertT += time.Since(start)
		}
		n := float64(b.N)
		b.ReportMetric(float64(recordT.Nanoseconds())/n, "record-ns/op")
		b.ReportMetric(float64(insertT.Nanoseconds())/n, "insert-ns/op")
		b.ReportMetric(float64(recordT)/float64(insertT), "record/insert")
	})
}
