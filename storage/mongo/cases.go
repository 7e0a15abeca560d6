package mongo

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/routing"
	"github.com/qingfeng-zj/qingfeng/triage"
)

// orgKeys are c's organization search keys, sorted (the order is immaterial to the
// queries; sorted, a document's keys compare equal across writes).
func orgKeys(c *intake.Case) []string {
	keys := routing.OrgSearchKeys(c)
	slices.Sort(keys)
	return keys
}

// List page sizes.
const (
	defaultListLimit = 50
	maxListLimit     = 200
)

// CaseStore keeps cases, their messages and the escalation notifications. It embeds
// the counter and idempotency stores because intake.CaseStore asks for them; the
// leases (LeaseStore) and the delivery of case events (OutboxStore) have stores of
// their own, as in storage/sqlite.
type CaseStore struct {
	*CounterStore
	*IdempotencyStore
	db *DB
}

// NewCaseStore returns a CaseStore on db.
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
)

// Stored documents. Field names are the database's contract: renaming one is a
// migration.

type caseDoc struct {
	ID          string             `bson:"_id"`
	Number      string             `bson:"number"`
	Source      string             `bson:"source"`
	Category    string             `bson:"category"`
	Subject     subjectDoc         `bson:"subject"`
	Description string             `bson:"description"`
	Location    locationDoc        `bson:"location"`
	OccurredOn  string             `bson:"occurred_on,omitempty"`
	RealName    bool               `bson:"real_name"`
	Identity    *sealedIdentityDoc `bson:"identity,omitempty"`
	ReceiptHash []byte             `bson:"receipt_hash"`
	Status      string             `bson:"status"`
	// Workflow (triage).
	Disposition       string          `bson:"disposition,omitempty"`
	NotAcceptedReason string          `bson:"not_accepted_reason,omitempty"`
	Outcome           *outcomeDoc     `bson:"outcome,omitempty"`
	DuplicateOf       string          `bson:"duplicate_of,omitempty"`
	Assignee          string          `bson:"assignee,omitempty"`
	Transitions       []transitionDoc `bson:"transitions,omitempty"`
	FeedbackDue       string          `bson:"feedback_due,omitempty"`
	Escalated         []string        `bson:"escalated,omitempty"`
	// NextDue is the nearest pending deadline (acceptance, transfer or feedback), for
	// the queue's sort by due date; absent when nothing is due.
	NextDue string `bson:"next_due,omitempty"`
	// Outbox holds the case's events until the relay moves them on (see outbox).
	Outbox   []outboxEventDoc `bson:"outbox,omitempty"`
	OutboxN  int64            `bson:"outbox_n"`
	Transfer *transferDoc     `bson:"transfer,omitempty"`
	PurgedAt *time.Time       `bson:"purged_at,omitempty"`
	UnitID   string           `bson:"unit_id"`
	Decision decisionDoc      `bson:"decision"`
	// EarlierDecisions are the decisions re-routings replaced, oldest first.
	EarlierDecisions []decisionDoc `bson:"earlier_decisions,omitempty"`
	Warnings         []warningDoc  `bson:"warnings"`
	ReceivedAt       time.Time     `bson:"received_at"`
	AcceptanceDue    string        `bson:"acceptance_due,omitempty"`
	Evidence         []evidenceDoc `bson:"evidence"`
	// EvidenceBytes is always present (0 for none): AddEvidence's condition
	// {evidence_bytes: {$lte: n}} does not match a missing field.
	EvidenceBytes int64  `bson:"evidence_bytes"`
	FiledBy       string `bson:"filed_by,omitempty"`
	// OrgKeys are the case's organization search keys (routing.OrgSearchKeys), derived
	// on every write of its subject or decision: the queue searched by organization.
	// Always present (null for none), so that a case stored before it is the one
	// without the field (DB.EnsureIndexes).
	OrgKeys []string `bson:"org_keys"`
	// EvidenceKeys are the repeat keys (intake.Evidence.RepeatKey) of the case's
	// evidence: AddEvidence's condition, as FerretDB's $elemMatch takes no field
	// conditions and its dot notation does not reach into arrays. Derived on every
	// write of the evidence; a case stored before it gets it at start-up
	// (DB.EnsureIndexes).
	EvidenceKeys []string  `bson:"evidence_keys"`
	Version      int64     `bson:"version"`
	UpdatedAt    time.Time `bson:"updated_at"`

	// Reporter activity (intake.Case.NewActivity). new_activity is stored rather than
	// derived from the times so that the queue filter is an indexable equality.
	ReporterActivityAt time.Time `bson:"reporter_activity_at,omitempty"`
	ReporterActivityN  int64     `bson:"reporter_activity_n,omitempty"`
	NewActivity        bool      `bson:"new_activity,omitempty"`
	StaffSeenAt        time.Time `bson:"staff_seen_at,omitempty"`
	FollowUpEndedAt    time.Time `bson:"followup_ended_at,omitempty"`
}

type subjectDoc struct {
	Kind         string            `bson:"kind"`
	Organization *orgSubjectDoc    `bson:"organization,omitempty"`
	Person       *personSubjectDoc `bson:"person,omitempty"`
}

type orgSubjectDoc struct {
	CreditCode string `bson:"credit_code,omitempty"`
	Name       string `bson:"name,omitempty"`
}

type personSubjectDoc struct {
	Name     string `bson:"name"`
	Position string `bson:"position,omitempty"`
	Employer string `bson:"employer,omitempty"`
}

