package custody

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
	qfcrypto "github.com/qingfeng-zj/qingfeng/crypto"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/routing"
)

// Re-seal task statuses.
const (
	TaskPending    = "pending"
	TaskDone       = "done"
	TaskSuperseded = "superseded" // the recipient set changed before it was done: a newer task replaces it
)

// ResealTask asks a custodian who can open a case's sealed identity to re-seal it to
// a new set of recipients: after a transfer to a unit in another jurisdiction (so its
// custodians can open it too), or after custodians were added, revoked or retired the
// demo key. A case has at most one pending task, for the current recipient set; a task
// whose set is no longer current is superseded and its upload refused, so that doing
// an older task after a newer one can never drop a custodian.
type ResealTask struct {
	ID        string     `json:"id"`
	CaseID    string     `json:"-"`
	Case      string     `json:"case"`
	Division  string     `json:"division"` // the case's: its custodians can open it now
	Target    string     `json:"target"`   // the division whose custodians must be able to
	Reason    string     `json:"reason"`   // transfer, custodians_changed
	ResealTo  []string   `json:"reseal_to"`
	Status    string     `json:"status"` // pending, done, superseded
	CreatedAt time.Time  `json:"created_at"`
	DoneBy    string     `json:"done_by,omitempty"`
	DoneAt    *time.Time `json:"done_at,omitempty"`
}

// ResealStore keeps tasks and replaces identities (storage/mongo, storage/sqlite).
type ResealStore interface {
	InsertTask(ctx context.Context, t ResealTask) error
	Task(ctx context.Context, id string) (ResealTask, error)
	PendingTasks(ctx context.Context) ([]ResealTask, error)
	// PendingCaseTasks lists the pending tasks of one case.
	PendingCaseTasks(ctx context.Context, caseID string) ([]ResealTask, error)
	// SetTaskStatus moves task id from status from to status to (recording by and at
	// for done); ECONFLICT if it is no longer in from.
	SetTaskStatus(ctx context.Context, id, from, to, by string, at time.Time) error
	// ReplaceIdentity replaces the case's identity if it is still oldCiphertext;
	// ECONFLICT otherwise.
	ReplaceIdentity(ctx context.Context, caseID string, oldCiphertext []byte, identity intake.SealedIdentity) error
}

// Reseals creates and runs re-seal tasks.
type Reseals struct {
	Store ResealStore
	Keys  *Keys
	// Case loads a case by id; OpenCases lists the cases with an identity that are not
	// closed, in divisions starting with prefix.
	Case      func(ctx context.Context, id string) (*intake.Case, error)
	OpenCases func(ctx context.Context, prefix string) ([]*intake.Case, error)
	// UnitDivision names a unit's division, when known: the owning unit's custodians
	// must be able to open a case transferred to another jurisdiction.
	UnitDivision func(unitID string) string
	Now          func() time.Time
	NewID        func() string

	// mu serialises reconciliation in this process, so that concurrent triggers (a
	// custodian change, retried stale uploads) never leave a case two pending tasks.
	mu sync.Mutex
}

