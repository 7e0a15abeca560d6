package mongo

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// ReferencedObjects returns every object key a stored record names: the evidence
// and kept originals of cases, and of ledger photo batches. They are the only
// records that name objects (re-sealed identities and disclosures are documents).
// The orphan sweeper (retention.Sweeper) deletes what is not in the set.
func (db *DB) ReferencedObjects(ctx context.Context) (map[string]bool, error) {
	refs := map[string]bool{}
	add := func(evs []evidenceDoc) {
		for _, ev := range evs {
			for _, k := range []string{ev.ObjectKey, ev.OriginalKey} {
				if k != "" {
					refs[k] = true
				}
			}
		}
	}
	type withEvidence struct {
		Evidence []evidenceDoc `bson:"evidence"`
		Photos   []evidenceDoc `bson:"photos"`
	}
	for _, src := range []struct{ coll, field string }{{collCases, "evidence"}, {collLedgerPhotos, "photos"}} {
		proj := bson.M{src.field + ".object_key": 1, src.field + ".original_key": 1}
		docs, err := findAll[withEvidence](ctx, db, src.coll, "list object references in "+src.coll, bson.M{},
			options.Find().SetProjection(proj))
		if err != nil {
			return nil, err
		}
		for _, d := range docs {
			add(d.Evidence)
			add(d.Photos)
		}
	}
	return refs, nil
}
