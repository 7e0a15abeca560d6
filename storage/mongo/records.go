package mongo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/audit"
	"github.com/qingfeng-zj/qingfeng/custody"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/routing"
	"github.com/qingfeng-zj/qingfeng/storage/migrate"
	"github.com/qingfeng-zj/qingfeng/triage"
)

// Records is the database as `qingfeng migrate` reads and writes it (migrate.Store):
// every kind in _id order, and inserts that write a document verbatim — no outbox
// event, no derived change — and leave a document already there alone.
type Records struct {
	*AuditStore
	db *DB
}

var _ migrate.Store = (*Records)(nil)

// NewRecords returns the migration view of db.
func NewRecords(db *DB) *Records { return &Records{AuditStore: NewAuditStore(db), db: db} }

// eachDoc streams the documents of coll in _id order to fn as D, mapped by conv.
func eachDoc[D, T any](ctx context.Context, db *DB, coll, op string, conv func(*D) T, fn func(T) error) error {
	// No operation timeout: a whole collection takes longer than opTimeout to read.
	cur, err := db.coll(coll).Find(ctx, bson.M{}, options.Find().SetSort(bson.D{asc("_id")}))
	if err != nil {
		return storeError(op, err, nil, nil)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	for cur.Next(ctx) {
		var d D
		if err := cur.Decode(&d); err != nil {
			return storeError(op, err, nil, nil)
		}
		if err := fn(conv(&d)); err != nil {
			return err
		}
	}
	return storeError(op, cur.Err(), nil, nil)
}

// insertAbsent inserts docs, unordered, and ignores the duplicate-key errors of
// documents already there. Duplicates of another unique index (a username, a case
// number held by a different document) are ignored too; migrate's verification finds
// them as records missing in the target.
func insertAbsent[D any](ctx context.Context, db *DB, coll, op string, docs []D) error {
	if len(docs) == 0 {
		return nil
	}
	_, err := db.coll(coll).InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err == nil || onlyDuplicateKeys(err) {
		return nil
	}
	return storeError(op, err, nil, nil)
}

func mapAll[T, D any](in []T, f func(T) D) []D {
	out := make([]D, 0, len(in))
	for _, v := range in {
		out = append(out, f(v))
	}
	return out
}

// PutAudit implements migrate.Store: entries as they are.
func (r *Records) PutAudit(ctx context.Context, es []audit.Entry) error {
	for _, e := range es {
		if !e.At.Equal(e.At.Truncate(time.Millisecond)) {
			return fmt.Errorf("import audit entry %d: time %s is finer than a millisecond", e.Seq, e.At.Format(time.RFC3339Nano))
		}
	}
	return insertAbsent(ctx, r.db, collAudit, "import audit entries", mapAll(es, toAuditDoc))
}

// EachUser implements migrate.Store.
func (r *Records) EachUser(ctx context.Context, fn func(*accounts.User) error) error {
	return eachDoc(ctx, r.db, collUsers, "export users", (*userDoc).toUser, fn)
}

// PutUsers implements migrate.Store.
func (r *Records) PutUsers(ctx context.Context, us []*accounts.User) error {
	return insertAbsent(ctx, r.db, collUsers, "import users", mapAll(us, func(u *accounts.User) userDoc {
		return userDoc{ID: u.ID, Username: u.Username, DisplayName: u.DisplayName, Role: string(u.Role), UnitID: u.UnitID,
			Division: u.Division, PasswordHash: u.PasswordHash, Disabled: u.Disabled, MustChange: u.MustChangePassword,
			Generation: u.SessionGeneration, TOTP: totpDocOf(u.TOTP), LastLoginAt: utc(u.LastLoginAt),
			CreatedAt: utc(u.CreatedAt), UpdatedAt: utc(u.UpdatedAt)}
	}))
}

// CalendarYears implements migrate.Store.
func (r *Records) CalendarYears(ctx context.Context) ([]triage.StoredYear, error) {
	return NewCalendarStore(r.db).Years(ctx)
}

// PutCalendarYears implements migrate.Store.
func (r *Records) PutCalendarYears(ctx context.Context, ys []triage.StoredYear) error {
	return insertAbsent(ctx, r.db, collCalendar, "import calendar years", mapAll(ys, func(y triage.StoredYear) calendarDoc {
		return calendarDoc{Year: y.Year, Data: y.Data, AddedBy: y.AddedBy, AddedAt: utc(y.AddedAt)}
	}))
}

// RuleSet implements migrate.Store.
func (r *Records) RuleSet(ctx context.Context) (routing.RuleSet, error) {
	return NewRuleStore(r.db).Load(ctx)
}

// PutRuleSet implements migrate.Store: the rules first, not pending, then the version,
// so that no reader sees the version without its rules.
func (r *Records) PutRuleSet(ctx context.Context, set routing.RuleSet) error {
	if err := insertAbsent(ctx, r.db, collRules, "import rules", mapAll(set.Rules, func(rule routing.Rule) ruleDoc {
		return toRuleDoc(rule, false)
	})); err != nil {
		return err
	}
	if set.Version == 0 {
		return nil
	}
	_, err := r.db.coll(collRuleMeta).InsertOne(ctx, bson.M{"_id": ruleMetaID, "version": set.Version})
	if err != nil && !mongodrv.IsDuplicateKeyError(err) {
		return storeError("import rule-set version", err, nil, nil)
	}
	return nil
}

// EachOrganization is OrgStore's.
func (r *Records) EachOrganization(ctx context.Context, fn func(routing.Organization) error) error {
	return NewOrgStore(r.db).EachOrganization(ctx, fn)
}

// PutOrganizations implements migrate.Store.
func (r *Records) PutOrganizations(ctx context.Context, orgs []routing.Organization) error {
	now := time.Now()
	return insertAbsent(ctx, r.db, collOrganizations, "import organizations", mapAll(orgs, func(o routing.Organization) orgDoc {
		return toOrgDoc(o, now)
	}))
}

// Units is UnitStore's.
func (r *Records) Units(ctx context.Context) ([]routing.RegistryUnit, error) {
	return NewUnitStore(r.db).Units(ctx)
}

// PutUnits implements migrate.Store.
func (r *Records) PutUnits(ctx context.Context, units []routing.RegistryUnit) error {
	return insertAbsent(ctx, r.db, collUnits, "import units", mapAll(units, toUnitDoc))
}

// Recipients is RecipientStore's All.
func (r *Records) Recipients(ctx context.Context) ([]custody.Recipient, error) {
	return NewRecipientStore(r.db).All(ctx)
}

// PutRecipients implements migrate.Store: each recipient with its claim (one key, one
// holder), revoked ones included. A claim left by an interrupted run is kept.
func (r *Records) PutRecipients(ctx context.Context, rs []custody.Recipient) error {
	claims := mapAll(rs, func(c custody.Recipient) bson.M {
		sum := sha256.Sum256([]byte(c.Recipient))
		return bson.M{"_id": hex.EncodeToString(sum[:]), "recipient_id": c.ID, "user_id": c.UserID, "at": utc(c.AddedAt)}
	})
	if err := insertAbsent(ctx, r.db, collRecipientClaims, "import recipient claims", claims); err != nil {
		return err
	}
	return insertAbsent(ctx, r.db, collRecipients, "import recipients", mapAll(rs, toRecipientDoc))
}

// EachDisclosure implements migrate.Store, with each re-sealed identity.
func (r *Records) EachDisclosure(ctx context.Context, fn func(custody.Disclosure) error) error {
	return eachDoc(ctx, r.db, collDisclosures, "export disclosures", func(d *disclosureDoc) custody.Disclosure { return d.disclosure() }, fn)
}

// PutDisclosures implements migrate.Store.
func (r *Records) PutDisclosures(ctx context.Context, ds []custody.Disclosure) error {
	return insertAbsent(ctx, r.db, collDisclosures, "import disclosures", mapAll(ds, toDisclosureDoc))
}

// EachResealTask implements migrate.Store.
func (r *Records) EachResealTask(ctx context.Context, fn func(custody.ResealTask) error) error {
	return eachDoc(ctx, r.db, collResealTasks, "export reseal tasks", func(d *resealTaskDoc) custody.ResealTask { return d.task() }, fn)
}

// PutResealTasks implements migrate.Store.
func (r *Records) PutResealTasks(ctx context.Context, ts []custody.ResealTask) error {
	return insertAbsent(ctx, r.db, collResealTasks, "import reseal tasks", mapAll(ts, toResealTaskDoc))
}

type counterExportDoc struct {
	Name string `bson:"_id"`
	Seq  int64  `bson:"seq"`
}

// Counters implements migrate.Store.
func (r *Records) Counters(ctx context.Context) ([]migrate.Counter, error) {
	var out []migrate.Counter
	err := eachDoc(ctx, r.db, collCounters, "export counters", func(d *counterExportDoc) migrate.Counter {
		return migrate.Counter{Name: d.Name, Seq: d.Seq}
	}, func(c migrate.Counter) error { out = append(out, c); return nil })
	return out, err
}

// PutCounters implements migrate.Store: a counter is raised, never lowered.
func (r *Records) PutCounters(ctx context.Context, cs []migrate.Counter) error {
	for _, c := range cs {
		err := r.db.findOneAndUpdate(ctx, collCounters, c.Name, bson.M{"$max": bson.M{"seq": c.Seq}}, true).Err()
		if err != nil {
			return storeError("import counter "+c.Name, err, nil, nil)
		}
	}
	return nil
}

// EachCase implements migrate.Store.
func (r *Records) EachCase(ctx context.Context, fn func(*intake.Case) error) error {
	return eachDoc(ctx, r.db, collCases, "export cases", (*caseDoc).toCase, fn)
}

// PutCases implements migrate.Store: the cases without an outbox event (the source's
// events were relayed, or are not migrated).
func (r *Records) PutCases(ctx context.Context, cs []*intake.Case) error {
	return insertAbsent(ctx, r.db, collCases, "import cases", mapAll(cs, func(c *intake.Case) caseDoc {
		// toCaseDoc is a new case's document; a migrated one keeps what happened since.
		d := toCaseDoc(c)
		d.ReporterActivityAt, d.ReporterActivityN = utc(c.ReporterActivityAt), c.ReporterActivityN
		d.NewActivity, d.StaffSeenAt, d.FollowUpEndedAt = c.NewActivity, utc(c.StaffSeenAt), utc(c.FollowUpEndedAt)
		if c.PurgedAt != nil {
			at := utc(*c.PurgedAt)
			d.PurgedAt = &at
		}
		return d
	}))
}

// EachMessage implements migrate.Store.
func (r *Records) EachMessage(ctx context.Context, fn func(*intake.Message) error) error {
	return eachDoc(ctx, r.db, collMessages, "export messages", func(d *messageDoc) *intake.Message {
		return &intake.Message{ID: d.ID, CaseID: d.CaseID, From: d.From, Kind: messageKind(d.Kind), AuthorID: d.AuthorID,
			Body: d.Body, CreatedAt: d.CreatedAt}
	}, fn)
}

// PutMessages implements migrate.Store, without marking reporter activity (the
// case's own fields carry it).
func (r *Records) PutMessages(ctx context.Context, ms []*intake.Message) error {
	return insertAbsent(ctx, r.db, collMessages, "import messages", mapAll(ms, func(m *intake.Message) messageDoc {
		return messageDoc{ID: m.ID, CaseID: m.CaseID, From: m.From, Kind: m.Kind, AuthorID: m.AuthorID, Body: m.Body, CreatedAt: utc(m.CreatedAt)}
	}))
}

// EachNotification implements migrate.Store.
func (r *Records) EachNotification(ctx context.Context, fn func(triage.Notification) error) error {
	return eachDoc(ctx, r.db, collNotifications, "export notifications", func(d *notificationDoc) triage.Notification {
		return triage.Notification{ID: d.ID, UnitID: d.UnitID, Case: d.Case, CaseUnit: d.CaseUnit, Kind: d.Kind, Due: d.Due, CreatedAt: d.CreatedAt}
	}, fn)
}

// PutNotifications implements migrate.Store.
func (r *Records) PutNotifications(ctx context.Context, ns []triage.Notification) error {
	return insertAbsent(ctx, r.db, collNotifications, "import notifications", mapAll(ns, func(n triage.Notification) notificationDoc {
		return notificationDoc{ID: n.ID, UnitID: n.UnitID, Case: n.Case, CaseUnit: n.CaseUnit, Kind: n.Kind, Due: n.Due, CreatedAt: utc(n.CreatedAt)}
	}))
}

// Uncopied implements migrate.Store: deliveries of case events to webhooks still
// pending. (Events waiting in a case's outbox for the relay are not counted: without
// webhooks they wait for ever and matter to no one.)
func (r *Records) Uncopied(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	for _, c := range []struct {
		kind, coll string
		filter     bson.M
	}{
		{"undelivered_events", collDeliveries, bson.M{"status": "pending"}},
	} {
		n, err := r.db.coll(c.coll).CountDocuments(ctx, c.filter)
		if err != nil {
			return nil, storeError("count "+c.coll, err, nil, nil)
		}
		if n > 0 {
			out[c.kind] += n
		}
	}
	return out, nil
}
