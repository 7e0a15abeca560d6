package mongo

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/donations"
	"github.com/qingfeng-zj/qingfeng/routing"
	"github.com/qingfeng-zj/qingfeng/warnings"
)

const listedOrg = "91330782MA2LISTED1"

var warnNow = time.Date(2026, 12, 20, 2, 0, 0, 0, time.UTC)

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

func warnOrgs() []routing.Organization {
	return []routing.Organization{
		{CreditCode: ledgerOrg, Name: "某某慈善会", Status: routing.OrgNormal, Division: "330782"},
		{CreditCode: listedOrg, Name: "某某协会", Status: routing.OrgAbnormal, Division: "330782001"},
	}
}

func newWarnJob(s *LedgerStore, f *fakeIntake) *warnings.Job {
	// The statement rule has its own test (cmd/qingfeng TestStatementPublishing).
	return &warnings.Job{Ledger: s, File: f.File, Now: func() time.Time { return warnNow },
		Rules: donations.AlertRules{Enabled: map[string]bool{donations.RuleStatementNotPublished: false}},
		Orgs: func(ctx context.Context, fn func(routing.Organization) error) error {
			for _, o := range warnOrgs() {
				if err := fn(o); err != nil {
					return err
				}
			}
			return nil
		}}
}

// insertRawEntry stores e as the next entry of code without Validate, as imported or
// older data could be (Validate requires a beneficiary on every disbursement).
func insertRawEntry(t *testing.T, s *LedgerStore, code string, e donations.Entry) {
	t.Helper()
	b, err := s.Balance(t.Context(), code)
	if err != nil {
		t.Fatal(err)
	}
	e.Org, e.Seq, e.ID, e.RecordedAt = code, b.Seq+1, LedgerEntryID(code, b.Seq+1), s.now()
	if _, err := s.db.coll(collLedger).InsertOne(t.Context(), toLedgerDoc(e)); err != nil {
		t.Fatal(err)
	}
}

func warningIDs(t *testing.T, s *LedgerStore) []string {
	t.Helper()
	var ids []string
	for _, code := range []string{ledgerOrg, listedOrg} {
		ws, err := s.OrgAlerts(t.Context(), code)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range ws {
			if w.Status != donations.AlertFiled || w.CaseNumber == "" || w.Detail == "" || w.OrgName == "" {
				t.Errorf("warning not filed: %+v", w)
			}
			ids = append(ids, w.ID)
		}
	}
	return ids
}

func TestLedgerWarningsJob(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		s := newLedgerStore(t, tg)
		ctx := t.Context()
		big := ledgerCash(60_000_00, "")
		mustAppend(t, s, big) // 1: large amount
		noReceipt := ledgerCash(100_00, "")
		noReceipt.ReceiptNumber = ""
		mustAppend(t, s, noReceipt)                // 2: cash without receipt
		mustAppend(t, s, ledgerGoods("大米", 5))     // 3: goods unverified
		g := mustAppend(t, s, ledgerGoods("油", 2)) // 4: verified
		if _, err := s.Verify(ctx, ledgerOrg, donations.Verification{EntryID: g.ID, VerifiedBy: "liaison-2"}); err != nil {
			t.Fatal(err)
		}
		insertRawEntry(t, s, ledgerOrg, donations.Entry{Kind: donations.KindDisbursement, From: donations.FromFunds, AmountFen: 50_00,
			Date: "2026-11-30", RecordedBy: "liaison-1"}) // 5: no beneficiary
		rev := mustAppend(t, s, ledgerCash(90_000_00, "")) // 6: reversed below, never hits
		mustAppend(t, s, ledgerReversal(rev.ID))           // 7
		if _, err := s.Append(ctx, listedOrg, donations.Entry{Kind: donations.KindIncome, IncomeType: donations.IncomeTransfer,
			AmountFen: 300_00, Donor: &donations.Donor{Anonymous: true}, ReceiptNumber: "浙9", Date: "2026-11-29", RecordedBy: "l"}, nil); err != nil {
			t.Fatal(err)
		}

		f := &fakeIntake{}
		job := newWarnJob(s, f)
		n, err := job.RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{
			ledgerOrg + ":cash_without_receipt:0000000002",
			ledgerOrg + ":disbursement_without_beneficiary:0000000005",
			ledgerOrg + ":goods_unverified:0000000003",
			ledgerOrg + ":large_amount:0000000001",
			listedOrg + ":income_for_listed_org:2026-11",
		}
		if got := warningIDs(t, s); !slices.Equal(got, want) {
			t.Fatalf("warnings %v, want %v", got, want)
		}
		if n != 5 || f.calls != 5 || len(f.cases) != 5 {
			t.Fatalf("filed %d, %d calls, %d cases; want 5 each", n, f.calls, len(f.cases))
		}
		w, err := s.Warning(ctx, want[0])
		if err != nil || w.CaseNumber == "" || w.EntryID != LedgerEntryID(ledgerOrg, 2) || w.Division != "330782" {
			t.Fatalf("Warning: %+v, %v", w, err)
		}

		// A second run files nothing new.
		if n, err := job.RunOnce(ctx); err != nil || n != 0 || f.calls != 5 {
			t.Fatalf("second run: %d, %v, %d calls", n, err, f.calls)
		}
		// Another entry hits the same rules in new periods; the listed org's month is
		// already open.
		mustAppend(t, s, noReceipt) // 8
		if _, err := s.Append(ctx, listedOrg, donations.Entry{Kind: donations.KindIncome, IncomeType: donations.IncomeTransfer,
			AmountFen: 100_00, Donor: &donations.Donor{Anonymous: true}, Date: "2026-11-30", RecordedBy: "l"}, nil); err != nil {
			t.Fatal(err)
		}
		if n, err := job.RunOnce(ctx); err != nil || n != 1 || f.calls != 6 {
			t.Fatalf("third run: %d, %v, %d calls", n, err, f.calls)
		}
		if _, err := s.Warning(ctx, ledgerOrg+":cash_without_receipt:0000000008"); err != nil {
			t.Fatal(err)
		}

		// RecordAlert deduplicates by org + rule + period.
		h := donations.Hit{Rule: donations.RuleLargeAmount, Org: ledgerOrg, Period: "0000000001", Detail: "x"}
		w1, err := s.Warning(ctx, h.ID())
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := s.RecordAlert(ctx, h, "QF-other", warnNow); err != nil || ok {
			t.Fatalf("RecordAlert of a recorded hit: %v, %v", ok, err)
		}
		if w2, _ := s.Warning(ctx, h.ID()); w2.CaseNumber != w1.CaseNumber || w2.Detail == "x" {
			t.Fatalf("a duplicate changed the record: %+v", w2)
		}
		if _, err := s.Warning(ctx, "nope"); err == nil {
			t.Fatal("Warning of an unknown id succeeded")
		}
	})
}