type locationDoc struct {
	Division string   `bson:"division"`
	Address  string   `bson:"address,omitempty"`
	Lat      *float64 `bson:"lat,omitempty"`
	Lng      *float64 `bson:"lng,omitempty"`

	ReportedDivision string `bson:"reported_division,omitempty"`
}

type sealedIdentityDoc struct {
	Ciphertext     []byte    `bson:"ciphertext"`
	Recipients     []string  `bson:"recipients"`
	SealedOnDevice bool      `bson:"sealed_on_device"`
	SealedAt       time.Time `bson:"sealed_at"`
}

type decisionDoc struct {
	UnitID         string            `bson:"unit_id"`
	UnitName       string            `bson:"unit_name"`
	Reason         string            `bson:"reason"`
	Router         string            `bson:"router"`
	Inputs         map[string]string `bson:"inputs,omitempty"`
	Fallback       bool              `bson:"fallback,omitempty"`
	FallbackReason string            `bson:"fallback_reason,omitempty"`
	DecidedAt      time.Time         `bson:"decided_at"`
	RuleID         string            `bson:"rule_id,omitempty"`
	RuleVersion    int               `bson:"rule_version,omitempty"`
	Candidates     []candidateDoc    `bson:"candidates,omitempty"`
	Informed       []unitRefDoc      `bson:"informed,omitempty"`
	By             string            `bson:"by,omitempty"`
	Why            string            `bson:"why,omitempty"`
}

type transferDoc struct {
	From   string    `bson:"from"`
	To     string    `bson:"to"`
	By     string    `bson:"by"`
	At     time.Time `bson:"at"`
	Reason string    `bson:"reason"`
	Due    string    `bson:"due"`
}

func toTransferDoc(t *intake.PendingTransfer) *transferDoc {
	if t == nil {
		return nil
	}
	return &transferDoc{From: t.From, To: t.To, By: t.By, At: utc(t.At), Reason: t.Reason, Due: t.Due}
}

func (d *transferDoc) toTransfer() *intake.PendingTransfer {
	if d == nil {
		return nil
	}
	return &intake.PendingTransfer{From: d.From, To: d.To, By: d.By, At: d.At, Reason: d.Reason, Due: d.Due}
}

type outcomeDoc struct {
	Result          string `bson:"result"`
	NameCleared     bool   `bson:"name_cleared"`
	FalseAccusation string `bson:"false_accusation,omitempty"`
}

type transitionDoc struct {
	Action string            `bson:"action"`
	From   string            `bson:"from"`
	To     string            `bson:"to"`
	By     string            `bson:"by"`
	At     time.Time         `bson:"at"`
	Reason string            `bson:"reason"`
	Detail map[string]string `bson:"detail,omitempty"`
}

func toTransitionDoc(t intake.Transition) transitionDoc {
	return transitionDoc{Action: t.Action, From: string(t.From), To: string(t.To), By: t.By, At: utc(t.At), Reason: t.Reason, Detail: t.Detail}
}

type candidateDoc struct {
	UnitID   string `bson:"unit_id,omitempty"`
	UnitName string `bson:"unit_name,omitempty"`
	RuleID   string `bson:"rule_id,omitempty"`
	Chosen   bool   `bson:"chosen,omitempty"`
	Excluded string `bson:"excluded,omitempty"`
	Detail   string `bson:"detail"`
}

type unitRefDoc struct {
	ID   string `bson:"id"`
	Name string `bson:"name"`
}

func toDecisionDoc(d intake.Decision) decisionDoc {
	doc := decisionDoc{UnitID: d.UnitID, UnitName: d.UnitName, Reason: d.Reason, Router: d.Router, Inputs: d.Inputs,
		Fallback: d.Fallback, FallbackReason: d.FallbackReason, DecidedAt: utc(d.DecidedAt), RuleID: d.RuleID,
		RuleVersion: d.RuleVersion, By: d.By, Why: d.Why}
	for _, c := range d.Candidates {
		doc.Candidates = append(doc.Candidates, candidateDoc(c))
	}
	for _, u := range d.Informed {
		doc.Informed = append(doc.Informed, unitRefDoc(u))
	}
	return doc
}

func toDecisionDocs(ds []intake.Decision) []decisionDoc {
	var out []decisionDoc
	for _, d := range ds {
		out = append(out, toDecisionDoc(d))
	}
	return out
}

func (doc decisionDoc) toDecision() intake.Decision {
	d := intake.Decision{UnitID: doc.UnitID, UnitName: doc.UnitName, Reason: doc.Reason, Router: doc.Router, Inputs: doc.Inputs,
		Fallback: doc.Fallback, FallbackReason: doc.FallbackReason, DecidedAt: doc.DecidedAt, RuleID: doc.RuleID,
		RuleVersion: doc.RuleVersion, By: doc.By, Why: doc.Why}
	for _, c := range doc.Candidates {
		d.Candidates = append(d.Candidates, intake.Candidate(c))
	}
	for _, u := range doc.Informed {
		d.Informed = append(d.Informed, intake.UnitRef(u))
	}
	return d
}

type warningDoc struct {
	Field   string `bson:"field"`
	Code    string `bson:"code"`
	Message string `bson:"message"`
}

