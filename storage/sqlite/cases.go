package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/triage"
)

// List page sizes, as storage/mongo's.
const (
	defaultListLimit = 50
	maxListLimit     = 200
)

// CaseStore keeps cases, their messages, the escalation notifications and the case
// events (which OutboxStore delivers). It embeds the counter and idempotency stores
// because intake.CaseStore asks for them; the leases (LeaseStore) and the deliveries
// (OutboxStore) have stores of their own, as in storage/mongo.
//
// Every change is one transaction on the writer: the case row is read, changed in Go
// and written back with UPDATE … WHERE id = ? AND version = ?, together with its
// event. A step conditional on the version or status the caller saw checks it in the
// same transaction, so of concurrent writers exactly one wins.
// custody's ReplaceIdentity (RecipientStore, reseal.go) is the one other writer of a
// case row: it changes the identity columns alone, and not the version.
//
// Statistics and the export (stats.go) and retention (retention.go) read columns
// derived from the case on every write (derivedColumns).
type CaseStore struct {
	*CounterStore
	*IdempotencyStore
	db *DB
}

// NewCaseStore returns the case store of db.
func NewCaseStore(db *DB) *CaseStore {
	return &CaseStore{CounterStore: NewCounterStore(db), IdempotencyStore: NewIdempotencyStore(db), db: db}
}

var (
	errCaseNotFound     = qingfeng.Errorf(qingfeng.ENOTFOUND, "案件不存在", "case not found")
	errCaseExists       = qingfeng.Errorf(qingfeng.ECONFLICT, "案件已存在", "the case already exists")
	errEvidenceTooLarge = qingfeng.Errorf(qingfeng.ETOOLARGE, "该案件的证据总量已达上限", "the case's evidence has reached its size limit")
	errMessageExists    = qingfeng.Errorf(qingfeng.ECONFLICT, "消息已存在", "the message already exists")
	errBadCursor        = qingfeng.Errorf(qingfeng.EINVALID, "分页参数无效，请从第一页重新加载", "invalid page cursor")
	errBadDivision      = qingfeng.Errorf(qingfeng.EINVALID, "行政区划代码无效", "invalid division code prefix")
	errCaseChanged      = qingfeng.Errorf(qingfeng.ECONFLICT, "案件已被他人处理，请刷新后重试", "the case was changed meanwhile; reload and retry")
)

// ms normalizes a time for storage as storage/mongo's BSON does: UTC, milliseconds.
func ms(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Millisecond)
}

// Row types of the doc column: the database's contract, apart from the domain's
// (whose json tags are the API's). Renaming a field is a migration.

type caseDoc struct {
	Source            string          `json:"source"`
	Subject           subjectRow      `json:"subject"`
	Description       string          `json:"description"`
	Location          locationRow     `json:"location"`
	OccurredOn        string          `json:"occurred_on,omitempty"`
	RealName          bool            `json:"real_name"`
	Disposition       string          `json:"disposition,omitempty"`
	NotAcceptedReason string          `json:"not_accepted_reason,omitempty"`
	Outcome           *outcomeRow     `json:"outcome,omitempty"`
	DuplicateOf       string          `json:"duplicate_of,omitempty"`
	Transitions       []transitionRow `json:"transitions,omitempty"`
	Decision          decisionRow     `json:"decision"`
	EarlierDecisions  []decisionRow   `json:"earlier_decisions,omitempty"`
	Warnings          []warningRow    `json:"warnings,omitempty"`
	Transfer          *transferRow    `json:"transfer,omitempty"`
	PurgedAt          *time.Time      `json:"purged_at,omitempty"`
	Escalated         []string        `json:"escalated,omitempty"`
	Evidence          []evidenceRow   `json:"evidence,omitempty"`
	ReporterAt        time.Time       `json:"reporter_activity_at,omitzero"`
	StaffSeenAt       time.Time       `json:"staff_seen_at,omitzero"`
	FollowUpEndedAt   time.Time       `json:"followup_ended_at,omitzero"`
}

type subjectRow struct {
	Kind         intake.SubjectKind `json:"kind"`
	Organization *orgRow            `json:"organization,omitempty"`
	Person       *personRow         `json:"person,omitempty"`
}

type orgRow struct {
	CreditCode string `json:"credit_code,omitempty"`
	Name       string `json:"name,omitempty"`
}

type personRow struct {
	Name     string `json:"name"`
	Position string `json:"position,omitempty"`
	Employer string `json:"employer,omitempty"`
}

type locationRow struct {
	Address          string   `json:"address,omitempty"`
	Lat              *float64 `json:"lat,omitempty"`
	Lng              *float64 `json:"lng,omitempty"`
	ReportedDivision string   `json:"reported_division,omitempty"`
}

type outcomeRow struct {
	Result          string `json:"result"`
	NameCleared     bool   `json:"name_cleared"`
	FalseAccusation string `json:"false_accusation,omitempty"`
}

type transitionRow struct {
	Action string            `json:"action"`
	From   intake.Status     `json:"from"`
	To     intake.Status     `json:"to"`
	By     string            `json:"by"`
	At     time.Time         `json:"at"`
	Reason string            `json:"reason"`
	Detail map[string]string `json:"detail,omitempty"`
}

type decisionRow struct {
	UnitID         string            `json:"unit_id"`
	UnitName       string            `json:"unit_name"`
	Reason         string            `json:"reason"`
	Router         string            `json:"router"`
	Inputs         map[string]string `json:"inputs,omitempty"`
	Fallback       bool              `json:"fallback,omitempty"`
	DecidedAt      time.Time         `json:"decided_at"`
	RuleID         string            `json:"rule_id,omitempty"`
	RuleVersion    int               `json:"rule_version,omitempty"`
	Candidates     []candidateRow    `json:"candidates,omitempty"`
	Informed       []unitRefRow      `json:"informed,omitempty"`
	FallbackReason string            `json:"fallback_reason,omitempty"`
	By             string            `json:"by,omitempty"`
	Why            string            `json:"why,omitempty"`
}

