package migrate_test

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/audit"
	"github.com/qingfeng-zj/qingfeng/custody"
	"github.com/qingfeng-zj/qingfeng/donations"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/routing"
	"github.com/qingfeng-zj/qingfeng/stats"
	"github.com/qingfeng-zj/qingfeng/storage/blob"
	"github.com/qingfeng-zj/qingfeng/storage/embedded"
	"github.com/qingfeng-zj/qingfeng/storage/migrate"
	"github.com/qingfeng-zj/qingfeng/storage/mongo"
	"github.com/qingfeng-zj/qingfeng/storage/sqlite"
	"github.com/qingfeng-zj/qingfeng/storage/storetest"
	"github.com/qingfeng-zj/qingfeng/triage"
)

// servers are one embedded FerretDB and S3 server for the whole test binary's sides.
type servers struct {
	emb *embedded.Servers
}

func startServers(t testing.TB) *servers {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	emb, err := embedded.Start(ctx, t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emb.Close() })
	return &servers{emb: emb}
}

func (s *servers) objects(t testing.TB) *blob.Store {
	t.Helper()
	b, err := blob.Open(context.Background(), blob.Config{Endpoint: s.emb.S3Endpoint(), AccessKey: s.emb.S3AccessKey(),
		SecretKey: s.emb.S3SecretKey(), Bucket: "m-" + hex.EncodeToString(randBytes(4))})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (s *servers) mongoSide(t testing.TB) (migrate.Side, *mongo.DB) {
	t.Helper()
	db, err := mongo.Open(context.Background(), s.emb.MongoDBURI(), "m"+hex.EncodeToString(randBytes(4)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close(context.Background()) })
	if err := db.EnsureIndexes(context.Background()); err != nil {
		t.Fatal(err)
	}
	return migrate.Side{Store: mongo.NewRecords(db), Objects: s.objects(t)}, db
}

func (s *servers) sqliteSide(t testing.TB) (migrate.Side, *sqlite.DB) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), sqlite.FileName), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return migrate.Side{Store: sqlite.NewRecords(db), Objects: s.objects(t)}, db
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = crand.Read(b)
	return b
}

// seed is what was written into the first store: enough to compare after the moves.
type seed struct {
	caseIDs  []string
	users    []string
	counters map[string]int64
}

