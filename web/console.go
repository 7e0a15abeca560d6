package web

// The staff console's view models. The console is for a desktop browser (liaison
// pages also at phone width); like the public pages it works with JavaScript off and
// loads nothing from another origin. Handlers word every text; templates only loop
// and branch.

// consolePageNames are the console's pages: templates/console/<name>.html rendered
// inside layout.html with templates/console/base.html (the console's masthead).
var consolePageNames = []string{"login", "password", "totp", "home", "queue", "case", "evidence", "notifications", "stats", "custody", "ledger", "users", "audit", "recipients", "rules", "units", "calendar", "import", "explain"}

// ConsolePage is what every signed-in console page needs.
type ConsolePage struct {
	Page
	// User is the signed-in account's display name and role in words; empty on the
	// sign-in page.
	User, RoleLabel, Scope string
	Menu                   []MenuItem
	// CSRF signs every form of the page, bound to the session.
	SessionCSRF string
	// Flash is a one-line confirmation of what the last form did.
	Flash string
}

// MenuItem is one entry of the console's navigation.
type MenuItem struct {
	Href, Label string
	Current     bool
}

// ConsoleLoginPage is /console/login.
type ConsoleLoginPage struct {
	ConsolePage
	Form
	Expired, LoggedOut bool
}

// ConsolePasswordPage is /console/password: a one-time password must be changed.
type ConsolePasswordPage struct {
	ConsolePage
	Form
	Required bool
}

// ConsoleTOTPPage is /console/totp: enrolling the second factor in the browser.
type ConsoleTOTPPage struct {
	ConsolePage
	Form
	Required bool
	// Secret and URI are shown once, after enrolment starts; RecoveryCodes once,
	// after it is confirmed.
	Secret, URI   string
	RecoveryCodes []string
	Enabled       bool
	// Confirming: a confirmation failed; the form is shown again without the secret.
	Confirming bool
}

// ConsoleHomePage is /console: what the role can do here, and what is not built yet.
type ConsoleHomePage struct {
	ConsolePage
	Links   []MenuItem
	Missing []string // what this role must still do through the API or qfctl
}

// Tab is a status tab of the queue with its count.
type Tab struct {
	Label, Href string
	Count       int64
	Current     bool
}

// QueuePage is /console/cases: the unit's queue.
type QueuePage struct {
	ConsolePage
	Tabs        []Tab
	NewActivity int64
	NewHref     string
	// The filters as chosen.
	Status, Category, Division, Assignee, DueBefore, Sort, Query string
	Statuses, Categories, Divisions, Assignees, Sorts            []Option
	Rows                                                         []QueueRow
	NextHref                                                     string
	// Notice explains a search the queue cannot do, or a bad filter.
	Notice string
	// OrgSearch is what the queue is searched by (the reported organization's name or
	// credit code, as typed); the rows then name each case's organization.
	OrgSearch string
}

// QueueRow is one case in the queue.
type QueueRow struct {
	Number, Href, Status, Category, Division, Received, Assignee string
	// Due is the nearest deadline in words with the working days left.
	Due                   string
	Overdue, DueSoon, New bool
	// Unhandled: registered and no step taken yet (新案件); New is reporter activity
	// (a message, evidence) the unit has not read.
	Unhandled    bool
	OverdueSteps []string
	RealName     bool
	Evidence     int
	// Organization is the reported organization (name and code), shown in a search.
	Organization string
}

// KV is a labelled value.
type KV struct{ Label, Value string }

// CasePage is /console/cases/{number}.
type CasePage struct {
	ConsolePage
	Form
	Number, Status, Category, Division, Unit, Source, Received, Occurred, Description string
	RealName                                                                          bool
	Identity                                                                          string
	Subject                                                                           []KV
	Routing                                                                           RoutingView
	Deadlines                                                                         []Deadline
	Evidence                                                                          []EvidenceItem
	Timeline                                                                          []TimelineEntry
	Warnings                                                                          []string
	Assignee                                                                          string
	AssignedToMe                                                                      bool
	// Colleagues are the active staff of the case's unit a case can be assigned to.
	Colleagues []Option
	// TransferUnits suggest transfer targets (a datalist: the unit's name, its code as
	// the label): the active units of the case's city and the province's.
	TransferUnits []Option
	// Can says which actions the workflow allows now (by action name), and which of
	// the case's other forms apply: claim, unassign, transfer, transfer_answer.
	Can map[string]bool
	// Transfer is a pending transfer to this unit, to accept or return.
	Transfer           []KV
	Dispositions       []Option
	NotAcceptedReasons []Option
	Results            []Option
	Disclosures        []KV
	Outcome            []KV
	ActionURL          string
}