type candidateRow struct {
	UnitID   string `json:"unit_id,omitempty"`
	UnitName string `json:"unit_name,omitempty"`
	RuleID   string `json:"rule_id,omitempty"`
	Chosen   bool   `json:"chosen,omitempty"`
	Excluded string `json:"excluded,omitempty"`
	Detail   string `json:"detail"`
}

type unitRefRow struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type warningRow struct {
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

type transferRow struct {
	From   string    `json:"from"`
	To     string    `json:"to"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
	Due    string    `json:"due"`
}

type evidenceRow struct {
	ID              string    `json:"id"`
	ObjectKey       string    `json:"object_key"`
	ContentType     string    `json:"content_type"`
	Size            int64     `json:"size"`
	SHA256Received  string    `json:"sha256_received"`
	SHA256Stored    string    `json:"sha256_stored"`
	MetadataRemoved bool      `json:"metadata_removed"`
	OriginalKey     string    `json:"original_key,omitempty"`
	UploadedBy      string    `json:"uploaded_by"`
	UploadedAt      time.Time `json:"uploaded_at"`
}

func toDecisionRow(d intake.Decision) decisionRow {
	r := decisionRow{UnitID: d.UnitID, UnitName: d.UnitName, Reason: d.Reason, Router: d.Router, Inputs: d.Inputs,
		Fallback: d.Fallback, DecidedAt: ms(d.DecidedAt), RuleID: d.RuleID, RuleVersion: d.RuleVersion,
		FallbackReason: d.FallbackReason, By: d.By, Why: d.Why}
	for _, c := range d.Candidates {
		r.Candidates = append(r.Candidates, candidateRow(c))
	}
	for _, u := range d.Informed {
		r.Informed = append(r.Informed, unitRefRow(u))
	}
	return r
}

func (r decisionRow) decision() intake.Decision {
	d := intake.Decision{UnitID: r.UnitID, UnitName: r.UnitName, Reason: r.Reason, Router: r.Router, Inputs: r.Inputs,
		Fallback: r.Fallback, DecidedAt: r.DecidedAt, RuleID: r.RuleID, RuleVersion: r.RuleVersion,
		FallbackReason: r.FallbackReason, By: r.By, Why: r.Why}
	for _, c := range r.Candidates {
		d.Candidates = append(d.Candidates, intake.Candidate(c))
	}
	for _, u := range r.Informed {
		d.Informed = append(d.Informed, intake.UnitRef(u))
	}
	return d
}

func toSubjectRow(s intake.Subject) subjectRow {
	r := subjectRow{Kind: s.Kind}
	if o := s.Organization; o != nil {
		r.Organization = &orgRow{CreditCode: o.CreditCode, Name: o.Name}
	}
	if p := s.Person; p != nil {
		r.Person = &personRow{Name: p.Name, Position: p.Position, Employer: p.Employer}
	}
	return r
}

func (r subjectRow) subject() intake.Subject {
	s := intake.Subject{Kind: r.Kind}
	if o := r.Organization; o != nil {
		s.Organization = &intake.OrgSubject{CreditCode: o.CreditCode, Name: o.Name}
	}
	if p := r.Person; p != nil {
		s.Person = &intake.PersonSubject{Name: p.Name, Position: p.Position, Employer: p.Employer}
	}
	return s
}

func toTransitionRow(t intake.Transition) transitionRow {
	return transitionRow{Action: t.Action, From: t.From, To: t.To, By: t.By, At: ms(t.At), Reason: t.Reason, Detail: t.Detail}
}

func toTransferRow(t *intake.PendingTransfer) *transferRow {
	if t == nil {
		return nil
	}
	return &transferRow{From: t.From, To: t.To, By: t.By, At: ms(t.At), Reason: t.Reason, Due: t.Due}
}

func toEvidenceRow(e intake.Evidence) evidenceRow {
	r := evidenceRow(e)
	r.UploadedAt = ms(e.UploadedAt)
	return r
}

// stored is a case as one row: the domain case and the one stored field it lacks.
type stored struct {
	c       *intake.Case
	nextDue string
}

func toDoc(c *intake.Case) caseDoc {
	d := caseDoc{
		Source: c.Source, Subject: toSubjectRow(c.Subject), Description: c.Description,
		Location:   locationRow{Address: c.Location.Address, Lat: c.Location.Lat, Lng: c.Location.Lng, ReportedDivision: c.Location.ReportedDivision},
		OccurredOn: c.OccurredOn, RealName: c.RealName, Disposition: c.Disposition, NotAcceptedReason: c.NotAcceptedReason,
		DuplicateOf: c.DuplicateOf, Decision: toDecisionRow(c.Decision), Transfer: toTransferRow(c.Transfer),
		Escalated: c.Escalated, ReporterAt: ms(c.ReporterActivityAt), StaffSeenAt: ms(c.StaffSeenAt),
		FollowUpEndedAt: ms(c.FollowUpEndedAt),
	}
	if o := c.Outcome; o != nil {
		d.Outcome = &outcomeRow{Result: o.Result, NameCleared: o.NameCleared, FalseAccusation: o.FalseAccusation}
	}
	if c.PurgedAt != nil {
		t := ms(*c.PurgedAt)
		d.PurgedAt = &t
	}
	for _, t := range c.Transitions {
		d.Transitions = append(d.Transitions, toTransitionRow(t))
	}
	for _, e := range c.EarlierDecisions {
		d.EarlierDecisions = append(d.EarlierDecisions, toDecisionRow(e))
	}
	for _, w := range c.Warnings {
		d.Warnings = append(d.Warnings, warningRow(w))
	}
	for _, e := range c.Evidence {
		d.Evidence = append(d.Evidence, toEvidenceRow(e))
	}
	return d
}

func (d *caseDoc) fill(c *intake.Case) {
	c.Source, c.Subject, c.Description = d.Source, d.Subject.subject(), d.Description
	c.Location.Address, c.Location.Lat, c.Location.Lng, c.Location.ReportedDivision = d.Location.Address, d.Location.Lat, d.Location.Lng, d.Location.ReportedDivision
	c.OccurredOn, c.RealName, c.Disposition, c.NotAcceptedReason = d.OccurredOn, d.RealName, d.Disposition, d.NotAcceptedReason
	c.DuplicateOf, c.Decision, c.Escalated, c.PurgedAt = d.DuplicateOf, d.Decision.decision(), d.Escalated, d.PurgedAt
	c.ReporterActivityAt, c.StaffSeenAt, c.FollowUpEndedAt = d.ReporterAt, d.StaffSeenAt, d.FollowUpEndedAt
	if o := d.Outcome; o != nil {
		c.Outcome = &intake.Outcome{Result: o.Result, NameCleared: o.NameCleared, FalseAccusation: o.FalseAccusation}
	}
	if t := d.Transfer; t != nil {
		c.Transfer = &intake.PendingTransfer{From: t.From, To: t.To, By: t.By, At: t.At, Reason: t.Reason, Due: t.Due}
	}
	for _, t := range d.Transitions {
		c.Transitions = append(c.Transitions, intake.Transition{Action: t.Action, From: t.From, To: t.To, By: t.By, At: t.At, Reason: t.Reason, Detail: t.Detail})
	}
	for _, e := range d.EarlierDecisions {
		c.EarlierDecisions = append(c.EarlierDecisions, e.decision())
	}
	for _, w := range d.Warnings {
		c.Warnings = append(c.Warnings, intake.Warning(w))
	}
	for _, e := range d.Evidence {
		c.Evidence = append(c.Evidence, intake.Evidence(e))
	}
}

const caseColumns = "id, number, receipt_hash, unit_id, status, category, division, filed_by, assignee, received_at, " +
	"acceptance_due, feedback_due, transfer_due, escalated, next_due, evidence_bytes, new_activity, reporter_activity_n, version, updated_at, doc, " +
	"identity, identity_recipients, identity_sealed_on_device, identity_sealed_at"

// derivedColumns are written with every change of a case, never read back into it:
// what statistics and retention query, derived from the case by its own rules
// (derived, in stats.go).
const derivedColumns = "real_name, accepted_on, feedback_on, closed_at, purged_at, county, received_month"

func scanCase(s interface{ Scan(...any) error }) (stored, error) {
	c := &intake.Case{}
	var (
		received    int64
		updated     sql.NullInt64
		transferDue string
		escalated   string
		nextDue     string
		doc         string
		category    string
		status      string
		newActivity bool
		identity    []byte
		recipients  sql.NullString
		onDevice    bool
		sealedAt    sql.NullInt64
	)
	if err := s.Scan(&c.ID, &c.Number, &c.ReceiptHash, &c.UnitID, &status, &category, &c.Location.Division, &c.FiledBy, &c.Assignee,
		&received, &c.AcceptanceDue, &c.FeedbackDue, &transferDue, &escalated, &nextDue, &c.EvidenceBytes, &newActivity,
		&c.ReporterActivityN, &c.Version, &updated, &doc, &identity, &recipients, &onDevice, &sealedAt); err != nil {
		return stored{}, err
	}
	var d caseDoc
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		return stored{}, fmt.Errorf("decode case %s: %w", c.ID, err)
	}
	d.fill(c)
	if identity != nil {
		c.Identity = &intake.SealedIdentity{Ciphertext: identity, SealedOnDevice: onDevice, SealedAt: fromMillis(sealedAt)}
		if recipients.Valid {
			if err := json.Unmarshal([]byte(recipients.String), &c.Identity.Recipients); err != nil {
				return stored{}, fmt.Errorf("decode case %s: identity recipients: %w", c.ID, err)
			}
		}
	}
	c.Status, c.Category, c.NewActivity = intake.Status(status), intake.Category(category), newActivity
	c.ReceivedAt, c.UpdatedAt = time.UnixMilli(received).UTC(), fromMillis(updated)
	return stored{c: c, nextDue: nextDue}, nil
}

// args are the values of caseColumns and then derivedColumns for s, in order.
func (s stored) args() ([]any, error) {
	c := s.c
	doc, err := json.Marshal(toDoc(c))
	if err != nil {
		return nil, fmt.Errorf("encode case %s: %w", c.ID, err)
	}
	transferDue := ""
	if c.Transfer != nil {
		transferDue = c.Transfer.Due
	}
	escalated := ""
	if len(c.Escalated) > 0 {
		escalated = "," + strings.Join(c.Escalated, ",") + ","
	}
	identity, err := identityArgs(c.Identity)
	if err != nil {
		return nil, fmt.Errorf("encode case %s: %w", c.ID, err)
	}
	return append([]any{c.ID, c.Number, c.ReceiptHash, c.UnitID, string(c.Status), string(c.Category), c.Location.Division, c.FiledBy, c.Assignee,
		ms(c.ReceivedAt).UnixMilli(), c.AcceptanceDue, c.FeedbackDue, transferDue, escalated, s.nextDue, c.EvidenceBytes, c.NewActivity,
		c.ReporterActivityN, c.Version, millis(c.UpdatedAt), string(doc)}, append(identity, derived(c)...)...), nil
}

// identityArgs are the values of the identity columns: the ciphertext as a BLOB, NULL
// for none.
func identityArgs(id *intake.SealedIdentity) ([]any, error) {
	if id == nil {
		return []any{nil, nil, false, nil}, nil
	}
	var rcps any
	if id.Recipients != nil {
		b, err := json.Marshal(id.Recipients)
		if err != nil {
			return nil, err
		}
		rcps = string(b)
	}
	ct := id.Ciphertext
	if ct == nil {
		ct = []byte{} // NULL is "no identity"
	}
	return []any{ct, rcps, id.SealedOnDevice, millis(id.SealedAt)}, nil
}

// nextDue is the deadline a case waits on: a pending transfer's, else the acceptance
// notice's while registered, else the result feedback's once concluded.
func nextDue(c *intake.Case, pending *intake.PendingTransfer) string {
	switch {
	case pending != nil:
		return pending.Due
	case c.Status == intake.StatusRegistered:
		return c.AcceptanceDue
	case c.Status == intake.StatusConcluded:
		return c.FeedbackDue
	}
	return ""
}

// event is a case event written with the change it describes.
func insertEvent(ctx context.Context, tx *sql.Tx, caseID, typ, number, unit string, at time.Time, data map[string]string) error {
	var js any
	if len(data) > 0 {
		b, err := json.Marshal(data)
		if err != nil {
			return err
		}
		js = string(b)
	}
	_, err := tx.ExecContext(ctx, "INSERT INTO case_events (id, case_id, type, case_number, unit_id, at, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
		intake.NewID(), caseID, typ, number, unit, ms(at).UnixMilli(), js)
	return err
}

// CreateCase stores a new case and its case.registered event in one transaction. A
// taken ID, number or receipt hash is ECONFLICT.
func (s *CaseStore) CreateCase(ctx context.Context, c *intake.Case) error {
	if c.ID == "" || c.Number == "" || len(c.ReceiptHash) == 0 {
		return fmt.Errorf("store case %q: id, number and receipt hash are required", c.ID)
	}
	// Reporter activity is what arrives after filing: a new case has none, as
	// storage/mongo's CreateCase writes none.
	fresh := *c
	fresh.NewActivity, fresh.ReporterActivityN, fresh.ReporterActivityAt, fresh.StaffSeenAt = false, 0, time.Time{}, time.Time{}
	fresh.FollowUpEndedAt = time.Time{}
	args, err := stored{c: &fresh, nextDue: nextDue(c, c.Transfer)}.args()
	if err != nil {
		return err
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "INSERT INTO cases ("+caseColumns+", "+derivedColumns+") VALUES (?"+strings.Repeat(", ?", 31)+")", args...); err != nil {
			return err
		}
		if err := insertOrgRows(ctx, tx, c.ID, orgRowsOf(stored{c: c, nextDue: nextDue(c, c.Transfer)}), ""); err != nil {
			return err
		}
		return insertEvent(ctx, tx, c.ID, "case.registered", c.Number, c.UnitID, c.ReceivedAt,
			map[string]string{"category": string(c.Category), "real_name": fmt.Sprint(c.RealName)})
	})
	return storeError("store case "+c.ID, err, nil, errCaseExists)
}

func (s *CaseStore) findCase(ctx context.Context, op, where string, arg any) (*intake.Case, error) {
	st, err := scanCase(s.db.r.QueryRowContext(ctx, "SELECT "+caseColumns+" FROM cases WHERE "+where+" = ?", arg))
	if err != nil {
		return nil, storeError(op, err, errCaseNotFound, nil)
	}
	return st.c, nil
}

// CaseByID returns the case with ID id.
func (s *CaseStore) CaseByID(ctx context.Context, id string) (*intake.Case, error) {
	return s.findCase(ctx, "find case "+id, "id", id)
}

// CaseByNumber returns the case numbered number.
func (s *CaseStore) CaseByNumber(ctx context.Context, number string) (*intake.Case, error) {
	return s.findCase(ctx, "find case number "+number, "number", number)
}

// CaseByReceipt returns the case whose receipt hashes to receiptHash.
func (s *CaseStore) CaseByReceipt(ctx context.Context, receiptHash []byte) (*intake.Case, error) {
	if len(receiptHash) == 0 {
		return nil, errCaseNotFound
	}
	// The hash is not logged: with the receipt key it identifies a reporter's case.
	return s.findCase(ctx, "find case by receipt", "receipt_hash", receiptHash)
}

// prefixUpperBound returns the smallest string greater than every string starting
// with the division-code prefix p ("3307" → "3308", "3309" → "330:"). Only digits
// are accepted.
func prefixUpperBound(p string) (string, bool) {
	if len(p) == 0 || len(p) > 12 {
		return "", false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return "", false
		}
	}
	return p[:len(p)-1] + string(p[len(p)-1]+1), true
}

// ListCases returns cases newest first (ties broken by ID), or by nearest deadline
// with f.SortByDue, filtered by every field of f that is set; f.After continues after
// the case with that ID, which must itself be within the filter. With no filter set it
// lists every case: who may ask for that is the caller's decision.
//
// The index is named (INDEXED BY) from the filter, so that the plan does not depend on
// the statistics: the unit's (with its assignee, new activity, status or category,
// whichever is set first), else the liaison's, else the one of all cases, each in the
// order of the sort, the other conditions checked on the rows the index yields. A
// search by organization reads case_orgs' index of the key (within the unit, if one is
// set) in the sort's order instead, joining each row's case.
func (s *CaseStore) ListCases(ctx context.Context, f intake.CaseFilter) ([]*intake.Case, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = defaultListLimit
	}
	limit = min(limit, maxListLimit)

	// A unit's search by organization reads case_orgs (k) in the sort's order and joins
	// each row's case (c): the unit and the order are k's copies of the case's columns,
	// every other condition the case's own. A search in another scope (a liaison's own
	// filings) reads that scope's index and looks each case up in case_orgs by its
	// primary key.
	joined := f.Organization != "" && f.UnitID != ""
	c, k, id := "", "", "id"
	if joined {
		c, k, id = "c.", "k.", "k.case_id"
	}
	var where []string
	var args []any
	cond := func(c string, a ...any) { where = append(where, c); args = append(args, a...) }
	switch {
	case joined:
		cond("k.key = ?", f.Organization)
	case f.Organization != "":
		cond("EXISTS (SELECT 1 FROM case_orgs AS k WHERE k.key = ? AND k.unit_id = cases.unit_id AND k.received_at = cases.received_at AND k.case_id = cases.id)",
			f.Organization)
	}
	if f.UnitID != "" {
		cond(k+"unit_id = ?", f.UnitID)
	}
	if f.FiledBy != "" {
		cond(c+"filed_by = ?", f.FiledBy)
	}
	if f.Status != "" {
		cond(c+"status = ?", string(f.Status))
	}
	if f.Category != "" {
		cond(c+"category = ?", string(f.Category))
	}
	if f.Assignee != "" {
		cond(c+"assignee = ?", f.Assignee)
	}
	if f.NewActivity {
		cond(c + "new_activity = 1")
	}
	if f.SortByDue || f.DueBefore != "" {
		cond(k + "next_due > ''")
		if f.DueBefore != "" {
			cond(k+"next_due <= ?", f.DueBefore)
		}
	}
	if f.DivisionPrefix != "" {
		upper, ok := prefixUpperBound(f.DivisionPrefix)
		if !ok {
			return nil, errBadDivision
		}
		cond(c+"division >= ? AND "+c+"division < ?", f.DivisionPrefix, upper)
	}
	if f.After != "" {
		var last struct {
			unit, filedBy, division, nextDue string
			received                         int64
		}
		err := s.db.r.QueryRowContext(ctx, "SELECT unit_id, filed_by, division, next_due, received_at FROM cases WHERE id = ?", f.After).
			Scan(&last.unit, &last.filedBy, &last.division, &last.nextDue, &last.received)
		if err != nil {
			return nil, storeError("list cases after "+f.After, err, errBadCursor, nil)
		}
		// The cursor case must itself be within the filter, so that a cursor cannot
		// reveal where a case outside the caller's scope sits in time.
		if f.UnitID != "" && last.unit != f.UnitID || f.FiledBy != "" && last.filedBy != f.FiledBy ||
			!strings.HasPrefix(last.division, f.DivisionPrefix) {
			return nil, domainError(errBadCursor, "list cases after "+f.After+": cursor case outside the filter")
		}
		// The rest of the list is a range of the sort's index: its first column bounded
		// on its own, so that the planner seeks to the cursor and reads on in order.
		// (Written "a < x OR a = x AND id > y", SQLite 3.53 splits the OR into two
		// index searches and sorts their union: every older case read for one page.)
		if f.SortByDue {
			if last.nextDue == "" {
				return nil, domainError(errBadCursor, "list cases after "+f.After+": the cursor case has nothing due")
			}
			cond(k+"next_due >= ? AND ("+k+"next_due > ? OR "+id+" > ?)", last.nextDue, last.nextDue, f.After)
		} else {
			cond(k+"received_at <= ? AND ("+k+"received_at < ? OR "+id+" > ?)", last.received, last.received, f.After)
		}
	}

	index, order := "cases_received", k+"received_at DESC, "+id
	if f.SortByDue {
		index, order = "cases_due", k+"next_due, "+id
	}
	switch {
	case joined:
		// The organization's key within the unit, in this sort's order: the table's
		// primary key newest first.
		index = "sqlite_autoindex_case_orgs_1"
		if f.SortByDue {
			index = "case_orgs_due"
		}
	case f.UnitID != "":
		// The most selective filter the unit's indexes carry, in this sort's order.
		by := "_received"
		if f.SortByDue {
			by = "_due"
		}
		switch {
		case f.Assignee != "":
			index = "cases_unit_assignee" + by
		case f.NewActivity:
			index = "cases_unit_activity" + by
		case f.Status != "":
			index = "cases_unit_status" + by
		case f.Category != "":
			index = "cases_unit_category" + by
		default:
			index = "cases_unit" + by
		}
	case f.FiledBy != "" && !f.SortByDue:
		index = "cases_filed_received"
	}
	q := "SELECT " + caseColumns + " FROM cases INDEXED BY " + index
	if joined {
		// CROSS JOIN keeps case_orgs the outer loop: its index gives the order.
		q = "SELECT c." + strings.ReplaceAll(caseColumns, ", ", ", c.") + " FROM case_orgs AS k INDEXED BY " + index +
			" CROSS JOIN cases AS c ON c.id = k.case_id"
	}
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY " + order + " LIMIT ?"
	args = append(args, limit)
	rows, err := s.db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, storeError("list cases", err, nil, nil)
	}
	defer rows.Close()
	out := make([]*intake.Case, 0, min(limit, 64))
	for rows.Next() {
		st, err := scanCase(rows)
		if err != nil {
			return nil, storeError("list cases", err, nil, nil)
		}
		out = append(out, st.c)
	}
	if err := rows.Err(); err != nil {
		return nil, storeError("list cases", err, nil, nil)
	}
	return out, nil
}

// update runs change on case id in one transaction: the row is read, changed and
// written back only if its version is still the one read. change returns false to
// write nothing (a condition did not hold), or an error to roll back.
func (s *CaseStore) update(ctx context.Context, op, id string, change func(tx *sql.Tx, st *stored) (bool, error)) (bool, error) {
	var changed bool
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		changed = false
		st, err := scanCase(tx.QueryRowContext(ctx, "SELECT "+caseColumns+" FROM cases WHERE id = ?", id))
		if err != nil {
			return err
		}
		read := st.c.Version
		orgs := orgRowsOf(st)
		ok, err := change(tx, &st)
		if err != nil || !ok {
			return err
		}
		args, err := st.args()
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE cases SET number = ?, receipt_hash = ?, unit_id = ?, status = ?, category = ?,
			division = ?, filed_by = ?, assignee = ?, received_at = ?, acceptance_due = ?, feedback_due = ?, transfer_due = ?,
			escalated = ?, next_due = ?, evidence_bytes = ?, new_activity = ?, reporter_activity_n = ?, version = ?, updated_at = ?, doc = ?,
			identity = ?, identity_recipients = ?, identity_sealed_on_device = ?, identity_sealed_at = ?,
			real_name = ?, accepted_on = ?, feedback_on = ?, closed_at = ?, purged_at = ?, county = ?, received_month = ?
			WHERE id = ? AND version = ?`, append(args[1:], id, read)...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return errors.Join(err, fmt.Errorf("case %s changed within its transaction", id))
		}
		if err := replaceOrgRows(ctx, tx, id, orgs, orgRowsOf(st)); err != nil {
			return err
		}
		changed = true
		return nil
	})
	if err != nil {
		return false, storeError(op, err, errCaseNotFound, nil)
	}
	return changed, nil
}

