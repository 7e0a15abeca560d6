package mongo

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/intake"
)

// runConformance is what only this package's stores are checked for; the case
// scenarios both stores share are storetest.Cases (storetest_test.go). newDB returns a fresh,
// empty database with indexes for one subtest.
func runConformance(t *testing.T, newDB func(t *testing.T) *DB) {
	tests := []struct {
		name string
		run  func(t *testing.T, db *DB)
	}{
		{"CaseNotFoundWrapsDriverError", testCaseNotFoundWrapsDriverError},
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

func ev(id string, size int64) intake.Evidence {
	return intake.Evidence{ID: id, ObjectKey: "cases/x/" + id, ContentType: "image/png", Size: size,
		SHA256Received: "h", SHA256Stored: "h", UploadedBy: "reporter", UploadedAt: base}
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

// The driver's sentinel stays reachable for logs and callers that care.
func testCaseNotFoundWrapsDriverError(t *testing.T, db *DB) {
	_, err := NewCaseStore(db).CaseByID(context.Background(), "nope")
	wantCode(t, err, qingfeng.ENOTFOUND)
	if !errors.Is(err, mongodrv.ErrNoDocuments) {
		t.Errorf("CaseByID error %v does not wrap mongo.ErrNoDocuments", err)
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
