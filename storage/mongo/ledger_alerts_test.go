package mongo

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/donations"
	"github.com/qingfeng-zj/qingfeng/routing"
)

const listedOrg = "91330782MA2LISTED1"

// fakeIntake files cases like intake does with idempotency keys: the same key and
// report return the same case; the same key with another report is a conflict.
type fakeIntake struct {
	mu    sync.Mutex
	calls int
	byKey map[string]struct {
		hit    donations.Hit
		number string
	}
	cases []string
}

func (f *fakeIntake) File(_ context.Context, h donations.Hit, key string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.byKey == nil {
		f.byKey = map[string]struct {
			hit    donations.Hit
			number string
		}{}
	}
	if prev, ok := f.byKey[key]; ok {
		if prev.hit != h {
			return "", fmt.Errorf("idempotency key %s reused for a different report", key)
		}
		return prev.number, nil
	}
	n := fmt.Sprintf("QF-330782-2026-%05d", len(f.cases)+1)
	f.cases = append(f.cases, n)
	f.byKey[key] = struct {
		hit    donations.Hit
		number string
	}{h, n}
	return n, nil
}

func alertOrgs() []routing.Organization {
	return []routing.Organization{
		{CreditCode: ledgerOrg, Name: "某某慈善会", Status: routing.OrgNormal, Division: "330782"},
		{CreditCode: listedOrg, Name: "某某协会", Status: routing.OrgAbnormal, Division: "330782001"},
	}
}

// clock is a test clock that several goroutines read.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *clock) add(d time.Duration) { c.ns.Add(int64(d)) }

// alertLedger is the test ledger with alerts filed through f, the organizations of
// alertOrgs, the real lease store, and clk as the clock.
func alertLedger(t *testing.T, tg target, f *fakeIntake, clk *clock) testLedger {
	s := newLedgerStore(t, tg)
	s.now = clk.now
	s.L.Now = clk.now
	s.L.File = f.File
	s.L.Leases = NewCaseStore(s.db)
	// The statement rule has its own test (cmd/qingfeng TestStatementPublishing).
	s.L.Rules = donations.AlertRules{Enabled: map[string]bool{donations.RuleStatementNotPublished: false}}
	s.L.Orgs = func(code string) (routing.Organization, bool) {
		for _, o := range alertOrgs() {
			if o.CreditCode == code {
				return o, true
			}
		}
		return routing.Organization{}, false
	}
	s.L.EachOrg = func(ctx context.Context, fn func(routing.Organization) error) error {
		for _, o := range alertOrgs() {
			if err := fn(o); err != nil {
				return err
			}
		}
		return nil
	}
	return s
}

// insertRawEntry stores e as the next entry of code without the ledger's rules, still
// marked alerts_pending: an append whose process died before its alerts were evaluated.
func insertRawEntry(t *testing.T, s testLedger, code string, e donations.Entry) {
	t.Helper()
	b, err := s.Balance(t.Context(), code)
	if err != nil {
		t.Fatal(err)
	}
	e.Org, e.Seq, e.ID, e.RecordedAt, e.AlertsPending = code, b.Seq+1, LedgerEntryID(code, b.Seq+1), s.now(), true
	if _, err := s.db.coll(collLedger).InsertOne(t.Context(), toLedgerDoc(e)); err != nil {
		t.Fatal(err)
	}
}

func alertIDs(t *testing.T, s testLedger) []string {
	t.Helper()
	var ids []string
	for _, code := range []string{ledgerOrg, listedOrg} {
		as, err := s.OrgAlerts(t.Context(), code)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			if a.Status != donations.AlertFiled || a.CaseNumber == "" || a.Detail == "" || a.OrgName == "" {
				t.Errorf("alert not filed: %+v", a)
			}
			ids = append(ids, a.ID)
		}
	}
	return ids
}