type evidenceDoc struct {
	ID              string    `bson:"id"`
	ObjectKey       string    `bson:"object_key"`
	ContentType     string    `bson:"content_type"`
	Size            int64     `bson:"size"`
	SHA256Received  string    `bson:"sha256_received"`
	SHA256Stored    string    `bson:"sha256_stored"`
	MetadataRemoved bool      `bson:"metadata_removed"`
	OriginalKey     string    `bson:"original_key,omitempty"`
	UploadedBy      string    `bson:"uploaded_by"`
	UploadedAt      time.Time `bson:"uploaded_at"`
}

type messageDoc struct {
	ID        string    `bson:"_id"`
	CaseID    string    `bson:"case_id"`
	From      string    `bson:"from"`
	Kind      string    `bson:"kind,omitempty"` // empty: message
	AuthorID  string    `bson:"author_id,omitempty"`
	Body      string    `bson:"body"`
	CreatedAt time.Time `bson:"created_at"`
}

// utc normalizes a time for storage; the zero time stays zero so that "unset" survives
// a round trip.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

func toCaseDoc(c *intake.Case) caseDoc {
	d := caseDoc{
		ID:          c.ID,
		Number:      c.Number,
		Source:      c.Source,
		Category:    string(c.Category),
		Subject:     subjectDoc{Kind: string(c.Subject.Kind)},
		Description: c.Description,
		Location: locationDoc{
			Division:         c.Location.Division,
			ReportedDivision: c.Location.ReportedDivision,
			Address:          c.Location.Address,
			Lat:              c.Location.Lat,
			Lng:              c.Location.Lng,
		},
		OccurredOn:        c.OccurredOn,
		RealName:          c.RealName,
		ReceiptHash:       c.ReceiptHash,
		Status:            string(c.Status),
		UnitID:            c.UnitID,
		Disposition:       c.Disposition,
		NotAcceptedReason: c.NotAcceptedReason,
		DuplicateOf:       c.DuplicateOf,
		Assignee:          c.Assignee,
		FeedbackDue:       c.FeedbackDue,
		Escalated:         c.Escalated,
		Transfer:          toTransferDoc(c.Transfer),
		NextDue:           nextDue(c, c.Transfer),
		Decision:          toDecisionDoc(c.Decision),
		EarlierDecisions:  toDecisionDocs(c.EarlierDecisions),
		Warnings:          make([]warningDoc, 0, len(c.Warnings)),
		ReceivedAt:        utc(c.ReceivedAt),
		AcceptanceDue:     c.AcceptanceDue,
		Evidence:          make([]evidenceDoc, 0, len(c.Evidence)),
		EvidenceBytes:     c.EvidenceBytes,
		FiledBy:           c.FiledBy,
		OrgKeys:           orgKeys(c),
		EvidenceKeys:      evidenceKeys(c.Evidence),
		Version:           c.Version,
		UpdatedAt:         utc(c.UpdatedAt),
	}
	if o := c.Subject.Organization; o != nil {
		d.Subject.Organization = &orgSubjectDoc{CreditCode: o.CreditCode, Name: o.Name}
	}
	if p := c.Subject.Person; p != nil {
		d.Subject.Person = &personSubjectDoc{Name: p.Name, Position: p.Position, Employer: p.Employer}
	}
	if id := c.Identity; id != nil {
		d.Identity = &sealedIdentityDoc{
			Ciphertext:     id.Ciphertext,
			Recipients:     id.Recipients,
			SealedOnDevice: id.SealedOnDevice,
			SealedAt:       utc(id.SealedAt),
		}
	}
	for _, w := range c.Warnings {
		d.Warnings = append(d.Warnings, warningDoc{Field: w.Field, Code: w.Code, Message: w.Message})
	}
	if o := c.Outcome; o != nil {
		d.Outcome = &outcomeDoc{Result: o.Result, NameCleared: o.NameCleared, FalseAccusation: o.FalseAccusation}
	}
	for _, t := range c.Transitions {
		d.Transitions = append(d.Transitions, toTransitionDoc(t))
	}
	for _, ev := range c.Evidence {
		d.Evidence = append(d.Evidence, toEvidenceDoc(ev))
	}
	return d
}