// conditional is update for a step that requires the case to be at version (and,
// with status set, in that status): ECONFLICT otherwise.
func (s *CaseStore) conditional(ctx context.Context, op, id string, version int64, status intake.Status, change func(tx *sql.Tx, c *stored) error) error {
	_, err := s.update(ctx, op, id, func(tx *sql.Tx, st *stored) (bool, error) {
		if st.c.Version != version || status != "" && st.c.Status != status {
			return false, domainError(errCaseChanged, fmt.Sprintf("%s: not at version %d", op, version))
		}
		st.c.Version++
		st.c.UpdatedAt = ms(s.db.now())
		return true, change(tx, st)
	})
	return err
}

// markReporterActivity records n new reporter messages or uploads, the latest at `at`.
// It does not change the version: a reporter writing must not make staff's concurrent
// workflow step fail.
func markReporterActivity(c *intake.Case, n int64, at time.Time) {
	c.ReporterActivityN += n
	c.NewActivity = true
	if at = ms(at); at.After(c.ReporterActivityAt) {
		c.ReporterActivityAt = at
	}
}

// AddEvidence appends to case caseID the files of evs that repeat nothing on it
// (intake.MergeEvidence) if the case's evidence total stays within maxBytes, all or
// nothing, in one transaction, and returns the entry the case holds for each of evs.
// The transaction is the condition: of concurrent identical uploads, the first
// appends and the others read it.
func (s *CaseStore) AddEvidence(ctx context.Context, caseID string, evs []intake.Evidence, maxBytes int64) ([]intake.Evidence, error) {
	op := "add evidence to case " + caseID
	rows := make([]intake.Evidence, 0, len(evs))
	for _, ev := range evs {
		if ev.Size < 0 {
			return nil, fmt.Errorf("%s: evidence %s has negative size %d", op, ev.ID, ev.Size)
		}
		rows = append(rows, intake.Evidence(toEvidenceRow(ev)))
	}
	var kept []intake.Evidence
	_, err := s.update(ctx, op, caseID, func(_ *sql.Tx, st *stored) (bool, error) {
		c := st.c
		var add []intake.Evidence
		add, kept = intake.MergeEvidence(c.Evidence, rows)
		if len(add) == 0 {
			return false, nil // nothing new (or nothing at all); the case exists
		}
		var total, n int64
		var latest time.Time
		for _, ev := range add {
			total += ev.Size
			if ev.UploadedBy == intake.UploaderReporter {
				n++
				if ev.UploadedAt.After(latest) {
					latest = ev.UploadedAt
				}
			}
		}
		if c.EvidenceBytes > maxBytes-total {
			return false, domainError(errEvidenceTooLarge, fmt.Sprintf("%s: %d more bytes would exceed the limit of %d", op, total, maxBytes))
		}
		c.Evidence = append(c.Evidence, add...)
		if n > 0 {
			markReporterActivity(c, n, latest)
		}
		c.EvidenceBytes += total
		c.Version++
		c.UpdatedAt = ms(s.db.now())
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	return kept, nil
}

// Reroute gives case c a new category, subject and routing decision if the case is
// still at c.Version, keeping its current decision among the earlier ones.
func (s *CaseStore) Reroute(ctx context.Context, c *intake.Case, category intake.Category, subject intake.Subject, d intake.Decision) error {
	return s.conditional(ctx, "reroute case "+c.ID, c.ID, c.Version, "", func(tx *sql.Tx, st *stored) error {
		// The caller's c.Decision, as storage/mongo pushes it.
		st.c.EarlierDecisions = append(st.c.EarlierDecisions, c.Decision)
		st.c.Category, st.c.Subject, st.c.Decision, st.c.UnitID = category, subject, d, d.UnitID
		return insertEvent(ctx, tx, c.ID, "case.rerouted", c.Number, d.UnitID, st.c.UpdatedAt, map[string]string{"from": c.UnitID, "to": d.UnitID})
	})
}

// ApplyTransition moves case caseID along its workflow if it is still at version and
// in t.From: the status, the fields the step sets and the step itself, one transaction.
// Of two staff acting on one case at once, one wins; the other gets ECONFLICT.
func (s *CaseStore) ApplyTransition(ctx context.Context, caseID string, version int64, t intake.Transition, f triage.TransitionFields) error {
	return s.conditional(ctx, "transition case "+caseID, caseID, version, t.From, func(tx *sql.Tx, st *stored) error {
		c := st.c
		c.Status = t.To
		set := func(dst *string, v *string) {
			if v != nil {
				*dst = *v
			}
		}
		set(&c.Disposition, f.Disposition)
		set(&c.NotAcceptedReason, f.NotAcceptedReason)
		set(&c.DuplicateOf, f.DuplicateOf)
		set(&c.AcceptanceDue, f.AcceptanceDue)
		set(&c.FeedbackDue, f.FeedbackDue)
		st.nextDue = f.NextDue
		if o := f.Outcome; o != nil {
			out := *o
			c.Outcome = &out
		} else if f.ClearOutcome {
			c.Outcome = nil
		}
		c.Transitions = append(c.Transitions, t)
		return insertEvent(ctx, tx, caseID, "case.transition", f.CaseNumber, f.UnitID, t.At,
			map[string]string{"action": t.Action, "from": string(t.From), "to": string(t.To)})
	})
}

// Assign sets the case's assignee ("" unassigns) if it is still at version, and
// records the step.
func (s *CaseStore) Assign(ctx context.Context, caseID string, version int64, assignee string, t intake.Transition) error {
	return s.conditional(ctx, "assign case "+caseID, caseID, version, "", func(_ *sql.Tx, st *stored) error {
		st.c.Assignee = assignee
		st.c.Transitions = append(st.c.Transitions, t)
		return nil
	})
}

// Hand moves case c to the unit of decision d if c is still at c.Version: the current
// decision joins the earlier ones, t is recorded, and the pending transfer is set (or
// cleared when nil). A new transfer's overdue mark is cleared.
func (s *CaseStore) Hand(ctx context.Context, c *intake.Case, d intake.Decision, pending *intake.PendingTransfer, t intake.Transition, notify ...triage.Notification) error {
	return s.conditional(ctx, "hand case "+c.ID, c.ID, c.Version, "", func(tx *sql.Tx, st *stored) error {
		for _, n := range notify {
			if _, err := insertNotification(ctx, tx, n); err != nil {
				return err
			}
		}
		sc := st.c
		sc.EarlierDecisions = append(sc.EarlierDecisions, c.Decision)
		sc.Transitions = append(sc.Transitions, t)
		sc.Decision, sc.UnitID = d, d.UnitID
		sc.Transfer = nil
		if pending != nil {
			p := *pending
			sc.Transfer = &p
			sc.Escalated = slices.DeleteFunc(sc.Escalated, func(k string) bool { return k == "transfer" })
			if len(sc.Escalated) == 0 {
				sc.Escalated = nil
			}
		}
		st.nextDue = nextDue(c, pending)
		return insertEvent(ctx, tx, c.ID, "case."+t.Action, c.Number, d.UnitID, t.At, map[string]string{"from": c.UnitID, "to": d.UnitID})
	})
}

// CountByStatus counts a unit's cases per status.
func (s *CaseStore) CountByStatus(ctx context.Context, unitID string) (map[intake.Status]int64, error) {
	rows, err := s.db.r.QueryContext(ctx, "SELECT status, count(*) FROM cases WHERE unit_id = ? GROUP BY status", unitID)
	if err != nil {
		return nil, storeError("count cases by status", err, nil, nil)
	}
	defer rows.Close()
	out := map[intake.Status]int64{}
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return nil, storeError("count cases by status", err, nil, nil)
		}
		out[intake.Status(st)] = n
	}
	return out, storeError("count cases by status", rows.Err(), nil, nil)
}

