// Package custody keeps the public keys (age recipients) that identities are sealed
// to, and runs disclosure: staff ask for a reporter's identity, a custodian of the
// jurisdiction — never the requester — approves or denies, and on approval opens the
// sealed identity on their own machine and re-seals it to the requester's registered
// recipient. The server holds ciphertext at every step.
package custody

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
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
	ID           string     `bson:"_id" json:"id"`
	UserID       string     `bson:"user_id" json:"user_id"`
	Role         string     `bson:"role" json:"role"`                 // custodian or staff
	Jurisdiction string     `bson:"jurisdiction" json:"jurisdiction"` // division (custodian) or unit id (staff)
	Recipient    string     `bson:"recipient" json:"recipient"`
	Label        string     `bson:"label,omitempty" json:"label,omitempty"`
	AddedBy      string     `bson:"added_by" json:"added_by"`
	AddedAt      time.Time  `bson:"added_at" json:"added_at"`
	RevokedAt    *time.Time `bson:"revoked_at,omitempty" json:"revoked_at,omitempty"`
	RevokedBy    string     `bson:"revoked_by,omitempty" json:"revoked_by,omitempty"`
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
	Sealer     *LiveSealer
	Now        func() time.Time
	NewID      func() string
	// CustodiansChanged, when set, is told after a custodian's recipient is registered
	// or revoked (to create re-seal tasks for that jurisdiction's open cases).
	CustodiansChanged func(ctx context.Context, jurisdiction string) error
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
	recipient = strings.TrimSpace(recipient)
	if err := qfcrypto.CheckRecipient(recipient); err != nil {
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
	if err := k.Store.Add(ctx, r); err != nil {
		return Recipient{}, err
	}
	return r, k.changed(ctx, r)
}

// Revoke retires a recipient; identities sealed from now on leave it out.
func (k *Keys) Revoke(ctx context.Context, id, by string) (Recipient, error) {
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
	all, err := k.Store.All(ctx)
	if err != nil {
		return err
	}
	m := map[string][]string{}
	for div, rs := range k.Configured {
		m[div] = slices.Clone(rs)
	}
	for _, r := range all {
		if r.Role == string(accounts.RoleCustodian) && r.RevokedAt == nil {
			p := routing.DivisionPrefix(r.Jurisdiction)
			m[p] = append(m[p], r.Recipient)
		}
	}
	s, err := qfcrypto.NewSealer(m)
	if err != nil {
		return fmt.Errorf("custodian recipients: %w", err)
	}
	k.Sealer.Store(s)
	return nil
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
