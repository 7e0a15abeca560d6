package mongo

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/donations"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/storage/migrate"
)

// The donation ledger as `qingfeng migrate` reads and writes it (see Records).

// EachLedgerEntry implements migrate.Store.
func (r *Records) EachLedgerEntry(ctx context.Context, fn func(donations.Entry) error) error {
	return eachDoc(ctx, r.db, collLedger, "export ledger entries", func(d *ledgerEntryDoc) donations.Entry { return d.entry() }, fn)
}

// PutLedgerEntries implements migrate.Store: the entries as they are, their heads left
// to PutLedgerHeads.
func (r *Records) PutLedgerEntries(ctx context.Context, es []donations.Entry) error {
	return insertAbsent(ctx, r.db, collLedger, "import ledger entries", mapAll(es, toLedgerDoc))
}

// EachLedgerHead implements migrate.Store: each organization's balance, as Balance
// computes it.
func (r *Records) EachLedgerHead(ctx context.Context, fn func(migrate.LedgerHead) error) error {
	var orgs []string
	if err := eachDoc(ctx, r.db, collLedgerHeads, "export ledger heads", func(d *ledgerHeadDoc) string { return d.ID },
		func(o string) error { orgs = append(orgs, o); return nil }); err != nil {
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
	return insertAbsent(ctx, r.db, collLedgerHeads, "import ledger heads", mapAll(hs, func(h migrate.LedgerHead) ledgerHeadDoc {
		return toHeadDoc(h.Org, h.Balance)
	}))
}

// EachVerification implements migrate.Store.
func (r *Records) EachVerification(ctx context.Context, fn func(donations.Verification) error) error {
	return eachDoc(ctx, r.db, collLedgerVerifications, "export verifications", func(d *verificationDoc) donations.Verification {
		return d.verification()
	}, fn)
}

// PutVerifications implements migrate.Store; the organization is the entry id's.
func (r *Records) PutVerifications(ctx context.Context, vs []donations.Verification) error {
	docs := make([]verificationDoc, 0, len(vs))
	for _, v := range vs {
		org, _, ok := strings.Cut(v.EntryID, ":")
		if !ok {
			return fmt.Errorf("import verification of %q: not a ledger entry id", v.EntryID)
		}
		docs = append(docs, verificationDoc{EntryID: v.EntryID, Org: org, VerifiedBy: v.VerifiedBy, VerifiedAt: utc(v.VerifiedAt), Note: v.Note})
	}
	return insertAbsent(ctx, r.db, collLedgerVerifications, "import verifications", docs)
}

// EachPhotoBatch implements migrate.Store; a batch's photos are listed by id, as
// storage/sqlite lists them.
func (r *Records) EachPhotoBatch(ctx context.Context, fn func(migrate.PhotoBatch) error) error {
	return eachDoc(ctx, r.db, collLedgerPhotos, "export ledger photos", func(d *ledgerPhotoBatch) migrate.PhotoBatch {
		b := migrate.PhotoBatch{ID: d.ID, Org: d.Org, At: d.At}
		for _, p := range d.Photos {
			b.Photos = append(b.Photos, p.toEvidence())
		}
		slices.SortFunc(b.Photos, func(a, b intake.Evidence) int { return strings.Compare(a.ID, b.ID) })
		return b
	}, fn)
}

// PutPhotoBatches implements migrate.Store.
func (r *Records) PutPhotoBatches(ctx context.Context, bs []migrate.PhotoBatch) error {
	return insertAbsent(ctx, r.db, collLedgerPhotos, "import ledger photos", mapAll(bs, func(b migrate.PhotoBatch) ledgerPhotoBatch {
		return ledgerPhotoBatch{ID: b.ID, Org: b.Org, At: utc(b.At), Photos: mapAll(b.Photos, toEvidenceDoc)}
	}))
}

// EachStatement implements migrate.Store, each checked against its hash as Published
// does.
func (r *Records) EachStatement(ctx context.Context, fn func(donations.PublishedStatement) error) error {
	var keys [][2]string
	if err := eachDoc(ctx, r.db, collLedgerStatements, "export statements", func(d *statementDoc) [2]string { return [2]string{d.Org, d.Month} },
		func(k [2]string) error { keys = append(keys, k); return nil }); err != nil {
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
	var bad error
	err := eachDoc(ctx, r.db, collLedgerCorrections, "export corrections", func(d *correctionDoc) migrate.Correction {
		c := migrate.Correction{Org: d.Org, Month: d.Month}
		_, seq, _ := strings.Cut(d.Entry, ":")
		n, err := strconv.ParseInt(seq, 10, 64)
		if err != nil && bad == nil {
			bad = fmt.Errorf("correction %s: entry %q: %w", d.ID, d.Entry, err)
		}
		c.Seq = n
		return c
	}, fn)
	if err == nil {
		err = bad
	}
	return err
}

// PutCorrections implements migrate.Store.
func (r *Records) PutCorrections(ctx context.Context, cs []migrate.Correction) error {
	return insertAbsent(ctx, r.db, collLedgerCorrections, "import corrections", mapAll(cs, func(c migrate.Correction) correctionDoc {
		return correctionDoc{ID: fmt.Sprintf("%s:%s:%010d", c.Org, c.Month, c.Seq), Org: c.Org, Month: c.Month, Entry: LedgerEntryID(c.Org, c.Seq)}
	}))
}

// EachAlert implements migrate.Store.
func (r *Records) EachAlert(ctx context.Context, fn func(donations.Alert) error) error {
	return eachDoc(ctx, r.db, collLedgerAlerts, "export alerts", func(d *ledgerAlertDoc) donations.Alert { return d.alert() }, fn)
}

// PutAlerts implements migrate.Store.
func (r *Records) PutAlerts(ctx context.Context, as []donations.Alert) error {
	return insertAbsent(ctx, r.db, collLedgerAlerts, "import alerts", mapAll(as, func(a donations.Alert) ledgerAlertDoc {
		return ledgerAlertDoc{ID: a.ID, Rule: a.Rule, Org: a.Org, Period: a.Period, EntryID: a.EntryID, Detail: a.Detail, OrgName: a.OrgName,
			Division: a.Division, Date: a.Date, Status: a.Status, CaseNumber: a.CaseNumber, CreatedAt: utc(a.CreatedAt), FiledAt: utc(a.FiledAt)}
	}))
}