// CountNewActivity counts a unit's cases with reporter activity its staff have not read.
func (s *CaseStore) CountNewActivity(ctx context.Context, unitID string) (int64, error) {
	var n int64
	err := s.db.r.QueryRowContext(ctx, "SELECT count(*) FROM cases WHERE unit_id = ? AND new_activity = 1", unitID).Scan(&n)
	return n, storeError("count cases with new activity", err, nil, nil)
}

// CountCases counts every stored case (operators' statistics and tests).
func (s *CaseStore) CountCases(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.r.QueryRowContext(ctx, "SELECT count(*) FROM cases").Scan(&n)
	return n, storeError("count cases", err, nil, nil)
}

// AddMessage stores a message; a reporter's also marks its case as having new
// reporter activity, in the same transaction (a reporter's message to no case is
// ENOTFOUND and stores nothing). The messages table references its case, so a staff
// message to no case is ENOTFOUND too, where storage/mongo stores it.
func (s *CaseStore) AddMessage(ctx context.Context, m *intake.Message) error {
	op := "store message " + m.ID + " of case " + m.CaseID
	insert := func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO messages (id, case_id, sender, kind, author_id, body, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
			m.ID, m.CaseID, m.From, messageKind(m.Kind), m.AuthorID, m.Body, ms(m.CreatedAt).UnixMilli())
		if isUnique(err) {
			return domainError(errMessageExists, op+": "+err.Error())
		}
		if code(err) == 19 { // SQLITE_CONSTRAINT: the foreign key
			return domainError(errCaseNotFound, op+": "+err.Error())
		}
		return err
	}
	if m.From != intake.UploaderReporter {
		return storeError(op, s.db.Tx(ctx, insert), nil, nil)
	}
	_, err := s.update(ctx, op, m.CaseID, func(tx *sql.Tx, st *stored) (bool, error) {
		if err := insert(tx); err != nil {
			return false, err
		}
		markReporterActivity(st.c, 1, m.CreatedAt)
		return true, nil
	})
	return err
}

