package web

// Page is what every page's layout needs.
type Page struct {
	Title string
	Nav   string // the navigation entry to mark current: home, report, followup, about
}

// FieldError is one entry of a form's error summary: the field's element id (the
// summary links to it), its label and the message.
type FieldError struct {
	ID, Label, Message string
}

// Option is one choice of a <select> or a radio group.
type Option struct {
	Value, Label, Hint string
	Selected           bool
}

// Form is the state of a form being filled in: its CSRF token, what was typed (by
// field name), each field's message, and the summary at the top.
type Form struct {
	CSRF string
	// Key is the idempotency key the form carries (_key): a retried submission — a
	// double tap, the form sent again from the history — is done once.
	Key     string
	Values  map[string]string
	Errors  map[string]string // by field name
	Summary []FieldError
	// Notice is a message about the whole form (a proof of work needed, a retry in
	// progress) shown above the summary.
	Notice string
}

// ReportPage is /report.
type ReportPage struct {
	Page
	Form
	Categories []Option
	Provinces  []Option
	// Outside: the place chosen lies outside Zhejiang (the province picked is
	// another): the Zhejiang levels do not apply.
	Outside  bool
	Cities   []Option
	Counties []Option
	Towns    []Option
	Contacts []Option
	// FilesLost says that files chosen before were not kept (a re-rendered form never
	// holds them).
	FilesLost bool
	// Limits states the file limits up front.
	Limits string
	Accept string // the input's accept attribute
	// PoW is a proof-of-work challenge the script may solve (empty: none needed).
	PoW PoW
}

// PoW is a challenge for the script: with JavaScript off the notice explains.
type PoW struct {
	Challenge  string
	Difficulty int
}

// ReceiptPage is the answer to a filed report: the receipt code, shown once.
type ReceiptPage struct {
	Page
	ReceiptCode string
	CaseNumber  string
	Unit        string
	ReceivedAt  string
	RealName    bool
	// AcceptanceDue is the date by which a real-name reporter is told whether the
	// report was accepted; AcceptanceNote explains an estimate.
	AcceptanceDue  string
	AcceptanceNote string
	Files          int
	Warnings       []string
	Replayed       bool
}

// FollowUpLoginPage is /followup without a session.
type FollowUpLoginPage struct {
	Page
	Form
	LoggedOut bool
	Expired   bool
	PoW       PoW
}

// Message is one entry of a reporter's conversation with the unit.
type Message struct {
	From, Body, At string
	Mine, Note     bool
}

// FollowUpCasePage is /followup with a session: the reporter's own case.
type FollowUpCasePage struct {
	Page
	Reply      Form // the reply box
	Upload     Form // add evidence
	CaseNumber string
	Status     string // the status label
	StatusText string // what it means, in a citizen's words
	Category   string
	Unit       string
	ReceivedAt string
	RealName   bool
	Due        string
	Outcome    []string // the outcome, once concluded, in a citizen's words
	Notes      []Message
	Messages   []Message
	Files      []string
	Limits     string
	Accept     string
	Sent       bool // a reply was just sent
	Uploaded   int  // files just added
	// UploadedAgain of them the reporter had uploaded before: kept once, not stored again.
	UploadedAgain int
	ExpiresAt     string
}

// OrgPage is /orgs/{credit code}.
type OrgPage struct {
	Page
	CreditCode string
	Name       string
	Type       string
	Status     string
	Listed     bool // on a warning list (活动异常名录, 严重违法失信名单) or no longer registered
	Grade      string
	Authority  string
	Statements []Statement
	Check      Form
	// Checked is the result of a donor check: empty before one.
	Checked     string
	CheckedOK   bool
	ReportLink  string
	QRLink      string
	NoStatement bool
}

// Statement is one published monthly statement (财务公开月报) as the public reads it.
type Statement struct {
	Month       string // 2026年10月
	ID          string // element id
	Income      string // yuan, formatted
	Services    string
	Spending    string
	FundsEnd    string
	PublishedAt string
	Hash        string
	Chart       Chart
	LargeFlows  []Flow
	Corrections int
}

// Chart is a server-rendered SVG bar chart: the handler computes every coordinate.
type Chart struct {
	Width, Height int
	Label         string // the chart's accessible description
	Bars          []Bar
}

// Bar is one bar of a Chart with its label.
type Bar struct {
	Y, W           int
	LabelY, ValueX int
	Label, Value   string
	Class          string
}

// Flow is a large flow (大额收支) of a statement.
type Flow struct {
	Date, Kind, Amount, Project, Donor string
}

// NotFoundPage is the 404 page.
type NotFoundPage struct {
	Page
	Heading, Text string
}

// ErrorPage is any other failure: a status, a heading and what to do.
type ErrorPage struct {
	Page
	Heading, Text string
}
