package mongo

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/custody"
)

const collDisclosures = "disclosures"

var _ custody.DisclosureStore = (*RecipientStore)(nil)

var errDisclosureNotFound = qingfeng.Errorf(qingfeng.ENOTFOUND, "申请不存在", "no such request")

// InsertDisclosure implements custody.DisclosureStore.
func (s *RecipientStore) InsertDisclosure(ctx context.Context, d custody.Disclosure) error {
	d.RequestedAt, d.ExpiresAt = d.RequestedAt.UTC(), d.ExpiresAt.UTC()
	_, err := s.db.coll(collDisclosures).InsertOne(ctx, d)
	return storeError("store disclosure request", err, nil, nil)
}

// Disclosure implements custody.DisclosureStore.
func (s *RecipientStore) Disclosure(ctx context.Context, id string) (custody.Disclosure, error) {
	var d custody.Disclosure
	err := s.db.coll(collDisclosures).FindOne(ctx, bson.M{"_id": id}).Decode(&d)
	return d, storeError("load disclosure "+id, err, errDisclosureNotFound, nil)
}

// UpdateDisclosure implements custody.DisclosureStore: one conditional update on the
// status and the expiry, so two custodians cannot both decide.
func (s *RecipientStore) UpdateDisclosure(ctx context.Context, id, from string, now time.Time, set map[string]any) error {
	res, err := s.db.updateOne(ctx, collDisclosures, id, bson.M{"status": from, "expires_at": bson.M{"$gt": now.UTC()}}, bson.M{"$set": set})
	if err != nil {
		return storeError("update disclosure "+id, err, nil, nil)
	}
	if res.MatchedCount == 0 {
		return qingfeng.Errorf(qingfeng.ECONFLICT, "申请已被处理或已过期", "the request was decided meanwhile or has expired")
	}
	return nil
}

// Disclosures implements custody.DisclosureStore.
func (s *RecipientStore) Disclosures(ctx context.Context, caseID string) ([]custody.Disclosure, error) {
	return s.findDisclosures(ctx, bson.M{"case_id": caseID})
}

// OpenDisclosures implements custody.DisclosureStore.
func (s *RecipientStore) OpenDisclosures(ctx context.Context) ([]custody.Disclosure, error) {
	return s.findDisclosures(ctx, bson.M{"status": bson.M{"$in": bson.A{custody.Pending, custody.Approved}}})
}

func (s *RecipientStore) findDisclosures(ctx context.Context, filter bson.M) ([]custody.Disclosure, error) {
	out, err := findAll[custody.Disclosure](ctx, s.db, collDisclosures, "list disclosures", filter, options.Find().
		SetSort(bson.D{asc("requested_at"), asc("_id")}).SetProjection(bson.M{"resealed": 0}))
	if err != nil {
		return nil, err
	}
	return out, nil
}