// TestLedgerAlertsOnAppend: the rules about an entry are evaluated as it is appended,
// before any job runs, and a reversal a moment later undoes nothing; the time-based
// rules and the recovery of interrupted evaluations are the job's.
func TestLedgerAlertsOnAppend(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		clk := &clock{}
		clk.set(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC))
		f := &fakeIntake{}
		s := alertLedger(t, tg, f, clk)
		ctx := t.Context()

		// The dodge: a 60,000-yuan foreign gift reversed before any job ran.
		gift := ledgerCash(60_000_00, "")
		gift.ReceiptNumber = "浙0002"
		gift.Donor = &donations.Donor{Name: "Overseas Friend Ltd", Foreign: true}
		g := mustAppend(t, s, gift) // 1
		if len(f.cases) != 2 {
			t.Fatalf("%d cases on append, want 2 (large amount, foreign donor)", len(f.cases))
		}
		mustAppend(t, s, ledgerReversal(g.ID)) // 2
		noReceipt := ledgerCash(100_00, "")
		noReceipt.ReceiptNumber = ""
		mustAppend(t, s, noReceipt)                // 3: cash without receipt
		mustAppend(t, s, ledgerGoods("大米", 5))     // 4: goods, unverified until the job finds it overdue
		v := mustAppend(t, s, ledgerGoods("油", 2)) // 5: verified
		if _, err := s.Verify(ctx, ledgerOrg, donations.Verification{EntryID: v.ID, VerifiedBy: "liaison-2"}); err != nil {
			t.Fatal(err)
		}
		r := mustAppend(t, s, ledgerGoods("面粉", 1)) // 6: reversed before it was due
		mustAppend(t, s, ledgerReversal(r.ID))      // 7
		if _, err := s.Append(ctx, listedOrg, donations.Entry{Kind: donations.KindIncome, IncomeType: donations.IncomeTransfer,
			AmountFen: 300_00, Donor: &donations.Donor{Anonymous: true}, ReceiptNumber: "浙9", Date: "2026-11-29", RecordedBy: "l"}, nil); err != nil {
			t.Fatal(err)
		}
		// A disbursement without beneficiary whose process died before evaluating it.
		insertRawEntry(t, s, ledgerOrg, donations.Entry{Kind: donations.KindDisbursement, From: donations.FromFunds, AmountFen: 50_00,
			Date: "2026-11-30", RecordedBy: "liaison-1"}) // 8
		onAppend := []string{
			ledgerOrg + ":cash_without_receipt:0000000003",
			ledgerOrg + ":foreign_donor:0000000001",
			ledgerOrg + ":large_amount:0000000001",
			listedOrg + ":income_for_listed_org:2026-11",
		}
		if got := alertIDs(t, s); !slices.Equal(got, onAppend) {
			t.Fatalf("alerts on append %v, want %v", got, onAppend)
		}

		// Eight days later the job recovers entry 8 and finds entry 4 overdue.
		clk.add(8 * 24 * time.Hour)
		n, err := s.L.RunAlerts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{
			ledgerOrg + ":cash_without_receipt:0000000003",
			ledgerOrg + ":disbursement_without_beneficiary:0000000008",
			ledgerOrg + ":foreign_donor:0000000001",
			ledgerOrg + ":goods_unverified:0000000004",
			ledgerOrg + ":large_amount:0000000001",
			listedOrg + ":income_for_listed_org:2026-11",
		}
		if got := alertIDs(t, s); !slices.Equal(got, want) {
			t.Fatalf("alerts %v, want %v", got, want)
		}
		if n != 1 || len(f.cases) != 6 {
			t.Fatalf("job filed %d, %d cases; want 1 by the job (8 was filed by its recovery's evaluation), 6 in all", n, len(f.cases))
		}
		if left, err := s.UnevaluatedEntries(ctx, clk.now(), 10); err != nil || len(left) != 0 {
			t.Fatalf("entries left unevaluated: %+v, %v", left, err)
		}
		a, err := s.Alert(ctx, want[0])
		if err != nil || a.CaseNumber == "" || a.EntryID != LedgerEntryID(ledgerOrg, 3) || a.Division != "330782" {
			t.Fatalf("Alert: %+v, %v", a, err)
		}

		// A second run files nothing new; the listed org's month is open already.
		calls := f.calls
		if n, err := s.L.RunAlerts(ctx); err != nil || n != 0 || f.calls != calls {
			t.Fatalf("second run: %d, %v, %d calls", n, err, f.calls)
		}
		if _, err := s.Append(ctx, listedOrg, donations.Entry{Kind: donations.KindIncome, IncomeType: donations.IncomeTransfer,
			AmountFen: 100_00, Donor: &donations.Donor{Anonymous: true}, Date: "2026-11-30", RecordedBy: "l"}, nil); err != nil {
			t.Fatal(err)
		}
		if len(f.cases) != 6 {
			t.Fatalf("%d cases: a second income in an open month opened another", len(f.cases))
		}

		// RecordAlert deduplicates by org + rule + period.
		h := donations.Hit{Rule: donations.RuleLargeAmount, Org: ledgerOrg, Period: "0000000001", Detail: "x"}
		a1, err := s.Alert(ctx, h.ID())
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := s.RecordAlert(ctx, h, "QF-other", clk.now()); err != nil || ok {
			t.Fatalf("RecordAlert of a recorded hit: %v, %v", ok, err)
		}
		if a2, _ := s.Alert(ctx, h.ID()); a2.CaseNumber != a1.CaseNumber || a2.Detail == "x" {
			t.Fatalf("a duplicate changed the record: %+v", a2)
		}
		if _, err := s.Alert(ctx, "nope"); err == nil {
			t.Fatal("Alert of an unknown id succeeded")
		}
	})
}

