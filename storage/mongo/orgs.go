package mongo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/routing"
)

// Registry collections. Both are looked up by _id only (the router keeps them in memory),
// so they need no secondary index.
const (
	collOrganizations = "organizations"
	collUnits         = "units"
)

var errOrgNotFound = qingfeng.Errorf(qingfeng.ENOTFOUND, "社会组织不存在", "organization not found")

// orgDoc is a social organization, keyed by its normalized credit code.
type orgDoc struct {
	ID                    string    `bson:"_id"`
	Name                  string    `bson:"name"`
	Type                  string    `bson:"type"`
	RegDivision           string    `bson:"reg_division"`
	Status                string    `bson:"status"`
	RegistrationAuthority string    `bson:"registration_authority,omitempty"`
	SupervisoryUnit       string    `bson:"supervisory_unit,omitempty"`
	Industry              string    `bson:"industry,omitempty"`
	Grade                 string    `bson:"grade,omitempty"`
	Division              string    `bson:"division,omitempty"`
	UpdatedAt             time.Time `bson:"updated_at"`
}

func toOrgDoc(o routing.Organization, now time.Time) orgDoc {
	d := orgDoc{
		ID:                    o.CreditCode,
		Name:                  o.Name,
		Type:                  o.Type,
		RegDivision:           o.RegDivision,
		Status:                string(o.Status),
		RegistrationAuthority: o.RegistrationAuthority,
		SupervisoryUnit:       o.SupervisoryUnit,
		Industry:              o.Industry,
		Grade:                 o.Grade,
		Division:              o.Division,
		UpdatedAt:             utc(o.UpdatedAt),
	}
	if d.UpdatedAt.IsZero() {
		d.UpdatedAt = now.UTC()
	}
	return d
}

func (d *orgDoc) toOrganization() routing.Organization {
	return routing.Organization{
		CreditCode:            d.ID,
		Name:                  d.Name,
		Type:                  d.Type,
		RegDivision:           d.RegDivision,
		Status:                routing.OrgStatus(d.Status),
		RegistrationAuthority: d.RegistrationAuthority,
		SupervisoryUnit:       d.SupervisoryUnit,
		Industry:              d.Industry,
		Grade:                 d.Grade,
		Division:              d.Division,
		UpdatedAt:             d.UpdatedAt,
	}
}

// OrgStore keeps the registry of social organizations. It stores what it is given:
// validation is routing.NormalizeOrganization's job.
type OrgStore struct{ db *DB }

// NewOrgStore returns an OrgStore on db.
func NewOrgStore(db *DB) *OrgStore { return &OrgStore{db: db} }

// UpsertOrganizations stores orgs by credit code, replacing whole documents that exist,
// and reports how many were new and how many replaced. When a code appears twice, the
// later one wins. A zero UpdatedAt is set to now. See upsertByID for how, and for what
// FerretDB changes.
func (s *OrgStore) UpsertOrganizations(ctx context.Context, orgs []routing.Organization) (inserted, updated int, err error) {
	now := s.db.now()
	docs := make([]orgDoc, 0, len(orgs))
	for _, o := range orgs {
		docs = append(docs, toOrgDoc(o, now))
	}
	return upsertByID(ctx, s.db, collOrganizations, "upsert organizations", docs, func(d orgDoc) string { return d.ID })
}

// upsertByID inserts docs, or replaces the stored documents with the same _id, and
// returns how many were new and how many replaced. Later duplicates of an id win.
//
// On MongoDB it is one unordered bulk write of ReplaceOne upserts: each document is
// replaced atomically, and the _id index makes each replacement cheap.
//
// On FerretDB v1.24 that costs a scan of the collection per document: an update or
// delete of one document by _id takes time proportional to the collection (measured:
// 1,000 upserts into 3,000 documents take 13 s, and an import slows with the square of
// its size). Inserting is cheap, and so is a failed insert: the unique _id index
// catches duplicates. So it inserts the batch with one
// unordered InsertMany, then replaces the documents refused as duplicates with one
// DeleteMany (a single scan of the collection, about 60 µs per stored document) and one
// more InsertMany. The price: a replaced document is missing between those two
// commands, and gone if the second insert fails (the error says so; importing again
// restores it). That suits the embedded default, where the import command holds the
// data directory and no server reads the registry meanwhile.
//
// Neither path takes the per-document lock (lockDoc): nothing here reads a document to
// write it back.
func upsertByID[D any](ctx context.Context, db *DB, coll, op string, docs []D, id func(D) string) (inserted, updated int, err error) {
	last := make(map[string]int, len(docs))
	for i, d := range docs {
		last[id(d)] = i
	}
	uniq := make([]D, 0, len(last))
	for i, d := range docs {
		if last[id(d)] == i {
			uniq = append(uniq, d)
		}
	}
	if len(uniq) == 0 {
		return 0, 0, nil
	}
	op = fmt.Sprintf("%s (%d documents)", op, len(uniq))
	if db.ferret {
		return insertThenReplace(ctx, db.coll(coll), op, uniq, id)
	}
	models := make([]mongodrv.WriteModel, 0, len(uniq))
	for _, d := range uniq {
		models = append(models, mongodrv.NewReplaceOneModel().SetFilter(bson.M{"_id": id(d)}).SetReplacement(d).SetUpsert(true))
	}
	res, err := db.coll(coll).BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	if res != nil {
		inserted, updated = int(res.UpsertedCount), int(res.MatchedCount)
	}
	if err != nil {
		return inserted, updated, storeError(op, err, nil, nil)
	}
	return inserted, updated, nil
}

