// Package mongo is the MongoDB storage layer, on the official driver v2. It implements
// the store interfaces of the domain packages (intake.CaseStore, accounts.UserStore)
// and owns everything the database sees: stored document types with bson tags,
// indexes and queries. Domain types never carry bson tags; they are mapped to and
// from the *Doc types here.
//
// The same code runs against real MongoDB in production and against the embedded
// FerretDB v1.24 (storage/embedded) in the zero-config default, so it sticks to what
// both support. What FerretDB v1.24 on SQLite lacks, and what this package does about
// it (storage/embedded's TestFerretDBCapabilities keeps the list honest):
//   - updates are not atomic (read, change in Go, write back): a per-document lock
//     in this process (lockDoc);
//   - no TTL indexes: PurgeExpired, and expiry is checked on every read anyway;
//   - createIndexes naming several existing indexes panics: one index per command;
//   - no partial indexes, transactions, $lookup, or $group accumulators other than
//     $sum, and only the first accumulator of a $group is computed: none are used;
//   - secondary indexes are not used for queries: every query scans the collection,
//     in SQLite for a filter on _id alone, in Go for anything else (about 0.4 ms
//     per stored case), so the embedded default suits thousands of cases, not more.
//     On MongoDB every query is served by one of declaredIndexes: the package's tests
//     record each command the stores send and check it (indexcheck_test.go).
//
// Rules for code in this package:
//   - filters and updates are built from typed Go values, never from client JSON;
//   - not-found and duplicate-key errors become *qingfeng.Error (ENOTFOUND,
//     ECONFLICT) here, other errors are wrapped with the operation;
//   - every update of an existing document goes through DB.updateOne or
//     DB.findOneAndUpdate, which serialize per document on FerretDB.
package mongo

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/intake"
)

// Collection names.
const (
	collCases       = "cases"
	collCounters    = "counters"
	collMessages    = "messages"
	collIdempotency = "idempotency"
	collUsers       = "users"
	collSessions    = "sessions"
)

// Client-side limits. opTimeout applies to an operation whose context has no deadline,
// so a hung server cannot hold a request goroutine forever.
const (
	connectTimeout         = 10 * time.Second
	serverSelectionTimeout = 10 * time.Second
	opTimeout              = 30 * time.Second
)

// DB is a connection to one database.
type DB struct {
	client *mongodrv.Client
	db     *mongodrv.Database

	// ferret is set when the server is FerretDB. FerretDB v1 applies an update by
	// reading the document, changing it in Go and writing it back, with nothing in
	// between to stop a concurrent update: two $inc can both read 5 and both write 6,
	// and a conditional update's filter is checked on a stale copy. See lockDoc.
	ferret bool
	// ttl is false when the server cannot expire documents by an index (FerretDB);
	// PurgeExpired then has to be called periodically.
	ttl bool

	now func() time.Time // the clock for expiry checks; time.Now outside tests
}

// testCommandMonitor, when set (only by this package's tests, before the first Open),
// sees every command a DB sends; indexcheck_test.go checks each query against
// declaredIndexes.
var testCommandMonitor *event.CommandMonitor

// Open connects to the MongoDB server at uri, checks that it answers, and uses database
// dbName. Options in the URI override the defaults set here.
func Open(ctx context.Context, uri, dbName string) (*DB, error) {
	if dbName == "" {
		return nil, errors.New("open mongodb: empty database name")
	}
	opts := options.Client().
		SetAppName("qingfeng").
		SetConnectTimeout(connectTimeout).
		SetServerSelectionTimeout(serverSelectionTimeout).
		SetTimeout(opTimeout).
		// Retried writes are deduplicated by the server (replica sets); the driver
		// turns them off by itself where the server cannot.
		SetRetryWrites(true).
		SetRetryReads(true).
		// A nil slice would be stored as null, and $push onto null fails.
		SetBSONOptions(&options.BSONOptions{NilSliceAsEmpty: true, NilMapAsEmpty: true}).
		ApplyURI(uri)
	if testCommandMonitor != nil {
		opts.SetMonitor(testCommandMonitor)
	}
	client, err := mongodrv.Connect(opts)
	if err != nil {
		// The URI may carry a password; the driver's errors do not echo it
		// (TestOpenErrors checks).
		return nil, fmt.Errorf("open mongodb: %w", err)
	}
	db := &DB{client: client, db: client.Database(dbName), ttl: true, now: time.Now}
	if err := db.Ping(ctx); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, fmt.Errorf("open mongodb: %w", err)
	}
	var info bson.M
	if err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, fmt.Errorf("open mongodb: buildInfo: %w", err)
	}
	if _, ok := info["ferretdbVersion"]; ok {
		db.ferret = true
		db.ttl = false // "expireAfterSeconds is not implemented yet" in FerretDB v1
	}
	return db, nil
}