// TestLedgerAlertsConcurrent appends 32 large gifts at once while job runs race them:
// every gift gets its one alert, filed, and no entry is left unevaluated.
func TestLedgerAlertsConcurrent(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		clk := &clock{}
		clk.set(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC))
		f := &fakeIntake{}
		s := alertLedger(t, tg, f, clk)
		ctx := t.Context()
		var wg sync.WaitGroup
		for i := range 32 {
			wg.Go(func() {
				e := ledgerCash(50_000_00+int64(i), "")
				if _, err := s.Append(ctx, ledgerOrg, e, nil); err != nil {
					t.Errorf("append %d: %v", i, err)
				}
			})
		}
		for range 2 {
			wg.Go(func() {
				for range 3 {
					if _, err := s.L.RunAlerts(ctx); err != nil {
						t.Errorf("RunAlerts: %v", err)
					}
				}
			})
		}
		wg.Wait()
		clk.add(2 * time.Minute)
		if _, err := s.L.RunAlerts(ctx); err != nil {
			t.Fatal(err)
		}
		ids := alertIDs(t, s)
		if len(ids) != 32 {
			t.Fatalf("%d alerts for 32 large gifts: %v", len(ids), ids)
		}
		cases := map[string]bool{}
		for _, id := range ids {
			a, _ := s.Alert(ctx, id)
			cases[a.CaseNumber] = true
		}
		if len(cases) != 32 || len(f.cases) != 32 {
			t.Fatalf("%d distinct cases recorded, %d filed; want 32", len(cases), len(f.cases))
		}
		// Nothing was filed twice, even by a job run racing the appends: exactly once
		// does not lean on intake's idempotency.
		if f.calls != 32 {
			t.Errorf("%d filing calls for 32 alerts", f.calls)
		}
		if left, err := s.UnevaluatedEntries(ctx, clk.now().Add(time.Hour), 100); err != nil || len(left) != 0 {
			t.Fatalf("unevaluated: %d, %v", len(left), err)
		}
	})
}

