package mongo

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/audit"
	"github.com/qingfeng-zj/qingfeng/custody"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/retention"
	"github.com/qingfeng-zj/qingfeng/storage/blob"
	"github.com/qingfeng-zj/qingfeng/storage/embedded"
	"github.com/qingfeng-zj/qingfeng/storage/storetest"
)

// retentionPeriod is the period the tests purge with: five years.
const retentionPeriod = 5 * 365 * 24 * time.Hour

// retentionNow is the tests' "now".
var retentionNow = time.Date(2032, 6, 1, 2, 0, 0, 0, time.UTC)

// memS3 is an S3 server in memory (gofakes3, as storage/blob's tests use) with a
// fresh bucket, through the real blob.Store.
func memS3(t *testing.T) *blob.Store {
	t.Helper()
	srv := httptest.NewServer(gofakes3.New(s3mem.New(), gofakes3.WithLogger(gofakes3.DiscardLog())).Server())
	t.Cleanup(srv.Close)
	s, err := blob.Open(context.Background(), blob.Config{Endpoint: strings.TrimPrefix(srv.URL, "http://"),
		AccessKey: "qingfeng-test", SecretKey: "qingfeng-test-secret", Bucket: "qf-retention"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// retentionFixture is a case with everything the purge must destroy: a sealed identity,
// identifying text, evidence objects (one with a kept original), messages, disclosure
// requests (one completed with a re-sealed copy, one approved and waiting for it) and
// an idempotency record with a sealed receipt. Markers are unique per case, so the
// tests can look for them anywhere.
type retentionFixture struct {
	c       *intake.Case
	tag     string
	markers []string // plaintext that must not survive the purge
}

// closedCase builds case i closed at closedAt (after steps that are about a year
// earlier), stores it with its messages, disclosures, idempotency record and objects.
func closedCase(t *testing.T, db *DB, blobs intake.EvidenceStore, i int, closedAt time.Time, person bool) retentionFixture {
	t.Helper()
	ctx := context.Background()
	s := NewCaseStore(db)
	received := closedAt.AddDate(-1, 0, 0)
	c := storetest.NewCase(i, "330782-mz", "330782", received)
	tag := fmt.Sprintf("%04d", i)
	f := retentionFixture{c: c, tag: tag, markers: []string{
		"DESC-MARKER-" + tag, "ADDR-MARKER-" + tag, "NAME-MARKER-" + tag, "MSG-MARKER-" + tag, "IDENTITY-MARKER-" + tag,
		"RESEALED-MARKER-" + tag, "RECEIPT-MARKER-" + tag, "EVIDENCE-MARKER-" + tag, "REASON-MARKER-" + tag,
	}}
	c.Description = "以会员费名义强制收费 DESC-MARKER-" + tag
	c.Location.Address = "稠城街道某路1号 ADDR-MARKER-" + tag
	if person {
		c.Subject = intake.Subject{Kind: intake.SubjectPerson, Person: &intake.PersonSubject{
			Name: "张某 NAME-MARKER-" + tag, Position: "科长 NAME-MARKER-" + tag, Employer: "某局 NAME-MARKER-" + tag}}
	} else {
		c.Subject.Organization.Name = "义乌市某某协会 NAME-MARKER-" + tag
	}
	c.Identity.Ciphertext = []byte("age-encryption.org/v1\nIDENTITY-MARKER-" + tag)
	c.Status = intake.StatusClosed
	c.AcceptanceDue = ""
	c.Decision.Why = "改派 REASON-MARKER-" + tag
	c.EarlierDecisions = []intake.Decision{{UnitID: "330782-jw", UnitName: "义乌市纪委", Router: "rules/v1", DecidedAt: received,
		By: "staff-1", Why: "REASON-MARKER-" + tag}}
	step := func(action string, from, to intake.Status, at time.Time) intake.Transition {
		return intake.Transition{Action: action, From: from, To: to, By: "staff-1", At: at, Reason: "与张三核实 REASON-MARKER-" + tag}
	}
	c.Transitions = []intake.Transition{
		step("accept", intake.StatusRegistered, intake.StatusAccepted, received.Add(24*time.Hour)),
		step("dispose", intake.StatusAccepted, intake.StatusDisposed, received.Add(48*time.Hour)),
		step("conclude", intake.StatusDisposed, intake.StatusConcluded, closedAt.Add(-48*time.Hour)),
		step("give_feedback", intake.StatusConcluded, intake.StatusFeedbackGiven, closedAt.Add(-24*time.Hour)),
		step("close", intake.StatusFeedbackGiven, intake.StatusClosed, closedAt),
	}
	c.Outcome = &intake.Outcome{Result: "substantiated"}
	for j, orig := range []bool{true, false} {
		ev := intake.Evidence{ID: fmt.Sprintf("ev-%s-%d", tag, j), ObjectKey: fmt.Sprintf("cases/%s/ev-%d", c.ID, j),
			ContentType: "image/jpeg", Size: 100 + int64(j), SHA256Received: fmt.Sprintf("recv-%s-%d", tag, j),
			SHA256Stored: fmt.Sprintf("stored-%s-%d", tag, j), MetadataRemoved: true, UploadedBy: "reporter", UploadedAt: received}
		if orig {
			ev.OriginalKey = fmt.Sprintf("originals/%s/ev-%d", c.ID, j)
		}
		c.Evidence = append(c.Evidence, ev)
		c.EvidenceBytes += ev.Size
	}
	mustCreate(t, s, c)
	for _, key := range retention.ObjectKeys(c.Evidence) {
		if _, err := blobs.Put(ctx, key, strings.NewReader("EVIDENCE-MARKER-"+tag+" "+key), "image/jpeg"); err != nil {
			t.Fatal(err)
		}
	}
	for j, body := range []string{"举报人补充：我是王五 MSG-MARKER-" + tag, "请补充材料 MSG-MARKER-" + tag} {
		if err := s.AddMessage(ctx, &intake.Message{ID: fmt.Sprintf("m-%s-%d", tag, j), CaseID: c.ID, From: "reporter",
			Kind: "message", Body: body, CreatedAt: received.Add(time.Duration(j) * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	// The unit read the reporter's messages before it closed the case.
	if ok, err := s.MarkActivitySeen(ctx, c.ID, c.UnitID, 2, closedAt); err != nil || !ok {
		t.Fatalf("mark activity seen: %v, %v", ok, err)
	}
	rs := NewRecipientStore(db)
	for j, d := range []custody.Disclosure{
		{Status: custody.Completed, Resealed: []byte("age-encryption.org/v1\nRESEALED-MARKER-" + tag)},
		{Status: custody.Approved},
	} {
		d.ID, d.CaseID, d.Case, d.Division, d.UnitID = fmt.Sprintf("dis-%s-%d", tag, j), c.ID, c.Number, "330782", c.UnitID
		d.Requester, d.RequesterRecipient, d.Reason = "staff-1", "age1staff", "核查线索"
		// Open requests far in the future: only the purge can expire them.
		d.RequestedAt, d.ExpiresAt = received, retentionNow.AddDate(1, 0, 0)
		if err := rs.InsertDisclosure(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.ClaimIdempotency(ctx, &intake.IdempotencyRecord{KeyHash: "idem-" + tag, RequestHash: "req", Owner: "o", Done: true, CaseID: c.ID,
		CaseNumber: c.Number, ReceiptEnc: []byte("RECEIPT-MARKER-" + tag), CreatedAt: received,
		ExpiresAt: retentionNow.AddDate(1, 0, 0)}); err != nil {
		t.Fatal(err)
	}
	return f
}

func newPurger(db *DB, blobs retention.Blobs, holder string) *retention.Purger {
	return &retention.Purger{Cases: NewCaseStore(db), Leases: NewLeaseStore(db), Blobs: blobs, Audit: &audit.Log{Store: NewAuditStore(db)},
		Period: retentionPeriod, Now: func() time.Time { return retentionNow }, Holder: holder}
}

// rawCase is the case document as stored, every field.
func rawCase(t *testing.T, db *DB, id string) bson.M {
	t.Helper()
	var m bson.M
	if err := db.coll(collCases).FindOne(context.Background(), bson.M{"_id": id}).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// dump is every document of every collection of db, as extended JSON.
func dump(t *testing.T, db *DB) string {
	t.Helper()
	ctx := context.Background()
	names, err := db.db.ListCollectionNames(ctx, bson.M{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, n := range names {
		cur, err := db.coll(n).Find(ctx, bson.M{})
		if err != nil {
			t.Fatal(err)
		}
		for cur.Next(ctx) {
			// Relaxed extended JSON escapes nothing printable; binary fields are base64,
			// so their raw bytes are checked too.
			js, err := bson.MarshalExtJSON(cur.Current, false, false)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s: %s\n%s\n", n, js, []byte(cur.Current))
		}
		if err := cur.Err(); err != nil {
			t.Fatal(err)
		}
		cur.Close(ctx)
	}
	return b.String()
}

// checkPurged checks everything the purge promises about f's case.
func checkPurged(t *testing.T, db *DB, blobs intake.EvidenceStore, f retentionFixture) {
	t.Helper()
	ctx := context.Background()
	s := NewCaseStore(db)
	got, err := s.CaseByID(ctx, f.c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Identity != nil {
		t.Errorf("%s: identity kept", f.c.Number)
	}
	if got.Description != PurgedDescription {
		t.Errorf("%s: description %q", f.c.Number, got.Description)
	}
	if got.Location != (intake.Location{Division: f.c.Location.Division}) {
		t.Errorf("%s: location %+v, want the division only", f.c.Number, got.Location)
	}
	switch {
	case f.c.Subject.Person != nil:
		if p := got.Subject.Person; got.Subject.Kind != intake.SubjectPerson || p == nil || *p != (intake.PersonSubject{}) {
			t.Errorf("%s: subject %+v %+v", f.c.Number, got.Subject, got.Subject.Person)
		}
	default:
		want := intake.OrgSubject{CreditCode: f.c.Subject.Organization.CreditCode}
		if o := got.Subject.Organization; got.Subject.Kind != intake.SubjectOrganization || o == nil || *o != want {
			t.Errorf("%s: subject %+v %+v, want the credit code only", f.c.Number, got.Subject, got.Subject.Organization)
		}
	}
	// Chain of custody: every entry stays with its hashes, size and type; no keys.
	if len(got.Evidence) != len(f.c.Evidence) {
		t.Fatalf("%s: %d evidence entries, want %d", f.c.Number, len(got.Evidence), len(f.c.Evidence))
	}
	for i, ev := range got.Evidence {
		want := f.c.Evidence[i]
		want.ObjectKey, want.OriginalKey, want.UploadedAt = "", "", want.UploadedAt.UTC()
		if !reflect.DeepEqual(ev, want) {
			t.Errorf("%s: evidence %d\n got %+v\nwant %+v", f.c.Number, i, ev, want)
		}
	}
	for _, key := range retention.ObjectKeys(f.c.Evidence) {
		rc, _, err := blobs.Get(ctx, key)
		if err == nil {
			rc.Close()
			t.Errorf("%s: object %s still stored", f.c.Number, key)
		} else if qingfeng.ErrorCode(err) != qingfeng.ENOTFOUND {
			t.Errorf("%s: get %s: %v", f.c.Number, key, err)
		}
	}
	// The workflow stays, without its free text: statistics count steps and dates.
	if len(got.Transitions) != len(f.c.Transitions) || got.Status != intake.StatusClosed || got.Outcome == nil {
		t.Errorf("%s: workflow %v %v %v", f.c.Number, got.Status, len(got.Transitions), got.Outcome)
	}
	for i, tr := range got.Transitions {
		if tr.Reason != "" || tr.Action != f.c.Transitions[i].Action || !tr.At.Equal(f.c.Transitions[i].At) {
			t.Errorf("%s: transition %d %+v", f.c.Number, i, tr)
		}
	}
	if got.Number != f.c.Number || got.Category != f.c.Category || !got.ReceivedAt.Equal(f.c.ReceivedAt) || !got.RealName {
		t.Errorf("%s: statistics fields changed: %s %s %v", f.c.Number, got.Number, got.Category, got.ReceivedAt)
	}
	raw := rawCase(t, db, f.c.ID)
	if _, ok := raw["purged_at"]; !ok {
		t.Errorf("%s: purged_at missing", f.c.Number)
	}
	msgs, err := s.Messages(ctx, f.c.ID)
	if err != nil || len(msgs) != 0 {
		t.Errorf("%s: %d messages left, %v", f.c.Number, len(msgs), err)
	}
	ds, err := NewRecipientStore(db).Disclosures(ctx, f.c.ID)
	if err != nil || len(ds) != 2 {
		t.Fatalf("%s: %d disclosures, %v", f.c.Number, len(ds), err)
	}
	for _, d := range ds {
		full, err := NewRecipientStore(db).Disclosure(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if full.Resealed != nil || (full.Status != custody.Completed && full.Status != custody.Expired) {
			t.Errorf("%s: disclosure %s status %s, %d bytes re-sealed", f.c.Number, d.ID, full.Status, len(full.Resealed))
		}
	}
	_, err = s.Idempotency(ctx, "idem-"+f.tag)
	wantCode(t, err, qingfeng.ENOTFOUND)
	// Whatever else a document holds: no marker anywhere in the database.
	all := dump(t, db)
	for _, m := range f.markers {
		if strings.Contains(all, m) {
			t.Errorf("%s: %q is still in the database", f.c.Number, m)
		}
	}
}

// purgeEntries is the audit log's purge entries, by case number.
func purgeEntries(t *testing.T, db *DB) map[string][]audit.Entry {
	t.Helper()
	es, err := NewAuditStore(db).List(context.Background(), audit.Query{Limit: audit.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]audit.Entry{}
	for _, e := range es {
		if e.Action == retention.AuditAction {
			out[e.Case] = append(out[e.Case], e)
		}
	}
	return out
}

func TestRetentionPurge(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		db := openTestDB(t, tg)
		blobs := memS3(t)
		s := NewCaseStore(db)
		old := retentionNow.AddDate(-6, 0, 0)

		due := []retentionFixture{
			closedCase(t, db, blobs, 1, old, false),
			closedCase(t, db, blobs, 2, old.Add(time.Hour), true),
		}
		recent := closedCase(t, db, blobs, 3, retentionNow.AddDate(-1, 0, 0), false)
		// Closed long ago, then reopened: not closed now.
		reopened := closedCase(t, db, blobs, 4, old, false)
		reopened.c.Transitions = append(reopened.c.Transitions, intake.Transition{Action: "reopen", From: intake.StatusClosed,
			To: intake.StatusAccepted, By: "staff-1", At: old.AddDate(1, 0, 0), Reason: "新线索"})
		// Reopened and closed again recently: the last close counts.
		reclosed := closedCase(t, db, blobs, 5, old, false)
		reclosed.c.Transitions = append(reclosed.c.Transitions,
			intake.Transition{Action: "reopen", From: intake.StatusClosed, To: intake.StatusAccepted, By: "staff-1", At: old.AddDate(1, 0, 0), Reason: "新线索"},
			intake.Transition{Action: "close", From: intake.StatusAccepted, To: intake.StatusClosed, By: "staff-1", At: retentionNow.AddDate(-1, 0, 0), Reason: "结案"})
		// Closed with no recorded step: when is unknown, so it is kept.
		unknown := closedCase(t, db, blobs, 6, old, false)
		unknown.c.Transitions = nil
		kept := []retentionFixture{recent, reopened, reclosed, unknown}
		for _, f := range kept[1:] {
			set := bson.M{"transitions": bson.A{}}
			for _, tr := range f.c.Transitions {
				set["transitions"] = append(set["transitions"].(bson.A), toTransitionDoc(tr))
			}
			if f.c == reopened.c {
				set["status"] = string(intake.StatusAccepted)
			}
			if _, err := db.coll(collCases).UpdateOne(ctx, bson.M{"_id": f.c.ID}, bson.M{"$set": set}); err != nil {
				t.Fatal(err)
			}
		}
		before := map[string]*intake.Case{}
		for _, f := range kept {
			c, err := s.CaseByID(ctx, f.c.ID)
			if err != nil {
				t.Fatal(err)
			}
			before[f.c.ID] = c
		}

		p := newPurger(db, blobs, "instance-1")
		dry, err := p.Due(ctx)
		if err != nil || len(dry) != 2 || dry[0].Number != due[0].c.Number || dry[1].Number != due[1].c.Number ||
			dry[0].Evidence != 2 || len(dry[0].ObjectKeys) != 3 || !dry[0].ClosedAt.Equal(old) {
			t.Fatalf("due %+v, %v", dry, err)
		}
		n, err := p.RunOnce(ctx)
		if err != nil || n != 2 {
			t.Fatalf("purged %d, %v; want 2", n, err)
		}
		for _, f := range due {
			checkPurged(t, db, blobs, f)
		}
		entries := purgeEntries(t, db)
		for _, f := range due {
			es := entries[f.c.Number]
			if len(es) != 1 || es[0].Actor != audit.ActorSystem || es[0].Detail["evidence"] != "2" {
				t.Errorf("%s: audit entries %+v", f.c.Number, es)
			}
		}
		if len(entries) != 2 {
			t.Errorf("audit entries for %d cases, want 2", len(entries))
		}
		if r, err := audit.Verify(ctx, NewAuditStore(db)); err != nil || !r.OK {
			t.Errorf("audit chain: %+v %v", r, err)
		}

		// The others are untouched: document, messages, objects.
		for _, f := range kept {
			c, err := s.CaseByID(ctx, f.c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c, before[f.c.ID]) {
				t.Errorf("%s changed:\n got %+v\nwant %+v", f.c.Number, c, before[f.c.ID])
			}
			if msgs, _ := s.Messages(ctx, f.c.ID); len(msgs) != 2 {
				t.Errorf("%s: %d messages", f.c.Number, len(msgs))
			}
			for _, key := range retention.ObjectKeys(f.c.Evidence) {
				rc, _, err := blobs.Get(ctx, key)
				if err != nil {
					t.Errorf("%s: %v", f.c.Number, err)
					continue
				}
				rc.Close()
			}
			if d, _ := NewRecipientStore(db).Disclosure(ctx, "dis-"+f.tag+"-0"); d.Resealed == nil {
				t.Errorf("%s: disclosed copy removed", f.c.Number)
			}
		}

		// Running again purges nothing more, and records nothing more; another
		// instance, once the lease has expired, neither.
		if n, err := p.RunOnce(ctx); err != nil || n != 0 {
			t.Errorf("second run purged %d, %v", n, err)
		}
		later := newPurger(db, blobs, "instance-2")
		later.Now = func() time.Time { return retentionNow.Add(time.Hour) }
		if n, err := later.RunOnce(ctx); err != nil || n != 0 {
			t.Errorf("run by another instance purged %d, %v", n, err)
		}
		if got := purgeEntries(t, db); len(got[due[0].c.Number]) != 1 || len(got[due[1].c.Number]) != 1 {
			t.Errorf("audit entries after rerun: %v", got)
		}
		// Anonymise on a purged case is a no-op, on an open one a conflict.
		if err := s.Anonymise(ctx, due[0].c.ID, 0, retentionNow); err != nil {
			t.Errorf("anonymise again: %v", err)
		}
		c, _ := s.CaseByID(ctx, reopened.c.ID)
		wantCode(t, s.Anonymise(ctx, reopened.c.ID, c.Version, retentionNow), qingfeng.ECONFLICT)
		wantCode(t, s.Anonymise(ctx, "no-such-case", 1, retentionNow), qingfeng.ENOTFOUND)
	})
}

func TestRetentionLease(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		db := openTestDB(t, tg)
		blobs := memS3(t)
		f := closedCase(t, db, blobs, 1, retentionNow.AddDate(-6, 0, 0), false)
		if ok, err := NewLeaseStore(db).AcquireLease(ctx, retention.LeaseName, "server", retentionNow, retentionNow.Add(time.Minute)); !ok || err != nil {
			t.Fatal(ok, err)
		}
		if n, err := newPurger(db, blobs, "cli").RunOnce(ctx); !errors.Is(err, retention.ErrLeaseHeld) || n != 0 {
			t.Fatalf("purged %d while another held the lease: %v", n, err)
		}
		if n, err := newPurger(db, blobs, "server").RunOnce(ctx); err != nil || n != 1 {
			t.Fatalf("lease holder purged %d, %v", n, err)
		}
		checkPurged(t, db, blobs, f)
	})
}

// failingStore is a CaseStore whose Anonymise fails once, before doing anything: a
// crash after the evidence objects are deleted.
type failingStore struct {
	*CaseStore
	fail bool
}

func (s *failingStore) Anonymise(ctx context.Context, caseID string, version int64, at time.Time) error {
	if s.fail {
		s.fail = false
		return errors.New("simulated crash")
	}
	return s.CaseStore.Anonymise(ctx, caseID, version, at)
}

func TestRetentionCrashRetry(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		db := openTestDB(t, tg)
		blobs := memS3(t)
		s := NewCaseStore(db)
		old := retentionNow.AddDate(-6, 0, 0)

		t.Run("after evidence deletion", func(t *testing.T) {
			f := closedCase(t, db, blobs, 1, old, false)
			p := newPurger(db, blobs, "crashy")
			p.Cases = &failingStore{CaseStore: s, fail: true}
			if n, err := p.RunOnce(ctx); err == nil || n != 0 {
				t.Fatalf("purged %d, %v; want the simulated crash", n, err)
			}
			// The objects are gone, the case still names them and keeps everything else.
			c, err := s.CaseByID(ctx, f.c.ID)
			if err != nil || c.Identity == nil || c.Description != f.c.Description || len(retention.ObjectKeys(c.Evidence)) != 3 {
				t.Fatalf("case after the crash: %+v, %v", c, err)
			}
			if _, _, err := blobs.Get(ctx, f.c.Evidence[0].ObjectKey); qingfeng.ErrorCode(err) != qingfeng.ENOTFOUND {
				t.Fatalf("object after the crash: %v", err)
			}
			// The retry deletes the (missing) objects again and finishes.
			if n, err := p.RunOnce(ctx); err != nil || n != 1 {
				t.Fatalf("retry purged %d, %v", n, err)
			}
			checkPurged(t, db, blobs, f)
			if es := purgeEntries(t, db)[f.c.Number]; len(es) != 1 {
				t.Errorf("%d audit entries", len(es))
			}
		})

		// A crash between any two steps of Anonymise: the case is listed again and the
		// next run completes it, with one audit entry.
		for i, step := range []string{"case", "messages", "disclosures", "idempotency", "mark"} {
			t.Run("before "+step, func(t *testing.T) {
				f := closedCase(t, db, blobs, 10+i, old, i%2 == 0)
				retentionHook = func(caseID, at string) error {
					if caseID == f.c.ID && at == step {
						return errors.New("simulated crash before " + step)
					}
					return nil
				}
				defer func() { retentionHook = nil }()
				p := newPurger(db, blobs, "crashy")
				if n, err := p.RunOnce(ctx); err == nil || n != 0 {
					t.Fatalf("purged %d, %v; want the simulated crash", n, err)
				}
				c, err := s.CaseByID(ctx, f.c.ID)
				if err != nil {
					t.Fatal(err)
				}
				if identityGone := c.Identity == nil; identityGone != (step != "case") {
					t.Errorf("identity gone = %v after a crash before %s", identityGone, step)
				}
				cands, err := s.ClosedBefore(ctx, retentionNow.Add(-retentionPeriod), 10)
				if err != nil || len(cands) != 1 || cands[0].CaseID != f.c.ID {
					t.Fatalf("candidates after the crash: %+v, %v", cands, err)
				}
				retentionHook = nil
				if n, err := p.RunOnce(ctx); err != nil || n != 1 {
					t.Fatalf("retry purged %d, %v", n, err)
				}
				checkPurged(t, db, blobs, f)
				if es := purgeEntries(t, db)[f.c.Number]; len(es) != 1 {
					t.Errorf("%d audit entries", len(es))
				}
			})
		}
	})
}

// TestRetentionChangedDuringPurge: evidence added to the case after the purge read it
// makes Anonymise refuse, so no object is left behind without its key; the next run
// deletes it too.
func TestRetentionChangedDuringPurge(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		db := openTestDB(t, tg)
		blobs := memS3(t)
		s := NewCaseStore(db)
		f := closedCase(t, db, blobs, 1, retentionNow.AddDate(-6, 0, 0), false)
		late := intake.Evidence{ID: "late", ObjectKey: "cases/" + f.c.ID + "/late", ContentType: "image/png", Size: 5,
			SHA256Received: "x", SHA256Stored: "y", UploadedBy: "reporter", UploadedAt: retentionNow}
		retentionHook = func(caseID, step string) error {
			if step == "case" {
				retentionHook = nil
				if _, err := blobs.Put(ctx, late.ObjectKey, strings.NewReader("EVIDENCE-MARKER-late"), "image/png"); err != nil {
					return err
				}
				return s.AddEvidence(ctx, caseID, []intake.Evidence{late}, 1<<30)
			}
			return nil
		}
		defer func() { retentionHook = nil }()
		p := newPurger(db, blobs, "x")
		if n, err := p.RunOnce(ctx); err != nil || n != 0 {
			t.Fatalf("purged %d, %v; want the case skipped", n, err)
		}
		c, _ := s.CaseByID(ctx, f.c.ID)
		if c.Identity == nil || len(c.Evidence) != 3 {
			t.Fatalf("case changed by a refused purge: %+v", c)
		}
		// The late evidence came from the reporter: kept until the unit has read it.
		if n, err := p.RunOnce(ctx); err != nil || n != 0 {
			t.Fatalf("purged %d, %v; want the unread upload kept", n, err)
		}
		if ok, err := s.MarkActivitySeen(ctx, c.ID, c.UnitID, c.ReporterActivityN, retentionNow); err != nil || !ok {
			t.Fatalf("mark seen: %v, %v", ok, err)
		}
		if n, err := p.RunOnce(ctx); err != nil || n != 1 {
			t.Fatalf("next run purged %d, %v", n, err)
		}
		f.c.Evidence = append(f.c.Evidence, late)
		f.markers = append(f.markers, "EVIDENCE-MARKER-late")
		checkPurged(t, db, blobs, f)
	})
}

// needles is what must not be found on disk after f's purge: the plaintext markers,
// and the sealed values (identity, re-sealed copy, receipt) as FerretDB stores binary
// data, in base64.
func (f retentionFixture) needles() []string {
	var out []string
	for _, m := range f.markers {
		// Inside binary values: looked for in base64 below.
		if !strings.HasPrefix(m, "IDENTITY-") && !strings.HasPrefix(m, "RESEALED-") && !strings.HasPrefix(m, "RECEIPT-") {
			out = append(out, m)
		}
	}
	for _, b := range []string{"age-encryption.org/v1\nIDENTITY-MARKER-", "age-encryption.org/v1\nRESEALED-MARKER-", "RECEIPT-MARKER-"} {
		out = append(out, base64.StdEncoding.EncodeToString([]byte(b+f.tag)))
	}
	return out
}

// scanFiles returns, per needle, the files under dir (relative) whose bytes hold it.
func scanFiles(t *testing.T, dir string, fixtures []retentionFixture) map[string][]string {
	t.Helper()
	found := map[string][]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, f := range fixtures {
			for _, n := range f.needles() {
				if bytes.Contains(b, []byte(n)) {
					found[n] = append(found[n], strings.TrimPrefix(path, dir))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// purgeOnDisk stores the fixtures, checks that the scan sees them in dir (so that a
// clean scan later means something), and purges them.
func purgeOnDisk(t *testing.T, db *DB, blobs intake.EvidenceStore, dir string, objectsOnDisk bool) []retentionFixture {
	t.Helper()
	var fixtures []retentionFixture
	for i := range 3 {
		fixtures = append(fixtures, closedCase(t, db, blobs, i+1, retentionNow.AddDate(-6, 0, 0), i == 1))
	}
	found := scanFiles(t, dir, fixtures)
	for _, f := range fixtures {
		for _, n := range f.needles() {
			if strings.HasPrefix(n, "EVIDENCE-") && !objectsOnDisk {
				continue
			}
			if len(found[n]) == 0 {
				t.Errorf("before the purge, no file holds %q: the scan cannot see what it looks for", n)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	if n, err := newPurger(db, blobs, "disk").RunOnce(context.Background()); err != nil || n != 3 {
		t.Fatalf("purged %d, %v", n, err)
	}
	for _, f := range fixtures {
		checkPurged(t, db, blobs, f)
	}
	return fixtures
}

// TestRetentionLeavesNoPlaintextOnDisk purges cases in an embedded server of its own
// (started as the service starts it, in a data directory the test can read) and looks
// through every file the database and the object store keep for the purged
// plaintext. The SQLite file and the object files must be clean at once. SQLite's
// write-ahead log still holds earlier page images until SQLite checkpoints and
// restarts it, which with the embedded default's settings happens at shutdown: the log
// is reported while the server runs, and everything must be clean after shutdown.
// TestRetentionNoPlaintextOnDiskWithSecureDelete shows settings that clean it at once.
func TestRetentionLeavesNoPlaintextOnDisk(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	emb, err := embedded.Start(ctx, dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	db, err := Open(ctx, emb.MongoDBURI(), "qingfeng")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	if err := db.EnsureIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	blobs, err := blob.Open(ctx, blob.Config{Endpoint: emb.S3Endpoint(), AccessKey: emb.S3AccessKey(), SecretKey: emb.S3SecretKey(), Bucket: "qingfeng-evidence"})
	if err != nil {
		t.Fatal(err)
	}
	fixtures := purgeOnDisk(t, db, blobs, dir, true)

	var inWAL []string
	for n, files := range scanFiles(t, dir, fixtures) {
		for _, f := range files {
			if strings.HasSuffix(f, "-wal") {
				inWAL = append(inWAL, n)
				continue
			}
			t.Errorf("while running: %s holds %q", f, n)
		}
	}
	if len(inWAL) > 0 {
		t.Logf("known limitation: while the server runs, the SQLite write-ahead log still holds %d purged values (e.g. %q); "+
			"they are gone once SQLite restarts its log (at shutdown with the embedded default's settings)", len(inWAL), inWAL[0])
	}

	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := emb.Close(); err != nil {
		t.Fatal(err)
	}
	for n, files := range scanFiles(t, dir, fixtures) {
		t.Errorf("after shutdown: %v hold %q", files, n)
	}
}

// TestRetentionNoPlaintextOnDiskWithSecureDelete runs FerretDB on SQLite with
// secure_delete (deleted content is overwritten with zeros), a checkpoint after every
// transaction and the log truncated when it restarts: then no file holds purged
// plaintext even while the server runs. This is what storage/embedded would need to
// add to its SQLite URL for that guarantee.
func TestRetentionNoPlaintextOnDiskWithSecureDelete(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Handler:   "sqlite",
		SQLiteURL: "file:" + filepath.ToSlash(dir) + "/?" + secureSQLitePragmas,
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = f.Run(runCtx) }()
	defer func() { stop(); <-done }()
	db, err := Open(ctx, f.MongoDBURI()+"?retryWrites=false", "qingfeng")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	if err := db.EnsureIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	fixtures := purgeOnDisk(t, db, memS3(t), dir, false)
	for n, files := range scanFiles(t, dir, fixtures) {
		t.Errorf("while running: %v hold %q", files, n)
	}
}

// secureSQLitePragmas are the SQLite settings TestRetentionNoPlaintextOnDiskWithSecureDelete
// checks, as FerretDB's SQLite URL query.
const secureSQLitePragmas = "_pragma=secure_delete(1)&_pragma=wal_autocheckpoint(1)&_pragma=journal_size_limit(0)"

// failingBlobs fails to delete one object (a server error, not a missing object).
type failingBlobs struct {
	*blob.Store
	key string
}

func (b *failingBlobs) Delete(ctx context.Context, key string) error {
	if key == b.key {
		return errors.New("simulated S3 error")
	}
	return b.Store.Delete(ctx, key)
}

// failingAudit refuses every entry.
type failingAudit struct{}

func (failingAudit) Record(context.Context, string, string, string, string, map[string]string) error {
	return errors.New("simulated audit failure")
}

func TestRetentionFailures(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		db := openTestDB(t, tg)
		blobs := memS3(t)
		s := NewCaseStore(db)
		old := retentionNow.AddDate(-6, 0, 0)

		t.Run("no period", func(t *testing.T) {
			f := closedCase(t, db, blobs, 1, old.AddDate(-20, 0, 0), false)
			p := newPurger(db, blobs, "x")
			p.Period = 0
			if n, err := p.RunOnce(ctx); err != nil || n != 0 {
				t.Fatalf("purged %d, %v with no period", n, err)
			}
			if due, err := p.Due(ctx); err != nil || len(due) != 0 {
				t.Fatalf("due %v, %v with no period", due, err)
			}
			if c, _ := s.CaseByID(ctx, f.c.ID); c.Identity == nil {
				t.Fatal("purged with no period")
			}
			// Clean up for the next subtests.
			if n, err := newPurger(db, blobs, "x").RunOnce(ctx); err != nil || n != 1 {
				t.Fatal(n, err)
			}
		})

		t.Run("object store error", func(t *testing.T) {
			f := closedCase(t, db, blobs, 2, old, false)
			p := newPurger(db, blobs, "x")
			p.Blobs = &failingBlobs{Store: blobs, key: f.c.Evidence[1].ObjectKey}
			if n, err := p.RunOnce(ctx); err == nil || n != 0 {
				t.Fatalf("purged %d, %v; want the S3 error", n, err)
			}
			c, _ := s.CaseByID(ctx, f.c.ID)
			if c.Identity == nil || len(retention.ObjectKeys(c.Evidence)) != 3 {
				t.Fatalf("case anonymised although an object could not be deleted: %+v", c)
			}
			p.Blobs = blobs
			if n, err := p.RunOnce(ctx); err != nil || n != 1 {
				t.Fatalf("retry purged %d, %v", n, err)
			}
			checkPurged(t, db, blobs, f)
		})

		t.Run("audit failure", func(t *testing.T) {
			f := closedCase(t, db, blobs, 3, old, false)
			p := newPurger(db, blobs, "x")
			p.Audit = failingAudit{}
			p.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
			// The case is purged, the error is reported, and the case is not listed
			// again (the log line is its record).
			if n, err := p.RunOnce(ctx); err == nil || n != 1 {
				t.Fatalf("purged %d, %v; want 1 and the audit error", n, err)
			}
			checkPurged(t, db, blobs, f)
			if due, err := p.Due(ctx); err != nil || len(due) != 0 {
				t.Fatalf("due after purge %v, %v", due, err)
			}
		})
	})
}
