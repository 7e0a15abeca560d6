package mongo

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/donations"
)

const collLedgerIdem = "ledger_idempotency"

// ledgerInFlight is how long a first attempt is assumed to be still appending: a
// retry within it is told to wait rather than append a second entry.
const ledgerInFlight = 30 * time.Second

type ledgerIdemDoc struct {
	ID          string    `bson:"_id"` // "<credit code>:<key hash>"
	RequestHash string    `bson:"request_hash"`
	EntryID     string    `bson:"entry_id,omitempty"`
	CreatedAt   time.Time `bson:"created_at"`
}

// KeyUsed reports whether code's idempotency key keyHash is claimed: by an attempt
// that appended, or one that may still be appending.
func (s *LedgerStore) KeyUsed(ctx context.Context, code, keyHash string) (bool, error) {
	n, err := s.db.coll(collLedgerIdem).CountDocuments(ctx, bson.M{"_id": code + ":" + keyHash}, options.Count().SetLimit(1))
	if err != nil {
		return false, storeError("read idempotency record", err, nil, nil)
	}
	return n > 0, nil
}

// AppendOnce is Append for a request carrying an Idempotency-Key (keyHash, a hash of
// it; reqHash, a hash of the request): a retry returns the entry the first attempt
// appended (replayed true) instead of appending another. The key is claimed with a
// unique _id before appending, so two concurrent attempts cannot both append; the
// entry carries the key too, so an attempt that stopped between appending and
// recording the entry is found again.
func (s *LedgerStore) AppendOnce(ctx context.Context, code, keyHash, reqHash string, e donations.Entry, check func(donations.Balance) error) (donations.Entry, bool, error) {
	id := code + ":" + keyHash
	now := s.now().UTC()
	_, err := s.db.coll(collLedgerIdem).InsertOne(ctx, ledgerIdemDoc{ID: id, RequestHash: reqHash, CreatedAt: now})
	switch {
	case mongodrv.IsDuplicateKeyError(err):
		var d ledgerIdemDoc
		if err := s.db.coll(collLedgerIdem).FindOne(ctx, bson.M{"_id": id}).Decode(&d); err != nil {
			return donations.Entry{}, false, storeError("read idempotency record", err, nil, nil)
		}
		if d.RequestHash != reqHash {
			return donations.Entry{}, false, qingfeng.Errorf(qingfeng.ECONFLICT, "该幂等键已用于另一条记录", "this Idempotency-Key was used for a different entry")
		}
		if d.EntryID != "" {
			got, err := s.Entry(ctx, code, d.EntryID)
			return got, true, err
		}
		// The first attempt has not recorded its entry: it is still appending, or it
		// stopped. An entry carrying the key means it appended.
		var found ledgerEntryDoc
		err := s.db.coll(collLedger).FindOne(ctx, bson.M{"org": code, "idem": keyHash}).Decode(&found)
		if err == nil {
			_, _ = s.db.updateOne(ctx, collLedgerIdem, id, nil, bson.M{"$set": bson.M{"entry_id": found.ID}})
			return found.entry(), true, nil
		}
		if err != mongodrv.ErrNoDocuments {
			return donations.Entry{}, false, storeError("find idempotent entry", err, nil, nil)
		}
		if now.Sub(d.CreatedAt) < ledgerInFlight {
			return donations.Entry{}, false, qingfeng.Errorf(qingfeng.ECONFLICT, "相同的请求正在处理中，请稍后重试", "the same request is being processed; retry shortly")
		}
	case err != nil:
		return donations.Entry{}, false, storeError("claim idempotency key", err, nil, nil)
	}
	e.IdempotencyKey = keyHash
	got, err := s.Append(ctx, code, e, check)
	if err != nil {
		// If nothing was appended (the entry was refused, say), free the key so that
		// the same request may be sent again; an error that came after the insert
		// leaves the entry, which a retry then finds.
		dctx := context.WithoutCancel(ctx)
		var found ledgerEntryDoc
		if ferr := s.db.coll(collLedger).FindOne(dctx, bson.M{"org": code, "idem": keyHash}).Decode(&found); ferr == mongodrv.ErrNoDocuments {
			_, _ = s.db.coll(collLedgerIdem).DeleteOne(dctx, bson.M{"_id": id, "entry_id": bson.M{"$exists": false}})
		}
		return donations.Entry{}, false, err
	}
	_, _ = s.db.updateOne(ctx, collLedgerIdem, id, nil, bson.M{"$set": bson.M{"entry_id": got.ID}})
	return got, false, nil
}
