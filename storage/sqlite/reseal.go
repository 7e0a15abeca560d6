package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/custody"
	"github.com/qingfeng-zj/qingfeng/intake"
)

var _ custody.ResealStore = (*RecipientStore)(nil)

var (
	errTaskNotFound    = qingfeng.Errorf(qingfeng.ENOTFOUND, "任务不存在", "no such task")
	errTaskExists      = qingfeng.Errorf(qingfeng.ECONFLICT, "任务已存在", "the task already exists")
	errTaskChanged     = qingfeng.Errorf(qingfeng.ECONFLICT, "任务状态已变化，请刷新后再处理", "the task changed meanwhile")
	errIdentityChanged = qingfeng.Errorf(qingfeng.ECONFLICT, "身份密文已变化，请重新下载后再处理", "the identity changed meanwhile; download it again")
)

const taskColumns = "id, case_id, case_number, division, target, reason, reseal_to, status, created_at, done_by, done_at"

// pendingTask is the condition of the reseal_tasks partial indexes, spelt as there.
const pendingTask = "status = '" + custody.TaskPending + "'"

func scanTask(s interface{ Scan(...any) error }) (custody.ResealTask, error) {
	var t custody.ResealTask
	var to string
	var created int64
	var done sql.NullInt64
	if err := s.Scan(&t.ID, &t.CaseID, &t.Case, &t.Division, &t.Target, &t.Reason, &to, &t.Status, &created, &t.DoneBy, &done); err != nil {
		return t, err
	}
	if err := json.Unmarshal([]byte(to), &t.ResealTo); err != nil {
		return t, fmt.Errorf("decode reseal task %s: %w", t.ID, err)
	}
	t.CreatedAt, t.DoneAt = time.UnixMilli(created).UTC(), optionalTime(done)
	return t, nil
}

// InsertTask implements custody.ResealStore.
func (s *RecipientStore) InsertTask(ctx context.Context, t custody.ResealTask) error {
	to, err := json.Marshal(t.ResealTo)
	if err != nil {
		return fmt.Errorf("store reseal task %s: %w", t.ID, err)
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO reseal_tasks ("+taskColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			t.ID, t.CaseID, t.Case, t.Division, t.Target, t.Reason, string(to), t.Status, t.CreatedAt.UnixMilli(), t.DoneBy, optionalMillis(t.DoneAt))
		return err
	})
	return storeError("store reseal task", err, nil, errTaskExists)
}

// Task implements custody.ResealStore.
func (s *RecipientStore) Task(ctx context.Context, id string) (custody.ResealTask, error) {
	t, err := scanTask(s.db.r.QueryRowContext(ctx, "SELECT "+taskColumns+" FROM reseal_tasks WHERE id = ?", id))
	return t, storeError("load reseal task", err, errTaskNotFound, nil)
}

// PendingTasks implements custody.ResealStore: oldest first.
func (s *RecipientStore) PendingTasks(ctx context.Context) ([]custody.ResealTask, error) {
	return s.listTasks(ctx, "list reseal tasks", "WHERE "+pendingTask)
}

// PendingCaseTasks implements custody.ResealStore: oldest first.
func (s *RecipientStore) PendingCaseTasks(ctx context.Context, caseID string) ([]custody.ResealTask, error) {
	return s.listTasks(ctx, "list reseal tasks of a case", "WHERE case_id = ? AND "+pendingTask, caseID)
}

func (s *RecipientStore) listTasks(ctx context.Context, op, where string, args ...any) ([]custody.ResealTask, error) {
	rows, err := s.db.r.QueryContext(ctx, "SELECT "+taskColumns+" FROM reseal_tasks "+where+" ORDER BY created_at, id", args...)
	if err != nil {
		return nil, storeError(op, err, nil, nil)
	}
	defer rows.Close()
	var out []custody.ResealTask
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return nil, storeError(op, err, nil, nil)
		}
		out = append(out, t)
	}
	return out, storeError(op, rows.Err(), nil, nil)
}