// RoutingView is a routing decision in words (the case page's and the explain page's).
type RoutingView struct {
	Unit, Reason, Router, Decided string
	Fallback                      string
	// Rule is the deciding rule and the rule set's version ("" for other routers).
	Rule       string
	Candidates []Candidate
	Informed   []string
}

// Candidate is one unit the router considered.
type Candidate struct {
	Unit, Why, Rule string
	Chosen          bool
}

// Deadline is a legal deadline with the working days left.
type Deadline struct {
	Label, Date, Left string
	Overdue, Soon     bool
}

// EvidenceItem is one evidence file: a thumbnail (images) and the inline viewer.
type EvidenceItem struct {
	ID, Src, ViewHref, Kind, Label, Size, UploadedBy, UploadedAt string
}

// TimelineEntry is one event of a case, in Asia/Shanghai time.
type TimelineEntry struct {
	At, Who, What, Body, Kind string
}

// EvidencePage is the inline viewer of one evidence file.
type EvidencePage struct {
	ConsolePage
	Number, CaseHref string
	Item             EvidenceItem
}

// NotificationsPage is /console/notifications.
type NotificationsPage struct {
	ConsolePage
	Rows []Notification
}

// Notification is an escalation, a transfer in or a return.
type Notification struct {
	Kind, Case, Href, Unit, Due, At string
}

// StatsPage is /console/stats.
type StatsPage struct {
	ConsolePage
	From, To   string
	Total      int64
	ByCategory []KV
	ByCounty   []KV
	ByMonth    []KV
	OnTime     []KV
	Chart      Chart
	CSVHref    string
	Notice     string
}

// CustodyPage is /console/custody: a custodian's pending decisions.
type CustodyPage struct {
	ConsolePage
	Form
	Disclosures []DisclosureItem
	Approved    []DisclosureItem
	Tasks       []ResealItem
}

// DisclosureItem is a disclosure request as a custodian decides it.
type DisclosureItem struct {
	ID, Case, Division, Unit, Requester, Reason, Status, RequestedAt, ExpiresAt string
	Command                                                                     string
}

// ResealItem is a re-seal task with the command that does it.
type ResealItem struct {
	ID, Case, Division, Target, Reason, CreatedAt, Command string
}

// LedgerPage is /console/ledger/{credit code}: a liaison's view of one organization's
// donation ledger (also at phone width). Without Code it is the look-up form.
type LedgerPage struct {
	ConsolePage
	Form
	Code, Org, Action, CSVHref string
	Today, Month               string
	Total                      string
	Funds, Stock               []KV
	// StockOptions are the stock lines a hand-out picks from, with their quantities.
	StockOptions []StockOption
	// PhotoHint states how many photos of which types and sizes a form takes.
	PhotoHint string
	Entries   []LedgerEntry
	// Preview is what publishing Month would freeze; Published says it already is.
	Preview     []KV
	PreviewNote string
	Published   bool
}

// LedgerEntry is one ledger line as a liaison reads it.
type LedgerEntry struct {
	ID, Seq, Date, Kind, Amount, Donor, Receipt, Project, By string
	Verified                                                 string
	CanVerify, Reversed, CanReverse                          bool
	// A reversal names the entry it reversed and why; a reversed entry its reversal.
	Reverses, Reason, ReversedBy string
	Photos                       []LedgerPhoto
}

// LedgerPhoto is a photo of an entry, served by the console's own route.
type LedgerPhoto struct {
	Src, Label string
	Image      bool // shown as a thumbnail; otherwise a link
}

// StockOption is one stock line in a hand-out's select.
type StockOption struct {
	Value, Label string
}

// UsersPage is /console/admin/users.
type UsersPage struct {
	ConsolePage
	Form
	Users    []UserRow
	After    string
	NextHref string
	// OneTimePassword is a reset password, shown once, for OneTimeFor.
	OneTimePassword, OneTimeFor string
}

// UserRow is one account in the admin's list.
type UserRow struct {
	ID, Username, Name, Role, Scope, LastLogin string
	Disabled, TOTP, MustChange, Self           bool
}

// AuditPage is /console/admin/audit: the audit log, paged, optionally about one case.
type AuditPage struct {
	ConsolePage
	Form
	Entries  []AuditRow
	NextHref string
	// Verify is the result of the verify button, when it was pressed.
	Verify *AuditVerify
}

// AuditRow is one entry of the audit log.
type AuditRow struct {
	Seq, At, Role, Action, Case, Detail, Hash string
	Actor                                     AuditActor
}