// Ping checks that the server answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.client.Ping(ctx, readpref.Primary()); err != nil {
		return fmt.Errorf("ping mongodb: %w", err)
	}
	return nil
}

// Close disconnects, waiting for operations in progress until ctx is done.
func (db *DB) Close(ctx context.Context) error {
	if err := db.client.Disconnect(ctx); err != nil {
		return fmt.Errorf("close mongodb: %w", err)
	}
	return nil
}

func (db *DB) coll(name string) *mongodrv.Collection { return db.db.Collection(name) }

func asc(key string) bson.E  { return bson.E{Key: key, Value: 1} }
func desc(key string) bson.E { return bson.E{Key: key, Value: -1} }

// An index is one secondary index this package declares: the collection, an explicit
// name (so creating it again is a no-op, and changing a definition without renaming it
// fails loudly on MongoDB instead of silently keeping the old one), its keys in order
// with their directions, and why a query needs it.
type index struct {
	coll   string
	name   string
	keys   bson.D
	unique bool
	ttl    bool // expires documents at expires_at; only where the server has a TTL monitor
	why    string
}

// declaredIndexes is the one list of indexes: EnsureIndexes creates them, and the
// package's tests record every command the stores send and fail when a filter or sort
// is not served by one of them (indexcheck_test.go), and when the README's production
// section lists different ones. Keys follow the ESR rule: equality fields, then the
// sort order, then range fields.
var declaredIndexes = []index{
	{coll: collCases, name: "number_unique", keys: bson.D{asc("number")}, unique: true,
		why: "a case by its number"},
	{coll: collCases, name: "receipt_hash_unique", keys: bson.D{asc("receipt_hash")}, unique: true,
		why: "a case by its receipt"},
	// The queues (GET /v1/cases): the caller's scope as equality, then the order, then
	// the division prefix and the due date as ranges. A unit's queue filtered by
	// status, category or assignee has an index with that field after the unit, so
	// that a selective filter (an assignee with no case) reads only what it returns;
	// other combinations are read in one of these orders and compared on the documents
	// (see indexcheck_test.go).
	{coll: collCases, name: "unit_queue", keys: bson.D{asc("unit_id"), desc("received_at"), asc("_id"), asc("location.division"), asc("next_due")},
		why: "a unit's queue, newest first"},
	{coll: collCases, name: "unit_due", keys: bson.D{asc("unit_id"), asc("next_due"), asc("_id"), asc("location.division")},
		why: "a unit's queue, by the nearest deadline"},
	{coll: collCases, name: "unit_status_queue", keys: bson.D{asc("unit_id"), asc("status"), desc("received_at"), asc("_id")},
		why: "a unit's queue of one status, newest first"},
	{coll: collCases, name: "unit_status_due", keys: bson.D{asc("unit_id"), asc("status"), asc("next_due"), asc("_id")},
		why: "a unit's queue of one status, by the nearest deadline"},
	{coll: collCases, name: "unit_category_queue", keys: bson.D{asc("unit_id"), asc("category"), desc("received_at"), asc("_id")},
		why: "a unit's queue of one category, newest first"},
	{coll: collCases, name: "unit_category_due", keys: bson.D{asc("unit_id"), asc("category"), asc("next_due"), asc("_id")},
		why: "a unit's queue of one category, by the nearest deadline"},
	{coll: collCases, name: "unit_assignee_queue", keys: bson.D{asc("unit_id"), asc("assignee"), desc("received_at"), asc("_id")},
		why: "a unit's queue of one assignee, newest first"},
	{coll: collCases, name: "unit_assignee_due", keys: bson.D{asc("unit_id"), asc("assignee"), asc("next_due"), asc("_id")},
		why: "a unit's queue of one assignee, by the nearest deadline"},
	{coll: collCases, name: "unit_new_activity_queue", keys: bson.D{asc("unit_id"), asc("new_activity"), desc("received_at"), asc("_id"), asc("location.division"), asc("next_due")},
		why: "a unit's cases with new reporter activity, newest first"},
	{coll: collCases, name: "unit_new_activity_due", keys: bson.D{asc("unit_id"), asc("new_activity"), asc("next_due"), asc("_id"), asc("location.division")},
		why: "a unit's cases with new reporter activity, by the nearest deadline"},
	// The queue searched by organization (org_keys, an array: routing.OrgSearchKeys),
	// equality on one key after the unit, then the order.
	{coll: collCases, name: "unit_org_queue", keys: bson.D{asc("unit_id"), asc("org_keys"), desc("received_at"), asc("_id"), asc("location.division"), asc("next_due")},
		why: "a unit's cases about one organization, newest first"},
	{coll: collCases, name: "unit_org_due", keys: bson.D{asc("unit_id"), asc("org_keys"), asc("next_due"), asc("_id"), asc("location.division")},
		why: "a unit's cases about one organization, by the nearest deadline"},
	{coll: collCases, name: "org_queue", keys: bson.D{asc("org_keys"), desc("received_at"), asc("_id"), asc("location.division"), asc("next_due")},
		why: "all cases or a jurisdiction's about one organization, newest first"},
	{coll: collCases, name: "org_due", keys: bson.D{asc("org_keys"), asc("next_due"), asc("_id"), asc("location.division")},
		why: "all cases or a jurisdiction's about one organization, by the nearest deadline"},
	{coll: collCases, name: "filed_by_queue", keys: bson.D{asc("filed_by"), desc("received_at"), asc("_id"), asc("location.division"), asc("next_due")},
		why: "the cases a liaison filed, newest first"},
	{coll: collCases, name: "filed_by_due", keys: bson.D{asc("filed_by"), asc("next_due"), asc("_id"), asc("location.division")},
		why: "the cases a liaison filed, by the nearest deadline"},
	{coll: collCases, name: "all_queue", keys: bson.D{desc("received_at"), asc("_id"), asc("location.division"), asc("next_due")},
		why: "all cases or a jurisdiction's, newest first"},
	{coll: collCases, name: "all_due", keys: bson.D{asc("next_due"), asc("_id"), asc("location.division")},
		why: "all cases or a jurisdiction's, by the nearest deadline"},
	{coll: collCases, name: "division_received", keys: bson.D{asc("location.division"), desc("received_at"), asc("_id")},
		why: "statistics of a jurisdiction over a period"},
	// The background jobs.
	{coll: collCases, name: "status_acceptance_due", keys: bson.D{asc("status"), asc("acceptance_due"), asc("escalated")},
		why: "escalation: registered cases past their acceptance deadline"},
	{coll: collCases, name: "status_feedback_due", keys: bson.D{asc("status"), asc("feedback_due"), asc("escalated")},
		why: "escalation: concluded cases past their feedback deadline"},
	{coll: collCases, name: "transfer_due", keys: bson.D{asc("transfer.due"), asc("escalated")},
		why: "escalation: transfers past their deadline"},
	{coll: collCases, name: "status_id_unpurged", keys: bson.D{asc("status"), asc("_id"), asc("purged_at"), asc("new_activity")},
		why: "retention: closed cases not yet purged"},
	{coll: collCases, name: "outbox_pending", keys: bson.D{asc("outbox_n")},
		why: "the outbox relay: cases with events waiting"},
	{coll: collMessages, name: "case_created", keys: bson.D{asc("case_id"), asc("created_at"), asc("_id")},
		why: "a case's messages in order"},
	{coll: collIdempotency, name: "case_id", keys: bson.D{asc("case_id")},
		why: "retention: a purged case's idempotency records"},
	{coll: collIdempotency, name: "expires_ttl", keys: bson.D{asc("expires_at")}, ttl: true,
		why: "expired idempotency records are removed (refused on read either way)"},
	{coll: collUsers, name: "username_unique", keys: bson.D{asc("username")}, unique: true,
		why: "login by username"},
	{coll: collUsers, name: "unit_username", keys: bson.D{asc("unit_id"), asc("username")},
		why: "a unit's staff, whom a case can be assigned to"},
	{coll: collSessions, name: "user_sessions_id", keys: bson.D{asc("user_id"), asc("_id")},
		why: "disabling an account or resetting its credentials deletes its (other) sessions"},
	{coll: collSessions, name: "expires_ttl", keys: bson.D{asc("expires_at")}, ttl: true,
		why: "expired sessions are removed (refused on read either way)"},
	{coll: collAudit, name: "case_seq", keys: bson.D{asc("case"), asc("_id")},
		why: "one case's audit entries in chain order"},
	{coll: collDisclosures, name: "case_requested", keys: bson.D{asc("case_id"), asc("requested_at"), asc("_id")},
		why: "a case's disclosure requests in order"},
	{coll: collDisclosures, name: "status_requested", keys: bson.D{asc("status"), asc("requested_at"), asc("_id")},
		why: "the open disclosure requests (pending, approved), oldest first"},
	{coll: collNotifications, name: "unit_created", keys: bson.D{asc("unit_id"), desc("created_at"), asc("_id")},
		why: "a unit's escalation notifications, newest first"},
	{coll: collDeliveries, name: "status_next", keys: bson.D{asc("status"), asc("next_at"), asc("_id")},
		why: "the webhook deliveries due"},
	{coll: collLedger, name: "id_date", keys: bson.D{asc("_id"), asc("date")},
		why: "an organization's ledger entries (an _id range) within dates"},
	{coll: collCases, name: "status_identity_division", keys: bson.D{asc("status"), asc("identity.sealed_at"), asc("location.division")},
		why: "custody: the open cases with a sealed identity, in a jurisdiction"},
	{coll: collLedger, name: "pending_alerts", keys: bson.D{asc("alerts_pending"), asc("recorded_at"), asc("_id")},
		why: "alerts: entries whose evaluation on append was interrupted, oldest first"},
	{coll: collLedger, name: "kind_type_id", keys: bson.D{asc("kind"), asc("income_type"), asc("_id")},
		why: "an organization's entries of one kind (goods received, say) in sequence"},
	{coll: collLedger, name: "org_idem", keys: bson.D{asc("org"), asc("idem")},
		why: "a retried ledger append finds the entry its first attempt appended"},
	{coll: collRecipients, name: "added", keys: bson.D{asc("added_at"), asc("_id")},
		why: "custodians and staff recipients in the order they were registered"},
	{coll: collResealTasks, name: "status_created", keys: bson.D{asc("status"), asc("created_at"), asc("_id")},
		why: "the pending re-seal tasks, oldest first"},
	{coll: collResealTasks, name: "case_status_created", keys: bson.D{asc("case_id"), asc("status"), asc("created_at"), asc("_id")},
		why: "a case's pending re-seal tasks, oldest first"},
	{coll: collLedgerVerifications, name: "org", keys: bson.D{asc("org")},
		why: "an organization's goods verifications"},
	{coll: collLedgerAlerts, name: "status_created", keys: bson.D{asc("status"), asc("created_at"), asc("_id")},
		why: "the pending ledger alerts in order"},
}