func (d *caseDoc) toCase() *intake.Case {
	c := &intake.Case{
		ID:          d.ID,
		Number:      d.Number,
		Source:      d.Source,
		Category:    intake.Category(d.Category),
		Subject:     intake.Subject{Kind: intake.SubjectKind(d.Subject.Kind)},
		Description: d.Description,
		Location: intake.Location{
			Division:         d.Location.Division,
			ReportedDivision: d.Location.ReportedDivision,
			Address:          d.Location.Address,
			Lat:              d.Location.Lat,
			Lng:              d.Location.Lng,
		},
		OccurredOn:        d.OccurredOn,
		RealName:          d.RealName,
		ReceiptHash:       d.ReceiptHash,
		Status:            intake.Status(d.Status),
		UnitID:            d.UnitID,
		Decision:          d.Decision.toDecision(),
		Disposition:       d.Disposition,
		NotAcceptedReason: d.NotAcceptedReason,
		DuplicateOf:       d.DuplicateOf,
		Assignee:          d.Assignee,
		FeedbackDue:       d.FeedbackDue,
		Escalated:         d.Escalated,
		Transfer:          d.Transfer.toTransfer(),
		PurgedAt:          d.PurgedAt,
		ReceivedAt:        d.ReceivedAt,
		AcceptanceDue:     d.AcceptanceDue,
		EvidenceBytes:     d.EvidenceBytes,
		FiledBy:           d.FiledBy,
		Version:           d.Version,
		UpdatedAt:         d.UpdatedAt,

		ReporterActivityAt: d.ReporterActivityAt,
		ReporterActivityN:  d.ReporterActivityN,
		NewActivity:        d.NewActivity,
		StaffSeenAt:        d.StaffSeenAt,
		FollowUpEndedAt:    d.FollowUpEndedAt,
	}
	if o := d.Subject.Organization; o != nil {
		c.Subject.Organization = &intake.OrgSubject{CreditCode: o.CreditCode, Name: o.Name}
	}
	if p := d.Subject.Person; p != nil {
		c.Subject.Person = &intake.PersonSubject{Name: p.Name, Position: p.Position, Employer: p.Employer}
	}
	if o := d.Outcome; o != nil {
		c.Outcome = &intake.Outcome{Result: o.Result, NameCleared: o.NameCleared, FalseAccusation: o.FalseAccusation}
	}
	for _, t := range d.Transitions {
		c.Transitions = append(c.Transitions, intake.Transition{Action: t.Action, From: intake.Status(t.From), To: intake.Status(t.To),
			By: t.By, At: t.At, Reason: t.Reason, Detail: t.Detail})
	}
	for _, e := range d.EarlierDecisions {
		c.EarlierDecisions = append(c.EarlierDecisions, e.toDecision())
	}
	if id := d.Identity; id != nil {
		c.Identity = &intake.SealedIdentity{
			Ciphertext:     id.Ciphertext,
			Recipients:     id.Recipients,
			SealedOnDevice: id.SealedOnDevice,
			SealedAt:       id.SealedAt,
		}
	}
	for _, w := range d.Warnings {
		c.Warnings = append(c.Warnings, intake.Warning{Field: w.Field, Code: w.Code, Message: w.Message})
	}
	for _, ev := range d.Evidence {
		c.Evidence = append(c.Evidence, ev.toEvidence())
	}
	return c
}

func toEvidenceDoc(ev intake.Evidence) evidenceDoc {
	return evidenceDoc{
		ID:              ev.ID,
		ObjectKey:       ev.ObjectKey,
		ContentType:     ev.ContentType,
		Size:            ev.Size,
		SHA256Received:  ev.SHA256Received,
		SHA256Stored:    ev.SHA256Stored,
		MetadataRemoved: ev.MetadataRemoved,
		OriginalKey:     ev.OriginalKey,
		UploadedBy:      ev.UploadedBy,
		UploadedAt:      utc(ev.UploadedAt),
	}
}

func (d evidenceDoc) toEvidence() intake.Evidence {
	return intake.Evidence{
		ID:              d.ID,
		ObjectKey:       d.ObjectKey,
		ContentType:     d.ContentType,
		Size:            d.Size,
		SHA256Received:  d.SHA256Received,
		SHA256Stored:    d.SHA256Stored,
		MetadataRemoved: d.MetadataRemoved,
		OriginalKey:     d.OriginalKey,
		UploadedBy:      d.UploadedBy,
		UploadedAt:      d.UploadedAt,
	}
}

// CreateCase stores a new case. A taken ID, number or receipt hash is ECONFLICT.
func (s *CaseStore) CreateCase(ctx context.Context, c *intake.Case) error {
	// Missing keys are a bug in the caller, not the client's fault: a plain error.
	if c.ID == "" || c.Number == "" || len(c.ReceiptHash) == 0 {
		return fmt.Errorf("store case %q: id, number and receipt hash are required", c.ID)
	}
	doc := toCaseDoc(c)
	doc.Outbox = []outboxEventDoc{newEvent("case.registered", c.Number, c.UnitID, c.ReceivedAt,
		map[string]string{"category": string(c.Category), "real_name": fmt.Sprint(c.RealName)})}
	doc.OutboxN = 1
	if _, err := s.db.coll(collCases).InsertOne(ctx, doc); err != nil {
		return storeError("store case "+c.ID, err, nil, errCaseExists)
	}
	return nil
}

func (s *CaseStore) findCase(ctx context.Context, op string, filter bson.M) (*intake.Case, error) {
	var d caseDoc
	if err := s.db.coll(collCases).FindOne(ctx, filter).Decode(&d); err != nil {
		return nil, storeError(op, err, errCaseNotFound, nil)
	}
	return d.toCase(), nil
}

// CaseByID returns the case with ID id.
func (s *CaseStore) CaseByID(ctx context.Context, id string) (*intake.Case, error) {
	return s.findCase(ctx, "find case "+id, bson.M{"_id": id})
}

// CaseByNumber returns the case numbered number.
func (s *CaseStore) CaseByNumber(ctx context.Context, number string) (*intake.Case, error) {
	return s.findCase(ctx, "find case number "+number, bson.M{"number": number})
}

// CaseByReceipt returns the case whose receipt hashes to receiptHash.
func (s *CaseStore) CaseByReceipt(ctx context.Context, receiptHash []byte) (*intake.Case, error) {
	if len(receiptHash) == 0 {
		return nil, errCaseNotFound
	}
	// The hash is not logged: with the receipt key it identifies a reporter's case.
	return s.findCase(ctx, "find case by receipt", bson.M{"receipt_hash": receiptHash})
}