func TestLedgerWarningsCrashRecovery(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		for _, filedBeforeCrash := range []bool{false, true} {
			t.Run(fmt.Sprintf("filedBeforeCrash=%v", filedBeforeCrash), func(t *testing.T) {
				s := newLedgerStore(t, tg)
				ctx := t.Context()
				e := ledgerCash(100_00, "")
				e.ReceiptNumber = ""
				mustAppend(t, s, e)
				recs, err := s.List(ctx, ledgerOrg, "")
				if err != nil {
					t.Fatal(err)
				}
				hits := donations.Evaluate(warnOrgs()[0], recs, warnNow, donations.AlertRules{})
				if len(hits) != 1 {
					t.Fatalf("hits %+v", hits)
				}
				// The crashed run: claimed, maybe filed, never marked.
				f := &fakeIntake{}
				w, created, err := s.ClaimAlert(ctx, hits[0], warnNow)
				if err != nil || !created || w.Status != donations.AlertFiling {
					t.Fatalf("ClaimAlert: %+v, %v, %v", w, created, err)
				}
				if filedBeforeCrash {
					if _, err := f.File(ctx, w.Hit, warnings.IdempotencyKey(w.ID)); err != nil {
						t.Fatal(err)
					}
				}
				if _, created, err := s.ClaimAlert(ctx, hits[0], warnNow); err != nil || created {
					t.Fatalf("second claim: %v, %v", created, err)
				}
				pending, err := s.PendingAlerts(ctx, 10)
				if err != nil || len(pending) != 1 || pending[0].ID != w.ID {
					t.Fatalf("pending %+v, %v", pending, err)
				}

				job := newWarnJob(s, f)
				n, err := job.RunOnce(ctx)
				if err != nil || n != 1 {
					t.Fatalf("retry run: %d, %v", n, err)
				}
				if len(f.cases) != 1 {
					t.Fatalf("%d cases filed, want exactly 1", len(f.cases))
				}
				got, err := s.Warning(ctx, w.ID)
				if err != nil || got.Status != donations.AlertFiled || got.CaseNumber != f.cases[0] {
					t.Fatalf("warning after retry: %+v, %v", got, err)
				}
				if pending, _ := s.PendingAlerts(ctx, 10); len(pending) != 0 {
					t.Fatalf("still pending: %+v", pending)
				}
				calls := f.calls
				if n, err := job.RunOnce(ctx); err != nil || n != 0 || f.calls != calls || len(f.cases) != 1 {
					t.Fatalf("run after recovery: %d, %v, %d calls, %d cases", n, err, f.calls, len(f.cases))
				}
			})
		}
	})
}