// AuditActor is who acted: an account's display name and username, or (Unresolved)
// the id of an account that no longer resolves; reporters and the system by Name alone.
type AuditActor struct {
	Name, Username, ID string
	Unresolved         bool
}

// AuditVerify is what verifying the chain found.
type AuditVerify struct {
	OK                      bool
	Entries, Head           string
	BrokenSeq, BrokenReason string
	// BrokenHref lists the log from the first broken entry on.
	BrokenHref string
}

// RecipientsPage is /console/admin/recipients: custodians' and staff's keys.
type RecipientsPage struct {
	ConsolePage
	Form
	Recipients []RecipientRow
	// Risks are the jurisdictions with fewer than two custodian keys.
	Risks []KV
	// DemoUsed: the demo custodian key exists; DemoDivisions still depend on it alone.
	DemoUsed      bool
	DemoKey       string
	DemoDivisions []string
}

// RecipientRow is one registered key.
type RecipientRow struct {
	ID, Jurisdiction, Code, Role, Holder, Recipient, Label, Added, Revoked string
}

// RulesPage is /console/admin/rules.
type RulesPage struct {
	ConsolePage
	Form
	Version string
	All     bool
	Rules   []RuleRow
	// The new rule form's choices; Checked are the boxes ticked, by "field=value".
	Categories, SubjectKinds, OrgTypes, Relations, InformRelations, Levels, Kinds []Option
	InformRows                                                                    []InformRow
	Checked                                                                       map[string]bool
}

// InformRow is one informed unit (抄送) of the new rule form: its fields are Name +
// ".relation" etc., its elements' ids "f-" + ID + "-relation" etc.
type InformRow struct {
	Name, ID, Label string
}

// RuleRow is one routing rule in words.
type RuleRow struct {
	ID, Name, Conditions, Primary, Inform, Priority, Version, ValidFrom, ValidTo, Retired string
	InForce                                                                               bool
}

// UnitPage is /console/admin/units: the search (?q=), one unit with its aliases and
// the form that changes it (?id=), or the form for a new unit (?new=1).
type UnitPage struct {
	ConsolePage
	Form
	// Query is what was searched for; Searched that a search ran (Results may be
	// empty); More how many further units matched than are listed.
	Query    string
	Searched bool
	Results  []UnitRow
	More     int
	// New shows the form for a new unit (its id typed); Found a stored unit (its id
	// fixed): its details, its aliases and the same form filled in.
	New, Found                 bool
	ID, Name, Kind, Division   string
	Level, Parent, StationedAt string
	Active                     bool
	Aliases                    []string
	Kinds, Levels              []Option
	// OpenCases is what the unit holds that is not closed, per status (none listed
	// when it holds nothing open), OpenTotal their sum; Staff how many of its staff
	// accounts are enabled — who works those cases, since deactivating a unit does
	// not move them.
	OpenCases []Tab
	OpenTotal int64
	Staff     int
	// UnstaffedShown is the list of units holding open cases with no enabled staff
	// account (Unstaffed, most open cases first; empty when there is none).
	UnstaffedShown bool
	Unstaffed      []UnstaffedRow
}

// UnstaffedRow is a unit that holds open cases and has no enabled staff account.
type UnstaffedRow struct {
	ID, Name string
	Active   bool
	Open     int64
	ByStatus []Tab
}

// UnitRow is one unit in a search result.
type UnitRow struct {
	ID, Name, Kind, Division string
	Active                   bool
}

// CalendarPage is /console/admin/calendar: the holiday calendars.
type CalendarPage struct {
	ConsolePage
	Form
	Years []string
}

// ImportPage is /console/admin/import: a registry file uploaded, with what became of it.
type ImportPage struct {
	ConsolePage
	Form
	Done     bool
	Counts   []KV
	Rejected []ImportRejection
	Omitted  string
}

// ImportRejection is one error of one rejected row.
type ImportRejection struct{ Row, Field, Message string }

// ExplainPage is /console/routing/explain: the explain tool (分办试算) as a form — what
// a report would carry, and the decision it would get, stored nowhere.
type ExplainPage struct {
	ConsolePage
	Form
	Categories, SubjectKinds, Cities, Counties, Towns []Option
	// Rule is the rule whose 试算 link opened the page with its conditions filled in.
	Rule string
	// Result is the decision, once a valid form was sent.
	Result *ExplainResult
}

// ExplainResult is what the router would decide, in the case page's words.
type ExplainResult struct {
	Routing  RoutingView
	Warnings []string
}