// ListCases returns cases newest first (ties broken by ID), or by nearest deadline with
// f.SortByDue, filtered by every field of f that is set; f.After continues after the
// case with that ID. With no filter set it lists every case: who may ask for that is
// the caller's decision.
func (s *CaseStore) ListCases(ctx context.Context, f intake.CaseFilter) ([]*intake.Case, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = defaultListLimit
	}
	limit = min(limit, maxListLimit)

	filter := bson.M{}
	if f.UnitID != "" {
		filter["unit_id"] = f.UnitID
	}
	if f.FiledBy != "" {
		filter["filed_by"] = f.FiledBy
	}
	if f.Status != "" {
		filter["status"] = string(f.Status)
	}
	if f.Category != "" {
		filter["category"] = string(f.Category)
	}
	if f.Assignee != "" {
		filter["assignee"] = f.Assignee
	}
	if f.NewActivity {
		filter["new_activity"] = true
	}
	if f.Organization != "" {
		filter["org_keys"] = f.Organization // an element of the array
	}
	if f.SortByDue || f.DueBefore != "" {
		due := bson.M{"$gt": ""}
		if f.DueBefore != "" {
			due["$lte"] = f.DueBefore
		}
		filter["next_due"] = due
	}
	if f.DivisionPrefix != "" {
		upper, ok := prefixUpperBound(f.DivisionPrefix)
		if !ok {
			return nil, errBadDivision
		}
		// A range on the string, not a regex: the prefix cannot smuggle in pattern
		// syntax, and the index on location.division serves it.
		filter["location.division"] = bson.M{"$gte": f.DivisionPrefix, "$lt": upper}
	}

	if f.After != "" {
		// Looked up by _id alone, the one filter FerretDB pushes down to SQLite; the
		// scope is checked here instead.
		var last struct {
			NextDue    string      `bson:"next_due"`
			ReceivedAt time.Time   `bson:"received_at"`
			UnitID     string      `bson:"unit_id"`
			FiledBy    string      `bson:"filed_by"`
			Location   locationDoc `bson:"location"`
		}
		err := s.db.coll(collCases).FindOne(ctx, bson.M{"_id": f.After}, options.FindOne().SetProjection(
			bson.M{"received_at": 1, "next_due": 1, "unit_id": 1, "filed_by": 1, "location.division": 1})).Decode(&last)
		if err != nil {
			return nil, storeError("list cases after "+f.After, err, errBadCursor, nil)
		}
		// The cursor case must itself be within the filter, so that a cursor cannot
		// reveal where a case outside the caller's scope sits in time.
		if f.UnitID != "" && last.UnitID != f.UnitID ||
			f.FiledBy != "" && last.FiledBy != f.FiledBy ||
			!strings.HasPrefix(last.Location.Division, f.DivisionPrefix) {
			e := *errBadCursor
			e.Err = fmt.Errorf("list cases after %s: cursor case outside the filter", f.After)
			return nil, &e
		}
		if f.SortByDue {
			if last.NextDue == "" {
				e := *errBadCursor
				e.Err = fmt.Errorf("list cases after %s: the cursor case has nothing due", f.After)
				return nil, &e
			}
			filter["$or"] = bson.A{
				bson.M{"next_due": bson.M{"$gt": last.NextDue}},
				bson.M{"next_due": last.NextDue, "_id": bson.M{"$gt": f.After}},
			}
		} else {
			filter["$or"] = bson.A{
				bson.M{"received_at": bson.M{"$lt": last.ReceivedAt}},
				bson.M{"received_at": last.ReceivedAt, "_id": bson.M{"$gt": f.After}},
			}
		}
	}

	sort := bson.D{desc("received_at"), asc("_id")}
	if f.SortByDue {
		sort = bson.D{asc("next_due"), asc("_id")}
	}
	cur, err := s.db.coll(collCases).Find(ctx, filter, options.Find().SetSort(sort).SetLimit(int64(limit)))
	if err != nil {
		return nil, storeError("list cases", err, nil, nil)
	}
	var docs []caseDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, storeError("list cases", err, nil, nil)
	}
	out := make([]*intake.Case, 0, len(docs))
	for i := range docs {
		out = append(out, docs[i].toCase())
	}
	return out, nil
}

// prefixUpperBound returns the smallest string greater than every string starting
// with the division-code prefix p: p with its last digit incremented ("3307" →
// "3308", "3309" → "330:"). Only digits are accepted, which keeps the bound valid
// UTF-8 and the filter free of anything but a code.
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

// addEvidenceAttempts bounds AddEvidence's conditional updates. One fails only when
// a concurrent upload appended one of the same files, or filled the case, meanwhile;
// the read that follows sees either, so a second attempt is the most a caller makes.
const addEvidenceAttempts = 4

