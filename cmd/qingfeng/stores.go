package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/audit"
	"github.com/qingfeng-zj/qingfeng/custody"
	"github.com/qingfeng-zj/qingfeng/donations"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/outbox"
	"github.com/qingfeng-zj/qingfeng/retention"
	"github.com/qingfeng-zj/qingfeng/routing"
	"github.com/qingfeng-zj/qingfeng/stats"
	"github.com/qingfeng-zj/qingfeng/storage/mongo"
	"github.com/qingfeng-zj/qingfeng/storage/sqlite"
	"github.com/qingfeng-zj/qingfeng/triage"
)

// stores are the domain stores of the database in use: storage/sqlite's on the
// embedded default, storage/mongo's on MongoDB. The rest of the server sees only
// these interfaces, so both backends run the same services.
type stores struct {
	cases      caseStore
	leases     leaseStore
	outbox     outbox.Store
	users      userStore
	audit      audit.Store
	calendar   triage.CalendarStore
	rules      ruleStore
	units      unitStore
	orgs       orgStore
	recipients recipientStore
	ledger     donations.Store

	// sqlite is the embedded default's database (nil on MongoDB): backups copy it.
	sqlite *sqlite.DB

	ping         func(context.Context) error
	purgeExpired func(context.Context) (int64, error)
	referenced   func(context.Context) (map[string]bool, error)
	close        func() error
}

// caseStore is what the services need of the case store, leases apart.
type caseStore interface {
	intake.CaseStore
	triage.Store
	triage.TransferStore
	stats.Source
	OverdueSteps(ctx context.Context, today string, limit int) ([]triage.Overdue, error)
	Escalate(ctx context.Context, o triage.Overdue, n triage.Notification) (bool, error)
	Notifications(ctx context.Context, unitID string, limit int) ([]triage.Notification, error)
	CountByStatus(ctx context.Context, unitID string) (map[intake.Status]int64, error)
	CountNewActivity(ctx context.Context, unitID string) (int64, error)
	OpenCasesWithIdentity(ctx context.Context, prefix string) ([]*intake.Case, error)
	ClosedBefore(ctx context.Context, cutoff time.Time, limit int) ([]retention.Candidate, error)
	Anonymise(ctx context.Context, caseID string, version int64, at time.Time) error
	retention.Reclaimer
}

// leaseStore lets one instance at a time run a periodic job.
type leaseStore interface {
	donations.Leases
}

type userStore interface {
	accounts.UserStore
	CountUsers(ctx context.Context) (int64, error)
}

type ruleStore interface {
	routing.RuleStorage
	Seed(ctx context.Context, set routing.RuleSet) (bool, error)
}

type unitStore interface {
	routing.UnitStorage
	routing.UnitImportStore
}

type orgStore interface {
	routing.OrgImportStore
	EachOrganization(ctx context.Context, fn func(routing.Organization) error) error
}

type recipientStore interface {
	custody.KeyStore
	custody.DisclosureStore
	custody.ResealStore
}

// mongoStores are storage/mongo's stores on db.
func mongoStores(db *mongo.DB) *stores {
	cases := mongo.NewCaseStore(db)

	return &stores{
		cases: cases, leases: mongo.NewLeaseStore(db), outbox: mongo.NewOutboxStore(db),
		users: mongo.NewUserStore(db), audit: mongo.NewAuditStore(db), calendar: mongo.NewCalendarStore(db),
		rules: mongo.NewRuleStore(db), units: mongo.NewUnitStore(db), orgs: mongo.NewOrgStore(db),
		recipients: mongo.NewRecipientStore(db), ledger: mongo.NewLedgerStore(db),
		ping: db.Ping, purgeExpired: db.PurgeExpired, referenced: db.ReferencedObjects,
		close: func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return db.Close(ctx)
		},
	}
}

// sqliteStores are storage/sqlite's stores on db.
func sqliteStores(db *sqlite.DB) *stores {
	cases := sqlite.NewCaseStore(db)
	return &stores{
		cases: cases, leases: sqlite.NewLeaseStore(db), outbox: sqlite.NewOutboxStore(db),
		users: sqlite.NewUserStore(db), audit: sqlite.NewAuditStore(db), calendar: sqlite.NewCalendarStore(db),
		rules: sqlite.NewRuleStore(db), units: sqlite.NewUnitStore(db), orgs: sqlite.NewOrgStore(db),
		recipients: sqlite.NewRecipientStore(db), ledger: sqlite.NewLedgerStore(db),
		ping: db.Ping, purgeExpired: db.PurgeExpired, referenced: db.ReferencedObjects,
		close: db.Close, sqlite: db,
	}
}

// refuseFerretDBDir refuses a data directory that an earlier release wrote with
// FerretDB and that holds no SQLite database yet: starting afresh beside it would
// hide every earlier case. It names the command that migrates it.
func refuseFerretDBDir(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, sqlite.FileName)); err == nil {
		return nil
	}
	if !isOldDataDir(dir) {
		return nil
	}
	return fmt.Errorf("%s holds data an earlier release wrote with FerretDB (%s) and no %s: migrate it first, with the server stopped:\n\n  qingfeng migrate --from %s --to %s\n",
		dir, filepath.Join(dir, "ferretdb"), sqlite.FileName, dir, dir)
}
