// Package intake is the domain of a tip-off (举报): what a reporter files, the case it
// becomes, its evidence and receipt, and the submission and follow-up services.
//
// It must not import Fiber, the MongoDB driver, minio-go or net/http: it declares the
// small interfaces it needs (CaseStore, EvidenceStore, Sealer, ...) and cmd/qingfeng wires
// implementations in. A reporter's plaintext identity exists here only in memory, between
// decoding and sealing; nothing in this package stores, logs or returns it.
package intake

import (
	"context"
	"io"
	"time"
)

// Category is what a report is about; the codes are from domain.md.
type Category string

// CategoryInfo labels a category for people (Chinese first).
type CategoryInfo struct {
	Code    Category `json:"code"`
	Label   string   `json:"label"`
	English string   `json:"label_en"`
}

// Categories lists every category a report may carry, in display order.
var Categories = []CategoryInfo{
	{"illegal_org", "非法社会组织", "Illegal social organization"},
	{"dormant_org", "僵尸型社会组织", "Dormant organization"},
	{"arbitrary_fees", "乱收费、涉企违规收费", "Arbitrary fees"},
	{"branch_misconduct", "分支（代表）机构违规", "Branch misconduct"},
	{"nonprofit_violation", "违反非营利属性", "Non-profit violation"},
	{"donation_misuse", "捐赠款物违规", "Donation misuse"},
	{"procurement_fraud", "政府购买服务、项目招投标违规", "Procurement fraud"},
	{"governance_violation", "内部治理违规", "Governance violation"},
	{"official_discipline", "党员干部违纪", "Official's breach of discipline"},
	{"official_corruption", "公职人员职务违法犯罪", "Official corruption"},
	{"formalism", "形式主义、官僚主义", "Formalism and bureaucratism"},
	{"other", "其他", "Other"},
}

// Valid reports whether c is one of Categories.
func (c Category) Valid() bool {
	for _, k := range Categories {
		if k.Code == c {
			return true
		}
	}
	return false
}

// SubjectKind says whether a report is about an organization or a person.
type SubjectKind string

const (
	SubjectOrganization SubjectKind = "organization"
	SubjectPerson       SubjectKind = "person"
)

// Subject is who or what a report is about (被举报对象).
type Subject struct {
	Kind         SubjectKind    `json:"kind"`
	Organization *OrgSubject    `json:"organization,omitempty"`
	Person       *PersonSubject `json:"person,omitempty"`
}

// OrgSubject names a social organization, by its 统一社会信用代码 and/or name.
type OrgSubject struct {
	CreditCode string `json:"credit_code,omitempty"`
	Name       string `json:"name,omitempty"`
}

// PersonSubject names a person, e.g. an official: name, position (职务), employer (工作单位).
type PersonSubject struct {
	Name     string `json:"name"`
	Position string `json:"position,omitempty"`
	Employer string `json:"employer,omitempty"`
}

// Location is where the matter happened.
type Location struct {
	Division string   `json:"division"` // Zhejiang division code, 6 or 9 digits
	Address  string   `json:"address,omitempty"`
	Lat      *float64 `json:"lat,omitempty"`
	Lng      *float64 `json:"lng,omitempty"`

	// ReportedDivision is the code the reporter gave when it lies outside Zhejiang;
	// Division is then the province (330000), which holds and triages the report.
	ReportedDivision string `json:"reported_division,omitempty"`
}

// Identity is a real-name reporter's identity in plaintext. It lives only in memory
// between decoding a request and sealing; it has no bson or json tags on purpose.
type Identity struct {
	Name             string
	Mobile           string
	ResidentID       string
	PreferredContact string
}

// SealedIdentity is an identity encrypted with age to custodian recipients. The server
// cannot open it.
type SealedIdentity struct {
	Ciphertext     []byte   // an age file (binary format)
	Recipients     []string // the public recipients it was sealed to; empty when sealed on the device
	SealedOnDevice bool
	SealedAt       time.Time
}

// Status is a case's place in its lifecycle; the triage package owns the workflow.
type Status string

