package mongo

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/qingfeng-zj/qingfeng/stats"
)

// Statistics are counted in Go over one streamed query, not with aggregation
// pipelines, on both servers:
//   - FerretDB v1.24 implements neither $dateToString nor $substrCP (checked against
//     the embedded server), so the month in Asia/Shanghai and the county code
//     (first 6 digits of the division) cannot be grouped on there, and the on-time
//     rules (the first deciding transition compared with a due date) would need
//     $filter/$first and date arithmetic it lacks too;
//   - FerretDB scans the whole collection in Go for every filter but _id, so four
//     $group pipelines (category, division, status, month) would be four scans where
//     one Find is one;
//   - one code path on both servers is what this package does everywhere else.
//
// The Find projects only the fields the counting needs (statsProjection): never the
// description, subject, identity, receipt hash, address, evidence or messages. On
// MongoDB the unit_queue and division_received indexes serve the filter (all_queue
// a period alone). The cost is one small document per matching case over the wire,
// fine for the thousands of cases the embedded default is for, and for a county's
// cases on MongoDB.

// statsProjection is every field stats.Case needs, and no other.
var statsProjection = bson.M{
	"_id": 0, "category": 1, "location.division": 1, "status": 1, "received_at": 1, "real_name": 1,
	"acceptance_due": 1, "feedback_due": 1, "transitions.action": 1, "transitions.at": 1,
}

type statsDoc struct {
	Category string `bson:"category"`
	Location struct {
		Division string `bson:"division"`
	} `bson:"location"`
	Status        string    `bson:"status"`
	ReceivedAt    time.Time `bson:"received_at"`
	RealName      bool      `bson:"real_name"`
	AcceptanceDue string    `bson:"acceptance_due"`
	FeedbackDue   string    `bson:"feedback_due"`
	Transitions   []struct {
		Action string    `bson:"action"`
		At     time.Time `bson:"at"`
	} `bson:"transitions"`
}

// exportProjection is every field stats.ExportRow needs, and no other: no identity,
// receipt, description, subject, address, evidence, messages, or transitions (whose
// reasons are free text).
var exportProjection = bson.M{
	"_id": 0, "number": 1, "category": 1, "location.division": 1, "status": 1, "unit_id": 1, "real_name": 1,
	"received_at": 1, "acceptance_due": 1, "feedback_due": 1, "escalated": 1,
}

type exportDoc struct {
	Number   string `bson:"number"`
	Category string `bson:"category"`
	Location struct {
		Division string `bson:"division"`
	} `bson:"location"`
	Status        string    `bson:"status"`
	UnitID        string    `bson:"unit_id"`
	RealName      bool      `bson:"real_name"`
	ReceivedAt    time.Time `bson:"received_at"`
	AcceptanceDue string    `bson:"acceptance_due"`
	FeedbackDue   string    `bson:"feedback_due"`
	Escalated     []string  `bson:"escalated"`
}

// statsQuery turns a stats.Filter into a query: the unit if one is named, and the
// received_at range.
func statsQuery(f stats.Filter) bson.M {
	q := bson.M{}
	if f.UnitID != "" {
		q["unit_id"] = f.UnitID
	}
	r := bson.M{}
	if !f.From.IsZero() {
		r["$gte"] = f.From.UTC()
	}
	if !f.To.IsZero() {
		r["$lt"] = f.To.UTC()
	}
	if len(r) > 0 {
		q["received_at"] = r
	}
	return q
}

// Stats implements stats.Source: the cases of f counted by category, county, status
// and month received, and how their acceptance and feedback deadlines were kept as of
// now. See the comment above statsProjection for why it streams rather than aggregates.
func (s *CaseStore) Stats(ctx context.Context, f stats.Filter) (stats.Stats, error) {
	const op = "case statistics"
	cur, err := s.db.coll(collCases).Find(ctx, statsQuery(f), options.Find().SetProjection(statsProjection))
	if err != nil {
		return stats.Stats{}, storeError(op, err, nil, nil)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	t := stats.NewTally(s.db.now())
	for cur.Next(ctx) {
		var d statsDoc
		if err := cur.Decode(&d); err != nil {
			return stats.Stats{}, storeError(op, err, nil, nil)
		}
		c := stats.Case{Category: d.Category, Division: d.Location.Division, Status: d.Status, ReceivedAt: d.ReceivedAt,
			RealName: d.RealName, AcceptanceDue: d.AcceptanceDue, FeedbackDue: d.FeedbackDue,
			Steps: make([]stats.Step, 0, len(d.Transitions))}
		for _, tr := range d.Transitions {
			c.Steps = append(c.Steps, stats.Step{Action: tr.Action, At: tr.At})
		}
		t.Add(c)
	}
	if err := cur.Err(); err != nil {
		return stats.Stats{}, storeError(op, err, nil, nil)
	}
	return t.Result(), nil
}

// ExportCases implements stats.Source: the cases of f, oldest first, one row each,
// streamed from the cursor (never all in memory on this side). It stops at fn's first
// error and returns it unwrapped.
func (s *CaseStore) ExportCases(ctx context.Context, f stats.Filter, fn func(stats.ExportRow) error) error {
	const op = "export cases"
	// Oldest first, ties newest _id first: the reverse of the unit_queue and
	// all_queue indexes' order, which MongoDB walks backwards instead of sorting.
	cur, err := s.db.coll(collCases).Find(ctx, statsQuery(f), options.Find().
		SetProjection(exportProjection).
		SetSort(bson.D{asc("received_at"), desc("_id")}))
	if err != nil {
		return storeError(op, err, nil, nil)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	for cur.Next(ctx) {
		var d exportDoc
		if err := cur.Decode(&d); err != nil {
			return storeError(op, err, nil, nil)
		}
		if err := fn(stats.ExportRow{Number: d.Number, Category: d.Category, Division: d.Location.Division, Status: d.Status,
			UnitID: d.UnitID, RealName: d.RealName, ReceivedAt: d.ReceivedAt, AcceptanceDue: d.AcceptanceDue,
			FeedbackDue: d.FeedbackDue, Overdue: d.Escalated}); err != nil {
			return err
		}
	}
	return storeError(op, cur.Err(), nil, nil)
}
