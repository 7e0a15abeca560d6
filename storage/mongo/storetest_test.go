package mongo

import (
	"time"

	"testing"

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

// In this package the case store holds the leases.
func TestLeaseStoreConformance(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		storetest.Leases(t, func(t *testing.T) donations.Leases { return NewCaseStore(openTestDB(t, tg)) })
	})
}

// In this package the case store holds the counters and the idempotency records.
func TestCountersConformance(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		storetest.Counters(t, func(t *testing.T) intake.Counters { return NewCaseStore(openTestDB(t, tg)) })
	})
}

func TestIdempotencyStoreConformance(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		storetest.Idempotency(t, func(t *testing.T) intake.IdempotencyStore { return NewCaseStore(openTestDB(t, tg)) })
	})
}

func TestCaseStoreConformance(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		storetest.Cases(t, func(t *testing.T) storetest.CaseStore { return NewCaseStore(openTestDB(t, tg)) })
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
