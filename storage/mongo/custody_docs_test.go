package mongo

import (
	"context"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/qingfeng-zj/qingfeng/custody"
)

// TestCustodyDocsKeepFieldNames: custody's types lost their bson tags (issue 12, item
// 7) and this package maps them to its own documents. Documents as production holds
// them — written with the names the tags had — must still read, and what the store
// writes must carry the same names.
func TestCustodyDocsKeepFieldNames(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		db := openTestDB(t, tg)
		s := NewRecipientStore(db)
		at := time.Date(2026, 3, 14, 1, 26, 53, 589_000_000, time.UTC)
		later := at.Add(time.Hour)

		recipient := bson.M{"_id": "rcp-1", "user_id": "u-1", "role": "custodian", "jurisdiction": "330782", "recipient": "age1pq1x",
			"label": "办公室电脑", "added_by": "u-admin", "added_at": at, "revoked_at": later, "revoked_by": "u-admin2"}
		disclosure := bson.M{"_id": "dis-1", "case_id": "case-1", "case": "QF-330782-2026-000001", "division": "330782001",
			"unit_division": "330100", "unit_id": "u-hz", "requester": "staff-1", "requester_recipient": "age1pq1req", "reason": "核实",
			"status": custody.Completed, "requested_at": at, "expires_at": later, "decided_by": "cust-1", "decided_at": at,
			"decision_reason": "同意", "completed_at": later, "cancelled_at": later, "cancel_reason": "注销", "resealed": []byte("age")}
		task := bson.M{"_id": "task-1", "case_id": "case-1", "case": "QF-330782-2026-000001", "division": "330782001", "target": "330100",
			"reason": "transfer", "reseal_to": bson.A{"age1pq1a", "age1pq1b"}, "status": custody.TaskDone, "created_at": at,
			"done_by": "cust-1", "done_at": later}
		for coll, doc := range map[string]bson.M{collRecipients: recipient, collDisclosures: disclosure, collResealTasks: task} {
			if _, err := db.coll(coll).InsertOne(ctx, doc); err != nil {
				t.Fatal(err)
			}
		}

		rs, err := s.All(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wantR := custody.Recipient{ID: "rcp-1", UserID: "u-1", Role: "custodian", Jurisdiction: "330782", Recipient: "age1pq1x",
			Label: "办公室电脑", AddedBy: "u-admin", AddedAt: at, RevokedAt: &later, RevokedBy: "u-admin2"}
		if len(rs) != 1 || !reflect.DeepEqual(rs[0], wantR) {
			t.Errorf("stored recipient reads as %+v\nwant %+v", rs, wantR)
		}
		d, err := s.Disclosure(ctx, "dis-1")
		if err != nil {
			t.Fatal(err)
		}
		wantD := custody.Disclosure{ID: "dis-1", CaseID: "case-1", Case: "QF-330782-2026-000001", Division: "330782001", UnitDivision: "330100",
			UnitID: "u-hz", Requester: "staff-1", RequesterRecipient: "age1pq1req", Reason: "核实", Status: custody.Completed,
			RequestedAt: at, ExpiresAt: later, DecidedBy: "cust-1", DecidedAt: &at, DecisionReason: "同意", CompletedAt: &later,
			CancelledAt: &later, CancelReason: "注销", Resealed: []byte("age")}
		if !reflect.DeepEqual(d, wantD) {
			t.Errorf("stored disclosure reads as %+v\nwant %+v", d, wantD)
		}
		tk, err := s.Task(ctx, "task-1")
		if err != nil {
			t.Fatal(err)
		}
		wantT := custody.ResealTask{ID: "task-1", CaseID: "case-1", Case: "QF-330782-2026-000001", Division: "330782001", Target: "330100",
			Reason: "transfer", ResealTo: []string{"age1pq1a", "age1pq1b"}, Status: custody.TaskDone, CreatedAt: at, DoneBy: "cust-1", DoneAt: &later}
		if !reflect.DeepEqual(tk, wantT) {
			t.Errorf("stored task reads as %+v\nwant %+v", tk, wantT)
		}

		// Written by the store: the same names.
		wantR.ID, wantR.Recipient = "rcp-2", "age1pq1y"
		wantD.ID = "dis-2"
		wantT.ID = "task-2"
		if err := s.Add(ctx, wantR); err != nil {
			t.Fatal(err)
		}
		if err := s.InsertDisclosure(ctx, wantD); err != nil {
			t.Fatal(err)
		}
		if err := s.InsertTask(ctx, wantT); err != nil {
			t.Fatal(err)
		}
		for coll, doc := range map[string]bson.M{collRecipients: recipient, collDisclosures: disclosure, collResealTasks: task} {
			id := doc["_id"].(string)
			id = id[:len(id)-1] + "2"
			var got bson.M
			if err := db.coll(coll).FindOne(ctx, bson.M{"_id": id}).Decode(&got); err != nil {
				t.Fatal(err)
			}
			if g, w := slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(doc)); !slices.Equal(g, w) {
				t.Errorf("%s: the store writes fields %v, production documents have %v", coll, g, w)
			}
		}
	})
}
