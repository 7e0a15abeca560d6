package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/stats"
	"github.com/qingfeng-zj/qingfeng/storage/storetest"
)

// BenchmarkStats times Stats as the caseload grows: one unit's (a twentieth of the
// cases), every unit's, and every unit's for one month. The cases are filled through
// the store (CreateCase, eight writers; synchronous=NORMAL only to fill faster, reads
// are the same), each real-name or not with two to four workflow steps, over 20 units,
// 40 divisions and two years; the database grows from one size to the next.
//
//	go test ./storage/sqlite/ -run '^$' -bench Stats -benchtime 20x
func BenchmarkStats(b *testing.B) {
	ctx := context.Background()
	db, err := open(ctx, filepath.Join(b.TempDir(), FileName), nil, options{migrations: migrations, busy: busyTimeout, synchronous: "NORMAL"})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	s := NewCaseStore(db)
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	actions := []string{"accept", "dispose", "conclude", "give_feedback", "close"}
	filled := 0
	fill := func(n int) {
		var wg sync.WaitGroup
		next := make(chan int)
		for range 8 {
			wg.Go(func() {
				for i := range next {
					rng := rand.New(rand.NewPCG(uint64(i), 7))
					received := start.Add(time.Duration(rng.IntN(730*24)) * time.Hour)
					c := storetest.NewCase(i, fmt.Sprintf("3307%02d-mz", i%20), fmt.Sprintf("3307%02d%03d", i%20, rng.IntN(2)), received)
					c.ID, c.Number, c.ReceiptHash = fmt.Sprintf("case-%07d", i), fmt.Sprintf("QF-330700-2026-%07d", i), fmt.Appendf(nil, "receipt-%07d", i)
					c.RealName = rng.IntN(3) > 0
					c.Category = []intake.Category{"arbitrary_fees", "illegal_org", "other", "formalism", "donation_misuse"}[rng.IntN(5)]
					c.AcceptanceDue = received.AddDate(0, 0, 21).Format("2006-01-02")
					steps := 2 + rng.IntN(3)
					for j := range steps {
						c.Transitions = append(c.Transitions, intake.Transition{Action: actions[j], By: "staff-1",
							At: received.Add(time.Duration(j*rng.IntN(20*24)) * time.Hour), Reason: "承办意见"})
					}
					if steps >= 3 {
						c.FeedbackDue = received.AddDate(0, 1, 0).Format("2006-01-02")
					}
					if err := s.CreateCase(ctx, c); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		for i := filled + 1; i <= n; i++ {
			next <- i
		}
		close(next)
		wg.Wait()
		filled = n
	}
	for _, n := range []int{1_000, 10_000, 100_000, 200_000} {
		t0 := time.Now()
		fill(n)
		b.Logf("filled to %d cases in %v", n, time.Since(t0).Round(time.Second))
		for _, q := range []struct {
			name string
			f    stats.Filter
		}{
			{"one-unit", stats.Filter{UnitID: "330707-mz"}},
			{"every-unit", stats.Filter{}},
			{"every-unit-one-month", stats.Filter{From: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)}},
		} {
			b.Run(fmt.Sprintf("%s/cases=%d", q.name, n), func(b *testing.B) {
				for b.Loop() {
					st, err := s.Stats(ctx, q.f)
					if err != nil || st.Total == 0 {
						b.Fatalf("%+v, %v", st.Total, err)
					}
				}
			})
		}
	}
}
