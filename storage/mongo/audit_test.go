package mongo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/qingfeng-zj/qingfeng/audit"
	"github.com/qingfeng-zj/qingfeng/audit/audittest"
)

func TestAuditStoreConformance(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		audittest.TestStore(t, func(t *testing.T) audit.Store { return NewAuditStore(openTestDB(t, tg)) })
	})
}

// TestAuditConcurrentServers: two Logs on one database, as two servers would have,
// eight goroutines recording at once. The chain must come out whole: 400 entries,
// Seq 1 to 400, every link intact.
func TestAuditConcurrentServers(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		db := openTestDB(t, tg)
		// Two handles on the database too, so nothing is shared but the server.
		db2, err := Open(ctx, tg.uri, db.db.Name())
		if err != nil {
			t.Fatal(err)
		}
		defer db2.Close(ctx)
		s1, s2 := &countingStore{Store: NewAuditStore(db)}, &countingStore{Store: NewAuditStore(db2)}
		logs := []*audit.Log{{Store: s1}, {Store: s2}}
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 50 {
					err := logs[g%2].Record(ctx, fmt.Sprintf("u-%d", g), "staff", "case.read",
						fmt.Sprintf("QF-330782-2026-%06d", i), map[string]string{"i": fmt.Sprint(i)})
					if err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		r, err := audit.Verify(ctx, NewAuditStore(db))
		if err != nil || !r.OK || r.Entries != 400 || r.HeadSeq != 400 {
			t.Fatalf("Verify: %+v %+v, %v", r, r.FirstBroken, err)
		}
		n, err := db.coll(collAudit).CountDocuments(ctx, bson.M{})
		if err != nil || n != 400 {
			t.Errorf("%d documents, %v", n, err)
		}
		// The race this test is about must have been run, not avoided by luck.
		conflicts := s1.conflicts.Load() + s2.conflicts.Load()
		t.Logf("%d appends lost the race for a sequence number", conflicts)
		if conflicts == 0 {
			t.Error("no append ever lost the race: the two Logs did not contend")
		}
	})
}

// countingStore counts Appends that fail with ErrSeqTaken.
type countingStore struct {
	audit.Store
	conflicts atomic.Int64
}

func (s *countingStore) Append(ctx context.Context, e audit.Entry) error {
	err := s.Store.Append(ctx, e)
	if errors.Is(err, audit.ErrSeqTaken) {
		s.conflicts.Add(1)
	}
	return err
}

// TestAuditTampering changes the stored log with the bare driver, as someone with
// database access would, and checks that Verify names where.
func TestAuditTampering(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		tests := []struct {
			name   string
			tamper func(t *testing.T, db *DB)
			seq    int64
			reason string
		}{
			{"detail edited", func(t *testing.T, db *DB) {
				rawUpdate(t, db, 4, bson.M{"$set": bson.M{"detail.i": "999"}})
			}, 4, audit.ReasonHash},
			{"actor edited", func(t *testing.T, db *DB) {
				rawUpdate(t, db, 1, bson.M{"$set": bson.M{"actor": "u-someone-else"}})
			}, 1, audit.ReasonHash},
			{"time edited", func(t *testing.T, db *DB) {
				rawUpdate(t, db, 9, bson.M{"$set": bson.M{"at": time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}})
			}, 9, audit.ReasonHash},
			{"edited and re-hashed", func(t *testing.T, db *DB) {
				e := mustGet(t, db, 5)
				e.Action = "case.list"
				rawUpdate(t, db, 5, bson.M{"$set": bson.M{"action": e.Action, "hash": e.ComputeHash()}})
			}, 6, audit.ReasonPrev},
			{"deleted", func(t *testing.T, db *DB) {
				if _, err := db.coll(collAudit).DeleteOne(ctx, bson.M{"_id": int64(6)}); err != nil {
					t.Fatal(err)
				}
			}, 6, audit.ReasonGap},
			{"the first deleted", func(t *testing.T, db *DB) {
				if _, err := db.coll(collAudit).DeleteOne(ctx, bson.M{"_id": int64(1)}); err != nil {
					t.Fatal(err)
				}
			}, 1, audit.ReasonGap},
			{"forged at the end, wrong prev", func(t *testing.T, db *DB) {
				e := audit.Entry{Seq: 11, At: time.Now().UTC().Truncate(time.Millisecond), Actor: "u-x", Action: "case.read",
					Prev: mustGet(t, db, 9).Hash}
				e.Hash = e.ComputeHash()
				if _, err := db.coll(collAudit).InsertOne(ctx, toAuditDoc(e)); err != nil {
					t.Fatal(err)
				}
			}, 11, audit.ReasonPrev},
			{"two swapped, re-hashed", func(t *testing.T, db *DB) {
				a, b := mustGet(t, db, 4), mustGet(t, db, 3)
				a.Seq, b.Seq = 3, 4
				a.Hash, b.Hash = a.ComputeHash(), b.ComputeHash()
				for _, e := range []audit.Entry{a, b} {
					if _, err := db.coll(collAudit).ReplaceOne(ctx, bson.M{"_id": e.Seq}, toAuditDoc(e)); err != nil {
						t.Fatal(err)
					}
				}
			}, 3, audit.ReasonPrev},
			{"detail of the wrong type", func(t *testing.T, db *DB) {
				rawUpdate(t, db, 7, bson.M{"$set": bson.M{"detail": 42}})
			}, 7, audit.ReasonMalformed},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				db := openTestDB(t, tg)
				l := &audit.Log{Store: NewAuditStore(db)}
				for i := range 10 {
					if err := l.Record(ctx, "u-1", "staff", "case.read", "QF-330782-2026-000001", map[string]string{"i": fmt.Sprint(i)}); err != nil {
						t.Fatal(err)
					}
				}
				if r, err := audit.Verify(ctx, NewAuditStore(db)); err != nil || !r.OK || r.Entries != 10 {
					t.Fatalf("before tampering: %+v, %v", r, err)
				}
				tt.tamper(t, db)
				r, err := audit.Verify(ctx, NewAuditStore(db))
				if err != nil {
					t.Fatal(err)
				}
				if r.OK || r.FirstBroken == nil || r.FirstBroken.Seq != tt.seq || r.FirstBroken.Reason != tt.reason {
					t.Errorf("report %+v, broken %+v; want seq %d: %s", r, r.FirstBroken, tt.seq, tt.reason)
				}
			})
		}
	})
}

func rawUpdate(t *testing.T, db *DB, seq int64, update bson.M) {
	t.Helper()
	res, err := db.coll(collAudit).UpdateOne(context.Background(), bson.M{"_id": seq}, update)
	if err != nil || res.ModifiedCount != 1 {
		t.Fatalf("update entry %d: %v, %+v", seq, err, res)
	}
}

func mustGet(t *testing.T, db *DB, seq int64) audit.Entry {
	t.Helper()
	e, err := NewAuditStore(db).Get(context.Background(), seq)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestAuditAppendRefusesSubMillisecond(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		s := NewAuditStore(openTestDB(t, tg))
		e := audit.Entry{Seq: 1, At: time.Date(2026, 3, 1, 0, 0, 0, 1500, time.UTC), Actor: "u", Action: "x"}
		e.Hash = e.ComputeHash()
		err := s.Append(context.Background(), e)
		if err == nil || errors.Is(err, audit.ErrSeqTaken) || !strings.Contains(err.Error(), "millisecond") {
			t.Errorf("Append: %v", err)
		}
	})
}
