package mongo

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/intake"
)

// runConformance is the storage suite every target must pass. newDB returns a fresh,
// empty database with indexes for one subtest.
func runConformance(t *testing.T, newDB func(t *testing.T) *DB) {
	tests := []struct {
		name string
		run  func(t *testing.T, db *DB)
	}{
		{"CaseRoundTrip", testCaseRoundTrip},
		{"CaseLookupNotFound", testCaseLookupNotFound},
		{"CaseDuplicates", testCaseDuplicates},
		{"AddEvidence", testAddEvidence},
		{"AddEvidenceConcurrent", testAddEvidenceConcurrent},
		{"ListPagination", testListPagination},
		{"ListFilters", testListFilters},
		{"ListLimits", testListLimits},
		{"ListBadInput", testListBadInput},
		{"Messages", testMessages},
		{"EnsureIndexesTwice", testEnsureIndexesTwice},
		{"PurgeExpired", testPurgeExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, newDB(t))
		})
	}
}

// base is a test time in China Standard Time, to check that stores convert to UTC, with
// millisecond precision, which is what BSON keeps.
var base = time.Date(2026, 3, 14, 9, 26, 53, 589_000_000, time.FixedZone("CST", 8*3600))

func ptr[T any](v T) *T { return &v }

// newCase returns a fully populated case; i makes its keys unique.
func newCase(i int, unit, division string, received time.Time) *intake.Case {
	return &intake.Case{
		ID:       fmt.Sprintf("case-%04d", i),
		Number:   fmt.Sprintf("QF-%s-2026-%06d", division[:min(6, len(division))], i),
		Source:   "app",
		Category: "arbitrary_fees",
		Subject: intake.Subject{
			Kind:         intake.SubjectOrganization,
			Organization: &intake.OrgSubject{CreditCode: "51330782MJ0000000X", Name: "义乌市某某协会"},
		},
		Description: "以会员费名义向企业强制收费。",
		Location:    intake.Location{Division: division, Address: "稠城街道", Lat: ptr(29.3), Lng: ptr(120.07)},
		OccurredOn:  "2026-02",
		RealName:    true,
		Identity: &intake.SealedIdentity{
			Ciphertext: []byte("age-encryption.org/v1\n..."),
			Recipients: []string{"age1custodian"},
			SealedAt:   received,
		},
		ReceiptHash: []byte(fmt.Sprintf("receipt-hash-%04d", i)),
		Status:      intake.StatusRegistered,
		UnitID:      unit,
		Decision: intake.Decision{
			UnitID: unit, UnitName: "义乌市民政局", Reason: "属地管辖", Router: "rules/v1",
			Inputs: map[string]string{"division": division}, DecidedAt: received,
		},
		Warnings:      []intake.Warning{{Field: "subject.organization.credit_code", Code: "checksum", Message: "校验位不符"}},
		ReceivedAt:    received,
		AcceptanceDue: "2026-03-20",
		Version:       1,
		UpdatedAt:     received,
	}
}

// inUTC returns c as it reads back: every time in UTC.
func inUTC(c *intake.Case) *intake.Case {
	out := *c
	out.ReceivedAt = c.ReceivedAt.UTC()
	out.UpdatedAt = c.UpdatedAt.UTC()
	out.Decision.DecidedAt = c.Decision.DecidedAt.UTC()
	if c.Identity != nil {
		id := *c.Identity
		id.SealedAt = id.SealedAt.UTC()
		out.Identity = &id
	}
	out.Evidence = nil
	for _, ev := range c.Evidence {
		ev.UploadedAt = ev.UploadedAt.UTC()
		out.Evidence = append(out.Evidence, ev)
	}
	return &out
}

func mustCreate(t *testing.T, s *CaseStore, cs ...*intake.Case) {
	t.Helper()
	for _, c := range cs {
		if err := s.CreateCase(context.Background(), c); err != nil {
			t.Fatalf("CreateCase(%s): %v", c.ID, err)
		}
	}
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := qingfeng.ErrorCode(err); got != code {
		t.Fatalf("error code = %q, want %q (err: %v)", got, code, err)
	}
}

