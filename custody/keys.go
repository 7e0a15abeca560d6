// Package custody keeps the public keys (age recipients) that identities are sealed
// to, and runs disclosure: staff ask for a reporter's identity, a custodian of the
// jurisdiction — never the requester — approves or denies, and on approval opens the
// sealed identity on their own machine and re-seals it to the requester's registered
// recipient. The server holds ciphertext at every step.
//
// The guarantees it keeps: one age key has one holder; a case's identity is re-sealed
// only to its current recipient set (stale re-seal tasks are superseded and refused);
// nothing is re-sealed to a revoked key; and the zero-config demo custodian key is
// sealed to only in jurisdictions that never had a real custodian.
package custody

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
	qfcrypto "github.com/qingfeng-zj/qingfeng/crypto"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/routing"
)

// Recipient is a registered public age recipient: a custodian's (bound to a
// jurisdiction, a division code) or a staff member's (bound to their unit), for
// receiving a disclosed identity. Only the public half is ever on the server.
type Recipient struct {
	ID           string     `json:"id"`
	UserID       string     `json:"user_id"`
	Role         string     `json:"role"`         // custodian or staff
	Jurisdiction string     `json:"jurisdiction"` // division (custodian) or unit id (staff)
	Recipient    string     `json:"recipient"`
	Label        string     `json:"label,omitempty"`
	AddedBy      string     `json:"added_by"`
	AddedAt      time.Time  `json:"added_at"`
	RevokedAt    *time.Time `json:"revoked_at,omitempty"`
	RevokedBy    string     `json:"revoked_by,omitempty"`
}

// KeyStore keeps recipients (storage/mongo's RecipientStore).
type KeyStore interface {
	Add(ctx context.Context, r Recipient) error
	Revoke(ctx context.Context, id, by string, at time.Time) (Recipient, error)
	All(ctx context.Context) ([]Recipient, error)
}

// Keys registers recipients and keeps the live Sealer in step with them.
type Keys struct {
	Store KeyStore
	// User looks an account up (active or not).
	User func(ctx context.Context, id string) (*accounts.User, error)
	// Configured is the custodian configuration from the environment
	// (QF_CUSTODIAN_RECIPIENTS), merged under the registered custodians.
	Configured map[string][]string
	// Demo is the zero-config demo custodian's recipient ("" in production). It is
	// not a registered custodian: it is sealed to only in the jurisdictions that have
	// never had a real one (see qfcrypto.Sealer.WithDemo).
	Demo   string
	Sealer *LiveSealer
	Now    func() time.Time
	NewID  func() string
	// CustodiansChanged, when set, is told after a custodian's recipient is registered
	// or revoked (to create re-seal tasks for that jurisdiction's open cases).
	CustodiansChanged func(ctx context.Context, jurisdiction string) error

	// mu serialises registrations and revocations in this process, so that the
	// last-custodian check and the reload see each other's effect.
	mu sync.Mutex
	// reloadMu makes each reload's read and store one step, so that a reload that read
	// the recipients before a change never overwrites one that read them after.
	reloadMu sync.Mutex
}

func (k *Keys) changed(ctx context.Context, r Recipient) error {
	if err := k.Reload(ctx); err != nil {
		return err
	}
	if r.Role == string(accounts.RoleCustodian) && k.CustodiansChanged != nil {
		return k.CustodiansChanged(ctx, r.Jurisdiction)
	}
	return nil
}

func (k *Keys) now() time.Time {
	if k.Now != nil {
		return k.Now().UTC()
	}
	return time.Now().UTC()
}