func messageKind(k string) string {
	if k == "" {
		return "message"
	}
	return k
}

// Messages returns a case's conversation, oldest first.
func (s *CaseStore) Messages(ctx context.Context, caseID string) ([]*intake.Message, error) {
	op := "list messages of case " + caseID
	rows, err := s.db.r.QueryContext(ctx, "SELECT id, case_id, sender, kind, author_id, body, created_at FROM messages WHERE case_id = ? ORDER BY created_at, id", caseID)
	if err != nil {
		return nil, storeError(op, err, nil, nil)
	}
	defer rows.Close()
	out := []*intake.Message{}
	for rows.Next() {
		var m intake.Message
		var at int64
		if err := rows.Scan(&m.ID, &m.CaseID, &m.From, &m.Kind, &m.AuthorID, &m.Body, &at); err != nil {
			return nil, storeError(op, err, nil, nil)
		}
		m.CreatedAt = time.UnixMilli(at).UTC()
		out = append(out, &m)
	}
	return out, storeError(op, rows.Err(), nil, nil)
}

// MarkActivitySeen clears case caseID's new reporter activity if the case still
// belongs to unitID and has had exactly seenN reporter messages and uploads: one
// conditional update, so that activity arriving after the reader loaded the case
// keeps the mark. It changes neither the version nor updated_at.
func (s *CaseStore) MarkActivitySeen(ctx context.Context, caseID, unitID string, seenN int64, at time.Time) (bool, error) {
	ok, err := s.update(ctx, "mark activity on case "+caseID+" seen", caseID, func(_ *sql.Tx, st *stored) (bool, error) {
		c := st.c
		if c.UnitID != unitID || c.ReporterActivityN != seenN || !c.NewActivity {
			return false, nil
		}
		c.NewActivity, c.StaffSeenAt = false, ms(at)
		return true, nil
	})
	if qingfeng.ErrorCode(err) == qingfeng.ENOTFOUND {
		return false, nil // as storage/mongo: no such case is nothing to clear
	}
	return ok, err
}