const (
	StatusRegistered    Status = "registered"     // 登记
	StatusAccepted      Status = "accepted"       // 受理
	StatusNotAccepted   Status = "not_accepted"   // 不予受理
	StatusDisposed      Status = "disposed"       // 处置中 (one of the five dispositions)
	StatusConcluded     Status = "concluded"      // 办结
	StatusFeedbackGiven Status = "feedback_given" // 已反馈
	StatusClosed        Status = "closed"         // 已结案
	StatusDuplicate     Status = "duplicate"      // 重复举报，留存备查
)

// Transition is one step of a case's workflow: who, when, why.
type Transition struct {
	Action string            `json:"action"`
	From   Status            `json:"from"`
	To     Status            `json:"to"`
	By     string            `json:"by"`
	At     time.Time         `json:"at"`
	Reason string            `json:"reason"`
	Detail map[string]string `json:"detail,omitempty"`
}

// PendingTransfer is a case handed to another unit (转办) that has not yet accepted
// or returned it. While pending, the receiving unit owns the case.
type PendingTransfer struct {
	From   string    `json:"from"` // unit ids
	To     string    `json:"to"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
	Due    string    `json:"due"` // YYYY-MM-DD: accept or return within the transfer deadline
}

// Outcome is what a concluded case found.
type Outcome struct {
	// Result: substantiated (属实), partly (部分属实), unsubstantiated (不属实).
	Result string `json:"result"`
	// NameCleared: the accused's name was cleared (澄清正名) after an unsubstantiated report.
	NameCleared bool `json:"name_cleared"`
	// FalseAccusation: "" (none), "deliberate" (诬告陷害) or "mistake" (错告).
	FalseAccusation string `json:"false_accusation,omitempty"`
}

// Decision records which unit a case was routed to and why.
type Decision struct {
	UnitID    string            `json:"unit_id"`
	UnitName  string            `json:"unit_name"`
	Reason    string            `json:"reason"`
	Router    string            `json:"router"` // which router (and version) decided
	Inputs    map[string]string `json:"inputs,omitempty"`
	Fallback  bool              `json:"fallback,omitempty"`
	DecidedAt time.Time         `json:"decided_at"`

	// The rule engine's record (empty from the first-version router).
	RuleID      string      `json:"rule_id,omitempty"`
	RuleVersion int         `json:"rule_version,omitempty"`
	Candidates  []Candidate `json:"candidates,omitempty"` // every unit considered, chosen or not, and why
	Informed    []UnitRef   `json:"informed,omitempty"`   // units informed (抄送), not owners
	// FallbackReason says why a fallback happened: no_rule, outside_zhejiang, unresolved.
	FallbackReason string `json:"fallback_reason,omitempty"`

	// A re-routing (triage changed the category or subject) says who and why.
	By  string `json:"by,omitempty"`
	Why string `json:"why,omitempty"`
}

// Candidate is a unit a routing decision considered.
type Candidate struct {
	UnitID   string `json:"unit_id"`
	UnitName string `json:"unit_name"`
	RuleID   string `json:"rule_id,omitempty"`
	Chosen   bool   `json:"chosen"`
	// Excluded says why not: recusal, inactive, out_of_jurisdiction, lower_priority, unresolved.
	Excluded string `json:"excluded,omitempty"`
	Detail   string `json:"detail"` // Chinese
}

// UnitRef names a unit.
type UnitRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Warning is a non-fatal note on accepted input (e.g. a credit code failing its check).
type Warning struct {
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Case is a registered report and everything attached to it.
type Case struct {
	ID          string // random, unguessable; internal
	Number      string // human case number, e.g. QF-330782-2026-000123
	Source      string // "app", "wechat", "liaison", ...
	Category    Category
	Subject     Subject
	Description string
	Location    Location
	OccurredOn  string // YYYY-MM-DD or YYYY-MM, as the reporter knows it

	RealName bool
	Identity *SealedIdentity // nil for anonymous reports

	ReceiptHash []byte // keyed hash of the receipt code; the code itself is never stored

	Status Status
	// Workflow (the triage package): the disposition chosen on acceptance, the outcome
	// on conclusion, the reason a case was not accepted, the earlier case a duplicate
	// is linked to, the staff member working it, and every step taken.
	Disposition       string
	NotAcceptedReason string
	Outcome           *Outcome
	DuplicateOf       string // case number
	Assignee          string // account id
	Transitions       []Transition
	UnitID            string
	Decision          Decision
	// EarlierDecisions are the decisions a re-routing replaced, oldest first.
	EarlierDecisions []Decision
	Warnings         []Warning

	ReceivedAt    time.Time
	AcceptanceDue string // YYYY-MM-DD in Asia/Shanghai, real-name reports only
	FeedbackDue   string // YYYY-MM-DD: the result is due to a real-name reporter (set on conclusion)
	Transfer      *PendingTransfer
	// PurgedAt is when the retention period ran out and the case was anonymised; nothing
	// more can happen to it.
	PurgedAt *time.Time
	// Escalated lists the steps (acceptance, feedback, transfer) found overdue and escalated.
	Escalated []string

	Evidence      []Evidence
	EvidenceBytes int64

	FiledBy string // account id of a liaison filing on behalf of a visitor; empty for citizens

	// Reporter activity (新的举报人动态): a message or evidence the reporter sent after
	// filing, on a case in any state. NewActivity stays set until staff of the owning
	// unit read the case; an admin, a liaison or another unit reading it does not
	// clear it. ReporterActivityN counts every such message and upload, so that
	// marking seen applies only if nothing arrived after what the reader was shown
	// (see CaseStore.MarkActivitySeen).
	ReporterActivityAt time.Time // the latest reporter message or upload
	ReporterActivityN  int64
	NewActivity        bool
	StaffSeenAt        time.Time // when staff of the owning unit last read the new activity

	// FollowUpEndedAt is when the reporter last logged out of following the case up:
	// a follow-up token issued at or before it is refused. Zero: never.
	FollowUpEndedAt time.Time

	Version   int64
	UpdatedAt time.Time
}

// Evidence is one stored file attached to a case.
type Evidence struct {
	ID              string    `json:"id"`
	ObjectKey       string    `json:"-"`
	ContentType     string    `json:"content_type"`
	Size            int64     `json:"size"`
	SHA256Received  string    `json:"sha256_received"`
	SHA256Stored    string    `json:"sha256_stored"`
	MetadataRemoved bool      `json:"metadata_removed"`
	OriginalKey     string    `json:"-"`           // sealed original with metadata, when kept
	UploadedBy      string    `json:"uploaded_by"` // UploaderReporter, or "staff"/"liaison" with account id
	UploadedAt      time.Time `json:"uploaded_at"`
}

// Repeats reports whether ev is a file its uploader already gave the case as e: the
// same uploader (UploadedBy) sent the same received bytes (SHA256Received), and e's
// object is still kept. Such a file is not stored again — it is a retried or doubled
// upload — and the upload is answered with e (see CaseStore.AddEvidence).
//
// Only the same uploader's entries count. Who supplied a file is part of the evidence
// (a liaison's photo from the field is not the reporter's), and a liaison may add to
// a case of their division that they cannot read: were the reporter's entry the
// answer, the liaison would learn that the reporter sent this very photo, which can
// name them. A purged entry (retention removed its object: ObjectKey empty) is a copy
// of nothing any more, so the same file sent again is stored again, as new evidence.
func (e Evidence) Repeats(ev Evidence) bool {
	k := e.RepeatKey()
	return k != "" && k == ev.RepeatKey()
}

// RepeatKey is what Repeats compares, as one string (the uploader, a space, the
// received hash): "" for an entry that nothing repeats (purged, or without a hash).
// A store that cannot compare entries field by field in its condition indexes these.
func (e Evidence) RepeatKey() string {
	if e.ObjectKey == "" || e.SHA256Received == "" {
		return ""
	}
	return e.UploadedBy + " " + e.SHA256Received
}

// MergeEvidence sets a batch of uploads against the evidence a case holds: add is
// what to append (each file of evs that repeats nothing held nor an earlier file of
// the batch), and kept[i] is the entry the case holds for evs[i] once add is
// appended: evs[i] itself, or the entry it repeats. Both stores decide with it.
func MergeEvidence(held, evs []Evidence) (add, kept []Evidence) {
	kept = make([]Evidence, 0, len(evs))
	for _, ev := range evs {
		if e, ok := repeated(ev, held, add); ok {
			kept = append(kept, e)
			continue
		}
		add = append(add, ev)
		kept = append(kept, ev)
	}
	return add, kept
}

// repeated returns the entry of sets that ev repeats, if any.
func repeated(ev Evidence, sets ...[]Evidence) (Evidence, bool) {
	for _, set := range sets {
		for _, e := range set {
			if e.Repeats(ev) {
				return e, true
			}
		}
	}
	return Evidence{}, false
}

// UploaderReporter is who the reporter is, as Evidence.UploadedBy and Message.From:
// never anything about the reporter's person or device.
const UploaderReporter = "reporter"

// Message is one entry in the conversation between staff and the reporter.
type Message struct {
	ID     string `json:"id"`
	CaseID string `json:"-"`
	From   string `json:"from"` // "reporter" or "staff"
	// Kind: "message" (between staff and the reporter), "internal" (a note only the
	// unit sees) or "public_note" (a status note shown to the reporter).
	Kind      string    `json:"kind"`
	AuthorID  string    `json:"-"` // staff account id; empty for the reporter
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
}

// CaseFilter selects cases for a staff or liaison list.
type CaseFilter struct {
	UnitID         string // staff: only this unit
	DivisionPrefix string // liaison: only cases whose division starts with this
	FiledBy        string // liaison: only cases this account filed
	Status         Status
	Category       Category
	Assignee       string
	// SortByDue orders by the nearest pending deadline (earliest first) instead of
	// receipt (newest first), leaving out cases with nothing due; DueBefore keeps those
	// due on or before a date (YYYY-MM-DD).
	SortByDue bool
	DueBefore string
	Limit     int
	After     string // cursor: the ID of the last case of the previous page

	// NewActivity keeps only cases with reporter activity the owning unit has not read.
	NewActivity bool

	// Organization keeps only cases about the reported organization (被举报组织) with
	// this search key: routing.ParseOrgQuery makes it from what staff typed (a credit
	// code, or the start of a name), and the stores index routing.OrgSearchKeys of
	// every case. It is an opaque key, compared exactly.
	Organization string
}

// Counters are named sequences: case numbers are taken from them.
type Counters interface {
	// NextSequence returns the next number in a named counter, starting at 1.
	NextSequence(ctx context.Context, name string) (int64, error)
	// ReturnSequence gives n back to counter name if it is still the last number taken
	// (a case that could not be stored); it reports whether it did.
	ReturnSequence(ctx context.Context, name string, n int64) (bool, error)
}

// IdempotencyStore keeps idempotency records: see IdempotencyRecord. ClaimIdempotency
// claims r's key for r.Owner atomically (a new key, an expired record, or a stale claim
// on the same request) and returns the record as it stands: the claim is the caller's
// only if its Owner is r.Owner. UpdateIdempotency and ReleaseIdempotency act only for
// the owner of the claim (ECONFLICT, or nothing, otherwise).
type IdempotencyStore interface {
	ClaimIdempotency(ctx context.Context, r *IdempotencyRecord) (*IdempotencyRecord, error)
	UpdateIdempotency(ctx context.Context, r *IdempotencyRecord) error
	ReleaseIdempotency(ctx context.Context, keyHash, owner string) error
	Idempotency(ctx context.Context, keyHash string) (*IdempotencyRecord, error)
}

// CaseStore keeps cases. Updates are single-document and atomic.
type CaseStore interface {
	Counters
	IdempotencyStore
	CreateCase(ctx context.Context, c *Case) error
	CaseByID(ctx context.Context, id string) (*Case, error)
	CaseByNumber(ctx context.Context, number string) (*Case, error)
	CaseByReceipt(ctx context.Context, receiptHash []byte) (*Case, error)
	ListCases(ctx context.Context, f CaseFilter) ([]*Case, error)
	// AddEvidence appends the files of evs that repeat nothing on the case (see
	// MergeEvidence and Evidence.Repeats) if the case's evidence total with them stays
	// within maxBytes; otherwise it returns an ETOOLARGE error and changes nothing. It
	// returns the entry the case holds for each of evs, in order: a file repeated is
	// answered with the entry it repeats, and neither counts towards the total nor as
	// activity; a batch of nothing but repeats changes nothing, not even the version.
	// This holds for concurrent calls: of 32 identical uploads at once, one is
	// appended. Evidence appended from the reporter (UploadedBy UploaderReporter) marks
	// the case as having new reporter activity in the same single-document update.
	AddEvidence(ctx context.Context, caseID string, evs []Evidence, maxBytes int64) ([]Evidence, error)
	// Reroute sets a new category, subject and decision if the case is still at
	// c.Version, keeping c.Decision among the earlier decisions; ECONFLICT otherwise.
	Reroute(ctx context.Context, c *Case, category Category, subject Subject, d Decision) error
	// AddMessage stores a message. A reporter's message (From UploaderReporter) also
	// marks its case as having new reporter activity, after the message is stored,
	// so that whoever sees the mark can also see the message; if marking fails the
	// message is removed again and the error returned.
	AddMessage(ctx context.Context, m *Message) error
	Messages(ctx context.Context, caseID string) ([]*Message, error)
	// MarkActivitySeen clears case caseID's new reporter activity as read at `at` by
	// staff of unitID, only if the case still belongs to unitID and its
	// ReporterActivityN is still seenN (the count the reader was shown). It reports
	// whether it cleared the mark; a case changed meanwhile keeps it, and is not an
	// error.
	MarkActivitySeen(ctx context.Context, caseID, unitID string, seenN int64, at time.Time) (bool, error)
	// EndFollowUp records that the reporter of case caseID logged out at `at`
	// (Case.FollowUpEndedAt): the later of it and what is stored is kept; the case's
	// version is not changed (nothing staff decide on). No such case is ENOTFOUND.
	EndFollowUp(ctx context.Context, caseID string, at time.Time) error
}

// IdempotencyRecord lets a retried POST /v1/reports return the case (and receipt) it
// created the first time. It starts as a claim held by one attempt (Owner, a random
// token) until ClaimUntil; the attempt records the case's id, number and receipt
// before it stores the case, and sets Done after. A claim whose attempt died is
// taken over by a retry once ClaimUntil has passed, which then finishes the case
// under the same id, number and receipt. The receipt is kept only encrypted, under a
// key derived from the server's pepper and the client's Idempotency-Key (Receipts.
// SealCode), and only until ExpiresAt.
type IdempotencyRecord struct {
	KeyHash     string // keyed hash of the client's Idempotency-Key
	RequestHash string // hash of the request, to refuse a reused key with another body
	Owner       string
	ClaimUntil  time.Time
	Done        bool
	CaseID      string
	CaseNumber  string
	ReceiptEnc  []byte
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// EvidenceStore keeps evidence objects. Put streams; an error leaves no object behind.
type EvidenceStore interface {
	Put(ctx context.Context, key string, r io.Reader, contentType string) (int64, error)
	Get(ctx context.Context, key string) (io.ReadCloser, int64, error)
	Delete(ctx context.Context, key string) error
}

// Sealer seals identities to the custodians of a division and checks device-sealed ones.
type Sealer interface {
	Seal(ctx context.Context, division string, plaintext []byte) (*SealedIdentity, error)
	// SealStream returns a writer whose output, once closed, is sealed to the
	// custodians of division (used to keep an evidence original with its metadata).
	SealStream(ctx context.Context, division string, dst io.Writer) (io.WriteCloser, error)
	CheckSealed(ciphertext []byte) error
}

// Router decides which unit handles a case. The routing package's engine replaces the
// first version behind this interface.
type Router interface {
	Route(ctx context.Context, c *Case) (Decision, error)
}

// PlacedNotifier, when the Router implements it, is told of each new case once it is
// stored: a router that alerts on cases it could not place does it then, so that the
// alert names a case that exists (a case is numbered only when it is stored).
type PlacedNotifier interface {
	Placed(ctx context.Context, c *Case)
}

// Calendar computes deadlines in working days (Asia/Shanghai).
type Calendar interface {
	// AddWorkingDays returns the date (YYYY-MM-DD, Asia/Shanghai) that is the n-th working
	// day after the day of t. estimated is true when a year without an announced holiday
	// calendar was crossed and only weekends were counted there.
	AddWorkingDays(t time.Time, n int) (date string, estimated bool)
}