func testCaseRoundTrip(t *testing.T, db *DB) {
	ctx := context.Background()
	s := NewCaseStore(db)
	withEvidence := newCase(1, "unit-a", "330782", base)
	withEvidence.Evidence = []intake.Evidence{{
		ID: "ev-1", ObjectKey: "cases/case-0001/ev-1", ContentType: "image/jpeg", Size: 1234,
		SHA256Received: "aa", SHA256Stored: "bb", MetadataRemoved: true, OriginalKey: "sealed/ev-1",
		UploadedBy: "reporter", UploadedAt: base,
	}}
	withEvidence.EvidenceBytes = 1234
	anonymous := newCase(2, "unit-a", "330782001", base.Add(time.Minute))
	anonymous.RealName = false
	anonymous.Identity = nil
	anonymous.AcceptanceDue = ""
	anonymous.Warnings = nil
	anonymous.Subject = intake.Subject{Kind: intake.SubjectPerson, Person: &intake.PersonSubject{Name: "张某", Position: "科长"}}
	anonymous.Location.Lat, anonymous.Location.Lng = nil, nil
	anonymous.FiledBy = "liaison-1"

	for _, c := range []*intake.Case{withEvidence, anonymous} {
		mustCreate(t, s, c)
		lookups := []struct {
			name string
			get  func() (*intake.Case, error)
		}{
			{"ByID", func() (*intake.Case, error) { return s.CaseByID(ctx, c.ID) }},
			{"ByNumber", func() (*intake.Case, error) { return s.CaseByNumber(ctx, c.Number) }},
			{"ByReceipt", func() (*intake.Case, error) { return s.CaseByReceipt(ctx, c.ReceiptHash) }},
		}
		for _, l := range lookups {
			got, err := l.get()
			if err != nil {
				t.Fatalf("%s %s: %v", c.ID, l.name, err)
			}
			if want := inUTC(c); !reflect.DeepEqual(got, want) {
				t.Errorf("%s %s:\n got %+v\nwant %+v", c.ID, l.name, got, want)
			}
			if got.ReceivedAt.Location() != time.UTC {
				t.Errorf("%s %s: ReceivedAt in %v, want UTC", c.ID, l.name, got.ReceivedAt.Location())
			}
		}
	}
}

func testCaseLookupNotFound(t *testing.T, db *DB) {
	ctx := context.Background()
	s := NewCaseStore(db)
	mustCreate(t, s, newCase(1, "unit-a", "330782", base))
	tests := []struct {
		name string
		get  func() (*intake.Case, error)
	}{
		{"ByID", func() (*intake.Case, error) { return s.CaseByID(ctx, "nope") }},
		{"ByNumber", func() (*intake.Case, error) { return s.CaseByNumber(ctx, "QF-000000-2026-000000") }},
		{"ByReceipt", func() (*intake.Case, error) { return s.CaseByReceipt(ctx, []byte("nope")) }},
		{"ByEmptyReceipt", func() (*intake.Case, error) { return s.CaseByReceipt(ctx, nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.get()
			if c != nil {
				t.Errorf("got case %s", c.ID)
			}
			wantCode(t, err, qingfeng.ENOTFOUND)
		})
	}
	// The driver's sentinel stays reachable for logs and callers that care.
	if _, err := s.CaseByID(ctx, "nope"); !errors.Is(err, mongodrv.ErrNoDocuments) {
		t.Errorf("CaseByID error %v does not wrap mongo.ErrNoDocuments", err)
	}
}

func testCaseDuplicates(t *testing.T, db *DB) {
	ctx := context.Background()
	s := NewCaseStore(db)
	orig := newCase(1, "unit-a", "330782", base)
	mustCreate(t, s, orig)
	tests := []struct {
		name   string
		modify func(c *intake.Case)
	}{
		{"same ID", func(c *intake.Case) { c.ID = orig.ID }},
		{"same number", func(c *intake.Case) { c.Number = orig.Number }},
		{"same receipt", func(c *intake.Case) { c.ReceiptHash = orig.ReceiptHash }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCase(100+i, "unit-a", "330782", base)
			tt.modify(c)
			wantCode(t, s.CreateCase(ctx, c), qingfeng.ECONFLICT)
		})
	}
	t.Run("missing keys", func(t *testing.T) {
		c := newCase(200, "unit-a", "330782", base)
		c.ReceiptHash = nil
		if err := s.CreateCase(ctx, c); err == nil {
			t.Fatal("CreateCase without a receipt hash succeeded")
		}
	})
}