func (s *Reseals) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// recipients is the union of the divisions' custodians, in a stable order. Only the
// first division (the case's own) may contribute the demo key: it is never added to
// an identity for the sake of another jurisdiction.
func (s *Reseals) recipients(divisions ...string) ([]string, error) {
	var out []string
	for i, d := range divisions {
		if d == "" {
			continue
		}
		rs, err := s.Keys.Sealer.RecipientsFor(d)
		if err != nil {
			if i > 0 && qingfeng.ErrorCode(err) == qingfeng.EUNAVAILABLE {
				continue // no custodians there (yet): the case's own still open it
			}
			return nil, err
		}
		demo := s.Keys.Sealer.p.Load().Demo()
		for _, r := range rs {
			if i > 0 && r == demo {
				continue
			}
			if !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// Want is the recipient set case c's identity must be sealed to now: the current
// custodians of its division and of its owning unit's division (plus extra, the
// division of a unit it is being handed to).
func (s *Reseals) Want(c *intake.Case, extra ...string) ([]string, error) {
	divs := []string{c.Location.Division}
	if s.UnitDivision != nil {
		divs = append(divs, s.UnitDivision(c.UnitID))
	}
	return s.recipients(append(divs, extra...)...)
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// reconcile makes sure case c has exactly one pending task when its identity is not
// sealed to want, and none otherwise: pending tasks for another set are superseded.
func (s *Reseals) reconcile(ctx context.Context, c *intake.Case, target, reason string, want []string) (created bool, err error) {
	if c.Identity == nil {
		return false, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pending, err := s.Store.PendingCaseTasks(ctx, c.ID)
	if err != nil {
		return false, err
	}
	// An identity sealed on the device records no recipients and always needs a task.
	needed := len(c.Identity.Recipients) == 0 || !sameSet(c.Identity.Recipients, want)
	keep := false
	for _, t := range pending {
		if needed && !keep && sameSet(t.ResealTo, want) {
			keep = true // already asked for: repeated changes add no duplicate
			continue
		}
		if err := s.Store.SetTaskStatus(ctx, t.ID, TaskPending, TaskSuperseded, "", s.now()); err != nil && qingfeng.ErrorCode(err) != qingfeng.ECONFLICT {
			return false, err
		}
	}
	if !needed || keep {
		return false, nil
	}
	task := ResealTask{ID: s.NewID(), CaseID: c.ID, Case: c.Number, Division: c.Location.Division,
		Target: target, Reason: reason, ResealTo: want, Status: TaskPending, CreatedAt: s.now()}
	if err := s.Store.InsertTask(ctx, task); err != nil {
		return false, err
	}
	// s.mu holds only this process: another one (a second instance, sweeping at the
	// same start-up) may have read no task either and inserted its own. Each reads again
	// after its insert and keeps the oldest task for the set — the first the store lists,
	// the same one for every reader — superseding the others, so one task remains.
	after, err := s.Store.PendingCaseTasks(ctx, c.ID)
	if err != nil {
		return true, err
	}
	first := ""
	for _, t := range after {
		switch {
		case !sameSet(t.ResealTo, want):
		case first == "":
			first = t.ID
		default:
			if err := s.Store.SetTaskStatus(ctx, t.ID, TaskPending, TaskSuperseded, "", s.now()); err != nil && qingfeng.ErrorCode(err) != qingfeng.ECONFLICT {
				return true, err
			}
		}
	}
	return first == task.ID, nil
}

// AfterTransfer creates a task when a case moves to a unit in another division: the
// receiving jurisdiction's custodians must be able to open the identity too. c is
// the case as it was before the hand-over.
func (s *Reseals) AfterTransfer(ctx context.Context, c *intake.Case, toDivision string) error {
	if toDivision == "" || c.Identity == nil {
		return nil
	}
	want, err := s.recipients(c.Location.Division, toDivision)
	if err != nil {
		return err
	}
	_, err = s.reconcile(ctx, c, toDivision, "transfer", want)
	return err
}

// AfterCustodiansChanged creates tasks for the open cases of jurisdiction — those
// reported there and those owned by a unit there — whose identity is not sealed to
// their current recipients, and supersedes the tasks for sets no longer current.
func (s *Reseals) AfterCustodiansChanged(ctx context.Context, jurisdiction string) (int, error) {
	p := routing.DivisionPrefix(jurisdiction)
	scan := p
	if s.UnitDivision != nil {
		scan = "" // a case transferred here is reported elsewhere
	}
	cases, err := s.OpenCases(ctx, scan)
	if err != nil {
		return 0, err
	}
	pending, err := s.Store.PendingTasks(ctx)
	if err != nil {
		return 0, err
	}
	hasTask := map[string]bool{}
	for _, t := range pending {
		hasTask[t.CaseID] = true
	}
	n := 0
	for _, c := range cases {
		if !strings.HasPrefix(c.Location.Division, p) && (s.UnitDivision == nil || !strings.HasPrefix(s.UnitDivision(c.UnitID), p)) {
			continue
		}
		want, err := s.Want(c)
		if qingfeng.ErrorCode(err) == qingfeng.EUNAVAILABLE {
			continue // nobody to re-seal to there
		}
		if err != nil {
			return n, err
		}
		if c.Identity == nil || !hasTask[c.ID] && len(c.Identity.Recipients) > 0 && sameSet(c.Identity.Recipients, want) {
			continue
		}
		created, err := s.reconcile(ctx, c, c.Location.Division, "custodians_changed", want)
		if err != nil {
			return n, err
		}
		if created {
			n++
		}
	}
	return n, nil
}

func (s *Reseals) forCustodian(ctx context.Context, id string, u *accounts.User) (ResealTask, error) {
	t, err := s.Store.Task(ctx, id)
	if err != nil {
		return ResealTask{}, err
	}
	if u.Role != accounts.RoleCustodian || u.Division == "" || !strings.HasPrefix(t.Division, routing.DivisionPrefix(u.Division)) {
		return ResealTask{}, qingfeng.Errorf(qingfeng.ENOTFOUND, "任务不存在", "no such task")
	}
	switch t.Status {
	case TaskPending:
		return t, nil
	case TaskSuperseded:
		return ResealTask{}, errSuperseded(t)
	default:
		return ResealTask{}, qingfeng.Errorf(qingfeng.ECONFLICT, "任务已完成", "the task is done")
	}
}

func errSuperseded(t ResealTask) error {
	e := qingfeng.Errorf(qingfeng.ECONFLICT, "该任务已过期：保密员名单已变更，已由新任务取代；请查看任务列表（qfctl reseal list）后处理新任务",
		"the task is stale: the custodians changed and a newer task replaces it")
	e.Err = fmt.Errorf("reseal task %s of %s superseded", t.ID, t.Case)
	return e
}

// current loads task t's case and checks that t still asks for the current recipient
// set; a stale task is superseded (and a current one created) and refused.
func (s *Reseals) current(ctx context.Context, t ResealTask) (*intake.Case, error) {
	c, err := s.Case(ctx, t.CaseID)
	if err != nil {
		return nil, err
	}
	if c.Identity == nil {
		return nil, qingfeng.Errorf(qingfeng.ECONFLICT, "该案件的身份信息已销毁", "the identity has been destroyed")
	}
	// The recipients as stored now, not as this process last saw them: another
	// instance may have registered or revoked a custodian.
	if err := s.Keys.Reload(ctx); err != nil {
		return nil, err
	}
	want, err := s.Want(c)
	if err != nil {
		return nil, err
	}
	if t.Reason == "transfer" {
		// A pending transfer task carries the receiving unit's division until done.
		if want, err = s.Want(c, t.Target); err != nil {
			return nil, err
		}
	}
	if sameSet(t.ResealTo, want) {
		return c, nil
	}
	// Whoever supersedes the task makes sure a current one exists.
	err = s.Store.SetTaskStatus(ctx, t.ID, TaskPending, TaskSuperseded, "", s.now())
	switch {
	case err == nil:
		if _, err := s.reconcile(ctx, c, c.Location.Division, "custodians_changed", want); err != nil {
			return nil, err
		}
	case qingfeng.ErrorCode(err) != qingfeng.ECONFLICT:
		return nil, err
	}
	return nil, errSuperseded(t)
}

// ForCustodian lists the pending tasks custodian u can do.
func (s *Reseals) ForCustodian(ctx context.Context, u *accounts.User) ([]ResealTask, error) {
	all, err := s.Store.PendingTasks(ctx)
	if err != nil {
		return nil, err
	}
	var out []ResealTask
	for _, t := range all {
		if strings.HasPrefix(t.Division, routing.DivisionPrefix(u.Division)) {
			out = append(out, t)
		}
	}
	return out, nil
}

// SealedIdentity hands custodian u the identity to re-seal for task id.
func (s *Reseals) SealedIdentity(ctx context.Context, id string, u *accounts.User) (ResealTask, []byte, error) {
	t, err := s.forCustodian(ctx, id, u)
	if err != nil {
		return ResealTask{}, nil, err
	}
	c, err := s.current(ctx, t)
	if err != nil {
		return ResealTask{}, nil, err
	}
	return t, c.Identity.Ciphertext, nil
}

// Complete stores the identity custodian u re-sealed for task id: a well-formed age
// file with one post-quantum stanza per recipient of the task, for a task whose
// recipient set is still the case's current one.
func (s *Reseals) Complete(ctx context.Context, id string, u *accounts.User, resealed []byte) (ResealTask, error) {
	t, err := s.forCustodian(ctx, id, u)
	if err != nil {
		return ResealTask{}, err
	}
	info, err := qfcrypto.InspectSealed(resealed)
	if err != nil {
		return ResealTask{}, err
	}
	if !info.PostQuantum || len(info.StanzaTypes) != len(t.ResealTo) {
		return ResealTask{}, qingfeng.Invalid(map[string]qingfeng.FieldError{"ciphertext": {Code: "wrong_recipients",
			Message: "应加密给任务列出的全部抗量子公钥（每个公钥一个接收方）", English: "seal to every post-quantum recipient the task lists, one stanza each"}})
	}
	c, err := s.current(ctx, t)
	if err != nil {
		return ResealTask{}, err
	}
	// Claim the task first: a task superseded meanwhile (custodians changed) or done
	// by someone else cannot be claimed, and then the identity is left alone.
	now := s.now()
	if err := s.Store.SetTaskStatus(ctx, t.ID, TaskPending, TaskDone, u.ID, now); err != nil {
		if got, lerr := s.Store.Task(ctx, t.ID); lerr == nil && got.Status == TaskSuperseded {
			return ResealTask{}, errSuperseded(t)
		}
		return ResealTask{}, err
	}
	next := intake.SealedIdentity{Ciphertext: resealed, Recipients: t.ResealTo, SealedAt: now}
	if err := s.Store.ReplaceIdentity(ctx, t.CaseID, c.Identity.Ciphertext, next); err != nil {
		// The identity changed after it was downloaded: give the task back.
		if rerr := s.Store.SetTaskStatus(ctx, t.ID, TaskDone, TaskPending, "", now); rerr != nil {
			return ResealTask{}, errors.Join(err, rerr)
		}
		return ResealTask{}, err
	}
	return s.Store.Task(ctx, id)
}