// EndFollowUp implements intake.CaseStore: the later of at and the stored time, the
// version unchanged.
func (s *CaseStore) EndFollowUp(ctx context.Context, caseID string, at time.Time) error {
	_, err := s.update(ctx, "end follow-up of case "+caseID, caseID, func(_ *sql.Tx, st *stored) (bool, error) {
		if at := ms(at); at.After(st.c.FollowUpEndedAt) {
			st.c.FollowUpEndedAt = at
			return true, nil
		}
		return false, nil
	})
	return err
}

// sqlLimit is limit for a LIMIT clause: none (-1) when not positive, as a
// MongoDB find's limit 0 is.
func sqlLimit(limit int) int {
	if limit <= 0 {
		return -1
	}
	return limit
}

// overdueQueries are the steps with a deadline: the status a case waits in and the
// column holding the date, each served by its index.
var overdueQueries = []struct{ kind, query string }{
	{"acceptance", "SELECT " + caseColumns + " FROM cases WHERE status = 'registered' AND acceptance_due > '' AND acceptance_due < ? AND escalated NOT LIKE '%,acceptance,%' LIMIT ?"},
	{"feedback", "SELECT " + caseColumns + " FROM cases WHERE status = 'concluded' AND feedback_due > '' AND feedback_due < ? AND escalated NOT LIKE '%,feedback,%' LIMIT ?"},
	{"transfer", "SELECT " + caseColumns + " FROM cases WHERE transfer_due > '' AND transfer_due < ? AND escalated NOT LIKE '%,transfer,%' LIMIT ?"},
}