func ev(id string, size int64) intake.Evidence {
	return intake.Evidence{ID: id, ObjectKey: "cases/x/" + id, ContentType: "image/png", Size: size,
		SHA256Received: "h", SHA256Stored: "h", UploadedBy: "reporter", UploadedAt: base}
}

func testAddEvidence(t *testing.T, db *DB) {
	ctx := context.Background()
	s := NewCaseStore(db)
	c := newCase(1, "unit-a", "330782", base)
	mustCreate(t, s, c)
	const max = 100
	steps := []struct {
		name      string
		caseID    string
		evs       []intake.Evidence
		wantCode  string
		wantBytes int64 // evidence_bytes after the step
		wantIDs   []string
	}{
		{"first fits", c.ID, []intake.Evidence{ev("a", 40)}, "", 40, []string{"a"}},
		{"batch fits exactly", c.ID, []intake.Evidence{ev("b", 30), ev("c", 30)}, "", 100, []string{"a", "b", "c"}},
		{"zero bytes at the limit", c.ID, []intake.Evidence{ev("d", 0)}, "", 100, []string{"a", "b", "c", "d"}},
		{"one byte over", c.ID, []intake.Evidence{ev("e", 1)}, qingfeng.ETOOLARGE, 100, []string{"a", "b", "c", "d"}},
		{"empty batch", c.ID, nil, "", 100, []string{"a", "b", "c", "d"}},
		{"unknown case", "nope", []intake.Evidence{ev("f", 1)}, qingfeng.ENOTFOUND, 100, []string{"a", "b", "c", "d"}},
		{"unknown case, empty batch", "nope", nil, qingfeng.ENOTFOUND, 100, []string{"a", "b", "c", "d"}},
	}
	wantVersion := c.Version
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			err := s.AddEvidence(ctx, st.caseID, st.evs, max)
			wantCode(t, err, st.wantCode)
			if err == nil && len(st.evs) > 0 {
				wantVersion++
			}
			got, err := s.CaseByID(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, e := range got.Evidence {
				ids = append(ids, e.ID)
			}
			if got.EvidenceBytes != st.wantBytes || !reflect.DeepEqual(ids, st.wantIDs) || got.Version != wantVersion {
				t.Errorf("bytes %d, evidence %v, version %d; want %d, %v, %d",
					got.EvidenceBytes, ids, got.Version, st.wantBytes, st.wantIDs, wantVersion)
			}
		})
	}
	t.Run("too large message", func(t *testing.T) {
		var e *qingfeng.Error
		if err := s.AddEvidence(ctx, c.ID, []intake.Evidence{ev("g", 1)}, max); !errors.As(err, &e) || e.Message != "该案件的证据总量已达上限" {
			t.Errorf("err = %v, want the Chinese over-limit message", err)
		}
	})
	t.Run("stored evidence round-trips", func(t *testing.T) {
		got, err := s.CaseByID(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := ev("a", 40)
		want.UploadedAt = want.UploadedAt.UTC()
		if !reflect.DeepEqual(got.Evidence[0], want) {
			t.Errorf("evidence = %+v, want %+v", got.Evidence[0], want)
		}
		if got.UpdatedAt.Equal(c.UpdatedAt) {
			t.Error("updated_at not set by AddEvidence")
		}
	})
}

