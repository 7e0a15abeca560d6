package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/routing"
	"github.com/qingfeng-zj/qingfeng/storage/storetest"
)

// TestCaseOrgsBackfill: a data directory from before migration 0014 gets, when opened,
// the organization search rows the store writes for the same cases (by code, by name,
// by the registry's name, transferred, a person), and the search finds them.
func TestCaseOrgsBackfill(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), FileName)
	db, err := Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := NewCaseStore(db)
	at := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	subjects := []intake.Subject{
		{Kind: intake.SubjectOrganization, Organization: &intake.OrgSubject{CreditCode: "51330782mj0000018j", Name: "義烏市某行業協會"}},
		{Kind: intake.SubjectOrganization, Organization: &intake.OrgSubject{CreditCode: "53330000501874064B"}},
		{Kind: intake.SubjectOrganization, Organization: &intake.OrgSubject{Name: "某某（义乌）慈善会"}},
		{Kind: intake.SubjectPerson, Person: &intake.PersonSubject{Name: "张某", Employer: "某某（义乌）慈善会"}},
	}
	for i, sub := range subjects {
		c := storetest.NewCase(i+1, "330782-mz", "330782001", at.Add(time.Duration(i)*time.Hour))
		c.Subject = sub
		if i == 1 {
			c.Decision.Inputs[routing.InputOrgName] = "浙江省爱心事业基金会"
		}
		if err := s.CreateCase(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.CaseByID(ctx, "case-0003")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Hand(ctx, got, intake.Decision{UnitID: "330326-mz", DecidedAt: at}, &intake.PendingTransfer{From: "330782-mz", To: "330326-mz", Due: "2026-03-09"},
		intake.Transition{Action: "transfer", By: "lead", At: at}); err != nil {
		t.Fatal(err)
	}
	read := func(db *DB) []string {
		rows, err := db.r.QueryContext(ctx, "SELECT key, case_id, unit_id, received_at, next_due FROM case_orgs ORDER BY key, case_id")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var key, id, unit, due string
			var received int64
			if err := rows.Scan(&key, &id, &unit, &received, &due); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%s %s %s %d %s", key, id, unit, received, due))
		}
		return out
	}
	written := read(db)
	if len(written) == 0 {
		t.Fatal("the store wrote no rows")
	}
	// Back to the schema before 0014.
	if _, err := db.w.ExecContext(ctx, "DROP TABLE case_orgs"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.w.ExecContext(ctx, "DELETE FROM schema_migrations WHERE version = 14"); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if backfilled := read(db); !slices.Equal(backfilled, written) {
		t.Errorf("backfilled:\n%v\nwritten by the store:\n%v", backfilled, written)
	}
	s = NewCaseStore(db)
	for q, want := range map[string][]string{"浙江省爱心事业": {"case-0002"}, "义乌市某行业协会": {"case-0001"}, "某某(义乌)": {"case-0003"}} {
		oq, _ := routing.ParseOrgQuery(q)
		list, err := s.ListCases(ctx, intake.CaseFilter{Organization: oq.Key})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, c := range list {
			ids = append(ids, c.ID)
		}
		if !slices.Equal(ids, want) {
			t.Errorf("%q after the backfill: %v, want %v", q, ids, want)
		}
	}
}
