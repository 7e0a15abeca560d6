package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/custody"
)

// RecipientStore keeps custody's records: registered recipients (keys), disclosures
// (disclosures.go) and re-seal tasks (reseal.go).
type RecipientStore struct{ db *DB }

var _ custody.KeyStore = (*RecipientStore)(nil)

// NewRecipientStore returns the recipient store of db.
func NewRecipientStore(db *DB) *RecipientStore { return &RecipientStore{db: db} }

var (
	errRecipientNotFound = qingfeng.Errorf(qingfeng.ENOTFOUND, "公钥登记不存在", "no such recipient")
	errRecipientTaken    = qingfeng.Errorf(qingfeng.ECONFLICT, "该公钥已登记，一把密钥只能属于一人", "this recipient is registered; one key has one holder")
	errRecipientRevoked  = qingfeng.Errorf(qingfeng.ECONFLICT, "该公钥已注销", "the recipient is already revoked")
)

const recipientColumns = "id, user_id, role, jurisdiction, recipient, label, added_by, added_at, revoked_at, revoked_by"

func scanRecipient(s interface{ Scan(...any) error }) (custody.Recipient, error) {
	var r custody.Recipient
	var added int64
	var revoked sql.NullInt64
	if err := s.Scan(&r.ID, &r.UserID, &r.Role, &r.Jurisdiction, &r.Recipient, &r.Label, &r.AddedBy, &added, &revoked, &r.RevokedBy); err != nil {
		return r, err
	}
	r.AddedAt = time.UnixMilli(added).UTC()
	if revoked.Valid {
		at := fromMillis(revoked)
		r.RevokedAt = &at
	}
	return r, nil
}

// Add stores r; ECONFLICT if its recipient was ever registered (or its id is taken).
func (s *RecipientStore) Add(ctx context.Context, r custody.Recipient) error {
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO recipients ("+recipientColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, '')",
			r.ID, r.UserID, r.Role, r.Jurisdiction, r.Recipient, r.Label, r.AddedBy, r.AddedAt.UnixMilli())
		return err
	})
	return storeError("add recipient", err, nil, errRecipientTaken)
}

// Revoke marks recipient id revoked; revoking twice is ECONFLICT.
func (s *RecipientStore) Revoke(ctx context.Context, id, by string, at time.Time) (custody.Recipient, error) {
	var out custody.Recipient
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		r, err := scanRecipient(tx.QueryRowContext(ctx, "SELECT "+recipientColumns+" FROM recipients WHERE id = ?", id))
		if err != nil {
			return storeError("revoke recipient", err, errRecipientNotFound, nil)
		}
		if r.RevokedAt != nil {
			return domainError(errRecipientRevoked, "revoke recipient "+id+": revoked already")
		}
		if _, err := tx.ExecContext(ctx, "UPDATE recipients SET revoked_at = ?, revoked_by = ? WHERE id = ?", at.UnixMilli(), by, id); err != nil {
			return err
		}
		t := time.UnixMilli(at.UnixMilli()).UTC()
		r.RevokedAt, r.RevokedBy = &t, by
		out = r
		return nil
	})
	if err != nil {
		return custody.Recipient{}, storeError("revoke recipient", err, nil, nil)
	}
	return out, nil
}

// All lists every recipient, revoked ones included, oldest first.
func (s *RecipientStore) All(ctx context.Context) ([]custody.Recipient, error) {
	rows, err := s.db.r.QueryContext(ctx, "SELECT "+recipientColumns+" FROM recipients ORDER BY added_at, id")
	if err != nil {
		return nil, storeError("list recipients", err, nil, nil)
	}
	defer rows.Close()
	var out []custody.Recipient
	for rows.Next() {
		r, err := scanRecipient(rows)
		if err != nil {
			return nil, storeError("list recipients", err, nil, nil)
		}
		out = append(out, r)
	}
	return out, storeError("list recipients", rows.Err(), nil, nil)
}
