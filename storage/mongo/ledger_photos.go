package mongo

import (
	"context"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/intake"
)

const collLedgerPhotos = "ledger_photos"

// ledgerPhotoBatch is one upload of photos for an organization's ledger: the files
// of a request, stored together so that they are referenced all or none.
type ledgerPhotoBatch struct {
	ID     string        `bson:"_id"`
	Org    string        `bson:"org"`
	Photos []evidenceDoc `bson:"photos"`
	At     time.Time     `bson:"at"`
}

// AddPhotos records an upload of photos (already in the object store) for org and
// returns their references, "<batch>/<evidence id>", for ledger entries to cite.
func (s *LedgerStore) AddPhotos(ctx context.Context, org, batch string, evs []intake.Evidence) ([]string, error) {
	d := ledgerPhotoBatch{ID: batch, Org: org, At: s.now().UTC()}
	refs := make([]string, 0, len(evs))
	for _, ev := range evs {
		d.Photos = append(d.Photos, toEvidenceDoc(ev))
		refs = append(refs, batch+"/"+ev.ID)
	}
	_, err := s.db.coll(collLedgerPhotos).InsertOne(ctx, d)
	return refs, storeError("store ledger photos", err, nil, nil)
}

// Photo finds a photo reference of org.
func (s *LedgerStore) Photo(ctx context.Context, org, ref string) (intake.Evidence, error) {
	notFound := qingfeng.Errorf(qingfeng.ENOTFOUND, "照片不存在", "no such photo")
	batch, id, ok := strings.Cut(ref, "/")
	if !ok || batch == "" || id == "" {
		return intake.Evidence{}, notFound
	}
	var d ledgerPhotoBatch
	if err := s.db.coll(collLedgerPhotos).FindOne(ctx, bson.M{"_id": batch}).Decode(&d); err != nil {
		return intake.Evidence{}, storeError("read ledger photo", err, notFound, nil)
	}
	if d.Org != org {
		return intake.Evidence{}, notFound
	}
	for _, p := range d.Photos {
		if p.ID == id {
			return p.toEvidence(), nil
		}
	}
	return intake.Evidence{}, notFound
}

// RemovePhotos removes org's photo batch (the batch of an entry that was not
// appended); a missing batch, or another organization's, is no error.
func (s *LedgerStore) RemovePhotos(ctx context.Context, org, batch string) error {
	_, err := s.db.coll(collLedgerPhotos).DeleteOne(ctx, bson.M{"_id": batch, "org": org})
	return storeError("remove ledger photos", err, nil, nil)
}
