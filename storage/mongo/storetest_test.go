package mongo

import (
	"context"
	"time"

	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/custody"
	"github.com/qingfeng-zj/qingfeng/donations"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/storage/storetest"
	"github.com/qingfeng-zj/qingfeng/triage"
)

// The shared suites of storage/storetest, which storage/sqlite runs too.

func TestUserStoreConformance(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		storetest.Users(t, func(t *testing.T) accounts.UserStore { return NewUserStore(openTestDB(t, tg)) })
	})
}

func TestCalendarStoreConformance(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		storetest.Calendar(t, func(t *testing.T) triage.CalendarStore { return NewCalendarStore(openTestDB(t, tg)) })
	})
}

func TestKeyStoreConformance(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		storetest.Keys(t, func(t *testing.T) custody.KeyStore { return NewRecipientStore(openTestDB(t, tg)) })
	})
}

func TestLeaseStoreConformance(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		storetest.Leases(t, func(t *testing.T) donations.Leases { return NewLeaseStore(openTestDB(t, tg)) })
	})
}

func TestCountersConformance(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		storetest.Counters(t, func(t *testing.T) intake.Counters { return NewCounterStore(openTestDB(t, tg)) })
	})
}

func TestIdempotencyStoreConformance(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		storetest.Idempotency(t, func(t *testing.T) intake.IdempotencyStore { return NewIdempotencyStore(openTestDB(t, tg)) })
	})
}

func TestCaseStoreConformance(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		storetest.Cases(t, func(t *testing.T) storetest.CaseStores {
			db := openTestDB(t, tg)
			return storetest.CaseStores{Cases: NewCaseStore(db), Outbox: NewOutboxStore(db), Leases: NewLeaseStore(db)}
		})
	})
}

func TestCustodyStoreConformance(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		storetest.Custody(t, func(t *testing.T) storetest.CustodyStores {
			db := openTestDB(t, tg)
			return storetest.CustodyStores{Recipients: NewRecipientStore(db), Cases: NewCaseStore(db)}
		})
	})
}

// TestCustodyProperty runs the custody invariant (issue 9) on one database per target,
// emptied before each sequence: a database per sequence would cost its indexes each.
func TestCustodyProperty(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		db := openTestDB(t, tg)
		storetest.CustodyProperty(t, func(t *testing.T) storetest.CustodyStores {
			for _, coll := range []string{collRecipients, collRecipientClaims, collResealTasks, collDisclosures, collCases} {
				if _, err := db.coll(coll).DeleteMany(context.Background(), bson.M{}); err != nil {
					t.Fatal(err)
				}
			}
			return storetest.CustodyStores{Recipients: NewRecipientStore(db), Cases: NewCaseStore(db)}
		})
	})
}

func TestStatsConformance(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		storetest.Stats(t, func(t *testing.T, now func() time.Time) storetest.StatsStore {
			db := openTestDB(t, tg)
			db.now = now
			return NewCaseStore(db)
		})
	})
}

func TestReferencedObjectsConformance(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		storetest.ReferencedObjects(t, func(t *testing.T) storetest.ObjectsEnv {
			db := openTestDB(t, tg)
			return storetest.ObjectsEnv{Cases: NewCaseStore(db), Ledger: NewLedgerStore(db), Referenced: db.ReferencedObjects}
		})
	})
}