// AddEvidence appends to case caseID the files of evs that repeat nothing on it
// (intake.MergeEvidence) if the case's evidence total stays within maxBytes, all or
// nothing, and returns the entry the case holds for each of evs.
//
// MongoDB has no transaction here, so the append is one update whose condition is
// that the room is left and that none of the files is on the case yet (their repeat
// keys are not among evidence_keys): concurrent uploads cannot together exceed the
// limit, nor store one file twice. When nothing matches, the case is read again to
// tell a missing case, a full one and a repeat apart, and the files still new are
// tried again.
func (s *CaseStore) AddEvidence(ctx context.Context, caseID string, evs []intake.Evidence, maxBytes int64) ([]intake.Evidence, error) {
	op := "add evidence to case " + caseID
	rows := make([]intake.Evidence, 0, len(evs))
	for _, ev := range evs {
		if ev.Size < 0 {
			return nil, fmt.Errorf("%s: evidence %s has negative size %d", op, ev.ID, ev.Size)
		}
		d := toEvidenceDoc(ev)
		d.UploadedAt = d.UploadedAt.Truncate(time.Millisecond) // as stored
		rows = append(rows, d.toEvidence())
	}
	if len(evs) == 0 {
		// Nothing to append; only report a missing case, and leave version alone.
		return nil, s.caseExists(ctx, op, caseID)
	}
	// The first attempt assumes the files are new to the case: a repeat is the
	// exception, and the condition catches it.
	var held []intake.Evidence
	for range addEvidenceAttempts {
		add, kept := intake.MergeEvidence(held, rows)
		if len(add) == 0 {
			return kept, nil
		}
		total := evidenceTotal(add)
		keys := evidenceKeys(add)
		docs := make([]evidenceDoc, 0, len(add))
		for _, ev := range add {
			docs = append(docs, toEvidenceDoc(ev))
		}
		res, err := s.db.updateOne(ctx, collCases, caseID,
			bson.M{"evidence_bytes": bson.M{"$lte": maxBytes - total}, "evidence_keys": bson.M{"$nin": keys}},
			withReporterUploads(bson.M{
				"$push": bson.M{"evidence": bson.M{"$each": docs}, "evidence_keys": bson.M{"$each": keys}},
				"$inc":  bson.M{"evidence_bytes": total, "version": int64(1)},
				"$set":  bson.M{"updated_at": s.db.now().UTC()},
			}, add))
		if err != nil {
			return nil, storeError(op, err, nil, nil)
		}
		if res.MatchedCount == 1 {
			return kept, nil
		}
		// Nothing matched: no such case, the files would not fit, or the case holds
		// some of them now.
		var d caseDoc
		err = s.db.coll(collCases).FindOne(ctx, bson.M{"_id": caseID},
			options.FindOne().SetProjection(bson.M{"evidence": 1, "evidence_bytes": 1})).Decode(&d)
		if err != nil {
			return nil, storeError(op, err, errCaseNotFound, nil)
		}
		held = held[:0]
		for _, e := range d.Evidence {
			held = append(held, e.toEvidence())
		}
		if add, _ := intake.MergeEvidence(held, rows); len(add) > 0 && d.EvidenceBytes > maxBytes-evidenceTotal(add) {
			e := *errEvidenceTooLarge
			e.Err = fmt.Errorf("%s: %d more bytes would exceed the limit of %d", op, evidenceTotal(add), maxBytes)
			return nil, &e
		}
	}
	return nil, fmt.Errorf("%s: the case changed under each of %d attempts", op, addEvidenceAttempts)
}

func evidenceTotal(evs []intake.Evidence) int64 {
	var n int64
	for _, ev := range evs {
		n += ev.Size
	}
	return n
}