// Register records the public recipient of a custodian (bound to their division) or
// a staff member (bound to their unit), and reseals future identities accordingly.
func (k *Keys) Register(ctx context.Context, by, userID, recipient, label string) (Recipient, error) {
	bad := func(field, code, zh, en string) error {
		return qingfeng.Invalid(map[string]qingfeng.FieldError{field: {Code: code, Message: zh, English: en}})
	}
	recipient, err := qfcrypto.CanonicalRecipient(recipient)
	if err != nil {
		return Recipient{}, bad("recipient", "invalid_recipient", "公钥无效：只接受抗量子混合公钥（age1pq1…），切勿提交私钥", err.Error())
	}
	if len([]rune(label)) > 100 {
		return Recipient{}, bad("label", "too_long", "备注不能超过100字", "at most 100 characters")
	}
	u, err := k.User(ctx, userID)
	if err != nil || u == nil {
		return Recipient{}, bad("user_id", "unknown_user", "账号不存在", "no such account")
	}
	r := Recipient{ID: k.NewID(), UserID: u.ID, Role: string(u.Role), Recipient: recipient, Label: label, AddedBy: by, AddedAt: k.now()}
	switch u.Role {
	case accounts.RoleCustodian:
		r.Jurisdiction = u.Division
	case accounts.RoleStaff:
		r.Jurisdiction = u.UnitID
	default:
		return Recipient{}, bad("user_id", "wrong_role", "只能为保密员或工作人员登记公钥", "only custodians and staff hold recipients")
	}
	if u.Disabled {
		return Recipient{}, bad("user_id", "disabled", "账号已停用", "the account is disabled")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.checkUnheld(ctx, recipient); err != nil {
		return Recipient{}, err
	}
	// The store claims the key too (one key, one holder, even under concurrent
	// registrations); the check above gives the precise message.
	if err := k.Store.Add(ctx, r); err != nil {
		return Recipient{}, err
	}
	return r, k.changed(ctx, r)
}

// checkUnheld refuses a recipient that is already someone's (active or revoked, of
// any user and role), the demo key, or a configured custodian: one key, one holder, so
// that two rows never count as two custodians and a revoked key never comes back.
func (k *Keys) checkUnheld(ctx context.Context, recipient string) error {
	conflict := func(zh, en string) error {
		e := qingfeng.Errorf(qingfeng.ECONFLICT, zh, en)
		e.Fields = map[string]qingfeng.FieldError{"recipient": {Code: "recipient_taken", Message: zh, English: en}}
		return e
	}
	if k.Demo != "" && recipient == k.Demo {
		return conflict("这是演示保密员密钥，其私钥就在服务器上，不能登记为真实保密员", "this is the demo custodian key, whose private key is on the server")
	}
	for _, rs := range k.Configured {
		for _, r := range rs {
			if c, err := qfcrypto.CanonicalRecipient(r); err == nil && c == recipient {
				return conflict("该公钥已在配置（QF_CUSTODIAN_RECIPIENTS）中，一把密钥只能属于一人", "this recipient is configured in QF_CUSTODIAN_RECIPIENTS")
			}
		}
	}
	all, err := k.Store.All(ctx)
	if err != nil {
		return err
	}
	for _, r := range all {
		if c, err := qfcrypto.CanonicalRecipient(r.Recipient); err != nil || c != recipient {
			continue
		}
		if r.RevokedAt != nil {
			return conflict("该公钥已注销，不能再次登记；请生成新密钥（qfctl keys new）", "this recipient was revoked and cannot be registered again")
		}
		return conflict("该公钥已登记给其他账号或角色，一把密钥只能属于一人", "this recipient is already registered; one key has one holder")
	}
	return nil
}

// RevokeReason checks the reason an admin gives for revoking a key (the console asks
// for one and records it in the audit log): the rule of every reason in custody.
func RevokeReason(r string) (string, error) { return reasonOf(r) }

// Revoke retires a recipient; identities sealed from now on leave it out, and the
// open cases sealed to it get re-seal tasks. The last key that can open a
// jurisdiction's identities is not revoked (409): register its successor first, so
// that the identities can be re-sealed to someone.
func (k *Keys) Revoke(ctx context.Context, id, by string) (Recipient, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	all, err := k.Store.All(ctx)
	if err != nil {
		return Recipient{}, err
	}
	for _, r := range all {
		if r.ID != id || r.RevokedAt != nil || r.Role != string(accounts.RoleCustodian) {
			continue
		}
		s, err := k.build(all, id)
		if err != nil {
			return Recipient{}, err
		}
		if _, err := s.RecipientsFor(r.Jurisdiction); err != nil {
			e := qingfeng.Errorf(qingfeng.ECONFLICT, "这是该辖区最后一把保密员密钥，注销后实名信息将无人能开启：请先登记新的保密员公钥，再注销它",
				"this is the jurisdiction's last custodian key: register its successor first")
			e.Err = fmt.Errorf("revoke %s: %w", id, err)
			return Recipient{}, e
		}
	}
	r, err := k.Store.Revoke(ctx, id, by, k.now())
	if err != nil {
		return Recipient{}, err
	}
	return r, k.changed(ctx, r)
}

// Risk is a jurisdiction whose identities a single lost key would lose.
type Risk struct {
	Jurisdiction string `json:"jurisdiction"`
	Custodians   int    `json:"custodians"`
}

// List returns every recipient and the jurisdictions with fewer than two custodians.
func (k *Keys) List(ctx context.Context) ([]Recipient, []Risk, error) {
	all, err := k.Store.All(ctx)
	if err != nil {
		return nil, nil, err
	}
	count := map[string]int{}
	for div, rs := range k.Configured {
		if div != qfcrypto.FallbackDivision {
			count["config:"+div] += len(rs)
		}
	}
	for _, r := range all {
		if r.Role == string(accounts.RoleCustodian) && r.RevokedAt == nil {
			count[r.Jurisdiction]++
		}
	}
	var risks []Risk
	for j, n := range count {
		if n < 2 {
			risks = append(risks, Risk{Jurisdiction: j, Custodians: n})
		}
	}
	slices.SortFunc(risks, func(a, b Risk) int { return cmp.Compare(a.Jurisdiction, b.Jurisdiction) })
	return all, risks, nil
}

// HoldsStaffRecipient reports whether recipient is still registered, not revoked,
// to staff member userID: a disclosure is only ever re-sealed to a current key.
func (k *Keys) HoldsStaffRecipient(ctx context.Context, userID, recipient string) (bool, error) {
	all, err := k.Store.All(ctx)
	if err != nil {
		return false, err
	}
	for _, r := range all {
		if r.UserID == userID && r.Role == string(accounts.RoleStaff) && r.RevokedAt == nil && r.Recipient == recipient {
			return true, nil
		}
	}
	return false, nil
}

// StaffRecipient returns the active recipient staff member userID registered.
func (k *Keys) StaffRecipient(ctx context.Context, userID string) (string, bool, error) {
	all, err := k.Store.All(ctx)
	if err != nil {
		return "", false, err
	}
	for i := len(all) - 1; i >= 0; i-- {
		if r := all[i]; r.UserID == userID && r.Role == string(accounts.RoleStaff) && r.RevokedAt == nil {
			return r.Recipient, true, nil
		}
	}
	return "", false, nil
}

// Reload rebuilds the live sealer from the configuration and the active custodian
// recipients.
func (k *Keys) Reload(ctx context.Context) error {
	k.reloadMu.Lock()
	defer k.reloadMu.Unlock()
	all, err := k.Store.All(ctx)
	if err != nil {
		return err
	}
	s, err := k.build(all, "")
	if err != nil {
		return err
	}
	k.Sealer.Store(s)
	return nil
}

// build makes the sealer for the configuration and the active custodian recipients
// of all, as if recipient skip were revoked too.
func (k *Keys) build(all []Recipient, skip string) (*qfcrypto.Sealer, error) {
	m := map[string][]string{}
	for div, rs := range k.Configured {
		m[div] = slices.Clone(rs)
	}
	// Every jurisdiction that has ever had a real custodian has retired the demo key.
	var retired []string
	for div := range k.Configured {
		retired = append(retired, div)
	}
	for _, r := range all {
		if r.Role != string(accounts.RoleCustodian) {
			continue
		}
		p := routing.DivisionPrefix(r.Jurisdiction)
		retired = append(retired, p)
		if r.RevokedAt == nil && r.ID != skip {
			m[p] = append(m[p], r.Recipient)
		}
	}
	s, err := qfcrypto.NewSealer(m)
	if err != nil {
		return nil, fmt.Errorf("custodian recipients: %w", err)
	}
	if k.Demo != "" {
		return s.WithDemo(k.Demo, retired)
	}
	return s, nil
}

// DemoUse is where the demo custodian key is still sealed to.
type DemoUse struct {
	Recipient string `json:"recipient"`
	// Divisions are the county-level divisions (and cities, the province) whose new
	// identities are sealed to the demo key alone.
	Divisions []routing.Division `json:"divisions"`
}

// DemoUse lists the divisions that still depend on the demo custodian key; ok is
// false when there is no demo key.
func (k *Keys) DemoUse() (DemoUse, bool) {
	s := k.Sealer.p.Load()
	if k.Demo == "" || s == nil {
		return DemoUse{}, false
	}
	u := DemoUse{Recipient: k.Demo, Divisions: []routing.Division{}}
	for _, d := range routing.Divisions() {
		if d.Level != routing.LevelTownship && s.UsesDemo(d.Code) {
			u.Divisions = append(u.Divisions, d)
		}
	}
	return u, true
}

// LiveSealer is an intake.Sealer whose recipients can be replaced while running.
type LiveSealer struct {
	p atomic.Pointer[qfcrypto.Sealer]
}

var _ intake.Sealer = (*LiveSealer)(nil)

// Store replaces the sealer.
func (l *LiveSealer) Store(s *qfcrypto.Sealer) { l.p.Store(s) }

// Seal implements intake.Sealer.
func (l *LiveSealer) Seal(ctx context.Context, division string, plaintext []byte) (*intake.SealedIdentity, error) {
	return l.p.Load().Seal(ctx, division, plaintext)
}

// SealStream implements intake.Sealer.
func (l *LiveSealer) SealStream(ctx context.Context, division string, dst io.Writer) (io.WriteCloser, error) {
	return l.p.Load().SealStream(ctx, division, dst)
}

// CheckSealed implements intake.Sealer.
func (l *LiveSealer) CheckSealed(ciphertext []byte) error { return l.p.Load().CheckSealed(ciphertext) }

// RecipientsFor returns the recipients an identity reported in division is sealed to.
func (l *LiveSealer) RecipientsFor(division string) ([]string, error) {
	return l.p.Load().RecipientsFor(division)
}
