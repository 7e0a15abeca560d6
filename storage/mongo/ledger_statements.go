package mongo

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/qingfeng-zj/qingfeng"
)

const collLedgerStatements = "ledger_statements" // _id "<credit code>:<YYYY-MM>"

type statementDoc struct {
	ID          string    `bson:"_id"`
	Org         string    `bson:"org"`
	Month       string    `bson:"month"`
	PublishedBy string    `bson:"published_by"`
	PublishedAt time.Time `bson:"published_at"`
}

// PublishStatement records that org's statement of month was published (月度公示);
// publishing twice is ECONFLICT.
func (s *LedgerStore) PublishStatement(ctx context.Context, org, month, by string, at time.Time) error {
	_, err := s.db.coll(collLedgerStatements).InsertOne(ctx, statementDoc{ID: org + ":" + month, Org: org, Month: month, PublishedBy: by, PublishedAt: at.UTC()})
	return storeError("publish statement", err, nil, qingfeng.Errorf(qingfeng.ECONFLICT, "该月公示已发布", "the month's statement is already published"))
}

// StatementPublished returns when org's statement of month was published.
func (s *LedgerStore) StatementPublished(ctx context.Context, org, month string) (time.Time, bool, error) {
	var d statementDoc
	err := s.db.coll(collLedgerStatements).FindOne(ctx, bson.M{"_id": org + ":" + month}).Decode(&d)
	if errors.Is(err, mongodrv.ErrNoDocuments) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, storeError("read statement", err, nil, nil)
	}
	return d.PublishedAt, true, nil
}

// PublishedMonths implements warnings.Store.
func (s *LedgerStore) PublishedMonths(ctx context.Context, org string) (map[string]bool, error) {
	docs, err := findAll[statementDoc](ctx, s.db, collLedgerStatements, "list statements", bson.M{"org": org})
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, d := range docs {
		out[strings.TrimPrefix(d.ID, org+":")] = true
	}
	return out, nil
}