// evidenceKeys are the repeat keys of evs (caseDoc.EvidenceKeys), never null.
func evidenceKeys(evs []intake.Evidence) []string {
	keys := []string{}
	for _, ev := range evs {
		if k := ev.RepeatKey(); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

// Reroute gives case c a new category, subject and routing decision if the case is
// still at c.Version, keeping its current decision in earlier_decisions: one
// conditional update. A case changed meanwhile is ECONFLICT and nothing changes.
func (s *CaseStore) Reroute(ctx context.Context, c *intake.Case, category intake.Category, subject intake.Subject, d intake.Decision) error {
	now := s.db.now().UTC()
	after := &intake.Case{Subject: subject, Decision: d, EarlierDecisions: append(slices.Clone(c.EarlierDecisions), c.Decision)}
	return s.conditional(ctx, "reroute case "+c.ID, c.ID, bson.M{"version": c.Version}, withEvent(bson.M{
		"$push": bson.M{"earlier_decisions": toDecisionDoc(c.Decision)},
		"$set": bson.M{"category": string(category), "subject": toCaseDoc(&intake.Case{Subject: subject}).Subject,
			"decision": toDecisionDoc(d), "unit_id": d.UnitID, "updated_at": now, "org_keys": orgKeys(after)},
		"$inc": bson.M{"version": int64(1)},
	}, newEvent("case.rerouted", c.Number, d.UnitID, now, map[string]string{"from": c.UnitID, "to": d.UnitID})))
}

var errCaseChanged = qingfeng.Errorf(qingfeng.ECONFLICT, "案件已被他人处理，请刷新后重试", "the case was changed meanwhile; reload and retry")

// ApplyTransition moves case caseID along its workflow if it is still at version: one
// conditional update sets the status and the fields the step sets and appends the step.
// Of two staff acting on one case at once, one wins; the other gets ECONFLICT.
func (s *CaseStore) ApplyTransition(ctx context.Context, caseID string, version int64, t intake.Transition, f triage.TransitionFields) error {
	set := bson.M{"status": string(t.To), "updated_at": s.db.now().UTC()}
	unset := bson.M{}
	str := func(key string, v *string) {
		switch {
		case v == nil:
		case *v == "":
			unset[key] = ""
		default:
			set[key] = *v
		}
	}
	str("disposition", f.Disposition)
	str("not_accepted_reason", f.NotAcceptedReason)
	str("duplicate_of", f.DuplicateOf)
	str("acceptance_due", f.AcceptanceDue)
	str("feedback_due", f.FeedbackDue)
	str("next_due", &f.NextDue)
	if o := f.Outcome; o != nil {
		set["outcome"] = outcomeDoc{Result: o.Result, NameCleared: o.NameCleared, FalseAccusation: o.FalseAccusation}
	} else if f.ClearOutcome {
		unset["outcome"] = ""
	}
	update := bson.M{"$set": set, "$push": bson.M{"transitions": toTransitionDoc(t)}, "$inc": bson.M{"version": int64(1)}}
	if len(unset) > 0 {
		update["$unset"] = unset
	}
	withEvent(update, newEvent("case.transition", f.CaseNumber, f.UnitID, t.At, map[string]string{"action": t.Action, "from": string(t.From), "to": string(t.To)}))
	return s.conditional(ctx, "transition case "+caseID, caseID, bson.M{"version": version, "status": string(t.From)}, update)
}

// Assign sets the case's assignee ("" unassigns) if it is still at version, and
// records the step.
func (s *CaseStore) Assign(ctx context.Context, caseID string, version int64, assignee string, t intake.Transition) error {
	update := bson.M{"$push": bson.M{"transitions": toTransitionDoc(t)}, "$inc": bson.M{"version": int64(1)}}
	now := s.db.now().UTC()
	if assignee == "" {
		update["$unset"] = bson.M{"assignee": ""}
		update["$set"] = bson.M{"updated_at": now}
	} else {
		update["$set"] = bson.M{"assignee": assignee, "updated_at": now}
	}
	return s.conditional(ctx, "assign case "+caseID, caseID, bson.M{"version": version}, update)
}

func (s *CaseStore) conditional(ctx context.Context, op, caseID string, cond, update bson.M) error {
	res, err := s.db.updateOne(ctx, collCases, caseID, cond, update)
	if err != nil {
		return storeError(op, err, nil, nil)
	}
	if res.MatchedCount == 1 {
		return nil
	}
	if err := s.caseExists(ctx, op, caseID); err != nil {
		return err
	}
	e := *errCaseChanged
	e.Err = fmt.Errorf("%s: not at version %v", op, cond["version"])
	return &e
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

// Hand moves case c to the unit of decision d if c is still at c.Version: the
// current decision joins the earlier ones, t is recorded, and the pending transfer is
// set (or cleared when nil). A new transfer's overdue mark is cleared.
func (s *CaseStore) Hand(ctx context.Context, c *intake.Case, d intake.Decision, pending *intake.PendingTransfer, t intake.Transition, notify ...triage.Notification) error {
	after := &intake.Case{Subject: c.Subject, Decision: d, EarlierDecisions: append(slices.Clone(c.EarlierDecisions), c.Decision)}
	set := bson.M{"decision": toDecisionDoc(d), "unit_id": d.UnitID, "updated_at": s.db.now().UTC(), "org_keys": orgKeys(after)}
	update := bson.M{
		"$push": bson.M{"earlier_decisions": toDecisionDoc(c.Decision), "transitions": toTransitionDoc(t)},
		"$inc":  bson.M{"version": int64(1)},
	}
	unset := bson.M{}
	if pending != nil {
		set["transfer"] = toTransferDoc(pending)
		update["$pull"] = bson.M{"escalated": "transfer"}
	} else {
		unset["transfer"] = ""
	}
	if due := nextDue(c, pending); due != "" {
		set["next_due"] = due
	} else {
		unset["next_due"] = ""
	}
	if len(unset) > 0 {
		update["$unset"] = unset
	}
	update["$set"] = set
	withEvent(update, newEvent("case."+t.Action, c.Number, d.UnitID, t.At, map[string]string{"from": c.UnitID, "to": d.UnitID}))
	if err := s.conditional(ctx, "hand case "+c.ID, c.ID, bson.M{"version": c.Version}, update); err != nil {
		return err
	}
	// After the hand-over, not in it: a crash here loses the notification only (see
	// triage.TransferStore).
	for _, n := range notify {
		if _, err := s.notify(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// CountByStatus counts a unit's cases per status.
func (s *CaseStore) CountByStatus(ctx context.Context, unitID string) (map[intake.Status]int64, error) {
	cur, err := s.db.coll(collCases).Aggregate(ctx, bson.A{
		bson.M{"$match": bson.M{"unit_id": unitID}},
		bson.M{"$group": bson.M{"_id": "$status", "n": bson.M{"$sum": 1}}},
	})
	if err != nil {
		return nil, storeError("count cases by status", err, nil, nil)
	}
	var rows []struct {
		Status string `bson:"_id"`
		N      int64  `bson:"n"`
	}
	if err := cur.All(ctx, &rows); err != nil {
		return nil, storeError("count cases by status", err, nil, nil)
	}
	out := map[intake.Status]int64{}
	for _, r := range rows {
		out[intake.Status(r.Status)] = r.N
	}
	return out, nil
}

// caseExists returns nil if case id exists and ENOTFOUND if not.
func (s *CaseStore) caseExists(ctx context.Context, op, id string) error {
	// FindOne on _id alone rather than CountDocuments: FerretDB pushes only that down.
	err := s.db.coll(collCases).FindOne(ctx, bson.M{"_id": id}, options.FindOne().SetProjection(bson.M{"_id": 1})).Err()
	return storeError(op, err, errCaseNotFound, nil)
}

// AddMessage stores a message of a case's conversation.
func (s *CaseStore) AddMessage(ctx context.Context, m *intake.Message) error {
	d := messageDoc{
		ID:        m.ID,
		CaseID:    m.CaseID,
		From:      m.From,
		Kind:      m.Kind,
		AuthorID:  m.AuthorID,
		Body:      m.Body,
		CreatedAt: utc(m.CreatedAt),
	}
	op := "store message " + m.ID + " of case " + m.CaseID
	if _, err := s.db.coll(collMessages).InsertOne(ctx, d); err != nil {
		return storeError(op, err, nil, errMessageExists)
	}
	if m.From != intake.UploaderReporter {
		return nil
	}
	// Messages live in their own collection and FerretDB has no multi-document
	// transactions, so the case is marked after the message is stored: a reader who
	// sees the new count can see the message too. The other order could let a read
	// between the two writes clear the mark without showing the message.
	res, err := s.db.updateOne(ctx, collCases, m.CaseID, nil, withReporterActivity(bson.M{}, 1, m.CreatedAt))
	if err == nil && res.MatchedCount == 0 {
		err = mongodrv.ErrNoDocuments
	}
	if err != nil {
		// Unmarked, the message would go unseen: take it back and let the reporter retry.
		if _, derr := s.db.coll(collMessages).DeleteOne(context.WithoutCancel(ctx), bson.M{"_id": m.ID}); derr != nil {
			return fmt.Errorf("%s: mark case: %w (and remove the message: %v)", op, err, derr)
		}
		return storeError(op+": mark case", err, errCaseNotFound, nil)
	}
	return nil
}

// withReporterActivity adds to update the marking of n new reporter messages or
// uploads, the latest at `at`: one more reason for the owning unit to look. It does
// not change the case's version: a reporter writing must not make staff's
// concurrent workflow step fail.
func withReporterActivity(update bson.M, n int64, at time.Time) bson.M {
	inc, _ := update["$inc"].(bson.M)
	if inc == nil {
		inc = bson.M{}
	}
	inc["reporter_activity_n"] = n
	update["$inc"] = inc
	set, _ := update["$set"].(bson.M)
	if set == nil {
		set = bson.M{}
	}
	set["new_activity"] = true
	update["$set"] = set
	// $max: concurrent messages may be stored out of order.
	update["$max"] = bson.M{"reporter_activity_at": at.UTC()}
	return update
}

// withReporterUploads adds to update the marking of the reporter's uploads among evs,
// if there are any: in the same update that stores them.
func withReporterUploads(update bson.M, evs []intake.Evidence) bson.M {
	var (
		n      int64
		latest time.Time
	)
	for _, ev := range evs {
		if ev.UploadedBy == intake.UploaderReporter {
			n++
			if ev.UploadedAt.After(latest) {
				latest = ev.UploadedAt
			}
		}
	}
	if n == 0 {
		return update
	}
	return withReporterActivity(update, n, latest)
}

// MarkActivitySeen clears case caseID's new reporter activity if the case still
// belongs to unitID and has had exactly seenN reporter messages and uploads: one
// conditional update, so that activity arriving after the reader loaded the case
// keeps the mark.
func (s *CaseStore) MarkActivitySeen(ctx context.Context, caseID, unitID string, seenN int64, at time.Time) (bool, error) {
	res, err := s.db.updateOne(ctx, collCases, caseID,
		bson.M{"unit_id": unitID, "reporter_activity_n": seenN, "new_activity": true},
		bson.M{"$set": bson.M{"new_activity": false, "staff_seen_at": at.UTC()}})
	if err != nil {
		return false, storeError("mark activity on case "+caseID+" seen", err, nil, nil)
	}
	return res.MatchedCount == 1, nil
}

// EndFollowUp implements intake.CaseStore: $max keeps the later time; the version is
// unchanged.
func (s *CaseStore) EndFollowUp(ctx context.Context, caseID string, at time.Time) error {
	res, err := s.db.updateOne(ctx, collCases, caseID, nil, bson.M{"$max": bson.M{"followup_ended_at": at.UTC().Truncate(time.Millisecond)}})
	if err != nil {
		return storeError("end follow-up of case "+caseID, err, nil, nil)
	}
	if res.MatchedCount == 0 {
		return errCaseNotFound
	}
	return nil
}

// CountNewActivity counts a unit's cases with reporter activity its staff have not read.
func (s *CaseStore) CountNewActivity(ctx context.Context, unitID string) (int64, error) {
	n, err := s.db.coll(collCases).CountDocuments(ctx, bson.M{"unit_id": unitID, "new_activity": true})
	return n, storeError("count cases with new activity", err, nil, nil)
}

// Messages returns a case's conversation, oldest first.
func (s *CaseStore) Messages(ctx context.Context, caseID string) ([]*intake.Message, error) {
	op := "list messages of case " + caseID
	cur, err := s.db.coll(collMessages).Find(ctx, bson.M{"case_id": caseID},
		options.Find().SetSort(bson.D{asc("created_at"), asc("_id")}))
	if err != nil {
		return nil, storeError(op, err, nil, nil)
	}
	var docs []messageDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, storeError(op, err, nil, nil)
	}
	out := make([]*intake.Message, 0, len(docs))
	for _, d := range docs {
		out = append(out, &intake.Message{
			ID:        d.ID,
			CaseID:    d.CaseID,
			From:      d.From,
			Kind:      messageKind(d.Kind),
			AuthorID:  d.AuthorID,
			Body:      d.Body,
			CreatedAt: d.CreatedAt,
		})
	}
	return out, nil
}

// CountCases counts every stored case (operators' statistics and tests).
func (s *CaseStore) CountCases(ctx context.Context) (int64, error) {
	n, err := s.db.coll(collCases).CountDocuments(ctx, bson.M{})
	return n, storeError("count cases", err, nil, nil)
}

func messageKind(k string) string {
	if k == "" {
		return "message"
	}
	return k
}
