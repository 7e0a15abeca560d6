package mongo

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/storage/storetest"
	"github.com/qingfeng-zj/qingfeng/triage"
)

// BenchmarkQueuePage is a unit's queue page — 50 cases sorted by due date — with
// QF_BENCH_QUEUE_CASES cases in the store (default 200,000, spread over 100 units), through
// CaseStore.ListCases and through the bare driver sending the same filter, sort and
// limit, interleaved, one run. It reports the median and p99 of each and the ratio.
//
//	go test -run '^$' -bench QueuePage -benchtime 20x ./storage/mongo
func BenchmarkQueuePage(b *testing.B) {
	n := 200_000
	if v := os.Getenv("QF_BENCH_QUEUE_CASES"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	forEachBenchTarget(b, func(b *testing.B, db *DB) {
		ctx := context.Background()
		s := NewCaseStore(db)
		start := time.Now()
		batch := make([]any, 0, 1000)
		for i := range n {
			c := storetest.NewCase(i, fmt.Sprintf("unit-%d", i%100), "330782", base.Add(time.Duration(i)*time.Second))
			c.ID, c.ReceiptHash = fmt.Sprintf("case-%07d", i), []byte(fmt.Sprintf("receipt-%07d", i))
			c.Number = fmt.Sprintf("QF-330782-2026-%07d", i)
			c.AcceptanceDue = base.AddDate(0, 0, i%60).Format(time.DateOnly)
			batch = append(batch, toCaseDoc(c))
			if len(batch) == cap(batch) || i == n-1 {
				if _, err := db.coll(collCases).InsertMany(ctx, batch); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
		}
		b.Logf("seeded %d cases in %v", n, time.Since(start).Round(time.Millisecond))
		f := intake.CaseFilter{UnitID: "unit-7", SortByDue: true, Limit: 50}
		var ours, raw []time.Duration
		b.ResetTimer()
		for range b.N {
			t0 := time.Now()
			page, err := s.ListCases(ctx, f)
			if err != nil || len(page) != min(50, n/100) {
				b.Fatalf("ours: %d, %v", len(page), err)
			}
			ours = append(ours, time.Since(t0))

			t0 = time.Now()
			cur, err := db.coll(collCases).Find(ctx, bson.M{"unit_id": "unit-7", "next_due": bson.M{"$gt": ""}},
				options.Find().SetSort(bson.D{{Key: "next_due", Value: 1}, {Key: "_id", Value: 1}}).SetLimit(50))
			if err != nil {
				b.Fatal(err)
			}
			var docs []bson.Raw
			if err := cur.All(ctx, &docs); err != nil || len(docs) != min(50, n/100) {
				b.Fatalf("raw: %d, %v", len(docs), err)
			}
			raw = append(raw, time.Since(t0))
		}
		b.StopTimer()
		q := func(d []time.Duration, p float64) float64 {
			slices.Sort(d)
			return float64(d[min(len(d)-1, int(float64(len(d))*p))].Microseconds()) / 1e3
		}
		b.ReportMetric(q(ours, 0.5), "ours-median-ms")
		b.ReportMetric(q(ours, 0.99), "ours-p99-ms")
		b.ReportMetric(q(raw, 0.5), "raw-median-ms")
		b.ReportMetric(q(raw, 0.99), "raw-p99-ms")
		b.ReportMetric(q(raw, 0.5)/q(ours, 0.5), "raw/ours-median")
	})
}

// BenchmarkTransitions: 16 staff accepting distinct cases at once (transitions per
// second through triage.Service and the store), and 16 staff accepting the same case
// at once (every loser must get ECONFLICT; none may overwrite).
//
//	go test -run '^$' -bench Transitions -benchtime 50x ./storage/mongo
func BenchmarkTransitions(b *testing.B) {
	forEachBenchTarget(b, func(b *testing.B, db *DB) {
		ctx := context.Background()
		s := NewCaseStore(db)
		cal, err := triage.NewCalendar()
		if err != nil {
			b.Fatal(err)
		}
		svc := &triage.Service{Cases: s, Calendar: cal}
		const staff = 16
		seq := 0
		newCases := func(k int) []*intake.Case {
			out := make([]*intake.Case, k)
			for i := range out {
				seq++
				c := storetest.NewCase(seq, "unit-a", "330782", base)
				c.ID, c.Number, c.ReceiptHash = fmt.Sprintf("t-%07d", seq), fmt.Sprintf("QF-330782-2026-%07d", seq), []byte(fmt.Sprint("r", seq))
				if err := s.CreateCase(ctx, c); err != nil {
					b.Fatal(err)
				}
				out[i] = c
			}
			return out
		}
		var elapsed time.Duration
		var done, conflicts, wins atomic.Int64
		b.ResetTimer()
		for range b.N {
			b.StopTimer()
			distinct := newCases(staff)
			same := newCases(1)[0]
			b.StartTimer()
			t0 := time.Now()
			var wg sync.WaitGroup
			for i := range staff {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := svc.Transition(ctx, distinct[i], fmt.Sprint("staff-", i), triage.Request{Action: triage.ActAccept, Reason: "受理"}); err != nil {
						b.Error(err)
						return
					}
					done.Add(1)
				}()
			}
			wg.Wait()
			elapsed += time.Since(t0)
			for i := range staff {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := svc.Transition(ctx, same, fmt.Sprint("staff-", i), triage.Request{Action: triage.ActAccept, Reason: "受理"})
					switch qingfeng.ErrorCode(err) {
					case "":
						wins.Add(1)
					case qingfeng.ECONFLICT:
						conflicts.Add(1)
					default:
						b.Error(err)
					}
				}()
			}
			wg.Wait()
			if c, err := s.CaseByID(ctx, same.ID); err != nil || len(c.Transitions) != 1 {
				b.Fatalf("same case: %d transitions, %v", len(c.Transitions), err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(done.Load())/elapsed.Seconds(), "transitions/s")
		b.ReportMetric(float64(conflicts.Load())/float64(conflicts.Load()+wins.Load()), "same-case-409-rate")
		if wins.Load() != int64(b.N) {
			b.Errorf("%d winners over %d rounds", wins.Load(), b.N)
		}
	})
}
