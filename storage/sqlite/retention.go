package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/custody"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/retention"
)

var (
	_ retention.Store     = (*CaseStore)(nil)
	_ retention.Reclaimer = (*CaseStore)(nil)
)

var errNotClosed = qingfeng.Errorf(qingfeng.ECONFLICT, "案件未结案或已被修改，不能删除", "the case is not closed, or changed meanwhile")

// ClosedBefore implements retention.Store: closed cases, not yet purged and without
// reporter activity their unit has not read, whose last close step (closed_at, see
// derived) is before cutoff, oldest closed first. The partial index cases_retention
// holds exactly those cases; only the candidates' docs are decoded, for their
// evidence keys.
func (s *CaseStore) ClosedBefore(ctx context.Context, cutoff time.Time, limit int) ([]retention.Candidate, error) {
	const op = "list cases due for purging"
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.db.r.QueryContext(ctx, `SELECT id, number, version, closed_at, doc FROM cases INDEXED BY cases_retention
		WHERE status = 'closed' AND purged_at IS NULL AND new_activity = 0 AND closed_at < ? ORDER BY closed_at, id LIMIT ?`,
		ms(cutoff).UnixMilli(), limit)
	if err != nil {
		return nil, storeError(op, err, nil, nil)
	}
	defer rows.Close()
	var out []retention.Candidate
	for rows.Next() {
		var c retention.Candidate
		var closed int64
		var doc string
		if err := rows.Scan(&c.CaseID, &c.Number, &c.Version, &closed, &doc); err != nil {
			return nil, storeError(op, err, nil, nil)
		}
		var d struct {
			Evidence []evidenceRow `json:"evidence"`
		}
		if err := json.Unmarshal([]byte(doc), &d); err != nil {
			return nil, fmt.Errorf("%s: decode case %s: %w", op, c.CaseID, err)
		}
		evs := make([]intake.Evidence, 0, len(d.Evidence))
		for _, e := range d.Evidence {
			evs = append(evs, intake.Evidence(e))
		}
		c.ClosedAt, c.Evidence, c.ObjectKeys = time.UnixMilli(closed).UTC(), len(evs), retention.ObjectKeys(evs)
		out = append(out, c)
	}
	return out, storeError(op, rows.Err(), nil, nil)
}

// Anonymise implements retention.Store, in one transaction: if the case is still
// closed, at version and without unread reporter activity, its sealed identity is
// removed and with it the description, the names in the subject (an organization's
// credit code stays: it names an organization, not a reporter), the address and
// coordinates (the division stays), the evidence entries' object keys (hashes, sizes
// and types stay), the pending transfer and the free text of the workflow (the reasons
// of each step, the why of each routing decision); its messages and idempotency
// records (a sealed receipt) are deleted, its open disclosure requests expired and
// every disclosed (re-sealed) copy removed; and the case is marked purged. Being one
// transaction, a crash leaves either all of it or none, and a purged case is left as
// it is (nil). secure_delete zeroes what the rows held in the database file;
// ReclaimFreedSpace then clears the write-ahead log.
//
// The caller deletes the evidence objects first: afterwards the keys are gone.
func (s *CaseStore) Anonymise(ctx context.Context, caseID string, version int64, at time.Time) error {
	op := "purge case " + caseID
	at = ms(at)
	_, err := s.update(ctx, op, caseID, func(tx *sql.Tx, st *stored) (bool, error) {
		c := st.c
		if c.PurgedAt != nil {
			return false, nil // done already
		}
		if c.Status != intake.StatusClosed || c.Version != version || c.NewActivity {
			return false, domainError(errNotClosed, fmt.Sprintf("%s: status %s at version %d (unread reporter activity: %v), want closed at %d",
				op, c.Status, c.Version, c.NewActivity, version))
		}
		c.Identity, c.Transfer = nil, nil
		c.Description = retention.PurgedDescription
		c.Subject = anonymousSubject(c.Subject)
		c.Location = intake.Location{Division: c.Location.Division}
		for i := range c.Evidence {
			c.Evidence[i].ObjectKey, c.Evidence[i].OriginalKey = "", ""
		}
		for i := range c.Transitions {
			c.Transitions[i].Reason = ""
		}
		c.Decision.Why = ""
		for i := range c.EarlierDecisions {
			c.EarlierDecisions[i].Why = ""
		}
		c.PurgedAt = &at
		c.UpdatedAt = at
		c.Version++
		for _, q := range []string{"DELETE FROM messages WHERE case_id = ?", "DELETE FROM idempotency WHERE case_id = ?"} {
			if _, err := tx.ExecContext(ctx, q, caseID); err != nil {
				return false, err
			}
		}
		return true, dropDisclosedCopies(ctx, tx, caseID)
	})
	return err
}