func testAddEvidenceConcurrent(t *testing.T, db *DB) {
	ctx := context.Background()
	s := NewCaseStore(db)
	c := newCase(1, "unit-a", "330782", base)
	mustCreate(t, s, c)
	const workers, size, max = 16, 10, 100
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			errs[i] = s.AddEvidence(ctx, c.ID, []intake.Evidence{ev(fmt.Sprintf("ev-%02d", i), size)}, max)
		})
	}
	wg.Wait()
	var ok, tooLarge int
	for _, err := range errs {
		switch qingfeng.ErrorCode(err) {
		case "":
			ok++
		case qingfeng.ETOOLARGE:
			tooLarge++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	got, err := s.CaseByID(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ok != max/size || tooLarge != workers-max/size {
		t.Errorf("%d succeeded, %d too large; want %d and %d", ok, tooLarge, max/size, workers-max/size)
	}
	if got.EvidenceBytes != max || len(got.Evidence) != max/size || got.Version != c.Version+max/size {
		t.Errorf("evidence_bytes %d, %d items, version %d; want %d, %d, %d",
			got.EvidenceBytes, len(got.Evidence), got.Version, max, max/size, c.Version+max/size)
	}
}

// pageAll lists with f page by page and returns the IDs in order.
func pageAll(t *testing.T, s *CaseStore, f intake.CaseFilter) (ids []string, pages int) {
	t.Helper()
	for {
		page, err := s.ListCases(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return ids, pages
		}
		pages++
		for _, c := range page {
			ids = append(ids, c.ID)
		}
		f.After = page[len(page)-1].ID
		if pages > 100 {
			t.Fatal("pagination does not end")
		}
	}
}

func testListPagination(t *testing.T, db *DB) {
	s := NewCaseStore(db)
	// 25 cases in unit-a, in groups of 3 sharing a received_at (ties are where a
	// cursor on the time alone would skip or repeat cases), created out of order;
	// plus cases in another unit interleaved in time.
	var want []*intake.Case
	for i := 24; i >= 0; i-- {
		c := newCase(i, "unit-a", "330782", base.Add(time.Duration(i/3)*time.Second))
		c.FiledBy = "liaison-1"
		mustCreate(t, s, c)
		want = append(want, c)
		mustCreate(t, s, newCase(100+i, "unit-b", "330782", base.Add(time.Duration(i/3)*time.Second)))
	}
	sort.Slice(want, func(i, j int) bool {
		if !want[i].ReceivedAt.Equal(want[j].ReceivedAt) {
			return want[i].ReceivedAt.After(want[j].ReceivedAt)
		}
		return want[i].ID < want[j].ID
	})
	var wantIDs []string
	for _, c := range want {
		wantIDs = append(wantIDs, c.ID)
	}
	tests := []struct {
		name      string
		filter    intake.CaseFilter
		wantIDs   []string
		wantPages int
	}{
		{"unit", intake.CaseFilter{UnitID: "unit-a", Limit: 10}, wantIDs, 3},
		{"division and filed by", intake.CaseFilter{DivisionPrefix: "3307", FiledBy: "liaison-1", Limit: 10}, wantIDs, 3},
		{"one page", intake.CaseFilter{UnitID: "unit-a"}, wantIDs, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ids, pages := pageAll(t, s, tt.filter)
			if pages != tt.wantPages {
				t.Errorf("%d pages, want %d", pages, tt.wantPages)
			}
			if !reflect.DeepEqual(ids, tt.wantIDs) {
				t.Errorf("paged IDs\n got %v\nwant %v", ids, tt.wantIDs)
			}
		})
	}
}

func testListFilters(t *testing.T, db *DB) {
	s := NewCaseStore(db)
	divisions := []string{"330782", "330782001", "330782102", "330783", "330783001", "3307", "330700", "330800", "33078"}
	for i, d := range divisions {
		c := newCase(i, "unit-a", d, base.Add(time.Duration(i)*time.Second))
		if i%2 == 0 {
			c.UnitID = "unit-b"
		}
		if i == 1 || i == 3 {
			c.FiledBy = "liaison-1"
		}
		mustCreate(t, s, c)
	}
	byDiv := func(ds ...string) []string {
		var ids []string
		for _, d := range ds {
			for i, dd := range divisions {
				if dd == d {
					ids = append(ids, fmt.Sprintf("case-%04d", i))
				}
			}
		}
		sort.Strings(ids)
		return ids
	}
	tests := []struct {
		name   string
		filter intake.CaseFilter
		want   []string
	}{
		// A liaison of 330782 sees its towns (330782001...) but not the neighbouring
		// county 330783, although both share the prefix 33078.
		{"county", intake.CaseFilter{DivisionPrefix: "330782"}, byDiv("330782", "330782001", "330782102")},
		{"neighbour county", intake.CaseFilter{DivisionPrefix: "330783"}, byDiv("330783", "330783001")},
		{"town", intake.CaseFilter{DivisionPrefix: "330782001"}, byDiv("330782001")},
		{"city", intake.CaseFilter{DivisionPrefix: "3307"}, byDiv("330782", "330782001", "330782102", "330783", "330783001", "3307", "330700", "33078")},
		{"prefix ending in 9", intake.CaseFilter{DivisionPrefix: "3309"}, nil},
		{"unit", intake.CaseFilter{UnitID: "unit-a"}, []string{"case-0001", "case-0003", "case-0005", "case-0007"}},
		{"unit and division", intake.CaseFilter{UnitID: "unit-b", DivisionPrefix: "330782"}, byDiv("330782", "330782102")},
		{"filed by", intake.CaseFilter{FiledBy: "liaison-1"}, []string{"case-0001", "case-0003"}},
		{"filed by and division", intake.CaseFilter{FiledBy: "liaison-1", DivisionPrefix: "330783"}, []string{"case-0003"}},
		{"unknown unit", intake.CaseFilter{UnitID: "unit-z"}, nil},
		{"everything", intake.CaseFilter{}, byDiv(divisions...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListCases(context.Background(), tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, c := range got {
				ids = append(ids, c.ID)
			}
			sort.Strings(ids)
			if !reflect.DeepEqual(ids, tt.want) {
				t.Errorf("got %v, want %v", ids, tt.want)
			}
		})
	}
}

func testListLimits(t *testing.T, db *DB) {
	s := NewCaseStore(db)
	for i := range maxListLimit + 5 {
		mustCreate(t, s, newCase(i, "unit-a", "330782", base.Add(time.Duration(i)*time.Millisecond)))
	}
	tests := []struct {
		limit, want int
	}{
		{0, defaultListLimit},
		{-1, defaultListLimit},
		{7, 7},
		{maxListLimit, maxListLimit},
		{maxListLimit + 1, maxListLimit},
		{1 << 30, maxListLimit},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.limit), func(t *testing.T) {
			got, err := s.ListCases(context.Background(), intake.CaseFilter{UnitID: "unit-a", Limit: tt.limit})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.want {
				t.Errorf("%d cases, want %d", len(got), tt.want)
			}
		})
	}
}