// indexes returns the declared indexes to create on this server, by collection.
// FerretDB cannot expire documents, so it gets no TTL indexes; PurgeExpired's range
// delete scans there, as every query on FerretDB does.
func (db *DB) indexes() map[string][]mongodrv.IndexModel {
	ix := map[string][]mongodrv.IndexModel{}
	for _, d := range declaredIndexes {
		if d.ttl && !db.ttl {
			continue
		}
		o := options.Index().SetName(d.name)
		if d.unique {
			o.SetUnique(true)
		}
		if d.ttl {
			o.SetExpireAfterSeconds(0)
		}
		ix[d.coll] = append(ix[d.coll], mongodrv.IndexModel{Keys: d.keys, Options: o})
	}
	return ix
}

// EnsureIndexes creates the indexes the stores rely on; it is safe to call at every
// start. On FerretDB, which cannot expire documents by index, call PurgeExpired
// periodically instead.
func (db *DB) EnsureIndexes(ctx context.Context) error {
	for coll, models := range db.indexes() {
		// One index per command: FerretDB v1.24 panics (and drops the connection)
		// on a createIndexes naming two or more indexes that all exist already.
		for _, m := range models {
			if _, err := db.coll(coll).Indexes().CreateOne(ctx, m); err != nil {
				return fmt.Errorf("ensure indexes on %s: %w", coll, err)
			}
		}
	}
	// Fields derived from a case and kept on it for a query or a condition: the cases
	// stored before a field existed get it here. Every case written since has it (null
	// for none), so after the first start these find nothing; a case changed meanwhile
	// has it from that change and is left alone.
	if err := db.fillDerived(ctx, "org_keys", bson.M{"subject": 1, "decision": 1, "earlier_decisions": 1},
		func(c *intake.Case) any { return orgKeys(c) }); err != nil {
		return err // the organization search (org_queue indexes a missing field as null)
	}
	return db.fillDerived(ctx, "evidence_keys", bson.M{"evidence": 1},
		func(c *intake.Case) any { return evidenceKeys(c.Evidence) }) // else a case would take a file it holds again
}

