package mongo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/custody"
)

const collRecipients = "recipients"

// RecipientStore keeps registered recipients.
type RecipientStore struct{ db *DB }

// NewRecipientStore returns the recipient store of db.
func NewRecipientStore(db *DB) *RecipientStore { return &RecipientStore{db: db} }

// recipientDoc is a custody.Recipient as stored. The field names are the
// collection's: renaming one is a data migration.
type recipientDoc struct {
	ID           string     `bson:"_id"`
	UserID       string     `bson:"user_id"`
	Role         string     `bson:"role"`
	Jurisdiction string     `bson:"jurisdiction"`
	Recipient    string     `bson:"recipient"`
	Label        string     `bson:"label,omitempty"`
	AddedBy      string     `bson:"added_by"`
	AddedAt      time.Time  `bson:"added_at"`
	RevokedAt    *time.Time `bson:"revoked_at,omitempty"`
	RevokedBy    string     `bson:"revoked_by,omitempty"`
}

func toRecipientDoc(r custody.Recipient) recipientDoc {
	return recipientDoc{ID: r.ID, UserID: r.UserID, Role: r.Role, Jurisdiction: r.Jurisdiction, Recipient: r.Recipient, Label: r.Label,
		AddedBy: r.AddedBy, AddedAt: r.AddedAt.UTC(), RevokedAt: utcPtr(r.RevokedAt), RevokedBy: r.RevokedBy}
}

func (d recipientDoc) recipient() custody.Recipient {
	return custody.Recipient{ID: d.ID, UserID: d.UserID, Role: d.Role, Jurisdiction: d.Jurisdiction, Recipient: d.Recipient, Label: d.Label,
		AddedBy: d.AddedBy, AddedAt: d.AddedAt, RevokedAt: d.RevokedAt, RevokedBy: d.RevokedBy}
}

var errRecipientNotFound = qingfeng.Errorf(qingfeng.ENOTFOUND, "公钥登记不存在", "no such recipient")

// collRecipientClaims holds one document per age recipient ever registered, keyed by
// its SHA-256: the unique _id makes "one key, one holder" hold under concurrent
// registrations, on every server (no partial or sparse index needed). A claim is never
// released, so a revoked key cannot be registered again.
const collRecipientClaims = "recipient_claims"

var errRecipientTaken = qingfeng.Errorf(qingfeng.ECONFLICT, "该公钥已登记，一把密钥只能属于一人", "this recipient is registered; one key has one holder")

// Add stores r after claiming its recipient; ECONFLICT if it was ever claimed.
func (s *RecipientStore) Add(ctx context.Context, r custody.Recipient) error {
	r.AddedAt = r.AddedAt.UTC()
	sum := sha256.Sum256([]byte(r.Recipient))
	claim := bson.M{"_id": hex.EncodeToString(sum[:]), "recipient_id": r.ID, "user_id": r.UserID, "at": r.AddedAt}
	if _, err := s.db.coll(collRecipientClaims).InsertOne(ctx, claim); err != nil {
		return storeError("claim recipient", err, nil, errRecipientTaken)
	}
	_, err := s.db.coll(collRecipients).InsertOne(ctx, toRecipientDoc(r))
	if err != nil {
		// Release the claim of a key that was not registered after all.
		_, _ = s.db.coll(collRecipientClaims).DeleteOne(ctx, bson.M{"_id": claim["_id"], "recipient_id": r.ID})
	}
	return storeError("add recipient", err, nil, errRecipientTaken)
}

// Revoke marks recipient id revoked; revoking twice is ECONFLICT.
func (s *RecipientStore) Revoke(ctx context.Context, id, by string, at time.Time) (custody.Recipient, error) {
	res, err := s.db.updateOne(ctx, collRecipients, id, bson.M{"revoked_at": bson.M{"$exists": false}},
		bson.M{"$set": bson.M{"revoked_at": at.UTC(), "revoked_by": by}})
	if err != nil {
		return custody.Recipient{}, storeError("revoke recipient", err, nil, nil)
	}
	var r recipientDoc
	if err := s.db.coll(collRecipients).FindOne(ctx, bson.M{"_id": id}).Decode(&r); err != nil {
		return custody.Recipient{}, storeError("revoke recipient", err, errRecipientNotFound, nil)
	}
	if res.MatchedCount == 0 {
		return custody.Recipient{}, qingfeng.Errorf(qingfeng.ECONFLICT, "该公钥已注销", "the recipient is already revoked")
	}
	return r.recipient(), nil
}

// All lists every recipient, revoked ones included, oldest first.
func (s *RecipientStore) All(ctx context.Context) ([]custody.Recipient, error) {
	docs, err := findAll[recipientDoc](ctx, s.db, collRecipients, "list recipients", bson.M{}, options.Find().SetSort(bson.D{asc("added_at"), asc("_id")}))
	if err != nil {
		return nil, err
	}
	var out []custody.Recipient
	for _, d := range docs {
		out = append(out, d.recipient())
	}
	return out, nil
}