// dropDisclosedCopies expires the case's open disclosure requests, so that none can be
// completed (re-sealed) afterwards, and removes the re-sealed identity from every one.
// A custodian's concurrent completion is a write of its own: it lands before this
// transaction, and its copy is removed here, or after it, and finds the request expired.
func dropDisclosedCopies(ctx context.Context, tx *sql.Tx, caseID string) error {
	if _, err := tx.ExecContext(ctx, "UPDATE disclosures SET status = ? WHERE case_id = ? AND status IN (?, ?)",
		custody.Expired, caseID, custody.Pending, custody.Approved); err != nil {
		return fmt.Errorf("expire disclosures: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE disclosures SET resealed = NULL WHERE case_id = ? AND resealed IS NOT NULL", caseID); err != nil {
		return fmt.Errorf("remove disclosed copies: %w", err)
	}
	return nil
}

// anonymousSubject keeps what a subject is (its kind) and an organization's credit
// code; names, positions and employers go.
func anonymousSubject(s intake.Subject) intake.Subject {
	out := intake.Subject{Kind: s.Kind}
	if s.Organization != nil {
		out.Organization = &intake.OrgSubject{CreditCode: s.Organization.CreditCode}
	}
	if s.Person != nil {
		out.Person = &intake.PersonSubject{}
	}
	return out
}

// ReclaimFreedSpace implements retention.Reclaimer: after a purge, no plaintext or
// ciphertext of the purged case may remain in any file of the database.
//
//   - The database file: secure_delete=ON (every connection) makes SQLite overwrite with
//     zeros the cells a delete or a shrinking update frees and the pages it puts on the
//     freelist, overflow pages of the old doc included. No VACUUM is needed for that,
//     and none is run: it would rewrite the whole file under the write lock.
//   - The write-ahead log: it keeps the frames written since the last checkpoint — the
//     case as stored before the purge among them — until a checkpoint copies the log
//     into the file and restarts it. wal_checkpoint(TRUNCATE) does both and truncates the
//     log to zero bytes; it waits (busy timeout) for readers on older snapshots, and
//     stops short while one remains. That is retried here until the log is empty, and
//     an error if it never is: the purged values are then still in the log.
//
// What a file system or an SSD keeps of truncated or overwritten blocks is below what
// SQLite controls; the identity is sealed (age), so the key holders' keys are what a
// copy of those blocks would still need.
func (s *CaseStore) ReclaimFreedSpace(ctx context.Context) error {
	return s.db.checkpointFully(ctx)
}

// checkpointFully runs wal_checkpoint(TRUNCATE) until it completes (no reader kept it
// short), a few times.
func (db *DB) checkpointFully(ctx context.Context) error {
	const attempts = 5
	for i := range attempts {
		var busy, logFrames, checkpointed int
		if err := db.w.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &checkpointed); err != nil {
			return fmt.Errorf("reclaim freed space: checkpoint: %w", err)
		}
		if busy == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("reclaim freed space: %w", ctx.Err())
		case <-time.After(time.Duration(i+1) * 100 * time.Millisecond):
		}
	}
	return fmt.Errorf("reclaim freed space: a reader kept the write-ahead log from being truncated %d times; purged data is still in it until the next checkpoint", attempts)
}