// fillDerived sets field on every case that lacks it to value of the case, read with
// projection.
func (db *DB) fillDerived(ctx context.Context, field string, projection bson.M, value func(*intake.Case) any) error {
	cur, err := db.coll(collCases).Find(ctx, bson.M{field: bson.M{"$exists": false}}, options.Find().SetProjection(projection))
	if err != nil {
		return fmt.Errorf("fill %s: %w", field, err)
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		var d caseDoc
		if err := cur.Decode(&d); err != nil {
			return fmt.Errorf("fill %s: %w", field, err)
		}
		if _, err := db.updateOne(ctx, collCases, d.ID, bson.M{field: bson.M{"$exists": false}},
			bson.M{"$set": bson.M{field: value(d.toCase())}}); err != nil {
			return fmt.Errorf("fill %s of case %s: %w", field, d.ID, err)
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("fill %s: %w", field, err)
	}
	return nil
}

// PurgeExpired deletes expired sessions and idempotency records and returns how many.
// MongoDB's TTL monitor does this by itself; the embedded FerretDB needs it called,
// say, hourly.
func (db *DB) PurgeExpired(ctx context.Context) (int64, error) {
	var n int64
	filter := bson.M{"expires_at": bson.M{"$lte": db.now().UTC()}}
	for _, coll := range []string{collSessions, collIdempotency} {
		res, err := db.coll(coll).DeleteMany(ctx, filter)
		if err != nil {
			return n, fmt.Errorf("purge expired %s: %w", coll, err)
		}
		n += res.DeletedCount
	}
	return n, nil
}

// docLocks serializes updates of one document within this process when the server is
// FerretDB (see DB.ferret). The embedded FerretDB runs in this process and nothing
// else writes to it, so a process-wide lock per document makes its updates as atomic
// as MongoDB's. It is package-level so that several DB handles on the same server
// share it. Stripes bound memory; two documents sharing a stripe only wait for each
// other.
var (
	docLocks    [256]sync.Mutex
	docLockSeed = maphash.MakeSeed()
)

// lockDoc locks document id of coll for one update on FerretDB and returns the unlock
// function; on MongoDB, whose single-document updates are atomic, it does nothing.
func (db *DB) lockDoc(coll, id string) (unlock func()) {
	if !db.ferret {
		return func() {}
	}
	var h maphash.Hash
	h.SetSeed(docLockSeed)
	h.WriteString(coll)
	h.WriteByte(0)
	h.WriteString(id)
	m := &docLocks[h.Sum64()%uint64(len(docLocks))]
	m.Lock()
	return m.Unlock
}

// updateOne applies update to document id of coll if it also matches cond (nil for
// none). It is the only way this package updates an existing document, so that the
// FerretDB lock is never forgotten.
func (db *DB) updateOne(ctx context.Context, coll, id string, cond bson.M, update bson.M) (*mongodrv.UpdateResult, error) {
	filter := bson.M{"_id": id}
	for k, v := range cond {
		filter[k] = v
	}
	defer db.lockDoc(coll, id)()
	return db.coll(coll).UpdateOne(ctx, filter, update)
}

// deleteOne deletes document id of coll if it also matches cond, under the same
// FerretDB lock as updateOne, so that a conditional delete cannot interleave with an
// update of the same document.
func (db *DB) deleteOne(ctx context.Context, coll, id string, cond bson.M) (*mongodrv.DeleteResult, error) {
	filter := bson.M{"_id": id}
	for k, v := range cond {
		filter[k] = v
	}
	defer db.lockDoc(coll, id)()
	return db.coll(coll).DeleteOne(ctx, filter)
}

// findOneAndUpdate is updateOne returning the document after the update, creating it
// when upsert is set.
func (db *DB) findOneAndUpdate(ctx context.Context, coll, id string, update bson.M, upsert bool) *mongodrv.SingleResult {
	defer db.lockDoc(coll, id)()
	return db.coll(coll).FindOneAndUpdate(ctx, bson.M{"_id": id}, update,
		options.FindOneAndUpdate().SetUpsert(upsert).SetReturnDocument(options.After))
}

// storeError maps a driver error to the domain vocabulary: no document → notFound,
// duplicate key → conflict, an unreachable or timed-out server → EUNAVAILABLE. The
// driver error is kept as the cause, with op, for the log.
func storeError(op string, err error, notFound, conflict *qingfeng.Error) error {
	if err == nil {
		return nil
	}
	cause := fmt.Errorf("%s: %w", op, err)
	var e *qingfeng.Error
	switch {
	case notFound != nil && errors.Is(err, mongodrv.ErrNoDocuments):
		e = notFound
	case conflict != nil && mongodrv.IsDuplicateKeyError(err):
		e = conflict
	case errors.Is(err, context.Canceled):
		// The caller went away; nobody will read a friendlier error.
		return cause
	case mongodrv.IsNetworkError(err) || mongodrv.IsTimeout(err) || errors.Is(err, mongodrv.ErrClientDisconnected):
		e = errUnavailable
	default:
		return cause
	}
	out := *e
	out.Err = cause
	return &out
}

var errUnavailable = qingfeng.Errorf(qingfeng.EUNAVAILABLE, "服务暂时不可用，请稍后再试", "the database is unavailable, try again later")

// findAll runs a query on collection coll and decodes every document into a D; op
// names the operation in errors.
func findAll[D any](ctx context.Context, db *DB, coll, op string, filter any, opts ...options.Lister[options.FindOptions]) ([]D, error) {
	cur, err := db.coll(coll).Find(ctx, filter, opts...)
	if err != nil {
		return nil, storeError(op, err, nil, nil)
	}
	var out []D
	if err := cur.All(ctx, &out); err != nil {
		return nil, storeError(op, err, nil, nil)
	}
	return out, nil
}
