package warnings

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/donations"
	"github.com/qingfeng-zj/qingfeng/routing"
)

const org = "91330782MA2WARN001"

// memStore is an in-memory Store.
type memStore struct {
	recs []donations.Record
	ws   map[string]donations.Warning
	ids  []string
}

func (m *memStore) List(context.Context, string, string) ([]donations.Record, error) {
	return m.recs, nil
}

func (m *memStore) ClaimWarning(_ context.Context, h donations.Hit, at time.Time) (donations.Warning, bool, error) {
	if w, ok := m.ws[h.ID()]; ok {
		return w, false, nil
	}
	w := donations.Warning{Hit: h, ID: h.ID(), Status: donations.WarningFiling, CreatedAt: at}
	m.ws[w.ID] = w
	m.ids = append(m.ids, w.ID)
	return w, true, nil
}

func (m *memStore) MarkWarningFiled(_ context.Context, id, number string, at time.Time) error {
	w := m.ws[id]
	if w.Status == donations.WarningFiling {
		w.Status, w.CaseNumber, w.FiledAt = donations.WarningFiled, number, at
		m.ws[id] = w
	}
	return nil
}

func (m *memStore) PendingWarnings(context.Context, int) ([]donations.Warning, error) {
	var out []donations.Warning
	for _, id := range m.ids {
		if m.ws[id].Status == donations.WarningFiling {
			out = append(out, m.ws[id])
		}
	}
	return out, nil
}

func TestJob(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	st := &memStore{ws: map[string]donations.Warning{}, recs: []donations.Record{
		{Entry: donations.Entry{ID: org + ":0000000001", Seq: 1, Org: org, Kind: donations.KindIncome, IncomeType: donations.IncomeCash,
			AmountFen: 100, Date: "2026-11-30", RecordedAt: now}},
		{Entry: donations.Entry{ID: org + ":0000000002", Seq: 2, Org: org, Kind: donations.KindIncome, IncomeType: donations.IncomeCash,
			AmountFen: 200, Date: "2026-11-30", RecordedAt: now}},
	}}
	var keys []string
	fail := true
	leaseFree := false
	job := &Job{Ledger: st, Now: func() time.Time { return now },
		Orgs: func(_ context.Context, fn func(routing.Organization) error) error {
			return fn(routing.Organization{CreditCode: org, Name: "某某慈善会", Division: "330782"})
		},
		File: func(_ context.Context, h donations.Hit, key string) (string, error) {
			keys = append(keys, key)
			if fail {
				fail = false
				return "", errors.New("intake down")
			}
			return "QF-" + h.Period, nil
		},
		Lease: func(_ context.Context, name, holder string, _, _ time.Time) (bool, error) {
			if name != leaseName || holder == "" {
				t.Errorf("lease %q for %q", name, holder)
			}
			return leaseFree, nil
		},
	}
	if n, err := job.RunOnce(t.Context()); n != 0 || err != nil || len(keys) != 0 {
		t.Fatalf("run without the lease: %d, %v, %v", n, err, keys)
	}
	leaseFree = true
	n, err := job.RunOnce(t.Context())
	if n != 1 || err == nil {
		t.Fatalf("first run: %d, %v; want 1 filed and the failure", n, err)
	}
	if st.ws[org+":cash_without_receipt:0000000001"].Status != donations.WarningFiling {
		t.Fatalf("a failed filing must stay pending: %+v", st.ws)
	}
	n, err = job.RunOnce(t.Context())
	if n != 1 || err != nil {
		t.Fatalf("retry run: %d, %v", n, err)
	}
	want := []string{"warning:" + org + ":cash_without_receipt:0000000001", "warning:" + org + ":cash_without_receipt:0000000002",
		"warning:" + org + ":cash_without_receipt:0000000001"}
	if len(keys) != 3 || keys[0] != want[0] || keys[1] != want[1] || keys[2] != want[2] {
		t.Fatalf("filed with keys %v, want %v", keys, want)
	}
	for _, w := range st.ws {
		if w.Status != donations.WarningFiled || w.CaseNumber != "QF-"+w.Period {
			t.Fatalf("warning %+v", w)
		}
	}
	if n, err := job.RunOnce(t.Context()); n != 0 || err != nil || len(keys) != 3 {
		t.Fatalf("idle run: %d, %v, %v", n, err, keys)
	}
}

func (m *memStore) PublishedMonths(context.Context, string) (map[string]bool, error) {
	return map[string]bool{}, nil
}
