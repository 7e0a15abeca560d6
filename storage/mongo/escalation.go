package mongo

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/qingfeng-zj/qingfeng/triage"
)

const collNotifications = "notifications"

// overdueQueries are the steps with a deadline: the status a case waits in, and the
// field holding the date.
var overdueQueries = []struct{ kind, status, field string }{
	{"acceptance", "registered", "acceptance_due"},
	{"feedback", "concluded", "feedback_due"},
	{"transfer", "", "transfer.due"}, // a pending transfer, whatever the status
}

// OverdueSteps implements triage.EscalationStore. Dates are YYYY-MM-DD strings, which
// compare as dates.
func (s *CaseStore) OverdueSteps(ctx context.Context, today string, limit int) ([]triage.Overdue, error) {
	var out []triage.Overdue
	for _, q := range overdueQueries {
		filter := bson.M{q.field: bson.M{"$gt": "", "$lt": today}, "escalated": bson.M{"$ne": q.kind}}
		if q.status != "" {
			filter["status"] = q.status
		}
		cur, err := s.db.coll(collCases).Find(ctx, filter, options.Find().SetProjection(
			bson.M{"_id": 1, "number": 1, "unit_id": 1, "acceptance_due": 1, "feedback_due": 1, "transfer": 1}).SetLimit(int64(limit)))
		if err != nil {
			return nil, storeError("find overdue "+q.kind, err, nil, nil)
		}
		var docs []struct {
			ID            string       `bson:"_id"`
			Number        string       `bson:"number"`
			UnitID        string       `bson:"unit_id"`
			AcceptanceDue string       `bson:"acceptance_due"`
			FeedbackDue   string       `bson:"feedback_due"`
			Transfer      *transferDoc `bson:"transfer"`
		}
		if err := cur.All(ctx, &docs); err != nil {
			return nil, storeError("find overdue "+q.kind, err, nil, nil)
		}
		for _, d := range docs {
			o := triage.Overdue{CaseID: d.ID, Number: d.Number, UnitID: d.UnitID, Kind: q.kind}
			switch q.kind {
			case "acceptance":
				o.Due = d.AcceptanceDue
			case "feedback":
				o.Due = d.FeedbackDue
			case "transfer":
				if d.Transfer == nil {
					continue
				}
				o.Due, o.Key = d.Transfer.Due, fmt.Sprintf("transfer@%d", d.Transfer.At.UnixMilli())
			}
			out = append(out, o)
		}
	}
	return out, nil
}

type notificationDoc struct {
	ID        string    `bson:"_id"`
	UnitID    string    `bson:"unit_id"`
	Case      string    `bson:"case"`
	CaseUnit  string    `bson:"case_unit"`
	Kind      string    `bson:"kind"`
	Due       string    `bson:"due"`
	CreatedAt time.Time `bson:"created_at"`
}

// Escalate implements triage.EscalationStore: the notification first (its _id is the
// case and step, so a second is a duplicate key), then the case's mark. A crash in
// between leaves the notification and an unmarked case, which the next run marks
// without notifying again.
func (s *CaseStore) Escalate(ctx context.Context, o triage.Overdue, n triage.Notification) (bool, error) {
	created, err := s.notify(ctx, n)
	if err != nil {
		return false, err
	}
	// The mark does not bump the case's version: it changes nothing staff decide on,
	// and must not make a staff member's concurrent step fail.
	if _, err := s.db.updateOne(ctx, collCases, o.CaseID, bson.M{"escalated": bson.M{"$ne": o.Kind}},
		withEvent(bson.M{"$addToSet": bson.M{"escalated": o.Kind}},
			newEvent("case.overdue", o.Number, o.UnitID, n.CreatedAt, map[string]string{"kind": o.Kind, "due": o.Due, "notified": n.UnitID}))); err != nil {
		return false, storeError("mark overdue "+o.Number, err, nil, nil)
	}
	return created, nil
}

// notify records n unless a notification with its id exists; it reports whether it did.
func (s *CaseStore) notify(ctx context.Context, n triage.Notification) (bool, error) {
	_, err := s.db.coll(collNotifications).InsertOne(ctx, notificationDoc{ID: n.ID, UnitID: n.UnitID, Case: n.Case,
		CaseUnit: n.CaseUnit, Kind: n.Kind, Due: n.Due, CreatedAt: n.CreatedAt.UTC()})
	if err != nil && !mongodrv.IsDuplicateKeyError(err) {
		return false, storeError("notify "+n.ID, err, nil, nil)
	}
	return err == nil, nil
}

// Notifications lists a unit's notifications, newest first.
func (s *CaseStore) Notifications(ctx context.Context, unitID string, limit int) ([]triage.Notification, error) {
	docs, err := findAll[notificationDoc](ctx, s.db, collNotifications, "list notifications", bson.M{"unit_id": unitID},
		options.Find().SetSort(bson.D{desc("created_at"), asc("_id")}).SetLimit(int64(limit)))
	if err != nil {
		return nil, err
	}
	out := make([]triage.Notification, 0, len(docs))
	for _, d := range docs {
		out = append(out, triage.Notification{ID: d.ID, UnitID: d.UnitID, Case: d.Case, CaseUnit: d.CaseUnit, Kind: d.Kind, Due: d.Due, CreatedAt: d.CreatedAt})
	}
	return out, nil
}
