package custody

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
	qfcrypto "github.com/qingfeng-zj/qingfeng/crypto"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/routing"
)

// Disclosure statuses.
const (
	Pending   = "pending"   // waiting for a custodian
	Approved  = "approved"  // a custodian approved; the re-sealed identity is not yet uploaded
	Denied    = "denied"    // a custodian refused
	Completed = "completed" // re-sealed to the requester; they can fetch it
	Expired   = "expired"   // not decided or completed in time
	Cancelled = "cancelled" // the requester's key was revoked before the identity was re-sealed to it
)

// Disclosure is one request for a reporter's identity.
type Disclosure struct {
	ID       string `json:"id"`
	CaseID   string `json:"-"`
	Case     string `json:"case"`
	Division string `json:"division"` // the case's, for the custodians' jurisdiction
	// UnitDivision is the owning unit's division when it differs (a case transferred to
	// another jurisdiction): that jurisdiction's custodians may decide too.
	UnitDivision       string     `json:"unit_division,omitempty"`
	UnitID             string     `json:"unit_id"`
	Requester          string     `json:"requester"`
	RequesterRecipient string     `json:"requester_recipient"`
	Reason             string     `json:"reason"`
	Status             string     `json:"status"`
	RequestedAt        time.Time  `json:"requested_at"`
	ExpiresAt          time.Time  `json:"expires_at"`
	DecidedBy          string     `json:"decided_by,omitempty"`
	DecidedAt          *time.Time `json:"decided_at,omitempty"`
	DecisionReason     string     `json:"decision_reason,omitempty"`
	CompletedAt        *time.Time `json:"completed_at,omitempty"`
	CancelledAt        *time.Time `json:"cancelled_at,omitempty"`
	CancelReason       string     `json:"cancel_reason,omitempty"`
	Resealed           []byte     `json:"-"` // age file for the requester only
}

// DisclosureStore keeps disclosures (storage/mongo, storage/sqlite).
type DisclosureStore interface {
	InsertDisclosure(ctx context.Context, d Disclosure) error
	Disclosure(ctx context.Context, id string) (Disclosure, error)
	// UpdateDisclosure records step u if the disclosure is in status from and has not
	// expired at now; ECONFLICT otherwise.
	UpdateDisclosure(ctx context.Context, id, from string, now time.Time, u DisclosureUpdate) error
	Disclosures(ctx context.Context, caseID string) ([]Disclosure, error)
	OpenDisclosures(ctx context.Context) ([]Disclosure, error) // pending and approved
}

// DisclosureUpdate is what one step of the flow records: the new status and that
// step's fields. Zero fields are left as they are stored.
type DisclosureUpdate struct {
	Status         string
	DecidedBy      string
	DecidedAt      time.Time
	DecisionReason string
	CompletedAt    time.Time
	Resealed       []byte
	CancelledAt    time.Time
	CancelReason   string
}

// Disclosures runs the disclosure flow.
type Disclosures struct {
	Store DisclosureStore
	Keys  *Keys
	TTL   time.Duration // how long a request stays open (default 7 days)
	// UnitDivision names a unit's division (for cases transferred to another
	// jurisdiction, whose custodians may then decide).
	UnitDivision func(unitID string) string
	Now          func() time.Time
	NewID        func() string
}

func (s *Disclosures) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// inJurisdiction reports whether a custodian of division may decide d: the case's
// jurisdiction, or the owning unit's after a transfer.
func (d Disclosure) inJurisdiction(division string) bool {
	if division == "" {
		return false
	}
	p := routing.DivisionPrefix(division)
	return strings.HasPrefix(d.Division, p) || d.UnitDivision != "" && strings.HasPrefix(d.UnitDivision, p)
}

// Effective is the status as of now: open requests past their expiry are expired.
func (d Disclosure) Effective(now time.Time) string {
	if (d.Status == Pending || d.Status == Approved) && !now.Before(d.ExpiresAt) {
		return Expired
	}
	return d.Status
}

func reasonOf(r string) (string, error) {
	r = qingfeng.TrimText(r)
	if r == "" || utf8.RuneCountInString(r) > 1000 {
		return "", qingfeng.Invalid(map[string]qingfeng.FieldError{"reason": {Code: "required", Message: "请填写理由（不超过1000字）", English: "a reason of at most 1,000 characters is required"}})
	}
	return r, nil
}

