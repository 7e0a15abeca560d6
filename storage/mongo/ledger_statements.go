package mongo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/donations"
)

// collLedgerStatements holds published statements (月度公示), _id
// "<credit code>:<YYYY-MM>", inserted once and never updated: the figures are stored
// as the canonical bytes their content hash covers, so what is read back is what was
// published, byte for byte.
const collLedgerStatements = "ledger_statements"

type statementDoc struct {
	ID          string    `bson:"_id"`
	Org         string    `bson:"org"`
	Month       string    `bson:"month"`
	Content     []byte    `bson:"content"` // donations.Statement.Canonical()
	ContentHash string    `bson:"content_hash"`
	ThroughSeq  int64     `bson:"through_seq"`
	PublishedBy string    `bson:"published_by"`
	PublishedAt time.Time `bson:"published_at"`
}

var errAlreadyPublished = qingfeng.Errorf(qingfeng.ECONFLICT, "该月公示已发布，发布后不能更改；之后登记的记录将作为更正列出", "the month's statement is already published")

// SavePublished implements donations.Store: publishing twice is ECONFLICT.
func (s *LedgerStore) SavePublished(ctx context.Context, ps donations.PublishedStatement) error {
	if err := checkLedgerOrg(ps.Org); err != nil {
		return err
	}
	content := ps.Statement.Canonical()
	if donations.ContentHash(content) != ps.ContentHash {
		return fmt.Errorf("publish statement %s %s: content hash does not match the figures", ps.Org, ps.Month)
	}
	_, err := s.db.coll(collLedgerStatements).InsertOne(ctx, statementDoc{ID: ps.Org + ":" + ps.Month, Org: ps.Org, Month: ps.Month,
		Content: content, ContentHash: ps.ContentHash, ThroughSeq: ps.ThroughSeq, PublishedBy: ps.PublishedBy, PublishedAt: ps.PublishedAt.UTC()})
	return storeError("publish statement", err, nil, errAlreadyPublished)
}

// Published implements donations.Store. A stored statement whose content does not
// match its hash is an error.
func (s *LedgerStore) Published(ctx context.Context, org, month string) (donations.PublishedStatement, bool, error) {
	if err := checkLedgerOrg(org); err != nil {
		return donations.PublishedStatement{}, false, err
	}
	var d statementDoc
	err := s.db.coll(collLedgerStatements).FindOne(ctx, bson.M{"_id": org + ":" + month}).Decode(&d)
	if errors.Is(err, mongodrv.ErrNoDocuments) {
		return donations.PublishedStatement{}, false, nil
	}
	if err != nil {
		return donations.PublishedStatement{}, false, storeError("read statement", err, nil, nil)
	}
	st, err := donations.ParsePublished(d.Content, d.ContentHash)
	if err != nil {
		return donations.PublishedStatement{}, false, fmt.Errorf("statement %s: %w", d.ID, err)
	}
	return donations.PublishedStatement{Statement: st, ContentHash: d.ContentHash, ThroughSeq: d.ThroughSeq,
		PublishedBy: d.PublishedBy, PublishedAt: d.PublishedAt}, true, nil
}

// PublishedMonths implements donations.Store.
func (s *LedgerStore) PublishedMonths(ctx context.Context, org string) (map[string]bool, error) {
	docs, err := findAll[statementDoc](ctx, s.db, collLedgerStatements, "list statements",
		bson.M{"_id": bson.M{"$gt": org + ":", "$lt": org + ";"}})
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, d := range docs {
		out[strings.TrimPrefix(d.ID, org+":")] = true
	}
	return out, nil
}

// collLedgerCorrections notes the entries recorded after their month's statement was
// published, _id "<credit code>:<YYYY-MM>:<seq, 10 digits>". It stays small (entries
// back-dated into a published month are rare), so listing a month's notes is cheap on
// FerretDB too, which only pushes _id equality down: a published month is read without
// reading the ledger.
const collLedgerCorrections = "ledger_corrections"

type correctionDoc struct {
	ID    string `bson:"_id"`
	Org   string `bson:"org"`
	Month string `bson:"month"`
	Entry string `bson:"entry"`
}

// SaveCorrection implements donations.Store; noting an entry twice is a no-op.
func (s *LedgerStore) SaveCorrection(ctx context.Context, org, month string, e donations.Entry) error {
	if err := checkLedgerOrg(org); err != nil {
		return err
	}
	_, err := s.db.coll(collLedgerCorrections).InsertOne(ctx, correctionDoc{ID: fmt.Sprintf("%s:%s:%010d", org, month, e.Seq), Org: org, Month: month, Entry: e.ID})
	if mongodrv.IsDuplicateKeyError(err) {
		return nil
	}
	return storeError("note correction", err, nil, nil)
}

// CorrectionEntries implements donations.Store.
func (s *LedgerStore) CorrectionEntries(ctx context.Context, org, month string) ([]donations.Entry, error) {
	if err := checkLedgerOrg(org); err != nil {
		return nil, err
	}
	prefix := org + ":" + month + ":"
	docs, err := findAll[correctionDoc](ctx, s.db, collLedgerCorrections, "list corrections",
		bson.M{"_id": bson.M{"$gt": prefix, "$lt": org + ":" + month + ";"}}, options.Find().SetSort(bson.D{asc("_id")}))
	if err != nil {
		return nil, err
	}
	out := make([]donations.Entry, 0, len(docs))
	for _, d := range docs {
		e, err := s.Entry(ctx, org, d.Entry)
		if err != nil {
			return nil, fmt.Errorf("correction %s: %w", d.ID, err)
		}
		out = append(out, e)
	}
	return out, nil
}
