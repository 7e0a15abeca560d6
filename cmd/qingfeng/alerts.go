package main

import (
	"context"

	"github.com/qingfeng-zj/qingfeng/donations"
	"github.com/qingfeng-zj/qingfeng/intake"
)

// donationLedger is the donation ledger service. Its alert (预警) hits each file one
// case (source "system"), routed like any other report; the hit's id is the report's
// Idempotency-Key, so a retry after a crash returns the same case.
func (m *Main) donationLedger() *donations.Ledger {
	return &donations.Ledger{
		Store:   m.st.ledger,
		Sealer:  m.keys.Sealer,
		Orgs:    m.engine.Orgs.Get,
		EachOrg: m.st.orgs.EachOrganization,
		Rules:   m.alertRules(),
		Log:     m.Log,
		Leases:  m.st.leases,
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

// alertRules are the default rules with the configured thresholds.
func (m *Main) alertRules() donations.AlertRules {
	r := donations.DefaultAlertRules
	if m.Config.AlertLargeFen > 0 {
		r.LargeAmountFen = m.Config.AlertLargeFen
	}
	if m.Config.AlertGoodsDays > 0 {
		r.UnverifiedGoodsDays = m.Config.AlertGoodsDays
	}
	return r
}
