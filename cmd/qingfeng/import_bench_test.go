package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/routing"
	"github.com/qingfeng-zj/qingfeng/storage/sqlite"
)

const benchOrgCount = 10_000

// benchOrgs makes n organizations spread over Zhejiang's county-level divisions, as a
// CSV file with Chinese headers (authorities named, as 民政 exports do).
func benchOrgs(tb testing.TB, n int) []byte {
	tb.Helper()
	units, err := routing.NewUnits(routing.DefaultUnits())
	if err != nil {
		tb.Fatal(err)
	}
	var counties []routing.Division
	for _, d := range routing.Divisions() {
		if d.Level == routing.LevelCounty {
			counties = append(counties, d)
		}
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write([]string{"统一社会信用代码", "名称", "状态", "登记管理机关", "业务主管单位", "行业", "评估等级", "住所区划"})
	statuses := []string{"正常", "正常", "正常", "活动异常名录", "撤销"}
	for i := range n {
		d := counties[i%len(counties)]
		mz, _ := units.OfKind(routing.KindCivilAffairs, d.Code)
		supervisor := ""
		if i%3 == 0 {
			supervisor = routing.UnitID(d.Code, routing.KindMarket)
		}
		rec := []string{creditCode("123"[i%3], d.Code, i), fmt.Sprintf("%s第%d号社会组织", d.Name, i), statuses[i%len(statuses)],
			mz.Name, supervisor, "社会服务", []string{"", "3A", "4A", "AAAAA"}[i%4], d.Code}
		w.Write(rec)
		if _, errs := routing.NormalizeOrganization(routing.Organization{CreditCode: rec[0], Name: rec[1], Status: routing.OrgStatus(rec[2]),
			RegistrationAuthority: rec[3], SupervisoryUnit: rec[4], Industry: rec[5], Grade: rec[6], Division: rec[7]}, units); errs != nil {
			tb.Fatalf("row %d: %v", i+1, errs)
		}
	}
	w.Flush()
	return buf.Bytes()
}

// BenchmarkImportOrganizations imports 10,000 organizations from CSV through
// routing.ImportOrganizations (parsing, normalizing, upserting in batches of 1,000) into
// an empty embedded database (storage/sqlite), then the same file again (every row an
// update), and reports rows/s for each:
//
//	go test -run '^$' -bench ImportOrganizations ./cmd/qingfeng
func BenchmarkImportOrganizations(b *testing.B) {
	ctx := context.Background()
	data := benchOrgs(b, benchOrgCount)
	var importTime, reimportTime time.Duration
	runs := 0
	for b.Loop() {
		runs++
		b.StopTimer()
		db, _ := importDB(b)
		units, err := routing.StoredUnits(ctx, sqlite.NewUnitStore(db))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for i, dst := range []*time.Duration{&importTime, &reimportTime} {
			start := time.Now()
			st, err := routing.ImportOrganizations(ctx, sqlite.NewOrgStore(db), bytes.NewReader(data), "csv", routing.ImportOptions{Units: units})
			*dst += time.Since(start)
			if err != nil || st.Rejected != 0 || st.Inserted+st.Updated != benchOrgCount || (i == 1) != (st.Updated == benchOrgCount) {
				b.Fatalf("import %d: %+v, %v", i+1, st, err)
			}
		}
	}
	rate := func(d time.Duration) float64 { return float64(runs*benchOrgCount) / d.Seconds() }
	b.ReportMetric(rate(importTime), "import_rows/s")
	b.ReportMetric(rate(reimportTime), "reimport_rows/s")
	b.ReportMetric(0, "ns/op") // one op is two imports: the rates say more
}