// OverdueSteps implements triage.EscalationStore. Dates are YYYY-MM-DD strings, which
// compare as dates. Steps already escalated are left out by the query, before the
// limit: an escalated case stays overdue, and must not hide newer ones.
func (s *CaseStore) OverdueSteps(ctx context.Context, today string, limit int) ([]triage.Overdue, error) {
	var out []triage.Overdue
	for _, q := range overdueQueries {
		rows, err := s.db.r.QueryContext(ctx, q.query, today, sqlLimit(limit))
		if err != nil {
			return nil, storeError("find overdue "+q.kind, err, nil, nil)
		}
		for rows.Next() {
			st, err := scanCase(rows)
			if err != nil {
				rows.Close()
				return nil, storeError("find overdue "+q.kind, err, nil, nil)
			}
			c := st.c
			o := triage.Overdue{CaseID: c.ID, Number: c.Number, UnitID: c.UnitID, Kind: q.kind}
			switch q.kind {
			case "acceptance":
				o.Due = c.AcceptanceDue
			case "feedback":
				o.Due = c.FeedbackDue
			case "transfer":
				o.Due, o.Key = c.Transfer.Due, fmt.Sprintf("transfer@%d", c.Transfer.At.UnixMilli())
			}
			out = append(out, o)
		}
		if err := rows.Close(); err != nil {
			return nil, storeError("find overdue "+q.kind, err, nil, nil)
		}
	}
	return out, nil
}

