package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/donations"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/storage/migrate"
)

// The donation ledger as `qingfeng migrate` reads and writes it (see Records).

// EachLedgerEntry implements migrate.Store.
func (r *Records) EachLedgerEntry(ctx context.Context, fn func(donations.Entry) error) error {
	return eachRow(ctx, r.db, "export ledger entries", "SELECT "+entryColumns+" FROM ledger_entries ORDER BY org, seq",
		func(s rowScanner) (donations.Entry, error) { return scanEntry(s) }, fn)
}

// PutLedgerEntries implements migrate.Store: the entries as they are, their heads left
// to PutLedgerHeads (a missing head is folded from the entries meanwhile).
func (r *Records) PutLedgerEntries(ctx context.Context, es []donations.Entry) error {
	return insertAll(ctx, r.db, "import ledger entries", `INSERT INTO ledger_entries (org, seq, kind, income_type, date, month, idem, alerts_pending, recorded_at, beneficiary, body)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (org, seq) DO NOTHING`, es, func(e donations.Entry) ([]any, error) {
		if len(e.Date) < 7 {
			return nil, fmt.Errorf("ledger entry %s: date %q", e.ID, e.Date)
		}
		body, err := json.Marshal(toEntryBody(e))
		if err != nil {
			return nil, err
		}
		var idem any
		if e.IdempotencyKey != "" {
			idem = e.IdempotencyKey
		}
		return []any{e.Org, e.Seq, string(e.Kind), string(e.IncomeType), e.Date, e.Date[:7], idem, e.AlertsPending,
			ms(e.RecordedAt).UnixMilli(), nilIfEmpty(e.Beneficiary), string(body)}, nil
	})
}

// EachLedgerHead implements migrate.Store: each organization's balance, as Balance
// computes it.
func (r *Records) EachLedgerHead(ctx context.Context, fn func(migrate.LedgerHead) error) error {
	var orgs []string
	if err := eachRow(ctx, r.db, "export ledger heads", "SELECT org FROM ledger_heads ORDER BY org", func(s rowScanner) (string, error) {
		var o string
		return o, s.Scan(&o)
	}, func(o string) error { orgs = append(orgs, o); return nil }); err != nil {
		return err
	}
	ledger := NewLedgerStore(r.db)
	for _, o := range orgs {
		b, err := ledger.Balance(ctx, o)
		if err != nil {
			return err
		}
		if err := fn(migrate.LedgerHead{Org: o, Balance: b}); err != nil {
			return err
		}
	}
	return nil
}

// PutLedgerHeads implements migrate.Store.
func (r *Records) PutLedgerHeads(ctx context.Context, hs []migrate.LedgerHead) error {
	return insertAll(ctx, r.db, "import ledger heads", "INSERT INTO ledger_heads (org, seq, balance) VALUES (?, ?, ?) ON CONFLICT (org) DO NOTHING",
		hs, func(h migrate.LedgerHead) ([]any, error) {
			return []any{h.Org, h.Balance.Seq, headJSON(h.Balance)}, nil
		})
}

// EachVerification implements migrate.Store.
func (r *Records) EachVerification(ctx context.Context, fn func(donations.Verification) error) error {
	return eachRow(ctx, r.db, "export verifications", "SELECT entry_id, verified_by, verified_at, note FROM ledger_verifications ORDER BY entry_id",
		func(s rowScanner) (donations.Verification, error) {
			var v donations.Verification
			var at int64
			err := s.Scan(&v.EntryID, &v.VerifiedBy, &at, &v.Note)
			v.VerifiedAt = time.UnixMilli(at).UTC()
			return v, err
		}, fn)
}

// PutVerifications implements migrate.Store; the organization is the entry id's.
func (r *Records) PutVerifications(ctx context.Context, vs []donations.Verification) error {
	return insertAll(ctx, r.db, "import verifications", `INSERT INTO ledger_verifications (entry_id, org, verified_by, verified_at, note)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (entry_id) DO NOTHING`, vs, func(v donations.Verification) ([]any, error) {
		org, _, ok := strings.Cut(v.EntryID, ":")
		if !ok {
			return nil, fmt.Errorf("verification of %q: not a ledger entry id", v.EntryID)
		}
		return []any{v.EntryID, org, v.VerifiedBy, ms(v.VerifiedAt).UnixMilli(), v.Note}, nil
	})
}

