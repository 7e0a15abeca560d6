// Package retention destroys closed cases once their retention period (保存期限) has
// passed: the sealed identity and every re-sealed copy of it are deleted (crypto-
// shredding: without the ciphertext no key opens anything), the evidence objects are
// removed, the conversation is deleted and the case document is anonymised. What stays
// is what statistics and the chain of custody need — the case number, category,
// division, status, dates, workflow steps without their free text, the evidence
// entries' hashes, sizes and types — and one audit entry per purge. A case with reporter
// activity its unit has not read (intake.Case.NewActivity) waits until it is read.
//
// The order of the steps makes a crash at any point safe to retry: evidence objects go
// first, while the case still names them; the store's Anonymise removes the identity
// in its first write and marks the case purged in its last, so a case is listed again
// until every step is done, and doing a step twice changes nothing.
//
// The package knows nothing of the database or the object store: Store is implemented
// by storage/mongo's and storage/sqlite's CaseStore, Blobs by storage/blob's Store,
// Audit by audit.Log.
package retention

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/audit"
	"github.com/qingfeng-zj/qingfeng/intake"
)

// Candidate is a closed case whose retention period may have passed.
type Candidate struct {
	CaseID   string
	Number   string
	ClosedAt time.Time // the last "close" step
	Version  int64
	// Evidence is how many evidence entries the case has; ObjectKeys are the objects
	// they still name (stored files and kept originals), empty once anonymised.
	Evidence   int
	ObjectKeys []string
}

// Store is what the purge needs of the database.
type Store interface {
	// ClosedBefore lists up to limit cases that are closed, whose last close step is
	// before cutoff, and that are not yet purged nor have unread reporter activity.
	ClosedBefore(ctx context.Context, cutoff time.Time, limit int) ([]Candidate, error)
	// CaseByID reads a case, to check it just before its evidence is deleted.
	CaseByID(ctx context.Context, id string) (*intake.Case, error)
	// Anonymise destroys the case's identity and copies of it, its messages and its
	// identifying text, and marks it purged at at — if the case is still closed, at
	// version and without unread reporter activity; ECONFLICT otherwise. Calling it again after a crash finishes the job.
	Anonymise(ctx context.Context, caseID string, version int64, at time.Time) error
}

// Leases is what the purge and the sweep need of the lease store (storage/*'s
// LeaseStore; see triage.Escalator).
type Leases interface {
	AcquireLease(ctx context.Context, name, holder string, now, until time.Time) (bool, error)
}

// Reclaimer is implemented by a Store that can make the database overwrite the space
// purged data took (storage/mongo on the embedded FerretDB: VACUUM; storage/sqlite: a
// full checkpoint that truncates the write-ahead log). RunOnce calls it after purging
// anything.
type Reclaimer interface {
	ReclaimFreedSpace(ctx context.Context) error
}

// Blobs deletes evidence objects; deleting a missing object succeeds (storage/blob).
type Blobs interface {
	Delete(ctx context.Context, key string) error
}

// Auditor records audit entries (audit.Log).
type Auditor interface {
	Record(ctx context.Context, actor, role, action, caseNumber string, detail map[string]string) error
}

// PurgedDescription replaces a purged case's description.
const PurgedDescription = "（已按保存期限删除）"

// AuditAction is the audit entry of one purged case.
const AuditAction = "case.retention.purge"

// LeaseName is the lease that lets one instance purge at a time.
const LeaseName = "retention"

// ErrLeaseHeld is RunOnce's error when another instance holds the lease.
var ErrLeaseHeld = errors.New("retention: another instance is purging (lease held)")

// Purger purges the cases whose retention period has passed. Several server instances
// can run it: a lease in the database lets one work at a time.
type Purger struct {
	Cases  Store
	Leases Leases
	Blobs  Blobs
	Audit  Auditor
	// Period is how long a case is kept after it is closed; 0 or less: never purge.
	Period time.Duration
	Now    func() time.Time
	Holder string        // this instance; random when empty
	Lease  time.Duration // how long the lease is held between renewals (default 5 min)
	Batch  int           // cases listed at a time (default 100)
	Log    *slog.Logger
}

func (p *Purger) now() time.Time {
	if p.Now != nil {
		return p.Now().UTC()
	}
	return time.Now().UTC()
}

