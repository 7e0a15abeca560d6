// Package storetest holds the conformance suites every implementation of a domain
// store interface runs: storage/mongo (on the embedded FerretDB, and on MongoDB when
// QF_TEST_MONGODB_URI is set) and storage/sqlite run the same scenarios and must get
// the same results. A suite takes a constructor returning a fresh, empty store per
// scenario; scenarios run in parallel.
//
// Suites so far: Users (accounts.UserStore), Calendar (triage.CalendarStore), Rules,
// Organizations and Units (routing's stores), Keys (custody.KeyStore), Leases
// (donations.Leases), Counters and Idempotency (intake's), Cases (intake.CaseStore
// with the workflow's, transfers' and escalation's interfaces, run with the outbox
// and lease stores of the same database), Ledger (donations.Store with its alerts,
// through the donations.Ledger service), Custody (custody's disclosures and re-seal
// tasks, with the case store's identities) and CustodyProperty (custody's invariant
// over random sequences), Stats (stats.Source), Retention (retention.Store through
// retention.Purger) and ReferencedObjects (what the orphan sweeper keeps); the audit
// log's is audit/audittest.TestStore.
package storetest

import (
	"testing"
	"time"

	qingfeng "github.com/qingfeng-zj/qingfeng"
)

type scenario[S any] struct {
	name string
	run  func(t *testing.T, s S)
}

func run[S any](t *testing.T, newStore func(t *testing.T) S, scenarios []scenario[S]) {
	t.Helper()
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			sc.run(t, newStore(t))
		})
	}
}

// base is a test time in China Standard Time, to check that stores convert to UTC, with
// millisecond precision, which is what both BSON and the SQLite store keep.
var base = time.Date(2026, 3, 14, 9, 26, 53, 589_000_000, time.FixedZone("CST", 8*3600))

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := qingfeng.ErrorCode(err); got != code {
		t.Fatalf("error code = %q, want %q (err: %v)", got, code, err)
	}
}
