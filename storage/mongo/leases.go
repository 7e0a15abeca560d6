package mongo

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
)

const collLeases = "leases"

// LeaseStore keeps the leases of periodic jobs (escalation, retention, the outbox, the
// donation alerts): one document per lease, taken when free or expired, renewed by
// its holder.
type LeaseStore struct{ db *DB }

// NewLeaseStore returns the lease store of db.
func NewLeaseStore(db *DB) *LeaseStore { return &LeaseStore{db: db} }

// AcquireLease takes lease name for holder until until if it is free, expired (its
// until before now) or already holder's: a conditional update, or an insert that the
// unique _id decides between concurrent takers.
func (s *LeaseStore) AcquireLease(ctx context.Context, name, holder string, now, until time.Time) (bool, error) {
	now, until = now.UTC(), until.UTC()
	res, err := s.db.updateOne(ctx, collLeases, name,
		bson.M{"$or": bson.A{bson.M{"until": bson.M{"$lt": now}}, bson.M{"holder": holder}}},
		bson.M{"$set": bson.M{"holder": holder, "until": until}})
	if err != nil {
		return false, storeError("renew lease "+name, err, nil, nil)
	}
	if res.MatchedCount == 1 {
		return true, nil
	}
	_, err = s.db.coll(collLeases).InsertOne(ctx, bson.M{"_id": name, "holder": holder, "until": until})
	if mongodrv.IsDuplicateKeyError(err) {
		return false, nil // held by someone else
	}
	if err != nil {
		return false, storeError("take lease "+name, err, nil, nil)
	}
	return true, nil
}

// ReleaseLease gives up holder's lease name (a no-op when another holds it), so that
// another instance can take it at once instead of waiting for it to lapse.
func (s *LeaseStore) ReleaseLease(ctx context.Context, name, holder string) error {
	_, err := s.db.coll(collLeases).DeleteOne(ctx, bson.M{"_id": name, "holder": holder})
	return storeError("release lease "+name, err, nil, nil)
}
