package main

import (
	"context"

	"github.com/qingfeng-zj/qingfeng/donations"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/storage/mongo"
	"github.com/qingfeng-zj/qingfeng/warnings"
)

// warningJob evaluates the donation warning rules over every organization's ledger and
// files one case per hit (source "system"), routed like any other report. The hit's id
// is the report's Idempotency-Key, so a retry after a crash returns the same case.
func (m *Main) warningJob() *warnings.Job {
	return &warnings.Job{
		Ledger: mongo.NewLedgerStore(m.db),
		Orgs:   mongo.NewOrgStore(m.db).EachOrganization,
		Rules:  m.warningRules(),
		Log:    m.Log,
		Lease:  mongo.NewCaseStore(m.db).AcquireLease,
		File: func(ctx context.Context, h donations.Hit, key string) (string, error) {
			p, err := m.Intake.Prepare(ctx, intake.FileRequest{IdempotencyKey: key, Draft: intake.Draft{
				Category:    "donation_misuse",
				Subject:     intake.Subject{Kind: intake.SubjectOrganization, Organization: &intake.OrgSubject{CreditCode: h.Org, Name: h.OrgName}},
				Description: h.Detail,
				Location:    intake.Location{Division: h.Division},
				OccurredOn:  h.Date,
				Anonymous:   true,
				Source:      "system",
			}})
			if err != nil {
				return "", err
			}
			f, err := p.Commit(ctx)
			if err != nil {
				return "", err
			}
			return f.Case.Number, nil
		},
	}
}

// warningRules are the default rules with the configured thresholds.
func (m *Main) warningRules() donations.WarningRules {
	r := donations.DefaultWarningRules
	if m.Config.WarnLargeFen > 0 {
		r.LargeAmountFen = m.Config.WarnLargeFen
	}
	if m.Config.WarnGoodsDays > 0 {
		r.UnverifiedGoodsDays = m.Config.WarnGoodsDays
	}
	return r
}
