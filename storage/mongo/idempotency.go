package mongo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/intake"
)

// CounterStore keeps named counters (case numbers), one document per counter.
type CounterStore struct{ db *DB }

// NewCounterStore returns the counter store of db.
func NewCounterStore(db *DB) *CounterStore { return &CounterStore{db: db} }

type counterDoc struct {
	Seq int64 `bson:"seq"`
}

// NextSequence returns the next value of counter name, starting at 1.
func (s *CounterStore) NextSequence(ctx context.Context, name string) (int64, error) {
	update := bson.M{"$inc": bson.M{"seq": int64(1)}}
	var d counterDoc
	err := s.db.findOneAndUpdate(ctx, collCounters, name, update, true).Decode(&d)
	if mongodrv.IsDuplicateKeyError(err) {
		// Two first-ever upserts of the same counter can both try to insert; the
		// loser now finds the document and increments it.
		err = s.db.findOneAndUpdate(ctx, collCounters, name, update, true).Decode(&d)
	}
	if err != nil {
		return 0, storeError("next sequence "+name, err, nil, nil)
	}
	return d.Seq, nil
}

// ReturnSequence gives n back to counter name if it is still the last number taken,
// so that a case that could not be stored leaves no gap; it reports whether it did.
func (s *CounterStore) ReturnSequence(ctx context.Context, name string, n int64) (bool, error) {
	res, err := s.db.updateOne(ctx, collCounters, name, bson.M{"seq": n}, bson.M{"$inc": bson.M{"seq": int64(-1)}})
	if err != nil {
		return false, storeError("return sequence "+name, err, nil, nil)
	}
	return res.MatchedCount == 1, nil
}

// IdempotencyStore keeps the idempotency records of POST /v1/reports.
type IdempotencyStore struct{ db *DB }

// NewIdempotencyStore returns the idempotency store of db.
func NewIdempotencyStore(db *DB) *IdempotencyStore { return &IdempotencyStore{db: db} }

var (
	errIdemNotFound = qingfeng.Errorf(qingfeng.ENOTFOUND, "未找到该请求记录", "idempotency record not found")
	errIdemLost     = qingfeng.Errorf(qingfeng.ECONFLICT, "该请求已由另一次提交接手", "another attempt took over the idempotency key")
)

type idempotencyDoc struct {
	KeyHash     string `bson:"_id"`
	RequestHash string `bson:"request_hash"`
	// Owner and ClaimUntil are the claim of the attempt filing the case; Done is set
	// once the case is stored. A record without an owner was written before claims
	// existed, when the case was filed: it reads as done.
	Owner      string    `bson:"owner,omitempty"`
	ClaimUntil time.Time `bson:"claim_until"`
	Done       bool      `bson:"done"`
	CaseID     string    `bson:"case_id"`
	CaseNumber string    `bson:"case_number"`
	ReceiptEnc []byte    `bson:"receipt_enc"`
	CreatedAt  time.Time `bson:"created_at"`
	ExpiresAt  time.Time `bson:"expires_at"`
}

func toIdemDoc(r *intake.IdempotencyRecord) idempotencyDoc {
	return idempotencyDoc{
		KeyHash: r.KeyHash, RequestHash: r.RequestHash, Owner: r.Owner, ClaimUntil: utc(r.ClaimUntil), Done: r.Done,
		CaseID: r.CaseID, CaseNumber: r.CaseNumber, ReceiptEnc: r.ReceiptEnc,
		CreatedAt: utc(r.CreatedAt), ExpiresAt: utc(r.ExpiresAt),
	}
}

func fromIdemDoc(d idempotencyDoc) *intake.IdempotencyRecord {
	return &intake.IdempotencyRecord{
		KeyHash: d.KeyHash, RequestHash: d.RequestHash, Owner: d.Owner, ClaimUntil: d.ClaimUntil, Done: d.Done || d.Owner == "",
		CaseID: d.CaseID, CaseNumber: d.CaseNumber, ReceiptEnc: d.ReceiptEnc,
		CreatedAt: d.CreatedAt, ExpiresAt: d.ExpiresAt,
	}
}