// Request files staff member u's request for the identity of case c.
func (s *Disclosures) Request(ctx context.Context, c *intake.Case, u *accounts.User, reason string) (Disclosure, error) {
	why, err := reasonOf(reason)
	if err != nil {
		return Disclosure{}, err
	}
	if c.Identity == nil {
		return Disclosure{}, qingfeng.Errorf(qingfeng.ECONFLICT, "该案件为匿名举报，没有可披露的身份", "the case is anonymous: there is no identity")
	}
	rcp, ok, err := s.Keys.StaffRecipient(ctx, u.ID)
	if err != nil {
		return Disclosure{}, err
	}
	if !ok {
		return Disclosure{}, qingfeng.Errorf(qingfeng.ECONFLICT, "请先由管理员登记您的公钥（qfctl keys new）", "register your own recipient first")
	}
	now := s.now()
	existing, err := s.Store.Disclosures(ctx, c.ID)
	if err != nil {
		return Disclosure{}, err
	}
	for _, d := range existing {
		if d.Requester == u.ID && (d.Effective(now) == Pending || d.Effective(now) == Approved) {
			return Disclosure{}, qingfeng.Errorf(qingfeng.ECONFLICT, "您已有一份待处理的申请", "you have an open request on this case")
		}
	}
	ttl := s.TTL
	if ttl <= 0 {
		ttl = 7 * 24 * time.Hour
	}
	ud := ""
	if s.UnitDivision != nil {
		if x := s.UnitDivision(c.UnitID); x != "" && !strings.HasPrefix(c.Location.Division, routing.DivisionPrefix(x)) {
			ud = x
		}
	}
	d := Disclosure{ID: s.NewID(), CaseID: c.ID, Case: c.Number, Division: c.Location.Division, UnitDivision: ud, UnitID: c.UnitID,
		Requester: u.ID, RequesterRecipient: rcp, Reason: why, Status: Pending, RequestedAt: now, ExpiresAt: now.Add(ttl)}
	return d, s.Store.InsertDisclosure(ctx, d)
}

// forCustodian loads disclosure id for custodian u: it must be in u's jurisdiction and
// u must not be the requester.
func (s *Disclosures) forCustodian(ctx context.Context, id string, u *accounts.User) (Disclosure, error) {
	d, err := s.Store.Disclosure(ctx, id)
	if err != nil {
		return Disclosure{}, err
	}
	if u.Role != accounts.RoleCustodian || !d.inJurisdiction(u.Division) {
		return Disclosure{}, qingfeng.Errorf(qingfeng.ENOTFOUND, "申请不存在", "no such request")
	}
	if d.Requester == u.ID {
		return Disclosure{}, qingfeng.Errorf(qingfeng.EFORBIDDEN, "不能审批自己的申请", "a requester cannot decide their own request")
	}
	return d, nil
}

func (s *Disclosures) refuse(d Disclosure, want string, now time.Time) error {
	if st := d.Effective(now); st != want {
		e := qingfeng.Errorf(qingfeng.ECONFLICT, "申请当前状态为“"+st+"”，不能执行该操作", "the request is "+st)
		e.Allowed = []string{}
		return e
	}
	return nil
}

// cancelReasonRevoked is recorded on a request whose requester's key was revoked.
const cancelReasonRevoked = "申请人登记的公钥已注销"

// requesterKeyCurrent checks that the recipient d is to be re-sealed to is still the
// requester's, registered and not revoked: the target is fixed when the request is
// made, and a revoked key (lost, leaked, its holder moved on) must receive nothing.
// Otherwise the request (in status from) is cancelled and the cancelled request is
// returned with an ECONFLICT error, for the caller to audit.
func (s *Disclosures) requesterKeyCurrent(ctx context.Context, d Disclosure, from string, now time.Time) (Disclosure, error) {
	ok, err := s.Keys.HoldsStaffRecipient(ctx, d.Requester, d.RequesterRecipient)
	if err != nil || ok {
		return Disclosure{}, err
	}
	if err := s.Store.UpdateDisclosure(ctx, d.ID, from, now, DisclosureUpdate{Status: Cancelled, CancelledAt: now, CancelReason: cancelReasonRevoked}); err != nil {
		return Disclosure{}, err
	}
	c, err := s.Store.Disclosure(ctx, d.ID)
	if err != nil {
		return Disclosure{}, err
	}
	e := qingfeng.Errorf(qingfeng.ECONFLICT, "申请人登记的公钥已注销，申请已取消；请申请人登记新公钥后重新申请",
		"the requester's recipient was revoked: the request is cancelled; they must register a new key and ask again")
	e.Allowed = []string{}
	return c, e
}