// insertThenReplace is upsertByID's FerretDB path.
func insertThenReplace[D any](ctx context.Context, coll *mongodrv.Collection, op string, docs []D, id func(D) string) (inserted, updated int, err error) {
	all := make([]any, len(docs))
	for i, d := range docs {
		all[i] = d
	}
	_, err = coll.InsertMany(ctx, all, options.InsertMany().SetOrdered(false))
	if err == nil {
		return len(docs), 0, nil
	}
	var bwe mongodrv.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return 0, 0, storeError(op, err, nil, nil)
	}
	var ids []string
	var dups []any
	for _, we := range bwe.WriteErrors {
		if !isDuplicateKeyCode(we.Code) || we.Index < 0 || we.Index >= len(docs) {
			return 0, 0, storeError(op, err, nil, nil)
		}
		ids, dups = append(ids, id(docs[we.Index])), append(dups, all[we.Index])
	}
	inserted = len(docs) - len(dups)
	if _, err := coll.DeleteMany(ctx, bson.M{"_id": bson.M{"$in": ids}}); err != nil {
		return inserted, 0, storeError(op+": replace existing", err, nil, nil)
	}
	res, err := coll.InsertMany(ctx, dups, options.InsertMany().SetOrdered(false))
	if err != nil {
		written := 0
		if res != nil {
			written = len(res.InsertedIDs)
		}
		return inserted, written, storeError(fmt.Sprintf("%s: %d stored documents were deleted to be replaced and only %d written again; import again",
			op, len(dups), written), err, nil, nil)
	}
	return inserted, len(dups), nil
}

func isDuplicateKeyCode(code int) bool { return code == 11000 || code == 11001 }

// Organization returns the organization with credit code code (normalized); ENOTFOUND
// if there is none.
func (s *OrgStore) Organization(ctx context.Context, code string) (routing.Organization, error) {
	var d orgDoc
	if err := s.db.coll(collOrganizations).FindOne(ctx, bson.M{"_id": code}).Decode(&d); err != nil {
		return routing.Organization{}, storeError("find organization "+code, err, errOrgNotFound, nil)
	}
	return d.toOrganization(), nil
}

