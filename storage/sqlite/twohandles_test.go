package sqlite

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/custody"
	"github.com/qingfeng-zj/qingfeng/donations"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/storage/storetest"
)

// The suites' concurrent scenarios once more, with every call going to one of two
// handles on the same file in turn, as a server and a CLI (or two servers) would
// share it: each handle has its own writer connection, so what makes a conditional
// update atomic here is SQLite's write lock (BEGIN IMMEDIATE), not anything in this
// process.

// twoHandles opens the same database file twice.
func twoHandles(t *testing.T) (*DB, *DB) {
	t.Helper()
	a := openTestDB(t)
	b, err := Open(context.Background(), a.Path(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return a, b
}

// alternate returns the two stores in turn.
type alternate[S any] struct {
	s [2]S
	n atomic.Uint64
}

func (a *alternate[S]) next() S { return a.s[a.n.Add(1)%2] }

type twoCounters struct{ alternate[intake.Counters] }

func (c *twoCounters) NextSequence(ctx context.Context, name string) (int64, error) {
	return c.next().NextSequence(ctx, name)
}
func (c *twoCounters) ReturnSequence(ctx context.Context, name string, n int64) (bool, error) {
	return c.next().ReturnSequence(ctx, name, n)
}

type twoIdempotency struct {
	alternate[intake.IdempotencyStore]
}

func (c *twoIdempotency) ClaimIdempotency(ctx context.Context, r *intake.IdempotencyRecord) (*intake.IdempotencyRecord, error) {
	return c.next().ClaimIdempotency(ctx, r)
}
func (c *twoIdempotency) UpdateIdempotency(ctx context.Context, r *intake.IdempotencyRecord) error {
	return c.next().UpdateIdempotency(ctx, r)
}
func (c *twoIdempotency) ReleaseIdempotency(ctx context.Context, keyHash, owner string) error {
	return c.next().ReleaseIdempotency(ctx, keyHash, owner)
}
func (c *twoIdempotency) Idempotency(ctx context.Context, keyHash string) (*intake.IdempotencyRecord, error) {
	return c.next().Idempotency(ctx, keyHash)
}

type twoLeases struct{ alternate[donations.Leases] }

func (c *twoLeases) AcquireLease(ctx context.Context, name, holder string, now, until time.Time) (bool, error) {
	return c.next().AcquireLease(ctx, name, holder, now, until)
}
func (c *twoLeases) ReleaseLease(ctx context.Context, name, holder string) error {
	return c.next().ReleaseLease(ctx, name, holder)
}

type twoKeys struct{ alternate[custody.KeyStore] }

func (c *twoKeys) Add(ctx context.Context, r custody.Recipient) error { return c.next().Add(ctx, r) }
func (c *twoKeys) Revoke(ctx context.Context, id, by string, at time.Time) (custody.Recipient, error) {
	return c.next().Revoke(ctx, id, by, at)
}
func (c *twoKeys) All(ctx context.Context) ([]custody.Recipient, error) { return c.next().All(ctx) }

// twoRecipients is custody's store on two handles: the disclosures' decisions, the
// tasks' claims and the identities' replacements race across them.
type twoRecipients struct {
	twoKeys
	r [2]*RecipientStore
}

func (c *twoRecipients) at() *RecipientStore { return c.r[c.n.Add(1)%2] }

func (c *twoRecipients) InsertDisclosure(ctx context.Context, d custody.Disclosure) error {
	return c.at().InsertDisclosure(ctx, d)
}
func (c *twoRecipients) Disclosure(ctx context.Context, id string) (custody.Disclosure, error) {
	return c.at().Disclosure(ctx, id)
}
func (c *twoRecipients) UpdateDisclosure(ctx context.Context, id, from string, now time.Time, u custody.DisclosureUpdate) error {
	return c.at().UpdateDisclosure(ctx, id, from, now, u)
}
func (c *twoRecipients) Disclosures(ctx context.Context, caseID string) ([]custody.Disclosure, error) {
	return c.at().Disclosures(ctx, caseID)
}
func (c *twoRecipients) OpenDisclosures(ctx context.Context) ([]custody.Disclosure, error) {
	return c.at().OpenDisclosures(ctx)
}
func (c *twoRecipients) InsertTask(ctx context.Context, t custody.ResealTask) error {
	return c.at().InsertTask(ctx, t)
}
func (c *twoRecipients) Task(ctx context.Context, id string) (custody.ResealTask, error) {
	return c.at().Task(ctx, id)
}
func (c *twoRecipients) PendingTasks(ctx context.Context) ([]custody.ResealTask, error) {
	return c.at().PendingTasks(ctx)
}
func (c *twoRecipients) PendingCaseTasks(ctx context.Context, caseID string) ([]custody.ResealTask, error) {
	return c.at().PendingCaseTasks(ctx, caseID)
}
func (c *twoRecipients) SetTaskStatus(ctx context.Context, id, from, to, by string, at time.Time) error {
	return c.at().SetTaskStatus(ctx, id, from, to, by, at)
}
func (c *twoRecipients) ReplaceIdentity(ctx context.Context, caseID string, old []byte, id intake.SealedIdentity) error {
	return c.at().ReplaceIdentity(ctx, caseID, old, id)
}

func TestSuitesOnTwoHandles(t *testing.T) {
	t.Run("custody", func(t *testing.T) {
		storetest.Custody(t, func(t *testing.T) storetest.CustodyStores {
			a, b := twoHandles(t)
			ra, rb := NewRecipientStore(a), NewRecipientStore(b)
			r := &twoRecipients{twoKeys: twoKeys{alternate[custody.KeyStore]{s: [2]custody.KeyStore{ra, rb}}}, r: [2]*RecipientStore{ra, rb}}
			return storetest.CustodyStores{Recipients: r, Cases: NewCaseStore(a)}
		})
	})
	t.Run("counters", func(t *testing.T) {
		storetest.Counters(t, func(t *testing.T) intake.Counters {
			a, b := twoHandles(t)
			return &twoCounters{alternate[intake.Counters]{s: [2]intake.Counters{NewCounterStore(a), NewCounterStore(b)}}}
		})
	})
	t.Run("idempotency", func(t *testing.T) {
		storetest.Idempotency(t, func(t *testing.T) intake.IdempotencyStore {
			a, b := twoHandles(t)
			return &twoIdempotency{alternate[intake.IdempotencyStore]{s: [2]intake.IdempotencyStore{NewIdempotencyStore(a), NewIdempotencyStore(b)}}}
		})
	})
	t.Run("leases", func(t *testing.T) {
		storetest.Leases(t, func(t *testing.T) donations.Leases {
			a, b := twoHandles(t)
			return &twoLeases{alternate[donations.Leases]{s: [2]donations.Leases{NewLeaseStore(a), NewLeaseStore(b)}}}
		})
	})
	t.Run("keys", func(t *testing.T) {
		storetest.Keys(t, func(t *testing.T) custody.KeyStore {
			a, b := twoHandles(t)
			return &twoKeys{alternate[custody.KeyStore]{s: [2]custody.KeyStore{NewRecipientStore(a), NewRecipientStore(b)}}}
		})
	})
}

// twoLedgers sends each call to one of two ledger stores on the same file in turn.
type twoLedgers struct{ alternate[*LedgerStore] }

var _ storetest.LedgerStore = (*twoLedgers)(nil)

func (c *twoLedgers) Entry(ctx context.Context, code, id string) (donations.Entry, error) {
	return c.next().Entry(ctx, code, id)
}
func (c *twoLedgers) Append(ctx context.Context, code string, e donations.Entry, check func(donations.Balance) error) (donations.Entry, error) {
	return c.next().Append(ctx, code, e, check)
}
func (c *twoLedgers) AppendOnce(ctx context.Context, code, keyHash, reqHash string, e donations.Entry, check func(donations.Balance) error) (donations.Entry, bool, error) {
	return c.next().AppendOnce(ctx, code, keyHash, reqHash, e, check)
}
func (c *twoLedgers) List(ctx context.Context, code, month string) ([]donations.Record, error) {
	return c.next().List(ctx, code, month)
}
func (c *twoLedgers) EntriesAfter(ctx context.Context, code string, after int64, month string) ([]donations.Entry, error) {
	return c.next().EntriesAfter(ctx, code, after, month)
}
func (c *twoLedgers) GoodsIncome(ctx context.Context, code string) ([]donations.Record, error) {
	return c.next().GoodsIncome(ctx, code)
}
func (c *twoLedgers) Balance(ctx context.Context, code string) (donations.Balance, error) {
	return c.next().Balance(ctx, code)
}
func (c *twoLedgers) SaveVerification(ctx context.Context, code string, v donations.Verification) error {
	return c.next().SaveVerification(ctx, code, v)
}
func (c *twoLedgers) AddPhotos(ctx context.Context, org, batch string, evs []intake.Evidence) ([]string, error) {
	return c.next().AddPhotos(ctx, org, batch, evs)
}
func (c *twoLedgers) Photo(ctx context.Context, org, ref string) (intake.Evidence, error) {
	return c.next().Photo(ctx, org, ref)
}
func (c *twoLedgers) KeyUsed(ctx context.Context, code, keyHash string) (bool, error) {
	return c.next().KeyUsed(ctx, code, keyHash)
}
func (c *twoLedgers) RemovePhotos(ctx context.Context, org, batch string) error {
	return c.next().RemovePhotos(ctx, org, batch)
}
func (c *twoLedgers) SavePublished(ctx context.Context, ps donations.PublishedStatement) error {
	return c.next().SavePublished(ctx, ps)
}
func (c *twoLedgers) Published(ctx context.Context, org, month string) (donations.PublishedStatement, bool, error) {
	return c.next().Published(ctx, org, month)
}
func (c *twoLedgers) PublishedMonths(ctx context.Context, org string) (map[string]bool, error) {
	return c.next().PublishedMonths(ctx, org)
}
func (c *twoLedgers) SaveCorrection(ctx context.Context, org, month string, e donations.Entry) error {
	return c.next().SaveCorrection(ctx, org, month, e)
}
func (c *twoLedgers) CorrectionEntries(ctx context.Context, org, month string) ([]donations.Entry, error) {
	return c.next().CorrectionEntries(ctx, org, month)
}
func (c *twoLedgers) ClaimAlert(ctx context.Context, h donations.Hit, at time.Time) (donations.Alert, bool, error) {
	return c.next().ClaimAlert(ctx, h, at)
}
func (c *twoLedgers) MarkAlertFiled(ctx context.Context, id, caseNumber string, at time.Time) error {
	return c.next().MarkAlertFiled(ctx, id, caseNumber, at)
}
func (c *twoLedgers) PendingAlerts(ctx context.Context, limit int) ([]donations.Alert, error) {
	return c.next().PendingAlerts(ctx, limit)
}
func (c *twoLedgers) UnevaluatedEntries(ctx context.Context, before time.Time, limit int) ([]donations.Entry, error) {
	return c.next().UnevaluatedEntries(ctx, before, limit)
}
func (c *twoLedgers) MarkAlertsEvaluated(ctx context.Context, code, id string) error {
	return c.next().MarkAlertsEvaluated(ctx, code, id)
}
func (c *twoLedgers) RecordAlert(ctx context.Context, h donations.Hit, caseNumber string, at time.Time) (bool, error) {
	return c.next().RecordAlert(ctx, h, caseNumber, at)
}
func (c *twoLedgers) Alert(ctx context.Context, id string) (donations.Alert, error) {
	return c.next().Alert(ctx, id)
}
func (c *twoLedgers) OrgAlerts(ctx context.Context, code string) ([]donations.Alert, error) {
	return c.next().OrgAlerts(ctx, code)
}

// TestLedgerOnTwoHandles runs the ledger's scenarios (16 writers against 12 allowed
// payouts, goods racing their verification, publishing racing appends, …) with every
// call alternating between two handles on one file.
func TestLedgerOnTwoHandles(t *testing.T) {
	storetest.Ledger(t, func(t *testing.T, now func() time.Time) (storetest.LedgerStore, donations.Leases) {
		a, b := twoHandles(t)
		la, lb := NewLedgerStore(a), NewLedgerStore(b)
		la.now, lb.now = now, now
		return &twoLedgers{alternate[*LedgerStore]{s: [2]*LedgerStore{la, lb}}},
			&twoLeases{alternate[donations.Leases]{s: [2]donations.Leases{NewLeaseStore(a), NewLeaseStore(b)}}}
	}, storetest.LedgerHooks{SetHead: func(t *testing.T, s storetest.LedgerStore, code string, b *donations.Balance) {
		ledgerHooks.SetHead(t, s.(*twoLedgers).s[0], code, b)
	}})
}