// Decide approves or denies a pending request, as custodian u.
func (s *Disclosures) Decide(ctx context.Context, id string, u *accounts.User, approve bool, reason string) (Disclosure, error) {
	why, err := reasonOf(reason)
	if err != nil {
		return Disclosure{}, err
	}
	d, err := s.forCustodian(ctx, id, u)
	if err != nil {
		return Disclosure{}, err
	}
	now := s.now()
	if err := s.refuse(d, Pending, now); err != nil {
		return Disclosure{}, err
	}
	to := Denied
	if approve {
		to = Approved
		if c, err := s.requesterKeyCurrent(ctx, d, Pending, now); err != nil {
			return c, err
		}
	}
	if err := s.Store.UpdateDisclosure(ctx, id, Pending, now, DisclosureUpdate{Status: to, DecidedBy: u.ID, DecidedAt: now, DecisionReason: why}); err != nil {
		return Disclosure{}, err
	}
	return s.Store.Disclosure(ctx, id)
}

// SealedIdentity hands custodian u the case's sealed identity for an approved request,
// with the recipient to re-seal it to.
func (s *Disclosures) SealedIdentity(ctx context.Context, id string, u *accounts.User, load func(caseID string) (*intake.Case, error)) (Disclosure, []byte, error) {
	d, err := s.forCustodian(ctx, id, u)
	if err != nil {
		return Disclosure{}, nil, err
	}
	now := s.now()
	if err := s.refuse(d, Approved, now); err != nil {
		return Disclosure{}, nil, err
	}
	if c, err := s.requesterKeyCurrent(ctx, d, Approved, now); err != nil {
		return c, nil, err
	}
	c, err := load(d.CaseID)
	if err != nil {
		return Disclosure{}, nil, err
	}
	if c.Identity == nil {
		return Disclosure{}, nil, qingfeng.Errorf(qingfeng.ECONFLICT, "该案件的身份信息已销毁", "the identity has been destroyed")
	}
	return d, c.Identity.Ciphertext, nil
}

// Complete stores the identity custodian u re-sealed to the requester.
func (s *Disclosures) Complete(ctx context.Context, id string, u *accounts.User, resealed []byte) (Disclosure, error) {
	d, err := s.forCustodian(ctx, id, u)
	if err != nil {
		return Disclosure{}, err
	}
	now := s.now()
	if err := s.refuse(d, Approved, now); err != nil {
		return Disclosure{}, err
	}
	info, err := qfcrypto.InspectSealed(resealed)
	if err != nil {
		return Disclosure{}, err
	}
	if !info.PostQuantum || len(info.StanzaTypes) != 1 {
		return Disclosure{}, qingfeng.Invalid(map[string]qingfeng.FieldError{"ciphertext": {Code: "wrong_recipients",
			Message: "应只加密给申请人登记的抗量子公钥（一个接收方）", English: "seal to the requester's post-quantum recipient only"}})
	}
	if c, err := s.requesterKeyCurrent(ctx, d, Approved, now); err != nil {
		return c, err
	}
	if err := s.Store.UpdateDisclosure(ctx, id, Approved, now, DisclosureUpdate{Status: Completed, CompletedAt: now, Resealed: resealed}); err != nil {
		return Disclosure{}, err
	}
	return s.Store.Disclosure(ctx, id)
}

// Fetch returns the re-sealed identity to its requester.
func (s *Disclosures) Fetch(ctx context.Context, id string, u *accounts.User) (Disclosure, error) {
	d, err := s.Store.Disclosure(ctx, id)
	if err != nil {
		return Disclosure{}, err
	}
	if d.Requester != u.ID {
		return Disclosure{}, qingfeng.Errorf(qingfeng.ENOTFOUND, "申请不存在", "no such request")
	}
	if err := s.refuse(d, Completed, s.now()); err != nil {
		return Disclosure{}, err
	}
	return d, nil
}

// ForCustodian lists the open requests in custodian u's jurisdiction.
func (s *Disclosures) ForCustodian(ctx context.Context, u *accounts.User) ([]Disclosure, error) {
	all, err := s.Store.OpenDisclosures(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	var out []Disclosure
	for _, d := range all {
		if d.inJurisdiction(u.Division) && d.Requester != u.ID {
			d.Status = d.Effective(now)
			if d.Status != Expired {
				out = append(out, d)
			}
		}
	}
	return out, nil
}

// ForCase lists a case's requests, with their effective status.
func (s *Disclosures) ForCase(ctx context.Context, caseID string) ([]Disclosure, error) {
	all, err := s.Store.Disclosures(ctx, caseID)
	now := s.now()
	for i := range all {
		all[i].Status = all[i].Effective(now)
	}
	return all, err
}
