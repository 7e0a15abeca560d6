package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"testing"
	"time"

	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/qingfeng-zj/qingfeng/routing"
	"github.com/qingfeng-zj/qingfeng/storage/mongo"
)

const benchOrgCount = 10_000

// benchOrgs makes n organizations spread over Zhejiang's county-level divisions, as a
// CSV file with Chinese headers (authorities named, as 民政 exports do) and as the
// documents the import stores.
func benchOrgs(tb testing.TB, n int) ([]byte, []any) {
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
	docs := make([]any, 0, n)
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
		o, errs := routing.NormalizeOrganization(routing.Organization{CreditCode: rec[0], Name: rec[1], Status: routing.OrgStatus(rec[2]),
			RegistrationAuthority: rec[3], SupervisoryUnit: rec[4], Industry: rec[5], Grade: rec[6], Division: rec[7]}, units)
		if errs != nil {
			tb.Fatalf("row %d: %v", i+1, errs)
		}
		o.UpdatedAt = time.Now().UTC()
		docs = append(docs, o) // routing.Organization carries the same bson field names
	}
	w.Flush()
	return buf.Bytes(), docs
}

// BenchmarkImportOrganizations imports 10,000 organizations from CSV through
// routing.ImportOrganizations (parsing, normalizing, upserting in batches of 1,000) into an
// empty collection, then the same file again (every row an update), and inserts the
// same 10,000 documents with the bare driver (one unordered InsertMany into a scratch
// collection) on the same embedded FerretDB. It reports rows/s for each and the ratio
// of the import's rate to the raw insert's:
//
//	go test -run '^$' -bench ImportOrganizations ./cmd/qingfeng
func BenchmarkImportOrganizations(b *testing.B) {
	ctx := context.Background()
	data, docs := benchOrgs(b, benchOrgCount)
	client, err := mongodrv.Connect(options.Client().ApplyURI(srv.emb.MongoDBURI()).SetTimeout(5 * time.Minute))
	if err != nil {
		b.Fatal(err)
	}
	defer client.Disconnect(ctx)

	var importTime, reimportTime, rawTime time.Duration
	runs := 0
	for b.Loop() {
		runs++
		b.StopTimer()
		db, name := importDB(b)
		units, err := routing.StoredUnits(ctx, mongo.NewUnitStore(db))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()

		for i, dst := range []*time.Duration{&importTime, &reimportTime} {
			start := time.Now()
			st, err := routing.ImportOrganizations(ctx, mongo.NewOrgStore(db), bytes.NewReader(data), "csv", routing.ImportOptions{Units: units})
			*dst += time.Since(start)
			if err != nil || st.Rejected != 0 || st.Inserted+st.Updated != benchOrgCount || (i == 1) != (st.Updated == benchOrgCount) {
				b.Fatalf("import %d: %+v, %v", i+1, st, err)
			}
		}

		coll := client.Database(name).Collection("scratch_organizations")
		start := time.Now()
		res, err := coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
		rawTime += time.Since(start)
		if err != nil || len(res.InsertedIDs) != benchOrgCount {
			b.Fatalf("raw insert: %v", err)
		}
	}
	rate := func(d time.Duration) float64 { return float64(runs*benchOrgCount) / d.Seconds() }
	b.ReportMetric(rate(importTime), "import_rows/s")
	b.ReportMetric(rate(reimportTime), "reimport_rows/s")
	b.ReportMetric(rate(rawTime), "raw_rows/s")
	b.ReportMetric(rate(importTime)/rate(rawTime), "import/raw")
	b.ReportMetric(0, "ns/op") // one op is three imports of different kinds: the rates say more
}