func (p *Purger) batch() int {
	if p.Batch > 0 {
		return p.Batch
	}
	return 100
}

// Due lists every case RunOnce would purge now, without changing anything (a dry run).
func (p *Purger) Due(ctx context.Context) ([]Candidate, error) {
	if p.Period <= 0 {
		return nil, nil
	}
	// One listing, as large as a purge would take in total: ClosedBefore has no cursor.
	return p.Cases.ClosedBefore(ctx, p.now().Add(-p.Period), 1<<20)
}

// RunOnce purges the cases due now and returns how many it purged. It does nothing
// when Period is not set, and returns ErrLeaseHeld when another instance is purging. A
// case that changed meanwhile (reopened, new evidence) is skipped, and listed again
// on the next run if it is still due.
func (p *Purger) RunOnce(ctx context.Context) (int, error) {
	if p.Period <= 0 {
		return 0, nil
	}
	if p.Holder == "" {
		p.Holder = "retention-" + rand.Text()[:10]
	}
	if err := p.renew(ctx); err != nil {
		return 0, err
	}
	n := 0
	defer func() {
		// Release the lease (it expires now), so that the next run may be any
		// instance's, or the command line's.
		now := p.now()
		_, _ = p.Leases.AcquireLease(context.WithoutCancel(ctx), LeaseName, p.Holder, now, now)
	}()
	defer func() {
		if r, ok := p.Cases.(Reclaimer); ok && n > 0 {
			if err := r.ReclaimFreedSpace(ctx); err != nil && p.Log != nil {
				p.Log.ErrorContext(ctx, "retention: reclaim the space of purged data", "err", err)
			}
		}
	}()
	skipped := map[string]bool{} // changed during this run: left for the next
	for {
		cutoff := p.now().Add(-p.Period)
		limit := p.batch() + len(skipped)
		cands, err := p.Cases.ClosedBefore(ctx, cutoff, limit)
		if err != nil {
			return n, err
		}
		progressed := false
		for _, c := range cands {
			if skipped[c.CaseID] {
				continue
			}
			if err := p.renew(ctx); err != nil {
				return n, err
			}
			done, err := p.purge(ctx, c, cutoff)
			if done {
				n++
				progressed = true
			}
			if err != nil {
				return n, fmt.Errorf("purge case %s: %w", c.Number, err)
			}
			if !done {
				skipped[c.CaseID] = true
			}
		}
		if len(cands) < limit || !progressed {
			return n, nil
		}
	}
}

// renew takes or renews the lease.
func (p *Purger) renew(ctx context.Context) error {
	lease := p.Lease
	if lease <= 0 {
		lease = 5 * time.Minute
	}
	now := p.now()
	ok, err := p.Leases.AcquireLease(ctx, LeaseName, p.Holder, now, now.Add(lease))
	if err != nil {
		return fmt.Errorf("retention lease: %w", err)
	}
	if !ok {
		return ErrLeaseHeld
	}
	return nil
}