// EachOrganization streams every organization to fn, in no particular order, without
// holding them all: it is how the in-memory routing.Orgs is filled at start. An error
// from fn stops the scan and is returned.
func (s *OrgStore) EachOrganization(ctx context.Context, fn func(routing.Organization) error) error {
	const op = "list organizations"
	cur, err := s.db.coll(collOrganizations).Find(ctx, bson.M{}, options.Find().SetBatchSize(1000))
	if err != nil {
		return storeError(op, err, nil, nil)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	for cur.Next(ctx) {
		var d orgDoc
		if err := cur.Decode(&d); err != nil {
			return storeError(op, err, nil, nil)
		}
		if err := fn(d.toOrganization()); err != nil {
			return err
		}
	}
	return storeError(op, cur.Err(), nil, nil)
}

// CountOrganizations returns the number of organizations stored.
func (s *OrgStore) CountOrganizations(ctx context.Context) (int64, error) {
	// From the collection's metadata, not a scan.
	n, err := s.db.coll(collOrganizations).EstimatedDocumentCount(ctx)
	if err != nil {
		return 0, storeError("count organizations", err, nil, nil)
	}
	return n, nil
}

// unitDoc is a registry unit, keyed by its id.
type unitDoc struct {
	ID          string         `bson:"_id"`
	Name        string         `bson:"name"`
	Kind        string         `bson:"kind"`
	Division    string         `bson:"division,omitempty"`
	Level       string         `bson:"level,omitempty"`
	Parent      string         `bson:"parent,omitempty"`
	StationedAt string         `bson:"stationed_at,omitempty"`
	Active      bool           `bson:"active"`
	Deadlines   map[string]int `bson:"deadlines,omitempty"`
	Aliases     []string       `bson:"aliases,omitempty"`
}

func toUnitDoc(u routing.RegistryUnit) unitDoc {
	return unitDoc{ID: u.ID, Name: u.Name, Kind: string(u.Kind), Division: u.Division, Level: string(u.Level),
		Parent: u.Parent, StationedAt: u.StationedAt, Active: u.Active, Deadlines: u.Deadlines, Aliases: u.Aliases}
}

func (d *unitDoc) toUnit() routing.RegistryUnit {
	return routing.RegistryUnit{
		Unit:   routing.Unit{ID: d.ID, Name: d.Name, Kind: routing.UnitKind(d.Kind), Division: d.Division, Level: routing.Level(d.Level)},
		Parent: d.Parent, StationedAt: d.StationedAt, Active: d.Active, Deadlines: d.Deadlines, Aliases: d.Aliases,
	}
}

// UnitStore keeps the registry of supervisory units. Consistency of the set (parents
// exist, ids unique) is checked by routing.NewUnits when it is loaded, not here.
type UnitStore struct{ db *DB }

// NewUnitStore returns a UnitStore on db.
func NewUnitStore(db *DB) *UnitStore { return &UnitStore{db: db} }

// SeedUnits stores units if the registry is empty and returns how many it stored: 0
// when there already were units. It is meant for every start of the embedded default
// (routing.DefaultUnits): a restart, or two processes seeding at once, leave the
// registry as it is. Units are never changed once there, so an operator's edits survive.
func (s *UnitStore) SeedUnits(ctx context.Context, units []routing.RegistryUnit) (int, error) {
	const op = "seed units"
	coll := s.db.coll(collUnits)
	// Limit 1: only emptiness matters, and FerretDB counts by scanning.
	n, err := coll.CountDocuments(ctx, bson.M{}, options.Count().SetLimit(1))
	if err != nil {
		return 0, storeError(op, err, nil, nil)
	}
	if n > 0 || len(units) == 0 {
		return 0, nil
	}
	docs := make([]any, 0, len(units))
	for _, u := range units {
		docs = append(docs, toUnitDoc(u))
	}
	res, err := coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	inserted := 0
	if res != nil {
		inserted = len(res.InsertedIDs)
	}
	if err != nil && !onlyDuplicateKeys(err) {
		return inserted, storeError(op, err, nil, nil)
	}
	return inserted, nil
}

// onlyDuplicateKeys reports whether every write error of a bulk operation is a
// duplicate key: another process seeded the same documents first.
func onlyDuplicateKeys(err error) bool {
	var bwe mongodrv.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return false
	}
	for _, we := range bwe.WriteErrors {
		if !isDuplicateKeyCode(we.Code) {
			return false
		}
	}
	return true
}

// UpsertUnits stores units by id, replacing whole documents that exist, and reports
// how many were new and how many replaced. When an id appears twice the later wins.
func (s *UnitStore) UpsertUnits(ctx context.Context, units []routing.RegistryUnit) (inserted, updated int, err error) {
	docs := make([]unitDoc, 0, len(units))
	for _, u := range units {
		docs = append(docs, toUnitDoc(u))
	}
	return upsertByID(ctx, s.db, collUnits, "upsert units", docs, func(d unitDoc) string { return d.ID })
}

// AddAlias adds alias to unit id's aliases unless it has max already, in one update
// ($addToSet: concurrent additions all land, and none past max).
func (s *UnitStore) AddAlias(ctx context.Context, id, alias string, max int) error {
	const op = "add unit alias"
	cond := bson.M{fmt.Sprintf("aliases.%d", max-1): bson.M{"$exists": false}}
	res, err := s.db.updateOne(ctx, collUnits, id, cond, bson.M{"$addToSet": bson.M{"aliases": alias}})
	if err != nil {
		return storeError(op, err, nil, nil)
	}
	if res.MatchedCount > 0 {
		return nil
	}
	n, err := s.db.coll(collUnits).CountDocuments(ctx, bson.M{"_id": id})
	switch {
	case err != nil:
		return storeError(op, err, nil, nil)
	case n == 0:
		return errUnitNotFound
	}
	return routing.ErrTooManyAliases
}

// RemoveAlias removes alias from unit id's aliases.
func (s *UnitStore) RemoveAlias(ctx context.Context, id, alias string) error {
	res, err := s.db.updateOne(ctx, collUnits, id, nil, bson.M{"$pull": bson.M{"aliases": alias}})
	if err != nil {
		return storeError("remove unit alias", err, nil, nil)
	}
	if res.MatchedCount == 0 {
		return errUnitNotFound
	}
	return nil
}

var errUnitNotFound = qingfeng.Errorf(qingfeng.ENOTFOUND, "单位不存在", "no such unit")

// Units returns every unit, active or not, in id order; none when the registry is empty.
func (s *UnitStore) Units(ctx context.Context) ([]routing.RegistryUnit, error) {
	const op = "list units"
	cur, err := s.db.coll(collUnits).Find(ctx, bson.M{})
	if err != nil {
		return nil, storeError(op, err, nil, nil)
	}
	var docs []unitDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, storeError(op, err, nil, nil)
	}
	out := make([]routing.RegistryUnit, 0, len(docs))
	for _, d := range docs {
		out = append(out, d.toUnit())
	}
	slices.SortFunc(out, func(a, b routing.RegistryUnit) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}