// SetTaskStatus implements custody.ResealStore with one UPDATE conditional on the
// status, so that of a claim, a supersession and a second claim racing, exactly one
// wins. Done records by and at; leaving done clears them.
func (s *RecipientStore) SetTaskStatus(ctx context.Context, id, from, to, by string, at time.Time) error {
	q, args := "UPDATE reseal_tasks SET status = ? WHERE id = ? AND status = ?", []any{to, id, from}
	switch {
	case to == custody.TaskDone:
		q, args = "UPDATE reseal_tasks SET status = ?, done_by = ?, done_at = ? WHERE id = ? AND status = ?", []any{to, by, at.UnixMilli(), id, from}
	case from == custody.TaskDone:
		q = "UPDATE reseal_tasks SET status = ?, done_by = '', done_at = NULL WHERE id = ? AND status = ?"
	}
	n, err := s.exec(ctx, q, args...)
	if err != nil {
		return storeError("update reseal task "+id, err, nil, nil)
	}
	if n == 0 {
		return domainError(errTaskChanged, fmt.Sprintf("reseal task %s is no longer %s", id, from))
	}
	return nil
}

// ReplaceIdentity implements custody.ResealStore: one UPDATE, only if the case's
// identity is still the ciphertext the custodian re-sealed. The case's version is
// left alone, as storage/mongo's does: a re-seal must not fail staff's concurrent
// workflow step.
func (s *RecipientStore) ReplaceIdentity(ctx context.Context, caseID string, old []byte, id intake.SealedIdentity) error {
	id.SealedOnDevice = false // re-sealed by a custodian, not on the reporter's device
	cols, err := identityArgs(&id)
	if err != nil {
		return fmt.Errorf("reseal identity of case %s: %w", caseID, err)
	}
	n, err := s.exec(ctx, `UPDATE cases SET identity = ?, identity_recipients = ?, identity_sealed_on_device = ?, identity_sealed_at = ?,
		updated_at = ? WHERE id = ? AND identity = ?`, append(cols, millis(id.SealedAt), caseID, old)...)
	if err != nil {
		return storeError("reseal identity of case "+caseID, err, nil, nil)
	}
	if n == 0 {
		return domainError(errIdentityChanged, "reseal case "+caseID+": identity changed")
	}
	return nil
}

// exec runs one statement in a write transaction and returns the rows it changed.
func (s *RecipientStore) exec(ctx context.Context, q string, args ...any) (int64, error) {
	var n int64
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// openWithIdentity is the condition of the cases_open_identity partial index, spelt
// as there.
const openWithIdentity = "identity IS NOT NULL AND status <> '" + string(intake.StatusClosed) + "'"

// OpenCasesWithIdentity lists the cases that are not closed and carry a sealed
// identity, in divisions starting with prefix ("": every division), by division.
func (s *CaseStore) OpenCasesWithIdentity(ctx context.Context, prefix string) ([]*intake.Case, error) {
	where, args := openWithIdentity, []any{}
	if prefix != "" {
		upper, ok := prefixUpperBound(prefix)
		if !ok {
			return nil, errBadDivision
		}
		where += " AND division >= ? AND division < ?"
		args = append(args, prefix, upper)
	}
	rows, err := s.db.r.QueryContext(ctx, "SELECT "+caseColumns+" FROM cases INDEXED BY cases_open_identity WHERE "+where+" ORDER BY division, id", args...)
	if err != nil {
		return nil, storeError("list open cases with identities", err, nil, nil)
	}
	defer rows.Close()
	var out []*intake.Case
	for rows.Next() {
		st, err := scanCase(rows)
		if err != nil {
			return nil, storeError("list open cases with identities", err, nil, nil)
		}
		out = append(out, st.c)
	}
	return out, storeError("list open cases with identities", rows.Err(), nil, nil)
}
