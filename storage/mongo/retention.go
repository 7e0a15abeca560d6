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
	"github.com/qingfeng-zj/qingfeng/retention"
)

// RetentionCandidate is a closed case that may be due for purging.
type RetentionCandidate = retention.Candidate

// PurgedDescription replaces a purged case's description.
const PurgedDescription = retention.PurgedDescription

// retentionHook, when set (tests), runs before each step of Anonymise; an error stops
// it there, as a crash would.
var retentionHook func(caseID, step string) error

func retentionStep(caseID, step string) error {
	if retentionHook != nil {
		return retentionHook(caseID, step)
	}
	return nil
}

// ClosedBefore implements retention.Store: closed cases, not yet purged, whose last
// close step is before cutoff. The last close is found here, not in the filter: a
// reopened and closed-again case has several. The scan reads every closed case (which
// FerretDB does anyway for any filter but _id); only the fields needed are projected.
func (s *CaseStore) ClosedBefore(ctx context.Context, cutoff time.Time, limit int) ([]RetentionCandidate, error) {
	const op = "list cases due for purging"
	if limit <= 0 {
		return nil, nil
	}
	cur, err := s.db.coll(collCases).Find(ctx,
		// A case with reporter activity its unit has not read waits until it is read.
		bson.M{"status": string(intake.StatusClosed), "purged_at": bson.M{"$exists": false}, "new_activity": bson.M{"$ne": true}},
		options.Find().SetProjection(bson.M{"_id": 1, "number": 1, "version": 1, "transitions": 1, "evidence": 1}).
			SetSort(bson.D{asc("_id")}))
	if err != nil {
		return nil, storeError(op, err, nil, nil)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	var out []RetentionCandidate
	for len(out) < limit && cur.Next(ctx) {
		var d struct {
			ID          string          `bson:"_id"`
			Number      string          `bson:"number"`
			Version     int64           `bson:"version"`
			Transitions []transitionDoc `bson:"transitions"`
			Evidence    []evidenceDoc   `bson:"evidence"`
		}
		if err := cur.Decode(&d); err != nil {
			return nil, storeError(op, err, nil, nil)
		}
		c := &intake.Case{}
		for _, t := range d.Transitions {
			c.Transitions = append(c.Transitions, intake.Transition{Action: t.Action, To: intake.Status(t.To), At: t.At})
		}
		closed, ok := retention.LastClosed(c)
		if !ok || !closed.Before(cutoff) {
			continue // closed without a recorded step is never purged: when is unknown
		}
		evs := make([]intake.Evidence, 0, len(d.Evidence))
		for _, e := range d.Evidence {
			evs = append(evs, e.toEvidence())
		}
		out = append(out, RetentionCandidate{CaseID: d.ID, Number: d.Number, ClosedAt: closed, Version: d.Version,
			Evidence: len(evs), ObjectKeys: retention.ObjectKeys(evs)})
	}
	if err := cur.Err(); err != nil {
		return nil, storeError(op, err, nil, nil)
	}
	return out, nil
}

var errNotClosed = qingfeng.Errorf(qingfeng.ECONFLICT, "案件未结案或已被修改，不能删除", "the case is not closed, or changed meanwhile")

// Anonymise implements retention.Store. The steps, each safe to repeat:
//
//  1. the case document, in one conditional update (closed, at version, not purged):
//     the sealed identity is removed — the first write of the purge — and with it the
//     description, the names in the subject (the organization's credit code stays:
//     it names an organization, not a reporter), the address and coordinates (the
//     division stays), the evidence entries' object keys (hashes, sizes and types
//     stay), and the free text of the workflow (reasons given for each step and for
//     re-routings);
//  2. the case's messages are deleted;
//  3. its disclosures lose their re-sealed copy of the identity, and open ones are
//     expired first, so that none can be completed (re-sealed) afterwards;
//  4. its idempotency records (a sealed receipt) are deleted;
//  5. the case is marked purged (purged_at).
//
// A crash before step 5 leaves the case unmarked: ClosedBefore lists it again, and the
// next call redoes every step. Step 1 bumps the version, as every change does, so a
// staff member's action on the copy they loaded before fails instead of undoing it.
// The caller deletes the evidence objects before calling: after step 1 the keys are
// gone.
func (s *CaseStore) Anonymise(ctx context.Context, caseID string, version int64, at time.Time) error {
	op := "purge case " + caseID
	at = at.UTC()

	var raw bson.Raw
	if err := s.db.coll(collCases).FindOne(ctx, bson.M{"_id": caseID}).Decode(&raw); err != nil {
		return storeError(op, err, errCaseNotFound, nil)
	}
	if _, err := raw.LookupErr("purged_at"); err == nil {
		return nil // done already
	}
	var d caseDoc
	if err := bson.Unmarshal(raw, &d); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if d.Status != string(intake.StatusClosed) || d.Version != version || d.NewActivity {
		e := *errNotClosed
		e.Err = fmt.Errorf("%s: status %s at version %d (unread reporter activity: %v), want closed at %d", op, d.Status, d.Version, d.NewActivity, version)
		return &e
	}

	if err := retentionStep(caseID, "case"); err != nil {
		return err
	}
	set := bson.M{
		"description": PurgedDescription,
		"subject":     anonymousSubject(d.Subject),
		"location":    locationDoc{Division: d.Location.Division},
		"evidence":    withoutKeys(d.Evidence),
		// Purged entries repeat nothing (intake.Evidence.Repeats): a file sent again
		// is new evidence.
		"evidence_keys": []string{},
		"updated_at":    at,
	}
	if len(d.Transitions) > 0 {
		set["transitions"] = withoutReasons(d.Transitions)
	}
	if len(d.EarlierDecisions) > 0 {
		set["earlier_decisions"] = withoutWhy(d.EarlierDecisions)
	}
	// The organization search keys of what the purge leaves (the code, not the name).
	purged := d
	purged.Subject = anonymousSubject(d.Subject)
	set["org_keys"] = orgKeys(purged.toCase())
	// A reporter's message does not change the version: new_activity guards it.
	res, err := s.db.updateOne(ctx, collCases, caseID,
		bson.M{"version": version, "status": string(intake.StatusClosed), "purged_at": bson.M{"$exists": false}, "new_activity": bson.M{"$ne": true}},
		bson.M{
			"$unset": bson.M{"identity": "", "transfer": "", "decision.why": ""},
			"$set":   set,
			"$inc":   bson.M{"version": int64(1)},
		})
	if err != nil {
		return storeError(op, err, nil, nil)
	}
	if res.MatchedCount == 0 {
		if err := s.caseExists(ctx, op, caseID); err != nil {
			return err
		}
		e := *errNotClosed
		e.Err = fmt.Errorf("%s: changed meanwhile", op)
		return &e
	}

	if err := retentionStep(caseID, "messages"); err != nil {
		return err
	}
	if _, err := s.db.coll(collMessages).DeleteMany(ctx, bson.M{"case_id": caseID}); err != nil {
		return storeError(op+": delete messages", err, nil, nil)
	}

	if err := retentionStep(caseID, "disclosures"); err != nil {
		return err
	}
	if err := s.dropDisclosedCopies(ctx, op, caseID); err != nil {
		return err
	}

	if err := retentionStep(caseID, "idempotency"); err != nil {
		return err
	}
	if _, err := s.db.coll(collIdempotency).DeleteMany(ctx, bson.M{"case_id": caseID}); err != nil {
		return storeError(op+": delete idempotency records", err, nil, nil)
	}

	if err := retentionStep(caseID, "mark"); err != nil {
		return err
	}
	if _, err := s.db.updateOne(ctx, collCases, caseID, bson.M{"purged_at": bson.M{"$exists": false}},
		bson.M{"$set": bson.M{"purged_at": at}, "$inc": bson.M{"version": int64(1)}}); err != nil {
		return storeError(op+": mark purged", err, nil, nil)
	}
	return nil
}

// dropDisclosedCopies expires the case's open disclosure requests, then removes the
// re-sealed identity from every one. Each is a per-document update (updateOne), which
// on FerretDB serializes with a custodian's concurrent completion: a completion either
// lands before, and its copy is removed, or finds the request expired.
func (s *CaseStore) dropDisclosedCopies(ctx context.Context, op, caseID string) error {
	cur, err := s.db.coll(collDisclosures).Find(ctx, bson.M{"case_id": caseID}, options.Find().SetProjection(bson.M{"_id": 1}))
	if err != nil {
		return storeError(op+": list disclosures", err, nil, nil)
	}
	var ids []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &ids); err != nil {
		return storeError(op+": list disclosures", err, nil, nil)
	}
	for _, d := range ids {
		if _, err := s.db.updateOne(ctx, collDisclosures, d.ID,
			bson.M{"status": bson.M{"$in": bson.A{custody.Pending, custody.Approved}}},
			bson.M{"$set": bson.M{"status": custody.Expired}}); err != nil {
			return storeError(op+": expire disclosure "+d.ID, err, nil, nil)
		}
		if _, err := s.db.updateOne(ctx, collDisclosures, d.ID, bson.M{"resealed": bson.M{"$exists": true}},
			bson.M{"$unset": bson.M{"resealed": ""}}); err != nil {
			return storeError(op+": remove disclosed copy "+d.ID, err, nil, nil)
		}
	}
	return nil
}