// TestLedgerAlertLease: a run releases its lease when it ends, so another instance
// runs at once; a crashed holder's lease blocks runs for at most its two minutes.
func TestLedgerAlertLease(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		clk := &clock{}
		clk.set(time.Date(2026, 12, 20, 2, 0, 0, 0, time.UTC))
		f := &fakeIntake{}
		s := alertLedger(t, tg, f, clk)
		ctx := t.Context()
		leases := NewCaseStore(s.db)
		if _, err := s.L.RunAlerts(ctx); err != nil {
			t.Fatal(err)
		}
		if ok, err := leases.AcquireLease(ctx, donations.AlertLease, "other", clk.now(), clk.now().Add(time.Minute)); err != nil || !ok {
			t.Fatalf("lease not released after a run: %v, %v", ok, err)
		}
		if err := leases.ReleaseLease(ctx, donations.AlertLease, "other"); err != nil {
			t.Fatal(err)
		}
		// A crashed holder: took the lease as the job does, then vanished.
		if ok, err := leases.AcquireLease(ctx, donations.AlertLease, "crashed", clk.now(), clk.now().Add(donations.DefaultAlertLease)); err != nil || !ok {
			t.Fatal(ok, err)
		}
		if donations.DefaultAlertLease > 2*time.Minute {
			t.Fatalf("lease of %v: a crashed holder blocks alerts longer than two minutes", donations.DefaultAlertLease)
		}
		noReceipt := ledgerCash(100_00, "")
		noReceipt.ReceiptNumber = ""
		insertRawEntry(t, s, ledgerOrg, noReceipt)
		clk.add(90 * time.Second)
		if n, err := s.L.RunAlerts(ctx); err != nil || n != 0 || len(f.cases) != 0 {
			t.Fatalf("ran under another's lease: %d, %v, %d cases", n, err, len(f.cases))
		}
		clk.add(31 * time.Second)
		if _, err := s.L.RunAlerts(ctx); err != nil || len(f.cases) != 1 {
			t.Fatalf("after the crashed lease lapsed: %v, %d cases", err, len(f.cases))
		}
	})
}

func TestLedgerAlertsCrashRecovery(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		for _, filedBeforeCrash := range []bool{false, true} {
			t.Run(fmt.Sprintf("filedBeforeCrash=%v", filedBeforeCrash), func(t *testing.T) {
				clk := &clock{}
				clk.set(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC))
				f := &fakeIntake{}
				s := alertLedger(t, tg, f, clk)
				ctx := t.Context()
				e := ledgerCash(100_00, "")
				e.ReceiptNumber = ""
				insertRawEntry(t, s, ledgerOrg, e)
				recs, err := s.List(ctx, ledgerOrg, "")
				if err != nil {
					t.Fatal(err)
				}
				hits := donations.EntryHits(alertOrgs()[0], recs[0].Entry, clk.now(), donations.AlertRules{})
				if len(hits) != 1 {
					t.Fatalf("hits %+v", hits)
				}
				// The crashed append: claimed, maybe filed, never marked.
				a, created, err := s.ClaimAlert(ctx, hits[0], clk.now())
				if err != nil || !created || a.Status != donations.AlertFiling {
					t.Fatalf("ClaimAlert: %+v, %v, %v", a, created, err)
				}
				if filedBeforeCrash {
					if _, err := f.File(ctx, a.Hit, donations.AlertIdempotencyKey(a.ID)); err != nil {
						t.Fatal(err)
					}
				}
				if _, created, err := s.ClaimAlert(ctx, hits[0], clk.now()); err != nil || created {
					t.Fatalf("second claim: %v, %v", created, err)
				}
				pending, err := s.PendingAlerts(ctx, 10)
				if err != nil || len(pending) != 1 || pending[0].ID != a.ID {
					t.Fatalf("pending %+v, %v", pending, err)
				}

				clk.add(2 * time.Minute)
				if _, err := s.L.RunAlerts(ctx); err != nil {
					t.Fatalf("retry run: %v", err)
				}
				if len(f.cases) != 1 {
					t.Fatalf("%d cases filed, want exactly 1", len(f.cases))
				}
				got, err := s.Alert(ctx, a.ID)
				if err != nil || got.Status != donations.AlertFiled || got.CaseNumber != f.cases[0] {
					t.Fatalf("alert after retry: %+v, %v", got, err)
				}
				if pending, _ := s.PendingAlerts(ctx, 10); len(pending) != 0 {
					t.Fatalf("still pending: %+v", pending)
				}
				calls := f.calls
				if n, err := s.L.RunAlerts(ctx); err != nil || n != 0 || f.calls != calls || len(f.cases) != 1 {
					t.Fatalf("run after recovery: %d, %v, %d calls, %d cases", n, err, f.calls, len(f.cases))
				}
			})
		}
	})
}
