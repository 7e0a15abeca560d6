package mongo

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/outbox"
)

const collDeliveries = "deliveries"

// OutboxStore delivers case events: the case store writes each event into its case's
// document in the same update as the change (withEvent); Relay moves them into the
// deliveries collection, one delivery per webhook, and the dispatcher works those off.
type OutboxStore struct{ db *DB }

// NewOutboxStore returns the outbox store of db.
func NewOutboxStore(db *DB) *OutboxStore { return &OutboxStore{db: db} }

// outboxEventDoc is an event waiting in its case document for the relay.
type outboxEventDoc struct {
	ID   string            `bson:"id"`
	Type string            `bson:"type"`
	Case string            `bson:"case"`
	Unit string            `bson:"unit"`
	At   time.Time         `bson:"at"`
	Data map[string]string `bson:"data,omitempty"`
}

func newEvent(typ, number, unit string, at time.Time, data map[string]string) outboxEventDoc {
	return outboxEventDoc{ID: intake.NewID(), Type: typ, Case: number, Unit: unit, At: at.UTC(), Data: data}
}

// withEvent adds e to an update: pushed onto the case's outbox in the same
// single-document update as the change it describes.
func withEvent(update bson.M, e outboxEventDoc) bson.M {
	push, _ := update["$push"].(bson.M)
	if push == nil {
		push = bson.M{}
	}
	push["outbox"] = e
	update["$push"] = push
	inc, _ := update["$inc"].(bson.M)
	if inc == nil {
		inc = bson.M{}
	}
	inc["outbox_n"] = int64(1)
	update["$inc"] = inc
	return update
}

type deliveryDoc struct {
	ID        string         `bson:"_id"` // event id + ":" + webhook
	EventID   string         `bson:"event_id"`
	Webhook   string         `bson:"webhook"`
	Status    string         `bson:"status"` // pending, done, failed
	Attempts  int            `bson:"attempts"`
	NextAt    time.Time      `bson:"next_at"`
	LastError string         `bson:"last_error,omitempty"`
	DoneAt    *time.Time     `bson:"done_at,omitempty"`
	Event     outboxEventDoc `bson:"event"`
}

// Relay implements outbox.Store: each waiting event becomes one delivery per webhook
// (ids make a second relay of the same event a no-op), then the case's outbox is
// emptied — only if no event joined it meanwhile (outbox_n unchanged); otherwise the
// next run relays again, and the deliveries already made stay single.
func (s *OutboxStore) Relay(ctx context.Context, webhooks []string, now time.Time, limit int) (int, error) {
	cur, err := s.db.coll(collCases).Find(ctx, bson.M{"outbox_n": bson.M{"$gt": 0}},
		options.Find().SetProjection(bson.M{"_id": 1, "outbox": 1, "outbox_n": 1}).SetLimit(int64(limit)))
	if err != nil {
		return 0, storeError("find outbox events", err, nil, nil)
	}
	var docs []struct {
		ID      string           `bson:"_id"`
		Outbox  []outboxEventDoc `bson:"outbox"`
		OutboxN int64            `bson:"outbox_n"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return 0, storeError("find outbox events", err, nil, nil)
	}
	now = now.UTC()
	n := 0
	for _, d := range docs {
		for _, e := range d.Outbox {
			for _, w := range webhooks {
				_, err := s.db.coll(collDeliveries).InsertOne(ctx, deliveryDoc{ID: e.ID + ":" + w, EventID: e.ID, Webhook: w,
					Status: "pending", NextAt: now, Event: e})
				if err != nil && !mongodrv.IsDuplicateKeyError(err) {
					return n, storeError("relay event "+e.ID, err, nil, nil)
				}
			}
			n++
		}
		if _, err := s.db.updateOne(ctx, collCases, d.ID, bson.M{"outbox_n": d.OutboxN},
			bson.M{"$set": bson.M{"outbox": bson.A{}, "outbox_n": int64(0)}}); err != nil {
			return n, storeError("relay events of "+d.ID, err, nil, nil)
		}
	}
	return n, nil
}

// Due implements outbox.Store.
func (s *OutboxStore) Due(ctx context.Context, now time.Time, limit int) ([]outbox.Delivery, error) {
	docs, err := findAll[deliveryDoc](ctx, s.db, collDeliveries, "find due deliveries", bson.M{"status": "pending", "next_at": bson.M{"$lte": now.UTC()}},
		options.Find().SetSort(bson.D{asc("next_at"), asc("_id")}).SetLimit(int64(limit)))
	if err != nil {
		return nil, err
	}
	out := make([]outbox.Delivery, 0, len(docs))
	for _, d := range docs {
		out = append(out, outbox.Delivery{EventID: d.EventID, Webhook: d.Webhook, Attempts: d.Attempts,
			Event: outbox.Event{ID: d.Event.ID, Type: d.Event.Type, Case: d.Event.Case, Unit: d.Event.Unit, At: d.Event.At, Data: d.Event.Data}})
	}
	return out, nil
}

// Delivered implements outbox.Store.
func (s *OutboxStore) Delivered(ctx context.Context, d outbox.Delivery, at time.Time) error {
	at = at.UTC()
	_, err := s.db.updateOne(ctx, collDeliveries, d.EventID+":"+d.Webhook, bson.M{"status": "pending"},
		bson.M{"$set": bson.M{"status": "done", "done_at": at}, "$inc": bson.M{"attempts": 1}})
	return storeError("record delivery", err, nil, nil)
}

// Failed implements outbox.Store.
func (s *OutboxStore) Failed(ctx context.Context, d outbox.Delivery, at, next time.Time, reason string) error {
	set := bson.M{"last_error": reason, "next_at": next.UTC()}
	if next.IsZero() {
		set["status"] = "failed"
	}
	_, err := s.db.updateOne(ctx, collDeliveries, d.EventID+":"+d.Webhook, bson.M{"status": "pending"},
		bson.M{"$set": set, "$inc": bson.M{"attempts": 1}})
	return storeError("record failed delivery", err, nil, nil)
}