func testListBadInput(t *testing.T, db *DB) {
	s := NewCaseStore(db)
	other := newCase(2, "unit-b", "330783", base)
	other.FiledBy = "liaison-2"
	mustCreate(t, s, newCase(1, "unit-a", "330782", base), other)
	tests := []struct {
		name   string
		filter intake.CaseFilter
	}{
		{"unknown cursor", intake.CaseFilter{UnitID: "unit-a", After: "nope"}},
		// A cursor must be visible through the filter, or it would reveal where a
		// foreign case sits in time.
		{"cursor from another unit", intake.CaseFilter{UnitID: "unit-a", After: "case-0002"}},
		{"cursor from another division", intake.CaseFilter{DivisionPrefix: "330782", After: "case-0002"}},
		{"cursor filed by someone else", intake.CaseFilter{FiledBy: "liaison-1", After: "case-0002"}},
		// Pattern or operator syntax never reaches the filter.
		{"regex prefix", intake.CaseFilter{DivisionPrefix: "33.*"}},
		{"operator prefix", intake.CaseFilter{DivisionPrefix: "$gt"}},
		{"non-ASCII prefix", intake.CaseFilter{DivisionPrefix: "３３０７"}},
		{"overlong prefix", intake.CaseFilter{DivisionPrefix: strings.Repeat("3", 13)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListCases(context.Background(), tt.filter)
			wantCode(t, err, qingfeng.EINVALID)
			if len(got) != 0 {
				t.Errorf("returned %d cases with the error", len(got))
			}
		})
	}
}

