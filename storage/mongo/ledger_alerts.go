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

// collLedgerAlerts holds one document per alert hit (预警), _id = donations.Hit.ID()
// (org:rule:period), so that a hit is recorded, and its case filed, once.
//
// Exactly-once filing without transactions (see donations/alertjob.go): the alert is inserted
// first with status "filing" (a duplicate key means another run got there first), then
// the case is filed with the Idempotency-Key "alert:"+id, then the case number is set
// and the status becomes "filed". A crash before the update leaves the record "filing";
// the next run files again with the same key and the stored hit (so the same request),
// which intake answers with the case filed the first time: no second case.
const collLedgerAlerts = "ledger_alerts"

var errAlertNotFound = qingfeng.Errorf(qingfeng.ENOTFOUND, "预警记录不存在", "no such alert")

type ledgerAlertDoc struct {
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

func (d ledgerAlertDoc) alert() donations.Alert {
	return donations.Alert{ID: d.ID, Status: d.Status, CaseNumber: d.CaseNumber, CreatedAt: d.CreatedAt, FiledAt: d.FiledAt,
		Hit: donations.Hit{Rule: d.Rule, Org: d.Org, Period: d.Period, EntryID: d.EntryID, Detail: d.Detail,
			OrgName: d.OrgName, Division: d.Division, Date: d.Date}}
}

// RecordAlert inserts hit h, filed as caseNumber ("" for not yet: status "filing"),
// and reports whether it was new; a hit recorded before (same org, rule and period) is
// false with no error and leaves the stored record as it was.
func (s *LedgerStore) RecordAlert(ctx context.Context, h donations.Hit, caseNumber string, at time.Time) (bool, error) {
	if err := checkLedgerOrg(h.Org); err != nil {
		return false, err
	}
	d := ledgerAlertDoc{ID: h.ID(), Rule: h.Rule, Org: h.Org, Period: h.Period, EntryID: h.EntryID, Detail: h.Detail,
		OrgName: h.OrgName, Division: h.Division, Date: h.Date, Status: donations.AlertFiling, CreatedAt: at.UTC().Truncate(time.Millisecond)}
	if caseNumber != "" {
		d.Status, d.CaseNumber, d.FiledAt = donations.AlertFiled, caseNumber, d.CreatedAt
	}
	_, err := s.db.coll(collLedgerAlerts).InsertOne(ctx, d)
	if mongodrv.IsDuplicateKeyError(err) {
		return false, nil
	}
	if err != nil {
		return false, storeError("record alert", err, nil, nil)
	}
	return true, nil
}

// ClaimAlert records h as "filing" and returns the stored alert and whether this
// call created it. When it existed already, the stored alert is returned as it is:
// "filed" means done; "filing" means an earlier run stopped before finishing, and the
// caller should file it again (with the stored hit and the same idempotency key).
func (s *LedgerStore) ClaimAlert(ctx context.Context, h donations.Hit, at time.Time) (donations.Alert, bool, error) {
	created, err := s.RecordAlert(ctx, h, "", at)
	if err != nil {
		return donations.Alert{}, false, err
	}
	w, err := s.Alert(ctx, h.ID())
	return w, created, err
}

// MarkAlertFiled sets the case number of alert id and makes it "filed". It is
// idempotent; an alert filed already keeps its first case number.
func (s *LedgerStore) MarkAlertFiled(ctx context.Context, id, caseNumber string, at time.Time) error {
	_, err := s.db.updateOne(ctx, collLedgerAlerts, id, bson.M{"status": donations.AlertFiling},
		bson.M{"$set": bson.M{"status": donations.AlertFiled, "case_number": caseNumber, "filed_at": at.UTC().Truncate(time.Millisecond)}})
	return storeError("mark alert filed", err, nil, nil)
}

// Alert returns the stored alert id (org:rule:period).
func (s *LedgerStore) Alert(ctx context.Context, id string) (donations.Alert, error) {
	var d ledgerAlertDoc
	if err := s.db.coll(collLedgerAlerts).FindOne(ctx, bson.M{"_id": id}).Decode(&d); err != nil {
		return donations.Alert{}, storeError("read alert", err, errAlertNotFound, nil)
	}
	return d.alert(), nil
}

// PendingAlerts lists up to limit alerts left "filing", oldest first: those whose
// filing a crash interrupted. (A scan on FerretDB, which only pushes _id filters down;
// the collection is small.)
func (s *LedgerStore) PendingAlerts(ctx context.Context, limit int) ([]donations.Alert, error) {
	docs, err := findAll[ledgerAlertDoc](ctx, s.db, collLedgerAlerts, "list pending alerts", bson.M{"status": donations.AlertFiling},
		options.Find().SetSort(bson.D{asc("created_at"), asc("_id")}).SetLimit(int64(limit)))
	if err != nil {
		return nil, err
	}
	out := make([]donations.Alert, len(docs))
	for i, d := range docs {
		out[i] = d.alert()
	}
	return out, nil
}

// OrgAlerts lists the alerts of organization code (an _id range, so pushed down).
func (s *LedgerStore) OrgAlerts(ctx context.Context, code string) ([]donations.Alert, error) {
	if err := checkLedgerOrg(code); err != nil {
		return nil, err
	}
	docs, err := findAll[ledgerAlertDoc](ctx, s.db, collLedgerAlerts, "list alerts", bson.M{"_id": bson.M{"$gt": code + ":", "$lt": code + ";"}},
		options.Find().SetSort(bson.D{asc("_id")}))
	if err != nil {
		return nil, err
	}
	out := make([]donations.Alert, len(docs))
	for i, d := range docs {
		out[i] = d.alert()
	}
	return out, nil
}