// EachPhotoBatch implements migrate.Store.
func (r *Records) EachPhotoBatch(ctx context.Context, fn func(migrate.PhotoBatch) error) error {
	var batches []migrate.PhotoBatch
	if err := eachRow(ctx, r.db, "export ledger photos", "SELECT id, org, at FROM ledger_photo_batches ORDER BY id", func(s rowScanner) (migrate.PhotoBatch, error) {
		var b migrate.PhotoBatch
		var at int64
		err := s.Scan(&b.ID, &b.Org, &at)
		b.At = time.UnixMilli(at).UTC()
		return b, err
	}, func(b migrate.PhotoBatch) error { batches = append(batches, b); return nil }); err != nil {
		return err
	}
	for _, b := range batches {
		rows, err := r.db.r.QueryContext(ctx, `SELECT id, object_key, content_type, size, sha256_received, sha256_stored, metadata_removed, original_key, uploaded_by, uploaded_at
			FROM ledger_photos WHERE batch = ? ORDER BY id`, b.ID)
		if err != nil {
			return storeError("export ledger photos", err, nil, nil)
		}
		for rows.Next() {
			var ev intake.Evidence
			var at sql.NullInt64
			if err := rows.Scan(&ev.ID, &ev.ObjectKey, &ev.ContentType, &ev.Size, &ev.SHA256Received, &ev.SHA256Stored, &ev.MetadataRemoved, &ev.OriginalKey, &ev.UploadedBy, &at); err != nil {
				rows.Close()
				return storeError("export ledger photos", err, nil, nil)
			}
			ev.UploadedAt = fromMillis(at)
			b.Photos = append(b.Photos, ev)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return storeError("export ledger photos", err, nil, nil)
		}
		if err := fn(b); err != nil {
			return err
		}
	}
	return nil
}

// PutPhotoBatches implements migrate.Store: each batch with its photos, in one
// transaction.
func (r *Records) PutPhotoBatches(ctx context.Context, bs []migrate.PhotoBatch) error {
	err := r.db.Tx(ctx, func(tx *sql.Tx) error {
		for _, b := range bs {
			res, err := tx.ExecContext(ctx, "INSERT INTO ledger_photo_batches (id, org, at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING", b.ID, b.Org, ms(b.At).UnixMilli())
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue
			}
			for _, ev := range b.Photos {
				if _, err := tx.ExecContext(ctx, "INSERT INTO ledger_photos (batch, id, object_key, content_type, size, sha256_received, sha256_stored, metadata_removed, original_key, uploaded_by, uploaded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
					b.ID, ev.ID, ev.ObjectKey, ev.ContentType, ev.Size, ev.SHA256Received, ev.SHA256Stored, ev.MetadataRemoved, ev.OriginalKey, ev.UploadedBy, millis(ev.UploadedAt)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return storeError("import ledger photos", err, nil, nil)
}

// EachStatement implements migrate.Store, each checked against its hash as Published
// does.
func (r *Records) EachStatement(ctx context.Context, fn func(donations.PublishedStatement) error) error {
	var keys [][2]string
	if err := eachRow(ctx, r.db, "export statements", "SELECT org, month FROM ledger_statements ORDER BY org, month", func(s rowScanner) ([2]string, error) {
		var k [2]string
		return k, s.Scan(&k[0], &k[1])
	}, func(k [2]string) error { keys = append(keys, k); return nil }); err != nil {
		return err
	}
	ledger := NewLedgerStore(r.db)
	for _, k := range keys {
		ps, _, err := ledger.Published(ctx, k[0], k[1])
		if err != nil {
			return err
		}
		if err := fn(ps); err != nil {
			return err
		}
	}
	return nil
}

// PutStatements implements migrate.Store through SavePublished, which stores the
// canonical bytes the hash covers.
func (r *Records) PutStatements(ctx context.Context, ps []donations.PublishedStatement) error {
	ledger := NewLedgerStore(r.db)
	for _, p := range ps {
		// Another run may have copied it meanwhile; Verify compares it.
		if err := ledger.SavePublished(ctx, p); err != nil && qingfeng.ErrorCode(err) != qingfeng.ECONFLICT {
			return err
		}
	}
	return nil
}

// EachCorrection implements migrate.Store.
func (r *Records) EachCorrection(ctx context.Context, fn func(migrate.Correction) error) error {
	return eachRow(ctx, r.db, "export corrections", "SELECT org, month, seq FROM ledger_corrections ORDER BY org, month, seq",
		func(s rowScanner) (migrate.Correction, error) {
			var c migrate.Correction
			return c, s.Scan(&c.Org, &c.Month, &c.Seq)
		}, fn)
}

// PutCorrections implements migrate.Store.
func (r *Records) PutCorrections(ctx context.Context, cs []migrate.Correction) error {
	return insertAll(ctx, r.db, "import corrections", "INSERT INTO ledger_corrections (org, month, seq) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
		cs, func(c migrate.Correction) ([]any, error) { return []any{c.Org, c.Month, c.Seq}, nil })
}

// EachAlert implements migrate.Store.
func (r *Records) EachAlert(ctx context.Context, fn func(donations.Alert) error) error {
	return eachRow(ctx, r.db, "export alerts", "SELECT "+alertColumns+" FROM ledger_alerts ORDER BY id",
		func(s rowScanner) (donations.Alert, error) { return scanAlert(s) }, fn)
}

// PutAlerts implements migrate.Store.
func (r *Records) PutAlerts(ctx context.Context, as []donations.Alert) error {
	return insertAll(ctx, r.db, "import alerts", "INSERT INTO ledger_alerts ("+alertColumns+") VALUES ("+placeholders(alertColumns)+") ON CONFLICT (id) DO NOTHING",
		as, func(a donations.Alert) ([]any, error) {
			return []any{a.ID, a.Rule, a.Org, a.Period, a.EntryID, a.Detail, a.OrgName, a.Division, a.Date, a.Status, a.CaseNumber,
				ms(a.CreatedAt).UnixMilli(), millis(a.FiledAt)}, nil
		})
}