// fill writes a data set of every kind copied into a SQLite store and its objects,
// varied by a seeded random source: cases in several states with evidence (and
// sealed originals), messages of each kind, escalation notifications, accounts with
// and without a second factor, recipients (one revoked), the default units and rules
// with a rule added and one retired, organizations, a calendar year, counters and an
// audit chain.
func fill(t testing.TB, db *sqlite.DB, objs *blob.Store, n int, rng *rand.Rand) seed {
	t.Helper()
	ctx := context.Background()
	var sd seed
	cases := sqlite.NewCaseStore(db)
	log := &audit.Log{Store: sqlite.NewAuditStore(db)}
	base := time.Date(2026, 3, 2, 1, 2, 3, 4_000_000, time.UTC)
	for i := range n {
		received := base.Add(time.Duration(i) * 37 * time.Minute)
		c := storetest.NewCase(i, "yw-mz", "330782", received)
		if rng.IntN(3) == 0 {
			c.RealName, c.Identity = false, nil
		}
		if err := cases.CreateCase(ctx, c); err != nil {
			t.Fatal(err)
		}
		sd.caseIDs = append(sd.caseIDs, c.ID)
		var evs []intake.Evidence
		for j := range rng.IntN(3) {
			body := randBytes(100 + rng.IntN(5000))
			key := fmt.Sprintf("evidence/%s/%d", c.ID, j)
			if _, err := objs.Put(ctx, key, bytes.NewReader(body), "application/octet-stream"); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(body)
			ev := intake.Evidence{ID: fmt.Sprintf("ev-%d-%d", i, j), ObjectKey: key, ContentType: "image/jpeg", Size: int64(len(body)),
				SHA256Received: hex.EncodeToString(sum[:]), SHA256Stored: hex.EncodeToString(sum[:]), MetadataRemoved: true,
				UploadedBy: intake.UploaderReporter, UploadedAt: received.Add(time.Minute)}
			if j == 0 {
				ev.OriginalKey = "originals/" + c.ID + "/0.age"
				if _, err := objs.Put(ctx, ev.OriginalKey, bytes.NewReader(randBytes(300)), "application/octet-stream"); err != nil {
					t.Fatal(err)
				}
			}
			evs = append(evs, ev)
		}
		if len(evs) > 0 {
			if _, err := cases.AddEvidence(ctx, c.ID, evs, 1<<30); err != nil {
				t.Fatal(err)
			}
		}
		for j := range rng.IntN(4) {
			m := &intake.Message{ID: fmt.Sprintf("msg-%04d-%d", i, j), CaseID: c.ID, From: "staff", Kind: []string{"", "message", "internal", "public_note"}[rng.IntN(4)],
				AuthorID: "u-staff", Body: fmt.Sprintf("第%d条", j), CreatedAt: received.Add(time.Duration(j+2) * time.Hour)}
			if rng.IntN(2) == 0 {
				m.From, m.Kind, m.AuthorID = intake.UploaderReporter, "", ""
			}
			if err := cases.AddMessage(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		if rng.IntN(2) == 0 {
			cur, err := cases.CaseByID(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if err := cases.Assign(ctx, c.ID, cur.Version, "u-staff", intake.Transition{Action: "assign", From: cur.Status, To: cur.Status,
				By: "u-staff", At: received.Add(3 * time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
		// Some cases go further: accepted, disposed, concluded with an outcome (the
		// steps statistics and retention derive their columns from), closed.
		if steps := rng.IntN(5); steps > 0 {
			type step struct {
				action   string
				to       intake.Status
				fields   triage.TransitionFields
				minSteps int
			}
			disposition := "preliminary_verification"
			feedback := "2026-05-10"
			for k, st := range []step{
				{"accept", intake.StatusAccepted, triage.TransitionFields{}, 1},
				{"dispose", intake.StatusDisposed, triage.TransitionFields{Disposition: &disposition}, 2},
				{"conclude", intake.StatusConcluded, triage.TransitionFields{Outcome: &intake.Outcome{Result: "查无实据", NameCleared: true}, FeedbackDue: &feedback, NextDue: feedback}, 3},
				{"give_feedback", intake.StatusConcluded, triage.TransitionFields{}, 4},
			} {
				if steps < st.minSteps {
					break
				}
				cur, err := cases.CaseByID(ctx, c.ID)
				if err != nil {
					t.Fatal(err)
				}
				st.fields.CaseNumber, st.fields.UnitID = c.Number, c.UnitID
				if err := cases.ApplyTransition(ctx, c.ID, cur.Version, intake.Transition{Action: st.action, From: cur.Status, To: st.to, By: "u-staff",
					At: received.Add(time.Duration(k+4) * 24 * time.Hour), Reason: "依规办理"}, st.fields); err != nil {
					t.Fatalf("%s %s: %v", st.action, c.ID, err)
				}
			}
		}
		if rng.IntN(3) == 0 {
			o := triage.Overdue{CaseID: c.ID, Number: c.Number, UnitID: c.UnitID, Kind: "acceptance", Due: c.AcceptanceDue}
			if _, err := cases.Escalate(ctx, o, triage.Notification{ID: c.ID + ":acceptance", UnitID: "yw-jw", Case: c.Number,
				CaseUnit: c.UnitID, Kind: "acceptance", Due: c.AcceptanceDue, CreatedAt: received.Add(24 * time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := log.Append(ctx, "u-staff", "staff", "case.read", c.Number, map[string]string{"i": fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	users := sqlite.NewUserStore(db)
	for i := range 5 {
		u := &accounts.User{ID: fmt.Sprintf("u-%d", i), Username: fmt.Sprintf("staff%d", i), DisplayName: "张三", Role: accounts.RoleStaff,
			UnitID: "yw-mz", PasswordHash: "$argon2id$x", SessionGeneration: int64(i), CreatedAt: base, UpdatedAt: base.Add(time.Hour)}
		if i%2 == 0 {
			u.TOTP = accounts.TOTPState{Enabled: true, Secret: randBytes(20), LastStep: 42, RecoveryHashes: []string{"h1", "h2"}}
		}
		if err := users.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			if err := users.RecordLogin(ctx, u.ID, base.Add(2*time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		sd.users = append(sd.users, u.ID)
	}
	keys := sqlite.NewRecipientStore(db)
	for i := range 3 {
		if err := keys.Add(ctx, custody.Recipient{ID: fmt.Sprintf("r-%d", i), UserID: "u-0", Role: "custodian", Jurisdiction: "330782",
			Recipient: fmt.Sprintf("age1recipient%d", i), AddedBy: "u-admin", AddedAt: base.Add(time.Duration(i) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := keys.Revoke(ctx, "r-1", "u-admin", base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	decided := base.Add(3 * time.Hour)
	for i, st := range []string{"pending", "approved", "completed"} {
		d := custody.Disclosure{ID: fmt.Sprintf("d-%d", i), CaseID: sd.caseIDs[i], Case: fmt.Sprintf("QF-330782-2026-%06d", i), Division: "330782",
			UnitID: "yw-mz", Requester: "u-1", RequesterRecipient: "age1requester", Reason: "核实举报人身份以便约谈", Status: st,
			RequestedAt: base.Add(2 * time.Hour), ExpiresAt: base.Add(74 * time.Hour)}
		if st != "pending" {
			d.DecidedBy, d.DecidedAt, d.DecisionReason = "u-0", &decided, "同意"
		}
		if st == "completed" {
			d.CompletedAt, d.Resealed = &decided, randBytes(80)
		}
		if err := keys.InsertDisclosure(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	for i, st := range []string{"pending", "done"} {
		task := custody.ResealTask{ID: fmt.Sprintf("t-%d", i), CaseID: sd.caseIDs[i], Case: fmt.Sprintf("QF-330782-2026-%06d", i), Division: "330782",
			Target: "330700", Reason: "transfer", ResealTo: []string{"age1a", "age1b"}, Status: st, CreatedAt: base.Add(4 * time.Hour)}
		if st == "done" {
			task.DoneBy, task.DoneAt = "u-0", &decided
		}
		if err := keys.InsertTask(ctx, task); err != nil {
			t.Fatal(err)
		}
	}
	rules := sqlite.NewRuleStore(db)
	set := routing.DefaultRules()
	if _, err := rules.Seed(ctx, set); err != nil {
		t.Fatal(err)
	}
	extra := set.Rules[0]
	extra.ID, extra.Name = "extra-rule", "补充规则"
	if _, err := rules.Add(ctx, extra); err != nil {
		t.Fatal(err)
	}
	if _, err := rules.Retire(ctx, set.Rules[1].ID, "u-admin", base.Add(5*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlite.NewUnitStore(db).SeedUnits(ctx, routing.DefaultUnits()); err != nil {
		t.Fatal(err)
	}
	if err := sqlite.NewUnitStore(db).AddAlias(ctx, routing.DefaultUnits()[0].ID, "别名", 10); err != nil {
		t.Fatal(err)
	}
	var orgs []routing.Organization
	for i := range 20 {
		orgs = append(orgs, routing.Organization{CreditCode: fmt.Sprintf("51330782MJ%07dX", i), Name: fmt.Sprintf("协会%d", i), Type: "社会团体",
			RegDivision: "330782", Status: "registered", Grade: "4A", UpdatedAt: base})
	}
	if _, _, err := sqlite.NewOrgStore(db).UpsertOrganizations(ctx, orgs); err != nil {
		t.Fatal(err)
	}
	if err := sqlite.NewCalendarStore(db).PutYear(ctx, 2027, []byte(`{"year":2027,"days":[]}`), "u-admin"); err != nil {
		t.Fatal(err)
	}
	fillLedger(t, db, objs, rng, base)
	sd.counters = map[string]int64{}
	for _, name := range []string{"case:2026:330782", "case:2026:330000"} {
		for range 1 + rng.IntN(5) {
			v, err := cases.NextSequence(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			sd.counters[name] = v
		}
	}
	return sd
}

// snapshot reads everything back through the stores' own domain methods, so that a
// comparison does not rest on the Records code under test alone.
type snapshot struct {
	Cases         []*intake.Case
	Messages      [][]*intake.Message
	Notifications []triage.Notification
	Users         []*accounts.User
	Recipients    []custody.Recipient
	Disclosures   []custody.Disclosure
	Tasks         []custody.ResealTask
	Rules         routing.RuleSet
	Units         []routing.RegistryUnit
	Orgs          int64
	Years         []triage.StoredYear
	Audit         []audit.Entry
	Ledger        []donations.Record
	Balances      []donations.Balance
	Goods         []donations.Record
	Photos        []intake.Evidence
	Statement     donations.PublishedStatement
	Corrections   []donations.Entry
	Alerts        []donations.Alert
	// Stats are what the derived columns (not part of a case) give.
	Stats stats.Stats
}

func readSQLite(t *testing.T, db *sqlite.DB, sd seed) snapshot {
	t.Helper()
	ctx := context.Background()
	var s snapshot
	cases := sqlite.NewCaseStore(db)
	for _, id := range sd.caseIDs {
		c, err := cases.CaseByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		ms, err := cases.Messages(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		s.Cases, s.Messages = append(s.Cases, c), append(s.Messages, ms)
	}
	var err error
	if s.Notifications, err = cases.Notifications(ctx, "yw-jw", 0); err != nil {
		t.Fatal(err)
	}
	for _, id := range sd.users {
		u, err := sqlite.NewUserStore(db).UserByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		s.Users = append(s.Users, u)
	}
	if s.Recipients, err = sqlite.NewRecipientStore(db).All(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		d, err := sqlite.NewRecipientStore(db).Disclosure(ctx, fmt.Sprintf("d-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		s.Disclosures = append(s.Disclosures, d)
	}
	for i := range 2 {
		task, err := sqlite.NewRecipientStore(db).Task(ctx, fmt.Sprintf("t-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		s.Tasks = append(s.Tasks, task)
	}
	if s.Rules, err = sqlite.NewRuleStore(db).Load(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Units, err = sqlite.NewUnitStore(db).Units(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Orgs, err = sqlite.NewOrgStore(db).CountOrganizations(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Years, err = sqlite.NewCalendarStore(db).Years(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sqlite.NewAuditStore(db).Each(ctx, 1, func(e audit.Entry) error { s.Audit = append(s.Audit, e); return nil }); err != nil {
		t.Fatal(err)
	}
	ledger := sqlite.NewLedgerStore(db)
	for _, org := range ledgerOrgs {
		recs, err := ledger.List(ctx, org, "")
		if err != nil {
			t.Fatal(err)
		}
		b, err := ledger.Balance(ctx, org)
		if err != nil {
			t.Fatal(err)
		}
		g, err := ledger.GoodsIncome(ctx, org)
		if err != nil {
			t.Fatal(err)
		}
		as, err := ledger.OrgAlerts(ctx, org)
		if err != nil {
			t.Fatal(err)
		}
		s.Ledger, s.Balances, s.Goods, s.Alerts = append(s.Ledger, recs...), append(s.Balances, b), append(s.Goods, g...), append(s.Alerts, as...)
	}
	p, err := ledger.Photo(ctx, ledgerOrgs[0], "batch-1/p-1")
	if err != nil {
		t.Fatal(err)
	}
	s.Photos = append(s.Photos, p)
	if s.Statement, _, err = ledger.Published(ctx, ledgerOrgs[0], "2026-03"); err != nil {
		t.Fatal(err)
	}
	if s.Corrections, err = ledger.CorrectionEntries(ctx, ledgerOrgs[0], "2026-03"); err != nil {
		t.Fatal(err)
	}
	if s.Stats, err = cases.Stats(ctx, stats.Filter{}); err != nil {
		t.Fatal(err)
	}
	if s.Stats.Total == 0 {
		t.Fatalf("stats count no case: %+v", s.Stats)
	}
	return s
}

var ledgerOrgs = []string{"53330000501874064B", "51330782MJ0000001X"}

// fillLedger writes donation ledgers: income of each type, goods verified by a second
// person, a disbursement with a sealed beneficiary, a reversal, photos with their
// objects, a published statement with a correction after it, and alerts.
func fillLedger(t testing.TB, db *sqlite.DB, objs *blob.Store, rng *rand.Rand, base time.Time) {
	t.Helper()
	ctx := context.Background()
	ledger := sqlite.NewLedgerStore(db)
	body := randBytes(2000)
	if _, err := objs.Put(ctx, "ledger/batch-1/p-1", bytes.NewReader(body), "application/octet-stream"); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	if _, err := ledger.AddPhotos(ctx, ledgerOrgs[0], "batch-1", []intake.Evidence{{ID: "p-1", ObjectKey: "ledger/batch-1/p-1", ContentType: "image/jpeg",
		Size: int64(len(body)), SHA256Received: hex.EncodeToString(sum[:]), SHA256Stored: hex.EncodeToString(sum[:]), MetadataRemoved: true,
		UploadedBy: "liaison:u-2", UploadedAt: base}}); err != nil {
		t.Fatal(err)
	}
	for _, org := range ledgerOrgs {
		for i := range 5 + rng.IntN(10) {
			e := donations.Entry{Kind: donations.KindIncome, IncomeType: donations.IncomeCash, AmountFen: int64(100 + rng.IntN(100000)),
				Donor: &donations.Donor{Anonymous: i%2 == 0, Name: "捐赠人"}, ReceiptNumber: fmt.Sprint("R", i), Date: fmt.Sprintf("2026-03-%02d", 1+i%28),
				RecordedBy: "u-2", RecordedAt: base.Add(time.Duration(i) * time.Hour), AlertsPending: i == 0}
			if i == 2 {
				e.IncomeType, e.AmountFen, e.Goods = donations.IncomeGoods, 0, &donations.Goods{Item: "大米", Quantity: 10, Unit: "袋", ValuationFen: 50000}
				e.Photos = []string{"batch-1/p-1"}
			}
			if i == 3 {
				e = donations.Entry{Kind: donations.KindDisbursement, From: donations.FromFunds, AmountFen: 50, Purpose: "助学", Date: "2026-03-20",
					Beneficiary: randBytes(64), RecordedBy: "u-2", RecordedAt: base.Add(40 * time.Hour), IdempotencyKey: "idem-" + org}
			}
			got, err := ledger.Append(ctx, org, e, nil)
			if err != nil {
				t.Fatal(err)
			}
			if i == 2 {
				if err := ledger.SaveVerification(ctx, org, donations.Verification{EntryID: got.ID, VerifiedBy: "u-3", VerifiedAt: base.Add(50 * time.Hour), Note: "已验收"}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	st := donations.Statement{Org: ledgerOrgs[0], Month: "2026-03", Entries: 3, OpeningFen: 0, IncomeFen: 1234}
	if err := ledger.SavePublished(ctx, donations.PublishedStatement{Statement: st, ContentHash: donations.ContentHash(st.Canonical()), ThroughSeq: 3,
		PublishedBy: "u-2", PublishedAt: base.Add(60 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	late, err := ledger.Append(ctx, ledgerOrgs[0], donations.Entry{Kind: donations.KindIncome, IncomeType: donations.IncomeTransfer, AmountFen: 99,
		Date: "2026-03-30", RecordedBy: "u-2", RecordedAt: base.Add(70 * time.Hour)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ledger.SaveCorrection(ctx, ledgerOrgs[0], "2026-03", late); err != nil {
		t.Fatal(err)
	}
	if _, err := ledger.RecordAlert(ctx, donations.Hit{Rule: "large_income", Org: ledgerOrgs[1], Period: "0000000001", EntryID: ledgerOrgs[1] + ":0000000001",
		Detail: "大额", OrgName: "协会", Division: "330782", Date: "2026-03-01"}, "QF-1", base.Add(80*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := ledger.RecordAlert(ctx, donations.Hit{Rule: "goods_unverified", Org: ledgerOrgs[1], Period: "2026-03", EntryID: ledgerOrgs[1] + ":0000000003",
		Detail: "未验收", OrgName: "协会", Division: "330782", Date: "2026-03-03"}, "", base.Add(81*time.Hour)); err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, ctx context.Context, src, dst migrate.Side) migrate.Report {
	t.Helper()
	var out bytes.Buffer
	rep, err := migrate.Run(ctx, src, dst, migrate.Options{Progress: &out, BatchSize: 7})
	if err != nil {
		t.Fatalf("migrate: %v\n%s", err, out.String())
	}
	return rep
}

// TestRoundTrip moves a seeded data set from SQLite to MongoDB (FerretDB) and back to
// a new SQLite file, and finds every record — read through the stores' own methods —
// and every object equal, the audit chain intact, and the case-number counters going
// on where they stopped.
func TestRoundTrip(t *testing.T) {
	srv := startServers(t)
	first, firstDB := srv.sqliteSide(t)
	sd := fill(t, firstDB, first.Objects.(*blob.Store), 40, rand.New(rand.NewPCG(1, 2)))
	middle, mongoDB := srv.mongoSide(t)
	last, lastDB := srv.sqliteSide(t)

	ctx := context.Background()
	rep := run(t, ctx, first, middle)
	for _, k := range rep.Kinds {
		if k.Source == 0 || k.Inserted != k.Source && k.Kind != "audit" {
			t.Errorf("first move: %s %d read, %d written; the seed must cover every kind, all copied", k.Kind, k.Source, k.Inserted)
		}
	}
	if rep.Objects == 0 || rep.Copied != rep.Objects {
		t.Errorf("first move: %d objects verified, %d copied; want all copied", rep.Objects, rep.Copied)
	}
	run(t, ctx, middle, last)

	want, got := readSQLite(t, firstDB, sd), readSQLite(t, lastDB, sd)
	v1, v2 := reflect.ValueOf(want), reflect.ValueOf(got)
	for i := range v1.NumField() {
		if !reflect.DeepEqual(v1.Field(i).Interface(), v2.Field(i).Interface()) {
			t.Errorf("%s differ after sqlite → mongo → sqlite:\nbefore %+v\nafter  %+v", v1.Type().Field(i).Name, v1.Field(i).Interface(), v2.Field(i).Interface())
		}
	}
	// The middle store serves the cases through its own methods too.
	for _, c := range want.Cases[:5] {
		m, err := mongo.NewCaseStore(mongoDB).CaseByNumber(ctx, c.Number)
		if err != nil || m.ID != c.ID || m.Version != c.Version || len(m.Evidence) != len(c.Evidence) {
			t.Errorf("mongo CaseByNumber(%s) = %+v, %v", c.Number, m, err)
		}
	}
	// Every object of the last store reads back with the hash its case records.
	for _, c := range got.Cases {
		for _, ev := range c.Evidence {
			r, _, err := last.Objects.Get(ctx, ev.ObjectKey)
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.New()
			_, _ = io.Copy(h, r)
			_ = r.Close()
			if hex.EncodeToString(h.Sum(nil)) != ev.SHA256Stored {
				t.Errorf("object %s: hash differs", ev.ObjectKey)
			}
		}
	}
	for name, n := range sd.counters {
		next, err := sqlite.NewCaseStore(lastDB).NextSequence(ctx, name)
		if err != nil || next != n+1 {
			t.Errorf("NextSequence(%s) after the moves = %d, %v; want %d", name, next, err, n+1)
		}
	}
	// A second run finds everything there and writes nothing.
	rep = run(t, ctx, first, middle)
	for _, k := range rep.Kinds {
		if k.Inserted != 0 {
			t.Errorf("second run wrote %d %s", k.Inserted, k.Kind)
		}
	}
	if rep.Copied != 0 {
		t.Errorf("second run copied %d objects", rep.Copied)
	}
}

// cancelling is a target store that cancels the migration after a number of case
// batches, as a kill would.
type cancelling struct {
	migrate.Store
	after  int
	cancel context.CancelFunc
}

func (c *cancelling) PutCases(ctx context.Context, cs []*intake.Case) error {
	if c.after == 0 {
		c.cancel()
		return ctx.Err()
	}
	c.after--
	return c.Store.PutCases(ctx, cs)
}

// TestResume kills migrations midway at several points, in both directions, and
// resumes them: the resumed run completes and verifies, and the half-done target
// does not verify.
func TestResume(t *testing.T) {
	srv := startServers(t)
	src, srcDB := srv.sqliteSide(t)
	fill(t, srcDB, src.Objects.(*blob.Store), 30, rand.New(rand.NewPCG(3, 4)))
	for _, after := range []int{0, 1, 3} {
		t.Run(fmt.Sprintf("after %d batches", after), func(t *testing.T) {
			dst, _ := srv.mongoSide(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			killed := migrate.Side{Store: &cancelling{Store: dst.Store, after: after, cancel: cancel}, Objects: dst.Objects}
			if _, err := migrate.Run(ctx, src, killed, migrate.Options{BatchSize: 5}); !errors.Is(err, context.Canceled) {
				t.Fatalf("killed run: %v, want context.Canceled", err)
			}
			var me *migrate.MismatchError
			if _, err := migrate.Verify(context.Background(), src, dst, nil); !errors.As(err, &me) {
				t.Fatalf("Verify of a half-done target = %v, want a MismatchError", err)
			}
			rep := run(t, context.Background(), src, dst)
			var cases migrate.KindReport
			for _, k := range rep.Kinds {
				if k.Kind == "cases" {
					cases = k
				}
			}
			if cases.Source != 30 || cases.Inserted != int64(30-5*after) {
				t.Errorf("resumed run: cases %+v, want 30 read and %d written", cases, 30-5*after)
			}
			// And back into SQLite, killed once too.
			back, _ := srv.sqliteSide(t)
			ctx2, cancel2 := context.WithCancel(context.Background())
			defer cancel2()
			if _, err := migrate.Run(ctx2, dst, migrate.Side{Store: &cancelling{Store: back.Store, after: after, cancel: cancel2}, Objects: back.Objects},
				migrate.Options{BatchSize: 5}); !errors.Is(err, context.Canceled) {
				t.Fatalf("killed run back: %v", err)
			}
			run(t, context.Background(), dst, back)
			if _, err := migrate.Verify(context.Background(), src, back, nil); err != nil {
				t.Errorf("source and the SQLite copy of the copy: %v", err)
			}
		})
	}
}

// TestVerifyFindsDifferences changes the target after a migration — an object, a
// case, a missing message, an extra user — and expects Verify to name each.
func TestVerifyFindsDifferences(t *testing.T) {
	srv := startServers(t)
	src, srcDB := srv.sqliteSide(t)
	sd := fill(t, srcDB, src.Objects.(*blob.Store), 8, rand.New(rand.NewPCG(5, 6)))
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, dst migrate.Side, db *sqlite.DB)
		kind   string
	}{
		{"object replaced", func(t *testing.T, dst migrate.Side, db *sqlite.DB) {
			c, err := sqlite.NewCaseStore(db).CaseByID(ctx, firstWithEvidence(t, db, sd))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := dst.Objects.Put(ctx, c.Evidence[0].ObjectKey, bytes.NewReader([]byte("not the photo")), "application/octet-stream"); err != nil {
				t.Fatal(err)
			}
		}, "objects"},
		{"case changed", func(t *testing.T, dst migrate.Side, db *sqlite.DB) {
			c, err := sqlite.NewCaseStore(db).CaseByID(ctx, sd.caseIDs[2])
			if err != nil {
				t.Fatal(err)
			}
			if err := sqlite.NewCaseStore(db).Assign(ctx, c.ID, c.Version, "someone-else", intake.Transition{Action: "assign", From: c.Status, To: c.Status, By: "x", At: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}, "cases"},
		{"extra user", func(t *testing.T, dst migrate.Side, db *sqlite.DB) {
			if err := sqlite.NewUserStore(db).CreateUser(ctx, &accounts.User{ID: "intruder", Username: "intruder", Role: accounts.RoleAdmin,
				CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}, "users"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst, db := srv.sqliteSide(t)
			run(t, ctx, src, dst)
			tc.change(t, dst, db)
			_, err := migrate.Verify(ctx, src, dst, nil)
			var me *migrate.MismatchError
			if !errors.As(err, &me) || me.Kind != tc.kind {
				t.Fatalf("Verify = %v, want a %s mismatch", err, tc.kind)
			}
		})
	}
}

func firstWithEvidence(t *testing.T, db *sqlite.DB, sd seed) string {
	t.Helper()
	for _, id := range sd.caseIDs {
		c, err := sqlite.NewCaseStore(db).CaseByID(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Evidence) > 0 {
			return id
		}
	}
	t.Fatal("no case with evidence")
	return ""
}

// TestCorruptSourceObject: an object in the source whose content no longer matches
// the hash its case records stops the migration with that object named, rather than
// carrying the damage over as if it were evidence.
func TestCorruptSourceObject(t *testing.T) {
	srv := startServers(t)
	src, srcDB := srv.sqliteSide(t)
	sd := fill(t, srcDB, src.Objects.(*blob.Store), 6, rand.New(rand.NewPCG(9, 10)))
	ctx := context.Background()
	c, err := sqlite.NewCaseStore(srcDB).CaseByID(ctx, firstWithEvidence(t, srcDB, sd))
	if err != nil {
		t.Fatal(err)
	}
	key := c.Evidence[0].ObjectKey
	if _, err := src.Objects.Put(ctx, key, bytes.NewReader([]byte("tampered")), "application/octet-stream"); err != nil {
		t.Fatal(err)
	}
	dst, _ := srv.mongoSide(t)
	_, err = migrate.Run(ctx, src, dst, migrate.Options{})
	var me *migrate.MismatchError
	if !errors.As(err, &me) || me.Kind != "objects" || me.Key != key {
		t.Fatalf("Run = %v, want a mismatch naming %s", err, key)
	}
}

// TestConcurrentRuns runs eight migrations of one source into one MongoDB target at
// once (two operators, a retry loop): each either completes and verifies or fails
// cleanly, and a last run completes and verifies; nothing is written twice.
func TestConcurrentRuns(t *testing.T) {
	srv := startServers(t)
	src, srcDB := srv.sqliteSide(t)
	fill(t, srcDB, src.Objects.(*blob.Store), 20, rand.New(rand.NewPCG(11, 12)))
	dst, db := srv.mongoSide(t)
	ctx := context.Background()
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			_, err := migrate.Run(ctx, src, dst, migrate.Options{BatchSize: 3})
			errs <- err
		}()
	}
	ok := 0
	for range 8 {
		if err := <-errs; err == nil {
			ok++
		} else {
			t.Logf("one concurrent run: %v", err)
		}
	}
	t.Logf("%d of 8 concurrent runs completed", ok)
	run(t, ctx, src, dst)
	n, err := mongo.NewCaseStore(db).CountCases(ctx)
	if err != nil || n != 20 {
		t.Errorf("cases in the target: %d, %v; want 20", n, err)
	}
}
