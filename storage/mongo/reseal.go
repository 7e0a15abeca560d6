package mongo

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/custody"
	"github.com/qingfeng-zj/qingfeng/intake"
)

const collResealTasks = "reseal_tasks"

var _ custody.ResealStore = (*RecipientStore)(nil)

// InsertTask implements custody.ResealStore.
func (s *RecipientStore) InsertTask(ctx context.Context, t custody.ResealTask) error {
	t.CreatedAt = t.CreatedAt.UTC()
	_, err := s.db.coll(collResealTasks).InsertOne(ctx, t)
	return storeError("store reseal task", err, nil, nil)
}

// Task implements custody.ResealStore.
func (s *RecipientStore) Task(ctx context.Context, id string) (custody.ResealTask, error) {
	var t custody.ResealTask
	err := s.db.coll(collResealTasks).FindOne(ctx, bson.M{"_id": id}).Decode(&t)
	return t, storeError("load reseal task", err, qingfeng.Errorf(qingfeng.ENOTFOUND, "任务不存在", "no such task"), nil)
}

// PendingTasks implements custody.ResealStore.
func (s *RecipientStore) PendingTasks(ctx context.Context) ([]custody.ResealTask, error) {
	out, err := findAll[custody.ResealTask](ctx, s.db, collResealTasks, "list reseal tasks", bson.M{"status": "pending"}, options.Find().SetSort(bson.D{asc("created_at"), asc("_id")}))
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CompleteTask implements custody.ResealStore: the case's identity is replaced by one
// conditional update (only if it is still the one the custodian re-sealed), then the
// task is marked done. A crash between the two leaves a pending task whose identity
// is already re-sealed; doing it again is harmless.
func (s *RecipientStore) CompleteTask(ctx context.Context, t custody.ResealTask, old []byte, id intake.SealedIdentity, by string, at time.Time) error {
	res, err := s.db.updateOne(ctx, collCases, t.CaseID, bson.M{"identity.ciphertext": old},
		bson.M{"$set": bson.M{"identity": sealedIdentityDoc{Ciphertext: id.Ciphertext, Recipients: id.Recipients, SealedAt: at.UTC()},
			"updated_at": at.UTC()}})
	if err != nil {
		return storeError("reseal identity of "+t.Case, err, nil, nil)
	}
	if res.MatchedCount == 0 {
		return &qingfeng.Error{Code: qingfeng.ECONFLICT, Message: "身份密文已变化，请重新下载后再处理", English: "the identity changed meanwhile; download it again",
			Err: fmt.Errorf("reseal %s: identity changed", t.Case)}
	}
	_, err = s.db.updateOne(ctx, collResealTasks, t.ID, bson.M{"status": "pending"},
		bson.M{"$set": bson.M{"status": "done", "done_by": by, "done_at": at.UTC()}})
	return storeError("complete reseal task", err, nil, nil)
}

// OpenCasesWithIdentity lists cases that are not closed, carry a sealed identity and
// are in divisions starting with prefix.
func (s *CaseStore) OpenCasesWithIdentity(ctx context.Context, prefix string) ([]*intake.Case, error) {
	upper, ok := prefixUpperBound(prefix)
	if !ok {
		return nil, errBadDivision
	}
	docs, err := findAll[caseDoc](ctx, s.db, collCases, "list open cases with identities", bson.M{"location.division": bson.M{"$gte": prefix, "$lt": upper},
		"status": bson.M{"$ne": string(intake.StatusClosed)}, "identity": bson.M{"$exists": true}})
	if err != nil {
		return nil, err
	}
	out := make([]*intake.Case, 0, len(docs))
	for i := range docs {
		out = append(out, docs[i].toCase())
	}
	return out, nil
}