func testMessages(t *testing.T, db *DB) {
	ctx := context.Background()
	s := NewCaseStore(db)
	msgs := []*intake.Message{
		{ID: "m3", CaseID: "c1", From: "staff", Kind: "internal", AuthorID: "u1", Body: "请补充材料", CreatedAt: base.Add(2 * time.Minute)},
		{ID: "m1", CaseID: "c1", From: "reporter", Kind: "message", Body: "您好", CreatedAt: base},
		{ID: "m2", CaseID: "c1", From: "reporter", Kind: "message", Body: "同一时刻", CreatedAt: base},
		{ID: "x1", CaseID: "c2", From: "reporter", Kind: "message", Body: "别的案件", CreatedAt: base},
	}
	// A reporter's message marks its case, so the cases must exist.
	for i, id := range []string{"c1", "c2"} {
		c := newCase(900+i, "mz-330782", "330782", base)
		c.ID = id
		mustCreate(t, s, c)
	}
	for _, m := range msgs {
		if err := s.AddMessage(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, s.AddMessage(ctx, msgs[0]), qingfeng.ECONFLICT)

	tests := []struct {
		caseID string
		want   []string
	}{
		{"c1", []string{"m1", "m2", "m3"}},
		{"c2", []string{"x1"}},
		{"c3", nil},
	}
	for _, tt := range tests {
		t.Run(tt.caseID, func(t *testing.T) {
			got, err := s.Messages(ctx, tt.caseID)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil {
				t.Error("nil slice; want empty")
			}
			var ids []string
			for _, m := range got {
				ids = append(ids, m.ID)
			}
			if !reflect.DeepEqual(ids, tt.want) {
				t.Errorf("got %v, want %v", ids, tt.want)
			}
		})
	}
	got, err := s.Messages(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	want := *msgs[0] // m3, from staff: every field set
	want.CreatedAt = want.CreatedAt.UTC()
	if !reflect.DeepEqual(*got[2], want) {
		t.Errorf("message round trip: got %+v, want %+v", *got[2], want)
	}
}

func testEnsureIndexesTwice(t *testing.T, db *DB) {
	ctx := context.Background()
	// newDB already ensured them once.
	if err := db.EnsureIndexes(ctx); err != nil {
		t.Fatalf("second EnsureIndexes: %v", err)
	}
	for coll, models := range db.indexes() {
		cur, err := db.coll(coll).Indexes().List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var specs []struct {
			Name string `bson:"name"`
		}
		if err := cur.All(ctx, &specs); err != nil {
			t.Fatal(err)
		}
		have := map[string]bool{}
		for _, s := range specs {
			have[s.Name] = true
		}
		for _, m := range models {
			name := indexName(t, m)
			if !have[name] {
				t.Errorf("%s: index %s missing (have %v)", coll, name, have)
			}
		}
	}
}

func indexName(t *testing.T, m mongodrv.IndexModel) string {
	t.Helper()
	var o options.IndexOptions
	for _, set := range m.Options.List() {
		if err := set(&o); err != nil {
			t.Fatal(err)
		}
	}
	if o.Name == nil {
		t.Fatalf("index %v has no explicit name", m.Keys)
	}
	return *o.Name
}

func testPurgeExpired(t *testing.T, db *DB) {
	ctx := context.Background()
	cases, users := NewCaseStore(db), NewUserStore(db)
	now := time.Now().UTC()
	for i, exp := range []time.Duration{-time.Hour, -time.Minute, time.Hour} {
		if err := users.CreateSession(ctx, &accounts.Session{ID: fmt.Sprint("s", i), UserID: "u", RefreshHash: "h", CreatedAt: now, ExpiresAt: now.Add(exp)}); err != nil {
			t.Fatal(err)
		}
		if _, err := cases.ClaimIdempotency(ctx, &intake.IdempotencyRecord{KeyHash: fmt.Sprint("k", i), Owner: "o", CreatedAt: now, ExpiresAt: now.Add(exp)}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := db.PurgeExpired(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Where the server has a TTL monitor it may have removed some already.
	if n != 4 && !(db.ttl && n < 4) {
		t.Errorf("purged %d, want 4", n)
	}
	for _, coll := range []string{collSessions, collIdempotency} {
		left, err := db.coll(coll).CountDocuments(ctx, bson.M{})
		if err != nil {
			t.Fatal(err)
		}
		if left != 1 {
			t.Errorf("%s: %d documents left, want the 1 live one", coll, left)
		}
	}
	if _, err := users.SessionByID(ctx, "s2"); err != nil {
		t.Errorf("live session purged: %v", err)
	}
	if _, err := cases.Idempotency(ctx, "k2"); err != nil {
		t.Errorf("live idempotency record purged: %v", err)
	}
}