// Escalate implements triage.EscalationStore: the notification (its id is the case
// and step, so a second is a no-op) and the case's mark in one transaction. The mark
// does not bump the case's version: it changes nothing staff decide on.
func (s *CaseStore) Escalate(ctx context.Context, o triage.Overdue, n triage.Notification) (bool, error) {
	var created bool
	_, err := s.update(ctx, "mark overdue "+o.Number, o.CaseID, func(tx *sql.Tx, st *stored) (bool, error) {
		var err error
		if created, err = insertNotification(ctx, tx, n); err != nil {
			return false, err
		}
		if slices.Contains(st.c.Escalated, o.Kind) {
			return false, nil
		}
		st.c.Escalated = append(st.c.Escalated, o.Kind)
		return true, insertEvent(ctx, tx, o.CaseID, "case.overdue", o.Number, o.UnitID, n.CreatedAt,
			map[string]string{"kind": o.Kind, "due": o.Due, "notified": n.UnitID})
	})
	if err != nil {
		created = false
	}
	return created, err
}

// insertNotification records n unless a notification with its id exists; it reports
// whether it did.
func insertNotification(ctx context.Context, tx *sql.Tx, n triage.Notification) (bool, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO notifications (id, unit_id, case_number, case_unit, kind, due, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		n.ID, n.UnitID, n.Case, n.CaseUnit, n.Kind, n.Due, ms(n.CreatedAt).UnixMilli())
	if err != nil {
		return false, err
	}
	k, err := res.RowsAffected()
	return k == 1, err
}

// Notifications lists a unit's notifications, newest first.
func (s *CaseStore) Notifications(ctx context.Context, unitID string, limit int) ([]triage.Notification, error) {
	rows, err := s.db.r.QueryContext(ctx, `SELECT id, unit_id, case_number, case_unit, kind, due, created_at FROM notifications
		WHERE unit_id = ? ORDER BY created_at DESC, id LIMIT ?`, unitID, sqlLimit(limit))
	if err != nil {
		return nil, storeError("list notifications", err, nil, nil)
	}
	defer rows.Close()
	out := []triage.Notification{}
	for rows.Next() {
		var n triage.Notification
		var at int64
		if err := rows.Scan(&n.ID, &n.UnitID, &n.Case, &n.CaseUnit, &n.Kind, &n.Due, &at); err != nil {
			return nil, storeError("list notifications", err, nil, nil)
		}
		n.CreatedAt = time.UnixMilli(at).UTC()
		out = append(out, n)
	}
	return out, storeError("list notifications", rows.Err(), nil, nil)
}
