package mongo

import (
	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/audit"
	"github.com/qingfeng-zj/qingfeng/donations"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/outbox"
	"github.com/qingfeng-zj/qingfeng/retention"
	"github.com/qingfeng-zj/qingfeng/routing"
	"github.com/qingfeng-zj/qingfeng/stats"
	"github.com/qingfeng-zj/qingfeng/triage"
)

// Every domain interface each store of this package implements, in one place (as in
// storage/sqlite's stores.go): a store that loses a method fails to compile here, not
// in whichever caller wires it. custody's interfaces (RecipientStore) are checked in
// recipients.go, disclosures.go and reseal.go.
var (
	_ accounts.UserStore = (*UserStore)(nil)
	_ audit.Store        = (*AuditStore)(nil)

	_ triage.CalendarStore = (*CalendarStore)(nil)

	_ routing.RuleStorage     = (*RuleStore)(nil)
	_ routing.OrgImportStore  = (*OrgStore)(nil)
	_ routing.UnitStorage     = (*UnitStore)(nil)
	_ routing.UnitImportStore = (*UnitStore)(nil)

	_ intake.CaseStore       = (*CaseStore)(nil)
	_ triage.Store           = (*CaseStore)(nil)
	_ triage.TransferStore   = (*CaseStore)(nil)
	_ triage.EscalationStore = (*CaseStore)(nil)
	_ retention.Store        = (*CaseStore)(nil)
	_ retention.Reclaimer    = (*CaseStore)(nil)
	_ stats.Source           = (*CaseStore)(nil)

	_ intake.Counters         = (*CounterStore)(nil)
	_ intake.IdempotencyStore = (*IdempotencyStore)(nil)

	_ donations.Leases = (*LeaseStore)(nil)
	_ triage.Leases    = (*LeaseStore)(nil)
	_ retention.Leases = (*LeaseStore)(nil)
	_ outbox.Leases    = (*LeaseStore)(nil)

	_ outbox.Store = (*OutboxStore)(nil)

	_ donations.Store = (*LedgerStore)(nil)
)
