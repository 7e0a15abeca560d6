package mongo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/qingfeng-zj/qingfeng/audit"
)

const collAudit = "audit"

// AuditStore keeps the audit log, one document per entry with the entry's Seq as its
// _id. The unique _id is what lets several servers append to one chain: of two
// inserts of the same Seq exactly one succeeds, on MongoDB and on FerretDB alike, so
// no lock and no transaction is needed. Entries are never updated or deleted here.
type AuditStore struct{ db *DB }

// NewAuditStore returns the audit store of db.
func NewAuditStore(db *DB) *AuditStore { return &AuditStore{db: db} }

type auditDoc struct {
	Seq    int64             `bson:"_id"`
	At     time.Time         `bson:"at"`
	Actor  string            `bson:"actor"`
	Role   string            `bson:"role,omitempty"`
	Action string            `bson:"action"`
	Case   string            `bson:"case,omitempty"`
	Detail map[string]string `bson:"detail,omitempty"`
	Prev   string            `bson:"prev"`
	Hash   string            `bson:"hash"`
}

func toAuditDoc(e audit.Entry) auditDoc {
	return auditDoc{Seq: e.Seq, At: e.At.UTC(), Actor: e.Actor, Role: e.Role, Action: e.Action, Case: e.Case,
		Detail: e.Detail, Prev: e.Prev, Hash: e.Hash}
}

func (d *auditDoc) entry() audit.Entry {
	return audit.Entry{Seq: d.Seq, At: d.At.UTC(), Actor: d.Actor, Role: d.Role, Action: d.Action, Case: d.Case,
		Detail: d.Detail, Prev: d.Prev, Hash: d.Hash}
}

// Append implements audit.Store.
func (s *AuditStore) Append(ctx context.Context, e audit.Entry) error {
	if !e.At.Equal(e.At.Truncate(time.Millisecond)) {
		// A BSON date keeps milliseconds: the entry read back would not match its hash.
		return fmt.Errorf("append audit entry %d: time %s is finer than a millisecond", e.Seq, e.At.Format(time.RFC3339Nano))
	}
	_, err := s.db.coll(collAudit).InsertOne(ctx, toAuditDoc(e))
	if mongodrv.IsDuplicateKeyError(err) {
		return fmt.Errorf("append audit entry %d: %w", e.Seq, audit.ErrSeqTaken)
	}
	return storeError(fmt.Sprintf("append audit entry %d", e.Seq), err, nil, nil)
}

// Get implements audit.Store.
func (s *AuditStore) Get(ctx context.Context, seq int64) (audit.Entry, error) {
	var d auditDoc
	err := s.db.coll(collAudit).FindOne(ctx, bson.M{"_id": seq}).Decode(&d)
	if errors.Is(err, mongodrv.ErrNoDocuments) {
		return audit.Entry{}, fmt.Errorf("read audit entry %d: %w", seq, audit.ErrNotFound)
	}
	if err != nil {
		return audit.Entry{}, storeError(fmt.Sprintf("read audit entry %d", seq), err, nil, nil)
	}
	return d.entry(), nil
}

// Last implements audit.Store.
func (s *AuditStore) Last(ctx context.Context) (audit.Entry, bool, error) {
	var d auditDoc
	err := s.db.coll(collAudit).FindOne(ctx, bson.M{}, options.FindOne().SetSort(bson.D{desc("_id")})).Decode(&d)
	if errors.Is(err, mongodrv.ErrNoDocuments) {
		return audit.Entry{}, false, nil
	}
	if err != nil {
		return audit.Entry{}, false, storeError("read the last audit entry", err, nil, nil)
	}
	return d.entry(), true, nil
}

// Each implements audit.Store. It streams: the cursor holds one batch at a time on
// MongoDB (FerretDB sorts the whole collection first, which verifying can afford). A
// document that does not decode as an entry — a field of the wrong type written by
// hand — stops it with *audit.MalformedError.
func (s *AuditStore) Each(ctx context.Context, fromSeq int64, fn func(audit.Entry) error) error {
	cur, err := s.db.coll(collAudit).Find(ctx, bson.M{"_id": bson.M{"$gte": fromSeq}},
		options.Find().SetSort(bson.D{asc("_id")}))
	if err != nil {
		return storeError("read the audit log", err, nil, nil)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	for cur.Next(ctx) {
		var d auditDoc
		if err := cur.Decode(&d); err != nil {
			seq, _ := cur.Current.Lookup("_id").AsInt64OK()
			return &audit.MalformedError{Seq: seq, Err: err}
		}
		if err := fn(d.entry()); err != nil {
			return err
		}
	}
	if err := cur.Err(); err != nil {
		return storeError("read the audit log", err, nil, nil)
	}
	return nil
}

// List implements audit.Store.
func (s *AuditStore) List(ctx context.Context, q audit.Query) ([]audit.Entry, error) {
	filter := bson.M{"_id": bson.M{"$gt": q.After}}
	if q.Case != "" {
		filter["case"] = q.Case
	}
	cur, err := s.db.coll(collAudit).Find(ctx, filter,
		options.Find().SetSort(bson.D{asc("_id")}).SetLimit(int64(q.Limit)))
	if err != nil {
		return nil, storeError("list audit entries", err, nil, nil)
	}
	var docs []auditDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, storeError("list audit entries", err, nil, nil)
	}
	out := make([]audit.Entry, len(docs))
	for i := range docs {
		out[i] = docs[i].entry()
	}
	return out, nil
}
