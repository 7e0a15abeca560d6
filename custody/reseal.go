package custody

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
	qfcrypto "github.com/qingfeng-zj/qingfeng/crypto"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/routing"
)

// ResealTask asks a custodian who can open a case's sealed identity to re-seal it to
// a new set of recipients: after a transfer to a unit in another jurisdiction (so its
// custodians can open it too), or after custodians were added or removed.
type ResealTask struct {
	ID        string     `bson:"_id" json:"id"`
	CaseID    string     `bson:"case_id" json:"-"`
	Case      string     `bson:"case" json:"case"`
	Division  string     `bson:"division" json:"division"` // the case's: its custodians can open it now
	Target    string     `bson:"target" json:"target"`     // the division whose custodians must be able to
	Reason    string     `bson:"reason" json:"reason"`     // transfer, custodians_changed
	ResealTo  []string   `bson:"reseal_to" json:"reseal_to"`
	Status    string     `bson:"status" json:"status"` // pending, done
	CreatedAt time.Time  `bson:"created_at" json:"created_at"`
	DoneBy    string     `bson:"done_by,omitempty" json:"done_by,omitempty"`
	DoneAt    *time.Time `bson:"done_at,omitempty" json:"done_at,omitempty"`
}

// ResealStore keeps tasks and replaces identities (storage/mongo).
type ResealStore interface {
	InsertTask(ctx context.Context, t ResealTask) error
	Task(ctx context.Context, id string) (ResealTask, error)
	PendingTasks(ctx context.Context) ([]ResealTask, error)
	// CompleteTask replaces the case's identity if it is still oldCiphertext and marks
	// the task done; ECONFLICT if either changed meanwhile.
	CompleteTask(ctx context.Context, t ResealTask, oldCiphertext []byte, identity intake.SealedIdentity, by string, at time.Time) error
}

// Reseals creates and runs re-seal tasks.
type Reseals struct {
	Store ResealStore
	Keys  *Keys
	// Case loads a case by id; OpenCases lists the cases with an identity that are not
	// closed, in divisions starting with prefix.
	Case      func(ctx context.Context, id string) (*intake.Case, error)
	OpenCases func(ctx context.Context, prefix string) ([]*intake.Case, error)
	Now       func() time.Time
	NewID     func() string
}

func (s *Reseals) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// target is the recipient set for a case at division that must also be opened from
// target: the union of both jurisdictions' custodians, in a stable order.
func (s *Reseals) recipients(divisions ...string) ([]string, error) {
	var out []string
	for _, d := range divisions {
		rs, err := s.Keys.Sealer.RecipientsFor(d)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			if !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

func containsAll(have, want []string) bool {
	for _, x := range want {
		if !slices.Contains(have, x) {
			return false
		}
	}
	return true
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

// create adds a task unless the identity is already sealed to exactly want.
func (s *Reseals) create(ctx context.Context, c *intake.Case, target, reason string, want []string) error {
	// Already sealed to all of them: nothing to do. (An identity sealed on the device
	// records no recipients and always gets a task.)
	if c.Identity == nil || containsAll(c.Identity.Recipients, want) {
		return nil
	}
	return s.Store.InsertTask(ctx, ResealTask{ID: s.NewID(), CaseID: c.ID, Case: c.Number, Division: c.Location.Division,
		Target: target, Reason: reason, ResealTo: want, Status: "pending", CreatedAt: s.now()})
}

// AfterTransfer creates a task when a case moves to a unit in another division: the
// receiving jurisdiction's custodians must be able to open the identity too.
func (s *Reseals) AfterTransfer(ctx context.Context, c *intake.Case, toDivision string) error {
	if toDivision == "" || c.Identity == nil {
		return nil
	}
	want, err := s.recipients(c.Location.Division, toDivision)
	if err != nil {
		return err
	}
	return s.create(ctx, c, toDivision, "transfer", want)
}

// AfterCustodiansChanged creates tasks for the open cases of jurisdiction whose
// identity is not sealed to its current custodians.
func (s *Reseals) AfterCustodiansChanged(ctx context.Context, jurisdiction string) (int, error) {
	cases, err := s.OpenCases(ctx, routing.DivisionPrefix(jurisdiction))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range cases {
		want, err := s.recipients(c.Location.Division)
		if err != nil {
			return n, err
		}
		if c.Identity != nil && !sameSet(c.Identity.Recipients, want) {
			if err := s.create(ctx, c, c.Location.Division, "custodians_changed", want); err != nil {
				return n, err
			}
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
	if t.Status != "pending" {
		return ResealTask{}, qingfeng.Errorf(qingfeng.ECONFLICT, "任务已完成", "the task is done")
	}
	return t, nil
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
	c, err := s.Case(ctx, t.CaseID)
	if err != nil {
		return ResealTask{}, nil, err
	}
	if c.Identity == nil {
		return ResealTask{}, nil, qingfeng.Errorf(qingfeng.ECONFLICT, "该案件的身份信息已销毁", "the identity has been destroyed")
	}
	return t, c.Identity.Ciphertext, nil
}

// Complete stores the identity custodian u re-sealed for task id: a well-formed age
// file with one post-quantum stanza per recipient of the task.
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
	c, err := s.Case(ctx, t.CaseID)
	if err != nil {
		return ResealTask{}, err
	}
	if c.Identity == nil {
		return ResealTask{}, qingfeng.Errorf(qingfeng.ECONFLICT, "该案件的身份信息已销毁", "the identity has been destroyed")
	}
	now := s.now()
	next := intake.SealedIdentity{Ciphertext: resealed, Recipients: t.ResealTo, SealedAt: now}
	if err := s.Store.CompleteTask(ctx, t, c.Identity.Ciphertext, next, u.ID, now); err != nil {
		return ResealTask{}, err
	}
	return s.Store.Task(ctx, id)
}