// purge destroys one case; done is false when the case was skipped because it is no
// longer due (reopened, or changed since it was listed).
func (p *Purger) purge(ctx context.Context, cand Candidate, cutoff time.Time) (done bool, err error) {
	// Read the case again just before its evidence goes: a case reopened since it was
	// listed keeps its evidence. Its version then guards the rest: evidence added, or
	// a step taken, after this read makes Anonymise refuse, and the next run starts over.
	c, err := p.Cases.CaseByID(ctx, cand.CaseID)
	if qingfeng.ErrorCode(err) == qingfeng.ENOTFOUND {
		p.info(ctx, "retention: case vanished before purge", "case", cand.Number)
		return false, nil
	}
	if err != nil {
		return false, err
	}
	closedAt, ok := LastClosed(c)
	if c.Status != intake.StatusClosed || !ok || !closedAt.Before(cutoff) {
		p.info(ctx, "retention: case no longer due, skipped", "case", cand.Number, "status", string(c.Status))
		return false, nil
	}
	if c.NewActivity {
		// What the reporter sent after the case closed is destroyed by nobody unread.
		p.info(ctx, "retention: unread reporter activity, skipped until the unit reads it", "case", cand.Number)
		return false, nil
	}
	for _, key := range ObjectKeys(c.Evidence) {
		if err := p.Blobs.Delete(ctx, key); err != nil && qingfeng.ErrorCode(err) != qingfeng.ENOTFOUND {
			// Nothing is anonymised yet: the next run finds the keys and tries again.
			return false, fmt.Errorf("delete evidence object: %w", err)
		}
	}
	err = p.Cases.Anonymise(ctx, c.ID, c.Version, p.now())
	if qingfeng.ErrorCode(err) == qingfeng.ECONFLICT {
		p.info(ctx, "retention: case changed during purge, retried next run", "case", cand.Number)
		return false, nil
	}
	if err != nil {
		return false, err
	}
	detail := map[string]string{
		"evidence":  strconv.Itoa(len(c.Evidence)),
		"closed_at": qingfeng.WireTime(closedAt),
		"period":    p.Period.String(),
	}
	if err := p.Audit.Record(ctx, audit.ActorSystem, "", AuditAction, c.Number, detail); err != nil {
		// The case is purged and will not be listed again: the log line is then the only
		// record, so it carries what the entry would have.
		if p.Log != nil {
			p.Log.ErrorContext(ctx, "retention: case purged but its audit entry failed", "case", c.Number,
				"evidence", len(c.Evidence), "closed_at", detail["closed_at"], "err", err)
		}
		return true, fmt.Errorf("audit: %w", err)
	}
	p.info(ctx, "case purged after its retention period", "event", AuditAction, "case", c.Number, "evidence", len(c.Evidence))
	return true, nil
}

func (p *Purger) info(ctx context.Context, msg string, args ...any) {
	if p.Log != nil {
		p.Log.InfoContext(ctx, msg, args...)
	}
}

// LastClosed is the time of the case's last "close" step; ok is false when it has none.
func LastClosed(c *intake.Case) (at time.Time, ok bool) {
	for _, t := range c.Transitions {
		if t.Action == "close" && t.To == intake.StatusClosed && (!ok || t.At.After(at)) {
			at, ok = t.At, true
		}
	}
	return at, ok
}

// ObjectKeys lists the objects evidence entries name: the stored file and the kept
// original, when there is one.
func ObjectKeys(evs []intake.Evidence) []string {
	var keys []string
	for _, ev := range evs {
		for _, k := range []string{ev.ObjectKey, ev.OriginalKey} {
			if k != "" {
				keys = append(keys, k)
			}
		}
	}
	return keys
}

// maxYears bounds a period in years: a time.Duration reaches about 292.
const maxYears = 200

// minPeriod is the shortest period accepted from configuration: "6m" is six minutes
// in Go's syntax, not six months, and would destroy every case closed since.
const minPeriod = 24 * time.Hour

// ParsePeriod reads a retention period: "0" (or "") for never, "Ny" for N years,
// "Nd" for N days, or a Go duration ("43800h"). A year counts 365 days plus a day for
// every four years or part of four (5y = 1827 days), so that a period of N years is
// never shorter than N calendar years, whatever leap days they hold. Periods shorter
// than a day are refused: they are almost certainly a unit mistake.
func ParsePeriod(s string) (time.Duration, error) {
	v := strings.TrimSpace(s)
	if v == "" || v == "0" {
		return 0, nil
	}
	var d time.Duration
	if unit := v[len(v)-1]; unit == 'y' || unit == 'd' {
		n, err := strconv.Atoi(v[:len(v)-1])
		if err != nil || n < 0 {
			return 0, fmt.Errorf("want a number of years or days like 5y or 1827d, got %q", s)
		}
		days := n
		if unit == 'y' {
			if n > maxYears {
				return 0, fmt.Errorf("%q: at most %dy", s, maxYears)
			}
			days = 365*n + (n+3)/4
		} else if n > 365*maxYears {
			return 0, fmt.Errorf("%q: at most %dd", s, 365*maxYears)
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		d, err = time.ParseDuration(v)
		if err != nil || d < 0 {
			return 0, fmt.Errorf("want 0 (never), years (5y), days (1827d) or hours (43800h), got %q", s)
		}
	}
	if d == 0 {
		return 0, nil
	}
	if d < minPeriod {
		return 0, fmt.Errorf("%q is %s: shorter than a day, which is surely not meant (months are not a unit: write 180d)", s, d)
	}
	return d, nil
}