// anonymousSubject keeps what a subject is (its kind) and an organization's credit
// code; names, positions and employers go.
func anonymousSubject(s subjectDoc) subjectDoc {
	out := subjectDoc{Kind: s.Kind}
	if s.Organization != nil {
		out.Organization = &orgSubjectDoc{CreditCode: s.Organization.CreditCode}
	}
	if s.Person != nil {
		out.Person = &personSubjectDoc{}
	}
	return out
}

func withoutKeys(evs []evidenceDoc) []evidenceDoc {
	out := make([]evidenceDoc, 0, len(evs))
	for _, e := range evs {
		e.ObjectKey, e.OriginalKey = "", ""
		out = append(out, e)
	}
	return out
}

func withoutReasons(ts []transitionDoc) []transitionDoc {
	out := make([]transitionDoc, 0, len(ts))
	for _, t := range ts {
		t.Reason = ""
		out = append(out, t)
	}
	return out
}

func withoutWhy(ds []decisionDoc) []decisionDoc {
	out := make([]decisionDoc, 0, len(ds))
	for _, d := range ds {
		d.Why = ""
		out = append(out, d)
	}
	return out
}

// ReclaimFreedSpace makes the database overwrite the space that purged documents
// took, where it can. SQLite (the embedded FerretDB) keeps deleted rows in free pages
// of its file until they are reused; FerretDB's compact with force runs VACUUM, which
// rewrites the file without them. The write-ahead log keeps earlier copies of the pages
// until SQLite checkpoints and restarts it, which the embedded default's settings do
// not force (see the retention tests). On MongoDB it does nothing: WiredTiger reuses
// the space, and its compact command is an operator's decision.
func (s *CaseStore) ReclaimFreedSpace(ctx context.Context) error {
	if !s.db.ferret {
		return nil
	}
	// VACUUM is per database file; naming one collection is enough.
	err := s.db.db.RunCommand(ctx, bson.D{{Key: "compact", Value: collCases}, {Key: "force", Value: true}}).Err()
	return storeError("reclaim freed space", err, nil, nil)
}