// ClaimIdempotency claims r's key for r.Owner with one atomic step: the insert of a
// document whose _id is the key (the unique _id decides between concurrent
// attempts), the replacement of an expired record (the TTL monitor may not have
// removed it yet, and FerretDB has none), or the takeover of a claim on the same
// request whose ClaimUntil has passed (its attempt crashed), keeping the case id,
// number and receipt it recorded. It returns the record as it is afterwards: the
// caller holds the claim only if the returned Owner is r.Owner.
func (s *IdempotencyStore) ClaimIdempotency(ctx context.Context, r *intake.IdempotencyRecord) (*intake.IdempotencyRecord, error) {
	const op = "claim idempotency record"
	coll := s.db.coll(collIdempotency)
	d := toIdemDoc(r)
	// A record can vanish between the failed insert and the read (its owner released
	// it): then the insert is tried again, a bounded number of times.
	for range 3 {
		_, err := coll.InsertOne(ctx, d)
		if err == nil {
			return fromIdemDoc(d), nil
		}
		if !mongodrv.IsDuplicateKeyError(err) {
			return nil, storeError(op, err, nil, nil)
		}
		now := s.db.now().UTC()
		del, err := s.db.deleteOne(ctx, collIdempotency, r.KeyHash, bson.M{"expires_at": bson.M{"$lte": now}})
		if err != nil {
			return nil, storeError(op, err, nil, nil)
		}
		if del.DeletedCount == 1 {
			continue
		}
		if _, err := s.db.updateOne(ctx, collIdempotency, r.KeyHash,
			bson.M{"done": false, "owner": bson.M{"$gt": ""}, "request_hash": r.RequestHash, "claim_until": bson.M{"$lte": now}},
			bson.M{"$set": bson.M{"owner": r.Owner, "claim_until": utc(r.ClaimUntil)}}); err != nil {
			return nil, storeError(op, err, nil, nil)
		}
		var got idempotencyDoc
		err = coll.FindOne(ctx, bson.M{"_id": r.KeyHash}).Decode(&got)
		if errors.Is(err, mongodrv.ErrNoDocuments) {
			continue
		}
		if err != nil {
			return nil, storeError(op, err, nil, nil)
		}
		return fromIdemDoc(got), nil
	}
	return nil, fmt.Errorf("%s: the record kept changing", op)
}

// UpdateIdempotency records r's case, number, receipt, claim time and Done, if
// r.Owner still holds the claim; ECONFLICT if another attempt took it over.
func (s *IdempotencyStore) UpdateIdempotency(ctx context.Context, r *intake.IdempotencyRecord) error {
	res, err := s.db.updateOne(ctx, collIdempotency, r.KeyHash, bson.M{"owner": r.Owner}, bson.M{"$set": bson.M{
		"case_id": r.CaseID, "case_number": r.CaseNumber, "receipt_enc": r.ReceiptEnc,
		"claim_until": utc(r.ClaimUntil), "done": r.Done,
	}})
	if err != nil {
		return storeError("update idempotency record", err, nil, nil)
	}
	if res.MatchedCount == 0 {
		return errIdemLost
	}
	return nil
}

// ReleaseIdempotency removes the record with key keyHash if owner holds its claim,
// so that a retry starts afresh; someone else's record is left alone, and a missing
// one is not an error.
func (s *IdempotencyStore) ReleaseIdempotency(ctx context.Context, keyHash, owner string) error {
	if owner == "" {
		return fmt.Errorf("release idempotency record: no owner")
	}
	if _, err := s.db.deleteOne(ctx, collIdempotency, keyHash, bson.M{"owner": owner}); err != nil {
		return storeError("release idempotency record", err, nil, nil)
	}
	return nil
}

// Idempotency returns the live record with key keyHash.
func (s *IdempotencyStore) Idempotency(ctx context.Context, keyHash string) (*intake.IdempotencyRecord, error) {
	var d idempotencyDoc
	err := s.db.coll(collIdempotency).FindOne(ctx, bson.M{
		"_id":        keyHash,
		"expires_at": bson.M{"$gt": s.db.now().UTC()},
	}).Decode(&d)
	if err != nil {
		return nil, storeError("find idempotency record", err, errIdemNotFound, nil)
	}
	return fromIdemDoc(d), nil
}
