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

// disclosureDoc is a custody.Disclosure as stored. The field names are the
// collection's: renaming one is a data migration.
type disclosureDoc struct {
	ID                 string     `bson:"_id"`
	CaseID             string     `bson:"case_id"`
	Case               string     `bson:"case"`
	Division           string     `bson:"division"`
	UnitDivision       string     `bson:"unit_division,omitempty"`
	UnitID             string     `bson:"unit_id"`
	Requester          string     `bson:"requester"`
	RequesterRecipient string     `bson:"requester_recipient"`
	Reason             string     `bson:"reason"`
	Status             string     `bson:"status"`
	RequestedAt        time.Time  `bson:"requested_at"`
	ExpiresAt          time.Time  `bson:"expires_at"`
	DecidedBy          string     `bson:"decided_by,omitempty"`
	DecidedAt          *time.Time `bson:"decided_at,omitempty"`
	DecisionReason     string     `bson:"decision_reason,omitempty"`
	CompletedAt        *time.Time `bson:"completed_at,omitempty"`
	CancelledAt        *time.Time `bson:"cancelled_at,omitempty"`
	CancelReason       string     `bson:"cancel_reason,omitempty"`
	Resealed           []byte     `bson:"resealed,omitempty"`
}

func toDisclosureDoc(d custody.Disclosure) disclosureDoc {
	return disclosureDoc{ID: d.ID, CaseID: d.CaseID, Case: d.Case, Division: d.Division, UnitDivision: d.UnitDivision, UnitID: d.UnitID,
		Requester: d.Requester, RequesterRecipient: d.RequesterRecipient, Reason: d.Reason, Status: d.Status,
		RequestedAt: d.RequestedAt.UTC(), ExpiresAt: d.ExpiresAt.UTC(), DecidedBy: d.DecidedBy, DecidedAt: utcPtr(d.DecidedAt),
		DecisionReason: d.DecisionReason, CompletedAt: utcPtr(d.CompletedAt), CancelledAt: utcPtr(d.CancelledAt),
		CancelReason: d.CancelReason, Resealed: d.Resealed}
}

func (d disclosureDoc) disclosure() custody.Disclosure {
	return custody.Disclosure{ID: d.ID, CaseID: d.CaseID, Case: d.Case, Division: d.Division, UnitDivision: d.UnitDivision, UnitID: d.UnitID,
		Requester: d.Requester, RequesterRecipient: d.RequesterRecipient, Reason: d.Reason, Status: d.Status,
		RequestedAt: d.RequestedAt, ExpiresAt: d.ExpiresAt, DecidedBy: d.DecidedBy, DecidedAt: d.DecidedAt,
		DecisionReason: d.DecisionReason, CompletedAt: d.CompletedAt, CancelledAt: d.CancelledAt,
		CancelReason: d.CancelReason, Resealed: d.Resealed}
}

// utcPtr is t in UTC, nil for nil.
func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// InsertDisclosure implements custody.DisclosureStore.
func (s *RecipientStore) InsertDisclosure(ctx context.Context, d custody.Disclosure) error {
	_, err := s.db.coll(collDisclosures).InsertOne(ctx, toDisclosureDoc(d))
	return storeError("store disclosure request", err, nil, qingfeng.Errorf(qingfeng.ECONFLICT, "申请已存在", "the request already exists"))
}

// Disclosure implements custody.DisclosureStore.
func (s *RecipientStore) Disclosure(ctx context.Context, id string) (custody.Disclosure, error) {
	var d disclosureDoc
	err := s.db.coll(collDisclosures).FindOne(ctx, bson.M{"_id": id}).Decode(&d)
	return d.disclosure(), storeError("load disclosure "+id, err, errDisclosureNotFound, nil)
}

// UpdateDisclosure implements custody.DisclosureStore: one conditional update on the
// status and the expiry, so two custodians cannot both decide.
func (s *RecipientStore) UpdateDisclosure(ctx context.Context, id, from string, now time.Time, u custody.DisclosureUpdate) error {
	set := bson.M{"status": u.Status}
	str := func(k, v string) {
		if v != "" {
			set[k] = v
		}
	}
	at := func(k string, t time.Time) {
		if !t.IsZero() {
			set[k] = t.UTC()
		}
	}
	str("decided_by", u.DecidedBy)
	at("decided_at", u.DecidedAt)
	str("decision_reason", u.DecisionReason)
	at("completed_at", u.CompletedAt)
	if u.Resealed != nil {
		set["resealed"] = u.Resealed
	}
	at("cancelled_at", u.CancelledAt)
	str("cancel_reason", u.CancelReason)
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
	docs, err := findAll[disclosureDoc](ctx, s.db, collDisclosures, "list disclosures", filter, options.Find().
		SetSort(bson.D{asc("requested_at"), asc("_id")}).SetProjection(bson.M{"resealed": 0}))
	if err != nil {
		return nil, err
	}
	var out []custody.Disclosure
	for _, d := range docs {
		out = append(out, d.disclosure())
	}
	return out, nil
}
