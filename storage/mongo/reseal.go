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

// resealTaskDoc is a custody.ResealTask as stored. The field names are the
// collection's: renaming one is a data migration.
type resealTaskDoc struct {
	ID        string     `bson:"_id"`
	CaseID    string     `bson:"case_id"`
	Case      string     `bson:"case"`
	Division  string     `bson:"division"`
	Target    string     `bson:"target"`
	Reason    string     `bson:"reason"`
	ResealTo  []string   `bson:"reseal_to"`
	Status    string     `bson:"status"`
	CreatedAt time.Time  `bson:"created_at"`
	DoneBy    string     `bson:"done_by,omitempty"`
	DoneAt    *time.Time `bson:"done_at,omitempty"`
}

func toResealTaskDoc(t custody.ResealTask) resealTaskDoc {
	return resealTaskDoc{ID: t.ID, CaseID: t.CaseID, Case: t.Case, Division: t.Division, Target: t.Target, Reason: t.Reason,
		ResealTo: t.ResealTo, Status: t.Status, CreatedAt: t.CreatedAt.UTC(), DoneBy: t.DoneBy, DoneAt: utcPtr(t.DoneAt)}
}

func (d resealTaskDoc) task() custody.ResealTask {
	return custody.ResealTask{ID: d.ID, CaseID: d.CaseID, Case: d.Case, Division: d.Division, Target: d.Target, Reason: d.Reason,
		ResealTo: d.ResealTo, Status: d.Status, CreatedAt: d.CreatedAt, DoneBy: d.DoneBy, DoneAt: d.DoneAt}
}

func (s *RecipientStore) findTasks(ctx context.Context, op string, filter bson.M) ([]custody.ResealTask, error) {
	docs, err := findAll[resealTaskDoc](ctx, s.db, collResealTasks, op, filter, options.Find().SetSort(bson.D{asc("created_at"), asc("_id")}))
	if err != nil {
		return nil, err
	}
	var out []custody.ResealTask
	for _, d := range docs {
		out = append(out, d.task())
	}
	return out, nil
}

// InsertTask implements custody.ResealStore.
func (s *RecipientStore) InsertTask(ctx context.Context, t custody.ResealTask) error {
	_, err := s.db.coll(collResealTasks).InsertOne(ctx, toResealTaskDoc(t))
	return storeError("store reseal task", err, nil, qingfeng.Errorf(qingfeng.ECONFLICT, "任务已存在", "the task already exists"))
}

// Task implements custody.ResealStore.
func (s *RecipientStore) Task(ctx context.Context, id string) (custody.ResealTask, error) {
	var t resealTaskDoc
	err := s.db.coll(collResealTasks).FindOne(ctx, bson.M{"_id": id}).Decode(&t)
	return t.task(), storeError("load reseal task", err, qingfeng.Errorf(qingfeng.ENOTFOUND, "任务不存在", "no such task"), nil)
}

// PendingTasks implements custody.ResealStore.
func (s *RecipientStore) PendingTasks(ctx context.Context) ([]custody.ResealTask, error) {
	return s.findTasks(ctx, "list reseal tasks", bson.M{"status": custody.TaskPending})
}

// PendingCaseTasks implements custody.ResealStore.
func (s *RecipientStore) PendingCaseTasks(ctx context.Context, caseID string) ([]custody.ResealTask, error) {
	return s.findTasks(ctx, "list reseal tasks of a case", bson.M{"case_id": caseID, "status": custody.TaskPending})
}

// SetTaskStatus implements custody.ResealStore with one conditional update, so that of
// a claim, a supersession and a second claim racing, exactly one wins.
func (s *RecipientStore) SetTaskStatus(ctx context.Context, id, from, to, by string, at time.Time) error {
	update := bson.M{"$set": bson.M{"status": to}}
	if to == custody.TaskDone {
		update = bson.M{"$set": bson.M{"status": to, "done_by": by, "done_at": at.UTC()}}
	} else if from == custody.TaskDone {
		update["$unset"] = bson.M{"done_by": "", "done_at": ""}
	}
	res, err := s.db.updateOne(ctx, collResealTasks, id, bson.M{"status": from}, update)
	if err != nil {
		return storeError("update reseal task "+id, err, nil, nil)
	}
	if res.MatchedCount == 0 {
		return &qingfeng.Error{Code: qingfeng.ECONFLICT, Message: "任务状态已变化，请刷新后再处理", English: "the task changed meanwhile",
			Err: fmt.Errorf("reseal task %s is no longer %s", id, from)}
	}
	return nil
}

// ReplaceIdentity implements custody.ResealStore: one conditional update, only if the
// identity is still the one the custodian re-sealed.
func (s *RecipientStore) ReplaceIdentity(ctx context.Context, caseID string, old []byte, id intake.SealedIdentity) error {
	errChanged := &qingfeng.Error{Code: qingfeng.ECONFLICT, Message: "身份密文已变化，请重新下载后再处理", English: "the identity changed meanwhile; download it again",
		Err: fmt.Errorf("reseal case %s: identity changed", caseID)}
	if len(old) == 0 {
		// {"identity.ciphertext": null} would match a case without an identity (an
		// anonymous one) and give it one.
		return errChanged
	}
	res, err := s.db.updateOne(ctx, collCases, caseID, bson.M{"identity.ciphertext": old},
		bson.M{"$set": bson.M{"identity": sealedIdentityDoc{Ciphertext: id.Ciphertext, Recipients: id.Recipients, SealedAt: id.SealedAt.UTC()},
			"updated_at": id.SealedAt.UTC()}})
	if err != nil {
		return storeError("reseal identity of case "+caseID, err, nil, nil)
	}
	if res.MatchedCount == 0 {
		return errChanged
	}
	return nil
}

// OpenCasesWithIdentity lists cases that are not closed, carry a sealed identity and
// are in divisions starting with prefix ("": every division).
func (s *CaseStore) OpenCasesWithIdentity(ctx context.Context, prefix string) ([]*intake.Case, error) {
	// identity.sealed_at is always written with an identity, and small to index (the
	// ciphertext beside it is not).
	filter := bson.M{"status": bson.M{"$ne": string(intake.StatusClosed)}, "identity.sealed_at": bson.M{"$exists": true}}
	if prefix != "" {
		upper, ok := prefixUpperBound(prefix)
		if !ok {
			return nil, errBadDivision
		}
		filter["location.division"] = bson.M{"$gte": prefix, "$lt": upper}
	}
	docs, err := findAll[caseDoc](ctx, s.db, collCases, "list open cases with identities", filter)
	if err != nil {
		return nil, err
	}
	out := make([]*intake.Case, 0, len(docs))
	for i := range docs {
		out = append(out, docs[i].toCase())
	}
	return out, nil
}
