package donations

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/qingfeng-zj/qingfeng/routing"
)

// Filing an alert's case exactly once, without transactions:
//
//  1. the hit is claimed: a record with _id org:rule:period is inserted with status
//     "filing" (a duplicate key means it was claimed before);
//  2. the case is filed with the idempotency key "alert:"+id, from the stored hit;
//  3. the record gets the case number and status "filed".
//
// A crash between 1 and 3 leaves a "filing" record, which the next RunAlerts files
// again (PendingAlerts). Because the retry sends the same report under the same
// idempotency key, intake returns the case filed the first time if step 2 had
// completed: the case is never filed twice (as long as intake's idempotency records
// outlive the retry: IdempotencyTTL).
//
// An entry is appended with AlertsPending set; its hits are claimed, then the flag is
// cleared. A crash between the append and the claims leaves the flag, and RunAlerts
// evaluates the entry again: a rule is never dodged by timing.

// Leases lets one instance at a time run the periodic alert job (storage/*'s LeaseStore).
type Leases interface {
	AcquireLease(ctx context.Context, name, holder string, now, until time.Time) (bool, error)
	ReleaseLease(ctx context.Context, name, holder string) error
}

// AlertLease is the name of the periodic alert job's lease.
const AlertLease = "donations.alerts"

// DefaultAlertLease is how long the job holds its lease between renewals: a crashed
// holder's lease lapses within it.
const DefaultAlertLease = 2 * time.Minute

// recoveryGrace is how old an entry still marked AlertsPending, or an alert still
// "filing", must be before the periodic job takes it over: younger ones are most
// likely being handled by the append that stored them.
const recoveryGrace = time.Minute

// AlertIdempotencyKey is the key an alert's case is filed under.
func AlertIdempotencyKey(alertID string) string { return "alert:" + alertID }

// evaluate claims the hits of e, just appended to org's ledger, marks e evaluated and
// files the cases of the alerts it created.
func (l *Ledger) evaluate(ctx context.Context, org routing.Organization, e Entry) error {
	now := l.now()
	var claimed []Alert
	for _, h := range EntryHits(org, e, now, l.Rules) {
		a, created, err := l.Store.ClaimAlert(ctx, h, now)
		if err != nil {
			return err
		}
		// Only the claim's creator files it: an older claim still "filing" belongs to
		// whoever made it, or, if that stopped, to RunAlerts (PendingAlerts).
		if created {
			claimed = append(claimed, a)
		}
	}
	if err := l.noteCorrection(ctx, e); err != nil {
		return err
	}
	if err := l.Store.MarkAlertsEvaluated(ctx, e.Org, e.ID); err != nil {
		return err
	}
	var errs []error
	for _, a := range claimed {
		errs = append(errs, l.file(ctx, a, now))
	}
	return errors.Join(errs...)
}

// file files a's case from the stored hit and records its number.
func (l *Ledger) file(ctx context.Context, a Alert, now time.Time) error {
	if l.File == nil {
		return nil
	}
	number, err := l.File(ctx, a.Hit, AlertIdempotencyKey(a.ID))
	if err != nil {
		return fmt.Errorf("file alert %s: %w", a.ID, err)
	}
	if err := l.Store.MarkAlertFiled(ctx, a.ID, number, now); err != nil {
		return fmt.Errorf("mark alert %s filed as %s: %w", a.ID, number, err)
	}
	l.log().WarnContext(ctx, "donation alert filed", "event", "donations.alert", "alert", a.ID, "rule", a.Rule, "org", a.Org, "case", number)
	return nil
}

func (l *Ledger) lease() time.Duration {
	if l.LeaseDuration > 0 {
		return l.LeaseDuration
	}
	return DefaultAlertLease
}

// RunAlerts is one run of the periodic alert job, if this instance gets the lease:
// it files the alerts whose filing was interrupted, evaluates the entries whose
// evaluation on append was interrupted, and evaluates the time-based rules over every
// organization. It returns the number of cases filed (or re-filed) by this run. A
// failure for one organization is joined into the error and tried again next run.
// The lease is released when the run ends, and renewed during a long run.
func (l *Ledger) RunAlerts(ctx context.Context) (int, error) {
	now := l.now()
	if l.Leases != nil {
		if l.Holder == "" {
			l.Holder = "alerts-" + rand.Text()[:10]
		}
		ok, err := l.Leases.AcquireLease(ctx, AlertLease, l.Holder, now, now.Add(l.lease()))
		if err != nil || !ok {
			return 0, err
		}
		defer func() { _ = l.Leases.ReleaseLease(context.WithoutCancel(ctx), AlertLease, l.Holder) }()
	}
	renewed := now
	renew := func() error {
		if l.Leases == nil || l.now().Sub(renewed) < l.lease()/2 {
			return nil
		}
		renewed = l.now()
		ok, err := l.Leases.AcquireLease(ctx, AlertLease, l.Holder, renewed, renewed.Add(l.lease()))
		if err == nil && !ok {
			err = errors.New("alert lease lost")
		}
		return err
	}
	n := 0
	var errs []error
	pending, err := l.Store.PendingAlerts(ctx, 1000)
	if err != nil {
		return 0, err
	}
	for _, a := range pending {
		if now.Sub(a.CreatedAt) < recoveryGrace {
			// Most likely still being filed by the append that claimed it: filing it
			// here too would lean on intake's idempotency under a race.
			continue
		}
		if err := l.file(ctx, a, now); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	unevaluated, err := l.Store.UnevaluatedEntries(ctx, now.Add(-recoveryGrace), 1000)
	if err != nil {
		return n, errors.Join(append(errs, err)...)
	}
	for _, e := range unevaluated {
		org, err := l.org(e.Org)
		if err != nil {
			errs = append(errs, fmt.Errorf("alerts of entry %s: %w", e.ID, err))
			continue
		}
		if err := l.evaluate(ctx, org, e); err != nil {
			errs = append(errs, fmt.Errorf("alerts of entry %s: %w", e.ID, err))
		}
	}
	if l.EachOrg == nil {
		return n, errors.Join(errs...)
	}
	err = l.EachOrg(ctx, func(org routing.Organization) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := renew(); err != nil {
			return err
		}
		recs, err := l.Store.List(ctx, org.CreditCode, "")
		if err != nil {
			errs = append(errs, fmt.Errorf("ledger of %s: %w", org.CreditCode, err))
			return nil
		}
		if len(recs) == 0 {
			return nil
		}
		hits := OverdueHits(org, recs, now, l.Rules)
		if l.Rules.On(RuleStatementNotPublished) {
			published, err := l.Store.PublishedMonths(ctx, org.CreditCode)
			if err != nil {
				errs = append(errs, fmt.Errorf("statements of %s: %w", org.CreditCode, err))
				return nil
			}
			hits = append(hits, UnpublishedStatements(org, recs, published, now)...)
		}
		for _, h := range hits {
			a, created, err := l.Store.ClaimAlert(ctx, h, now)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if a.Status != AlertFiling || (!created && (inPending(pending, a.ID) || now.Sub(a.CreatedAt) < recoveryGrace)) {
				continue // filed before, retried above, or being filed by another
			}
			if err := l.file(ctx, a, now); err != nil {
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

func inPending(as []Alert, id string) bool {
	for _, a := range as {
		if a.ID == id {
			return true
		}
	}
	return false
}
