package mongo

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/donations"
)

// collLedgerWarnings holds one document per warning hit, _id = donations.Hit.ID()
// (org:rule:period), so that a hit is recorded, and its case filed, once.
//
// Exactly-once filing without transactions (see warnings.Job): the warning is inserted
// first with status "filing" (a duplicate key means another run got there first), then
// the case is filed with the Idempotency-Key "warning:"+id, then the case number is set
// and the status becomes "filed". A crash before the update leaves the record "filing";
// the next run files again with the same key and the stored hit (so the same request),
// which intake answers with the case filed the first time: no second case.
const collLedgerWarnings = "ledger_warnings"

var errWarningNotFound = qingfeng.Errorf(qingfeng.ENOTFOUND, "预警记录不存在", "no such warning")

type ledgerWarningDoc struct {
	ID         string    `bson:"_id"`
	Rule       string    `bson:"rule"`
	Org        string    `bson:"org"`
	Period     string    `bson:"period"`
	EntryID    string    `bson:"entry_id"`
	Detail     string    `bson:"detail"`
	OrgName    string    `bson:"org_name"`
	Division   string    `bson:"division"`
	Date       string    `bson:"date"`
	Status     string    `bson:"status"`
	CaseNumber string    `bson:"case_number,omitempty"`
	CreatedAt  time.Time `bson:"created_at"`
	FiledAt    time.Time `bson:"filed_at,omitzero"`
}

func (d ledgerWarningDoc) warning() donations.Warning {
	return donations.Warning{ID: d.ID, Status: d.Status, CaseNumber: d.CaseNumber, CreatedAt: d.CreatedAt, FiledAt: d.FiledAt,
		Hit: donations.Hit{Rule: d.Rule, Org: d.Org, Period: d.Period, EntryID: d.EntryID, Detail: d.Detail,
			OrgName: d.OrgName, Division: d.Division, Date: d.Date}}
}

// RecordWarning inserts hit h, filed as caseNumber ("" for not yet: status "filing"),
// and reports whether it was new; a hit recorded before (same org, rule and period) is
// false with no error and leaves the stored record as it was.
func (s *LedgerStore) RecordWarning(ctx context.Context, h donations.Hit, caseNumber string, at time.Time) (bool, error) {
	if err := checkLedgerOrg(h.Org); err != nil {
		return false, err
	}
	d := ledgerWarningDoc{ID: h.ID(), Rule: h.Rule, Org: h.Org, Period: h.Period, EntryID: h.EntryID, Detail: h.Detail,
		OrgName: h.OrgName, Division: h.Division, Date: h.Date, Status: donations.WarningFiling, CreatedAt: at.UTC().Truncate(time.Millisecond)}
	if caseNumber != "" {
		d.Status, d.CaseNumber, d.FiledAt = donations.WarningFiled, caseNumber, d.CreatedAt
	}
	_, err := s.db.coll(collLedgerWarnings).InsertOne(ctx, d)
	if mongodrv.IsDuplicateKeyError(err) {
		return false, nil
	}
	if err != nil {
		return false, storeError("record warning", err, nil, nil)
	}
	return true, nil
}

// ClaimWarning records h as "filing" and returns the stored warning and whether this
// call created it. When it existed already, the stored warning is returned as it is:
// "filed" means done; "filing" means an earlier run stopped before finishing, and the
// caller should file it again (with the stored hit and the same idempotency key).
func (s *LedgerStore) ClaimWarning(ctx context.Context, h donations.Hit, at time.Time) (donations.Warning, bool, error) {
	created, err := s.RecordWarning(ctx, h, "", at)
	if err != nil {
		return donations.Warning{}, false, err
	}
	w, err := s.Warning(ctx, h.ID())
	return w, created, err
}

// MarkWarningFiled sets the case number of warning id and makes it "filed". It is
// idempotent; a warning filed already keeps its first case number.
func (s *LedgerStore) MarkWarningFiled(ctx context.Context, id, caseNumber string, at time.Time) error {
	_, err := s.db.updateOne(ctx, collLedgerWarnings, id, bson.M{"status": donations.WarningFiling},
		bson.M{"$set": bson.M{"status": donations.WarningFiled, "case_number": caseNumber, "filed_at": at.UTC().Truncate(time.Millisecond)}})
	return storeError("mark warning filed", err, nil, nil)
}

// Warning returns the stored warning id (org:rule:period).
func (s *LedgerStore) Warning(ctx context.Context, id string) (donations.Warning, error) {
	var d ledgerWarningDoc
	if err := s.db.coll(collLedgerWarnings).FindOne(ctx, bson.M{"_id": id}).Decode(&d); err != nil {
		return donations.Warning{}, storeError("read warning", err, errWarningNotFound, nil)
	}
	return d.warning(), nil
}

// PendingWarnings lists up to limit warnings left "filing", oldest first: those whose
// filing a crash interrupted. (A scan on FerretDB, which only pushes _id filters down;
// the collection is small.)
func (s *LedgerStore) PendingWarnings(ctx context.Context, limit int) ([]donations.Warning, error) {
	docs, err := findAll[ledgerWarningDoc](ctx, s.db, collLedgerWarnings, "list pending warnings", bson.M{"status": donations.WarningFiling},
		options.Find().SetSort(bson.D{asc("created_at"), asc("_id")}).SetLimit(int64(limit)))
	if err != nil {
		return nil, err
	}
	out := make([]donations.Warning, len(docs))
	for i, d := range docs {
		out[i] = d.warning()
	}
	return out, nil
}

// OrgWarnings lists the warnings of organization code (an _id range, so pushed down).
func (s *LedgerStore) OrgWarnings(ctx context.Context, code string) ([]donations.Warning, error) {
	if err := checkLedgerOrg(code); err != nil {
		return nil, err
	}
	docs, err := findAll[ledgerWarningDoc](ctx, s.db, collLedgerWarnings, "list warnings", bson.M{"_id": bson.M{"$gt": code + ":", "$lt": code + ";"}},
		options.Find().SetSort(bson.D{asc("_id")}))
	if err != nil {
		return nil, err
	}
	out := make([]donations.Warning, len(docs))
	for i, d := range docs {
		out[i] = d.warning()
	}
	return out, nil
}
