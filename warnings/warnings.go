// Package warnings runs the donation-ledger warning rules (donations.Evaluate) over
// every organization and files one case per new hit, exactly once, without
// transactions:
//
//  1. the hit is claimed: a record with _id org:rule:period is inserted with status
//     "filing" (a duplicate key means it was claimed before);
//  2. the case is filed with the idempotency key "warning:"+id, from the stored hit;
//  3. the record gets the case number and status "filed".
//
// A crash between 1 and 3 leaves a "filing" record, which the next run files again
// (PendingWarnings, and any re-found hit whose record is still "filing"). Because the
// retry sends the same report under the same idempotency key, intake returns the case
// filed the first time if step 2 had completed: the case is never filed twice (as long
// as intake's idempotency records outlive the retry: IdempotencyTTL).
package warnings

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/qingfeng-zj/qingfeng/donations"
	"github.com/qingfeng-zj/qingfeng/routing"
)

// Store is what the job needs of the ledger (mongo.LedgerStore).
type Store interface {
	List(ctx context.Context, code, month string) ([]donations.Record, error)
	ClaimWarning(ctx context.Context, h donations.Hit, at time.Time) (donations.Warning, bool, error)
	MarkWarningFiled(ctx context.Context, id, caseNumber string, at time.Time) error
	PendingWarnings(ctx context.Context, limit int) ([]donations.Warning, error)
	// PublishedMonths lists the months (YYYY-MM) whose statement code has published.
	PublishedMonths(ctx context.Context, code string) (map[string]bool, error)
}

// Job files the cases of warning hits. Several instances may run: a lease lets one at a
// time scan, and the claims keep filings exactly-once even without it.
type Job struct {
	Ledger Store
	// Orgs streams every organization (mongo.OrgStore.EachOrganization).
	Orgs func(ctx context.Context, fn func(routing.Organization) error) error
	// File files the case of h with idemKey as its idempotency key and returns its
	// number. Filing twice with the same key and hit must return the same case.
	File  func(ctx context.Context, h donations.Hit, idemKey string) (caseNumber string, err error)
	Rules donations.WarningRules
	Now   func() time.Time
	Log   *slog.Logger
	// Lease, if set, takes or renews a named lease (mongo.CaseStore.AcquireLease); a run
	// that cannot take it does nothing.
	Lease         func(ctx context.Context, name, holder string, now, until time.Time) (bool, error)
	Holder        string
	LeaseDuration time.Duration
}

const leaseName = "donations.warnings"

// IdempotencyKey is the key a warning's case is filed under.
func IdempotencyKey(warningID string) string { return "warning:" + warningID }

func (j *Job) now() time.Time {
	if j.Now != nil {
		return j.Now().UTC()
	}
	return time.Now().UTC()
}

// RunOnce retries the interrupted filings, then evaluates every organization's ledger
// and files a case for each new hit. It returns the number of cases filed (or re-filed)
// by this run. An organization whose ledger or filing fails is logged and skipped; the
// errors are joined into the result, and the next run tries again.
func (j *Job) RunOnce(ctx context.Context) (int, error) {
	now := j.now()
	if j.Lease != nil {
		if j.Holder == "" {
			j.Holder = "warnings-" + rand.Text()[:10]
		}
		d := j.LeaseDuration
		if d <= 0 {
			d = 10 * time.Minute
		}
		ok, err := j.Lease(ctx, leaseName, j.Holder, now, now.Add(d))
		if err != nil || !ok {
			return 0, err
		}
	}
	n := 0
	var errs []error
	pending, err := j.Ledger.PendingWarnings(ctx, 1000)
	if err != nil {
		return 0, err
	}
	for _, w := range pending {
		if err := j.file(ctx, w, now); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	err = j.Orgs(ctx, func(org routing.Organization) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		recs, err := j.Ledger.List(ctx, org.CreditCode, "")
		if err != nil {
			errs = append(errs, fmt.Errorf("ledger of %s: %w", org.CreditCode, err))
			return nil
		}
		if len(recs) == 0 {
			return nil
		}
		hits := donations.Evaluate(org, recs, now, j.Rules)
		if j.Rules.On(donations.RuleStatementNotPublished) {
			published, err := j.Ledger.PublishedMonths(ctx, org.CreditCode)
			if err != nil {
				errs = append(errs, fmt.Errorf("statements of %s: %w", org.CreditCode, err))
				return nil
			}
			hits = append(hits, donations.UnpublishedStatements(org, recs, published, now)...)
		}
		for _, h := range hits {
			w, created, err := j.Ledger.ClaimWarning(ctx, h, now)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if !created && w.Status != donations.WarningFiling {
				continue // filed before
			}
			if !created && inPending(pending, w.ID) {
				continue // retried above (and failed)
			}
			if err := j.file(ctx, w, now); err != nil {
				errs = append(errs, err)
				continue
			}
			n++
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	return n, errors.Join(errs...)
}

func inPending(ws []donations.Warning, id string) bool {
	for _, w := range ws {
		if w.ID == id {
			return true
		}
	}
	return false
}

// file files w's case from the stored hit and records its number.
func (j *Job) file(ctx context.Context, w donations.Warning, now time.Time) error {
	number, err := j.File(ctx, w.Hit, IdempotencyKey(w.ID))
	if err != nil {
		return fmt.Errorf("file warning %s: %w", w.ID, err)
	}
	if err := j.Ledger.MarkWarningFiled(ctx, w.ID, number, now); err != nil {
		return fmt.Errorf("mark warning %s filed as %s: %w", w.ID, number, err)
	}
	if j.Log != nil {
		j.Log.WarnContext(ctx, "donation warning filed", "event", "donations.warning", "warning", w.ID, "rule", w.Rule,
			"org", w.Org, "case", number)
	}
	return nil
}
